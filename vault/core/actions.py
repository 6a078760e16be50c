"""Named permissions: one `resource:action` string per thing a person can do.

Routes name one of these; audit records use the same vocabulary, so a page, an API call and a
command line doing the same thing leave the same trace.
"""

from enum import StrEnum


class Action(StrEnum):
    ACCOUNT_SELF = "account:self"
    ALERT_MANAGE = "alert:manage"
    ALERT_READ = "alert:read"
    AUDIT_EXPORT = "audit:export"
    AUDIT_READ = "audit:read"
    AUDIT_VERIFY = "audit:verify"
    CUSTOMER_ASSIGN = "customer:assign"
    CUSTOMER_CREATE = "customer:create"
    CUSTOMER_EDIT = "customer:edit"
    CUSTOMER_HISTORY = "customer:history"
    CUSTOMER_LOG = "customer:log"
    CUSTOMER_LOOKUP = "customer:lookup"
    CUSTOMER_READ = "customer:read"
    CUSTOMER_REVEAL = "customer:reveal"
    DEPARTURE_MANAGE = "departure:manage"
    DEPARTURE_OVERRIDE = "departure:override"
    DEPARTURE_REPORT = "departure:report"
    DOCUMENT_DOWNLOAD = "document:download"
    DOCUMENT_READ = "document:read"
    DOCUMENT_UPLOAD = "document:upload"
    DOCUMENT_VERSION = "document:version"
    DOCUMENT_VIEW = "document:view"
    HANDOVER_CONFIRM = "handover:confirm"
    LETTER_REVOKE = "letter:revoke"
    LOAN_APPROVE = "loan:approve"
    LOAN_DESIGNATE = "loan:designate"
    LOAN_QUEUE = "loan:queue"
    LOAN_READ = "loan:read"
    LOAN_REJECT = "loan:reject"
    LOAN_RELEASE = "loan:release"
    LOAN_REQUEST = "loan:request"
    LOAN_RETURN = "loan:return"
    LOAN_REVOKE = "loan:revoke"
    LOAN_WITHDRAW = "loan:withdraw"
    PUBLIC = "public"
    QUOTA_OVERRIDE = "quota:override"
    ROLE_APPROVE = "role:approve"
    ROLE_ASSIGN = "role:assign"
    USER_MANAGE = "user:manage"
