"""Typed SQLAlchemy 2.0 models, one module per part of the domain."""

from vault.models.alerts import SEVERITY_RANK, Alert, AlertStatus, QuotaExhaustion, Severity
from vault.models.audit import AuditCheckpoint, AuditEvent, AuditHead
from vault.models.base import Base, UTCDateTime, utcnow
from vault.models.customers import Customer, CustomerAccess, CustomerCoOwner, Segment
from vault.models.departures import Departure, DepartureStatus, HandoverItem
from vault.models.documents import PREVIEW_NONE, PREVIEW_READY, Document, DocumentVersion, VersionPage
from vault.models.grants import ManagerRequest, PasswordLink, RequestStatus, RoleRequest, WebSession
from vault.models.letters import CustomerLetter, LetterAnswer
from vault.models.loans import OPEN_STATUSES, Category, Loan, LoanDecision, LoanKind, LoanStatus
from vault.models.mail import MailMode, MailOutbox, MailPreference, MailStatus
from vault.models.pool import PoolClaim
from vault.models.records import ContactLogEntry, CustomerRecord, CustomerRecordVersion, RevealUsage
from vault.models.rotation import ProposalStatus, RotationProposal
from vault.models.security import AgreementAcceptance, LoginAttempt, RecoveryCode, TotpSecret
from vault.models.users import ApiToken, Role, RoleAssignment, User, UserStatus
from vault.models.views import SPENT_STATUSES, DocumentView, QuotaUsage, ViewStatus, ViewTally

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
    "ContactLogEntry",
    "Customer",
    "CustomerAccess",
    "CustomerCoOwner",
    "CustomerLetter",
    "CustomerRecord",
    "CustomerRecordVersion",
    "Departure",
    "DepartureStatus",
    "Document",
    "DocumentVersion",
    "DocumentView",
    "HandoverItem",
    "LetterAnswer",
    "Loan",
    "LoanDecision",
    "LoanKind",
    "LoanStatus",
    "LoginAttempt",
    "MailMode",
    "MailOutbox",
    "MailPreference",
    "MailStatus",
    "ManagerRequest",
    "PasswordLink",
    "PoolClaim",
    "ProposalStatus",
    "QuotaExhaustion",
    "QuotaUsage",
    "RecoveryCode",
    "RequestStatus",
    "RevealUsage",
    "Role",
    "RoleAssignment",
    "RoleRequest",
    "RotationProposal",
    "Segment",
    "Severity",
    "TotpSecret",
    "UTCDateTime",
    "User",
    "UserStatus",
    "VersionPage",
    "ViewStatus",
    "ViewTally",
    "WebSession",
    "utcnow",
]
