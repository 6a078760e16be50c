"""Decision type, the role gate, and the dispatcher to object rules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l

from vault.core.actions import Action
from vault.core.errors import Refusal
from vault.models import Role, User


@dataclass(frozen=True)
class Decision:
    """An answer of the policy. `message` may be a lazy translation: it is put into words when shown."""

    allowed: bool
    code: str
    message: Any = ""

    def __bool__(self) -> bool:
        return self.allowed


class Denied(Refusal):
    """A refused decision, raised so the request pipeline rolls back, audits the refusal and explains it."""

    def __init__(self, decision: Decision, *, action: Action | None = None, keep_work: bool = False,
                 **audit: Any) -> None:
        super().__init__(decision.message or decision.code)
        self.decision = decision
        # The action refused, where the raiser knows it: the command line records the refusal under it.
        self.action = action
        # The refusal follows work that must stand (an expired reservation refunded, a loan that ran out
        # expired): the pipeline commits that work with the refusal's record instead of rolling it back.
        self.keep_work = keep_work
        self.audit = audit  # targets for the audit record of the refusal (document_id=..., loan_id=...)


class MissingRule(RuntimeError):
    """An action was asked about a target, and no object rule decides it: a programming error."""


# Plain words for every reason code, shown to people; codes are what machines match on.
MESSAGES: dict[str, Any] = {
    "ok": _l("Allowed."),
    "not_authenticated": _l("Please sign in."),
    "account_disabled": _l("This account is disabled."),
    "not_permitted": _l("Your roles do not allow this."),
    "not_found": _l("No such item, or you may not see it."),
    "access_suspended": _l("Your access to customer records is suspended after an early-warning alert; an approver "
                        "can lift it."),
    "query_too_short": _l("Type at least 4 letters of the customer's name."),
    "not_owners_manager": _l("Only the owner's manager (or higher up), or an approver, may change who works a "
                             "customer."),
    "own_gain": _l("Nobody may give a customer to themselves."),
    "too_many_co_owners": _l("A customer has at most three co-owners."),
    "not_owner": _l("Only the customer's owner or a co-owner may change the record."),
    "not_in_chain": _l("Only the owner, the co-owners and their managers may read the record's history."),
    "not_working": _l("Only the people working this customer (owner, co-owners, their managers, a successor taking "
                   "it over) may add to its contact log."),
    "reveal_quota": _l("You have used all your reveals of this customer for the period."),
    "reveal_daily_cap": _l("You have used all your reveals for today."),
    "separation_of_duties": _l("The same person cannot hold two duties on one loan."),
    "role_conflict": _l("These roles cannot be held together."),
    "not_compiler": _l("Only the compiler of this file may add a version."),
    "invalid_grade": _l("The grade must be 1, 2 or 3."),
    "bad_credentials": _l("Wrong user name or password."),
    "throttled": _l("Too many failed sign-ins from this address; try again later."),
    "locked": _l("Too many failed sign-ins for this account; try again later."),
    "bad_second_factor": _l("The code is not valid."),
    "code_reused": _l("This code has already been used; wait for the next one."),
    "second_factor_required": _l("Your roles require a second factor; set it up to continue."),
    "agreement_required": _l("Accept the confidentiality agreement before using vault: on the web pages, or "
                             "through GET /api/v1/agreement and POST /api/v1/agreement/accept."),
    "session_expired": _l("Your session has expired; please sign in again."),
    "weak_password": _l("The password is too short."),
    "common_password": _l("This password is too common; choose another."),
    "password_contains_username": _l("A password must not contain the user name."),
    "self_disable": _l("Nobody may disable their own account."),
    "not_in_pool": _l("This customer is not in the pool."),
    "already_in_pool": _l("This customer is already in the pool."),
    "not_gainers_manager": _l("Only the person's manager (or higher up), or an approver, may give them a customer "
                              "from the pool."),
    "not_owner_or_manager": _l("Only the owner, the owner's manager (or higher up) or an approver may return a "
                               "customer to the pool."),
    "pool_segment": _l("You may not claim customers of this segment."),
    "pool_limit": _l("You already hold as many customers of this segment as allowed."),
    "token_scope": _l("This token may only read; making changes (opening a view included) needs a write token."),
}


def message_for(code: str) -> Any:
    return MESSAGES.get(code, code.replace("_", " ").capitalize() + ".")


def allow() -> Decision:
    return Decision(True, "ok")


def deny(code: str, message: Any = None) -> Decision:
    return Decision(False, code, message or message_for(code))


# Who may use an action at all. An action missing here is refused to everyone: deny by default.
ROLE_RULES: dict[Action, frozenset[Role] | None] = {
    Action.POOL_ASSIGN: frozenset({Role.BORROWER, Role.COMPILER, Role.CUSTODIAN, Role.APPROVER}),
    Action.POOL_CLAIM: frozenset({Role.BORROWER, Role.COMPILER}),
    Action.POOL_READ: frozenset({Role.BORROWER, Role.COMPILER, Role.APPROVER}),
    Action.POOL_RELEASE: frozenset({Role.BORROWER, Role.COMPILER, Role.CUSTODIAN, Role.APPROVER}),
    Action.PUBLIC: None,
    Action.ACCOUNT_SELF: frozenset(Role),
    Action.ALERT_MANAGE: frozenset({Role.AUDITOR, Role.APPROVER}),
    Action.ALERT_READ: frozenset({Role.AUDITOR, Role.APPROVER}),
    Action.AUDIT_EXPORT: frozenset({Role.AUDITOR}),
    Action.AUDIT_READ: frozenset({Role.AUDITOR}),
    Action.AUDIT_VERIFY: frozenset({Role.AUDITOR}),
    Action.CUSTOMER_ASSIGN: frozenset({Role.BORROWER, Role.COMPILER, Role.CUSTODIAN, Role.APPROVER}),
    Action.CUSTOMER_CREATE: frozenset({Role.COMPILER}),
    Action.CUSTOMER_EDIT: frozenset({Role.BORROWER, Role.COMPILER, Role.CUSTODIAN, Role.APPROVER}),
    Action.CUSTOMER_HISTORY: frozenset({Role.BORROWER, Role.COMPILER, Role.CUSTODIAN, Role.APPROVER}),
    Action.CUSTOMER_LOG: frozenset({Role.BORROWER, Role.COMPILER, Role.CUSTODIAN, Role.APPROVER}),
    Action.CUSTOMER_LOOKUP: frozenset({Role.BORROWER, Role.COMPILER, Role.CUSTODIAN, Role.APPROVER}),
    Action.CUSTOMER_READ: frozenset({Role.BORROWER, Role.COMPILER, Role.CUSTODIAN, Role.APPROVER}),
    Action.CUSTOMER_REVEAL: frozenset({Role.BORROWER, Role.COMPILER, Role.CUSTODIAN, Role.APPROVER}),
    Action.DEPARTURE_MANAGE: frozenset({Role.ADMIN}),
    Action.DEPARTURE_OVERRIDE: frozenset({Role.APPROVER}),
    Action.DEPARTURE_REPORT: frozenset({Role.ADMIN, Role.AUDITOR}),
    Action.DOCUMENT_DOWNLOAD: frozenset({Role.BORROWER}),
    Action.DOCUMENT_READ: frozenset({Role.BORROWER, Role.COMPILER, Role.CUSTODIAN, Role.APPROVER}),
    Action.DOCUMENT_UPLOAD: frozenset({Role.COMPILER}),
    Action.DOCUMENT_VERSION: frozenset({Role.COMPILER}),
    Action.DOCUMENT_VIEW: frozenset({Role.BORROWER}),
    Action.HANDOVER_CONFIRM: frozenset(Role) - {Role.ADMIN, Role.AUDITOR},
    Action.LETTER_REVOKE: frozenset({Role.BORROWER, Role.COMPILER, Role.CUSTODIAN, Role.APPROVER, Role.ADMIN}),
    Action.LOAN_APPROVE: frozenset({Role.APPROVER}),
    Action.LOAN_QUEUE: frozenset({Role.APPROVER, Role.CUSTODIAN}),
    Action.LOAN_READ: frozenset({Role.BORROWER, Role.APPROVER, Role.CUSTODIAN}),
    Action.LOAN_REJECT: frozenset({Role.APPROVER}),
    Action.LOAN_RELEASE: frozenset({Role.CUSTODIAN}),
    Action.LOAN_DESIGNATE: frozenset({Role.APPROVER}),
    Action.LOAN_REQUEST: frozenset({Role.BORROWER}),
    Action.LOAN_RETURN: frozenset({Role.BORROWER, Role.CUSTODIAN}),
    Action.LOAN_REVOKE: frozenset({Role.CUSTODIAN, Role.APPROVER}),
    Action.LOAN_WITHDRAW: frozenset({Role.BORROWER}),
    Action.MANAGER_APPROVE: frozenset({Role.ADMIN}),
    Action.QUOTA_OVERRIDE: frozenset({Role.CUSTODIAN, Role.APPROVER}),
    Action.ROLE_APPROVE: frozenset({Role.ADMIN, Role.AUDITOR}),
    Action.ROLE_ASSIGN: frozenset({Role.ADMIN}),
    Action.ROTATION_CONFIRM: frozenset(Role) - {Role.ADMIN, Role.AUDITOR},
    Action.ROTATION_DECIDE: frozenset({Role.BORROWER, Role.COMPILER, Role.CUSTODIAN, Role.APPROVER}),
    Action.USER_MANAGE: frozenset({Role.ADMIN}),
}

ObjectRule = Callable[[User, Any, dict[str, Any]], Decision]
OBJECT_RULES: dict[Action, ObjectRule] = {}


def object_rule(action: Action) -> Callable[[ObjectRule], ObjectRule]:
    """Register the rule that decides `action` on a particular target (one rule per action)."""

    def register(func: ObjectRule) -> ObjectRule:
        if action in OBJECT_RULES:
            raise RuntimeError(f"two object rules for {action}")
        OBJECT_RULES[action] = func
        return func

    return register


StandingRule = Callable[[User], Decision]
STANDING_RULES: dict[Action, StandingRule] = {}


def standing_rule(*actions: Action) -> Callable[[StandingRule], StandingRule]:
    """Register a rule about the actor alone that decides `actions` with or without a target, after the role
    gate: the guard asks an action without one (`vault.web.guard`), so a rule that must hold for every route
    of an action (nobody on notice reads the audit log) cannot live among the object rules (one per action)."""

    def register(func: StandingRule) -> StandingRule:
        for action in actions:
            if action in STANDING_RULES:
                raise RuntimeError(f"two standing rules for {action}")
            STANDING_RULES[action] = func
        return func

    return register


def role_allows(actor: User, action: Action) -> bool:
    roles = ROLE_RULES.get(action, frozenset())
    return roles is None or bool(actor.role_set & roles)


def authorize(actor: User | None, action: Action, target: Any = None, **context: Any) -> Decision:
    """Decide whether `actor` may do `action` (on `target`, when given).

    Without a target only the role gate and the action's standing rule, if any, are checked (is this kind of
    act open to this person at all?); with one, the object rule registered for the action decides, after them.
    """
    if action not in ROLE_RULES:
        return deny("not_permitted")
    if ROLE_RULES[action] is None:
        return allow()
    if actor is None:
        return deny("not_authenticated")
    if not actor.can_sign_in:
        return deny("account_disabled")
    if not role_allows(actor, action):
        return deny("not_permitted")
    if (standing := STANDING_RULES.get(action)) is not None and not (decided := standing(actor)):
        return decided
    if target is None:
        return allow()
    rule = OBJECT_RULES.get(action)
    if rule is None:
        # Deny by default at object level too: a target with no rule to judge it is a gap in the policy,
        # not a permission (`tests/policy/test_completeness.py` finds every such call in the code).
        raise MissingRule(f"no object rule for {action}, used with a target")
    return rule(actor, target, context)


def require(actor: User | None, action: Action, target: Any = None, **context: Any) -> Decision:
    """Like `authorize`, but raise `Denied` on refusal; returns the granting decision."""
    decision = authorize(actor, action, target, **context)
    if not decision:
        raise Denied(decision, action=action, **context.get("audit", {}))
    return decision
