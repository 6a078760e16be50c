"""Typed SQLAlchemy 2.0 models, one module per part of the domain."""

from .audit import AuditCheckpoint, AuditEvent, AuditHead
from .base import Base, UTCDateTime, utcnow
from .customers import Customer, Segment
from .documents import Document, DocumentVersion
from .loans import OPEN_STATUSES, Category, Loan, LoanDecision, LoanKind, LoanStatus
from .users import ApiToken, Role, RoleAssignment, User, UserStatus
from .views import SPENT_STATUSES, DocumentView, QuotaUsage, ViewStatus

__all__ = [
    "OPEN_STATUSES",
    "SPENT_STATUSES",
    "ApiToken",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditHead",
    "Base",
    "Category",
    "Customer",
    "Document",
    "DocumentVersion",
    "DocumentView",
    "Loan",
    "LoanDecision",
    "LoanKind",
    "LoanStatus",
    "QuotaUsage",
    "Role",
    "RoleAssignment",
    "Segment",
    "UTCDateTime",
    "User",
    "UserStatus",
    "ViewStatus",
    "utcnow",
]
