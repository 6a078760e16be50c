"""The HMAC chain: canonical bytes of a record and the MAC that links it to the one before.

MAC(n) = HMAC-SHA256(audit key, canonical_json(record n without its MAC) ‖ MAC(n-1) as hex), with
MAC(0) = "". Canonical JSON (sorted keys, no spaces, UTF-8, times as ISO 8601 UTC with microseconds)
is simple enough for an outside auditor to recompute with any language.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

from ..models import AuditEvent

# The fields a MAC covers, in the order exports show them. Changing this list breaks every chain.
CHAINED_FIELDS: tuple[str, ...] = (
    "seq", "ts", "actor_id", "actor_name", "action", "outcome", "reason_code", "customer_id",
    "document_id", "version_id", "loan_id", "subject_user_id", "client_addr", "named_place",
    "declared_place", "user_agent", "reason_text", "request_id", "detail",
)


def format_ts(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_dict(event: AuditEvent) -> dict[str, Any]:
    """The chained fields of an event as plain JSON values (detail decoded to an object)."""
    out: dict[str, Any] = {}
    for name in CHAINED_FIELDS:
        value = getattr(event, name)
        if name == "ts":
            value = format_ts(value)
        elif name == "detail":
            value = json.loads(value or "{}")
        out[name] = value
    return out


def canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(
        {k: record[k] for k in CHAINED_FIELDS}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def compute_mac(key: bytes, record: dict[str, Any], previous_mac: str) -> str:
    return hmac.new(key, canonical(record) + previous_mac.encode("ascii"), hashlib.sha256).hexdigest()
