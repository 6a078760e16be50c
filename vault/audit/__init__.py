"""Tamper-evident audit log: the chain, its only writer, verification, checkpoints and export."""

from vault.audit.chain import CHAINED_FIELDS, canonical, compute_mac, record_dict
from vault.audit.log import AuditLog

__all__ = ["CHAINED_FIELDS", "AuditLog", "canonical", "compute_mac", "record_dict"]
