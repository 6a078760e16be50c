"""Typed SQLAlchemy 2.0 models, one module per part of the domain."""

from vault.models.audit import AuditCheckpoint, AuditEvent, AuditHead
from vault.models.base import Base, UTCDateTime, utcnow
from vault.models.customers import Customer, Segment
from vault.models.departures import (
    SEVERITY_RANK,
    Alert,
    AlertStatus,
    Departure,
    DepartureStatus,
    HandoverItem,
    QuotaExhaustion,
    Severity,
)
from vault.models.documents import PREVIEW_NONE, PREVIEW_READY, Document, DocumentVersion, VersionPage
from vault.models.loans import OPEN_STATUSES, Category, Loan, LoanDecision, LoanKind, LoanStatus
from vault.models.security import AgreementAcceptance, LoginAttempt, RecoveryCode, TotpSecret
from vault.models.users import ApiToken, Role, RoleAssignment, User, UserStatus
from vault.models.views import SPENT_STATUSES, DocumentView, QuotaUsage, ViewStatus

__all__ = [
    "OPEN_STATUSES",
    "PREVIEW_NONE",
    "PREVIEW_READY",
    "SEVERITY_RANK",
    "SPENT_STATUSES",
    "AgreementAcceptance",
    "Alert",
    "AlertStatus",
    "ApiToken",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditHead",
    "Base",
    "Category",
    "Customer",
    "Departure",
    "DepartureStatus",
    "Document",
    "DocumentVersion",
    "DocumentView",
    "HandoverItem",
    "Loan",
    "LoanDecision",
    "LoanKind",
    "LoanStatus",
    "LoginAttempt",
    "QuotaExhaustion",
    "QuotaUsage",
    "RecoveryCode",
    "Role",
    "RoleAssignment",
    "Segment",
    "Severity",
    "TotpSecret",
    "UTCDateTime",
    "User",
    "UserStatus",
    "VersionPage",
    "ViewStatus",
    "utcnow",
]
