"""Typed SQLAlchemy 2.0 models, one module per part of the domain."""

from .audit import AuditCheckpoint, AuditEvent, AuditHead
from .base import Base, UTCDateTime, utcnow
from .customers import Customer, Segment
from .departures import (
    SEVERITY_RANK,
    Alert,
    AlertStatus,
    Departure,
    DepartureStatus,
    HandoverItem,
    QuotaExhaustion,
    Severity,
)
from .documents import Document, DocumentVersion
from .loans import OPEN_STATUSES, Category, Loan, LoanDecision, LoanKind, LoanStatus
from .mail import MailMode, MailOutbox, MailPreference, MailStatus
from .security import AgreementAcceptance, LoginAttempt, RecoveryCode, TotpSecret
from .users import ApiToken, Role, RoleAssignment, User, UserStatus
from .views import SPENT_STATUSES, DocumentView, QuotaUsage, ViewStatus

__all__ = [
    "OPEN_STATUSES",
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
    "MailMode",
    "MailOutbox",
    "MailPreference",
    "MailStatus",
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
    "ViewStatus",
    "utcnow",
]
