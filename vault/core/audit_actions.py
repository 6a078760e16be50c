"""Every event name the audit log may hold, in one enum.

`AuditLog.record` accepts only these members (an unknown name is a ValueError at the call), so a
misspelt event fails a test instead of writing a name no filter, alert or report looks for. The values
are the stable strings stored in the log: renaming a member is free, changing a value is a migration of
everyone's queries. Every `Action` (a permission) is also an event name: a refusal is recorded under
the action that was refused, and most successful acts under the action that allowed them.
"""

from enum import StrEnum


class AuditAction(StrEnum):
    # Permissions (mirrors of `Action`; a test keeps the two in step).
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
    LOAN_APPROVE = "loan:approve"
    LOAN_QUEUE = "loan:queue"
    LOAN_READ = "loan:read"
    LOAN_REJECT = "loan:reject"
    LOAN_RELEASE = "loan:release"
    LOAN_REQUEST = "loan:request"
    LOAN_RETURN = "loan:return"
    LOAN_REVOKE = "loan:revoke"
    LOAN_WITHDRAW = "loan:withdraw"  # the borrower takes back a request nobody has decided yet
    MANAGER_APPROVE = "manager:approve"  # a second admin puts in place the manager another admin named
    POOL_ASSIGN = "pool:assign"  # a manager gives a pooled customer to one of their people
    POOL_CLAIM = "pool:claim"
    POOL_READ = "pool:read"  # the pool listed, with the ids shown
    POOL_RELEASE = "pool:release"  # the owner or their manager returns a customer to the pool, with a reason
    PUBLIC = "public"
    QUOTA_OVERRIDE = "quota:override"
    ROLE_ASSIGN = "role:assign"
    ROTATION_CONFIRM = "rotation:confirm"  # the new owner confirms having reached a rotated customer
    ROTATION_DECIDE = "rotation:decide"
    USER_MANAGE = "user:manage"

    # Accounts and signing in.
    ACCOUNT_PASSWORD = "account:password"  # noqa: S105
    AGREEMENT_ACCEPT = "agreement:accept"
    AUTH_LOCKOUT = "auth:lockout"
    AUTH_LOGIN = "auth:login"
    AUTH_LOGOUT = "auth:logout"
    AUTH_LOGOUT_EVERYWHERE = "auth:logout_everywhere"
    AUTH_PASSWORD = "auth:password"  # noqa: S105 (an event name, not a secret)
    AUTH_SESSION_EXPIRED = "auth:session_expired"
    AUTH_SESSIONS_END = "auth:sessions_end"
    ROLE_REMOVE = "role:remove"
    TOKEN_CREATE = "token:create"  # noqa: S105
    TOKEN_REVOKE = "token:revoke"  # noqa: S105
    TOTP_ENROL = "totp:enrol"
    TOTP_RECOVERY_CODES = "totp:recovery_codes"
    TOTP_REMOVE = "totp:remove"
    TOTP_RESET = "totp:reset"
    USER_CREATE = "user:create"
    USER_DISABLE = "user:disable"
    USER_ENABLE = "user:enable"

    # Content delivery and quotas.
    CONTENT_OPEN = "content:open"  # refusals of a content URL, pages and API alike
    CONTENT_DELIVERED = "content:delivered"
    CONTENT_PARTIAL = "content:partial"
    VIEW_REFUND = "view:refund"
    LOAN_EXPIRE = "loan:expire"

    # Departures and alerts.
    CUSTOMER_HANDOVER = "customer:handover"
    CUSTOMER_LIST = "customer:list"
    CUSTOMER_SEARCH = "customer:search"  # one search over customers and files, with the ids it returned
    CUSTOMER_OWNER = "customer:owner"
    CUSTOMER_CO_OWNER_ADD = "customer:co_owner_add"
    CUSTOMER_CO_OWNER_REMOVE = "customer:co_owner_remove"
    POOL_LAPSE = "pool:lapse"  # a claim nobody worked for the lapse period went back to the pool
    POOL_RETURN = "pool:return"  # a leaver's customer returned to the pool in a departure

    # Rotation of account managers.
    ROTATION_PROPOSE = "rotation:propose"  # the plan proposed moving one customer to another owner
    ROTATION_APPROVE = "rotation:approve"  # a manager approved (perhaps naming someone else): ownership moved
    ROTATION_SKIP = "rotation:skip"  # a manager kept the customer with its owner, saying why
    ROTATION_VOID = "rotation:void"  # the owner changed another way before anyone decided

    # The customer record.
    CUSTOMER_CONFIRM = "customer:confirm"  # the owner found the record current and changed nothing
    CUSTOMER_VERSION_READ = "customer:version_read"
    CUSTOMER_ACCESS_SUSPEND = "customer:access_suspend"
    CUSTOMER_ACCESS_RESTORE = "customer:access_restore"
    USER_MANAGER = "user:manager"
    ACCESS_SUSPEND = "access:suspend"
    ACCESS_RESUME = "access:resume"
    DEPARTURE_WITHDRAW = "departure:withdraw"
    LOAN_DESIGNATE = "loan:designate"
    VIEW_CLOSE = "view:close"
    VIEW_PAGE = "view:page"
    AUDIT_TRACE = "audit:trace"
    USER_EMAIL = "user:email"
    ACCOUNT_LANGUAGE = "account:language"
    ACCOUNT_NOTIFICATIONS = "account:notifications"  # one's own mail choices changed: each kind, from and to
    MAIL_RETRY = "mail:retry"  # an operator put a mail that failed for good back in the queue
    MANAGER_REQUEST = "manager:request"
    MANAGER_REFUSE = "manager:refuse"
    ROLE_REQUEST = "role:request"
    ROLE_APPROVE = "role:approve"
    ROLE_REFUSE = "role:refuse"
    ACCOUNT_PASSWORD_LINK = "account:password_link"  # noqa: S105 (an event name)
    ACCOUNT_PASSWORD_SET = "account:password_set"  # noqa: S105 (an event name)
    DEPARTURE_START = "departure:start"
    DEPARTURE_UPDATE = "departure:update"
    DEPARTURE_OFFBOARD = "departure:offboard"
    DEPARTURE_COMPLETE = "departure:complete"
    ALERT_RAISE = "alert:raise"
    ALERT_ESCALATE = "alert:escalate"
    ALERT_ACKNOWLEDGE = "alert:acknowledge"
    ALERT_RESOLVE = "alert:resolve"

    # Letters to a customer's main contacts about a new account manager, and the customer's answer.
    CUSTOMER_CONTACTS_SYSTEM_READ = "customer:contacts_system_read"  # the product opened the sealed contacts
    CUSTOMER_LETTER = "customer:letter"  # letters queued for one change of owner (no address, no text)
    LETTER_ANSWER = "letter:answer"  # a contact answered through the letter's link (no sign-in)
    LETTER_LINK_REFUSED = "letter:link_refused"  # a forged, used, expired or revoked link was followed
    LETTER_REVOKE = "letter:revoke"
    # An operator sent a letter whose mail failed for good again, with a fresh link (the old one ends).
    LETTER_REISSUE = "letter:reissue"
    # The maintenance sweep forgot the address and text of letters, withheld or failed, that no repair may send
    # any more (one record per sweep, naming the letters, their reasons and states).
    LETTER_FORGET = "letter:forget"

    # Keys, storage and the log itself (operators).
    KEY_REWRAP = "key:rewrap"
    KEY_ROTATE = "key:rotate"
    KEY_DROP = "key:drop"
    STORAGE_FSCK = "storage:fsck"
    STORAGE_REPAIR = "storage:repair"  # what `vault fsck --repair` is about to remove, named first
    AUDIT_KEY_EXPORT = "audit:key_export"
    KEY_EXPORT = "key:export"
    BACKUP_CREATE = "backup:create"
    BACKUP_RESTORE = "backup:restore"

    # A request to a route the access policy does not cover (refused; the endpoint is in the detail).
    ROUTE_UNMARKED = "route:unmarked"
    # A command-line command the policy refused, where the refusal does not name its action (the command
    # is in the detail).
    COMMAND_REFUSED = "command:refused"


def audit_action(name: str) -> AuditAction:
    """The member for `name` (a member, an `Action`, or its string value).

    Raises:
        ValueError: `name` is not an event name the log knows.
    """
    try:
        return AuditAction(str(name))
    except ValueError:
        raise ValueError(f"{name!r} is not an audit action; add it to AuditAction") from None
