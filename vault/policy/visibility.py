"""Who sees which rows: the policy's visibility rules as SQL conditions, and the same rules for one row.

Lists and look-ups are filtered in the database through these conditions (and paginated there), not
in Python after loading: a row the actor may not see is never loaded, and an id outside the visible
set is the same "not found" whether it exists or not. Each `visible_*` condition and its one-row twin
(`*_visible`) state one rule; `tests/policy/test_visibility.py` checks they agree row for row.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, false, or_, true

from vault.models import OPEN_STATUSES, Customer, Document, Loan, LoanDecision, LoanStatus, Role, User
from vault.policy.core import Decision, allow, deny

# Roles that work customers' files: they see the customer directory and its documents' titles.
_WORKING_ROLES = frozenset({Role.BORROWER, Role.COMPILER, Role.CUSTODIAN, Role.APPROVER})


def _works(actor: User) -> bool:
    return bool(actor.role_set & _WORKING_ROLES)


def visible_customers(actor: User) -> ColumnElement[bool]:
    """Condition on `Customer` rows the actor sees."""
    return true() if _works(actor) else false()


def customer_visible(actor: User, customer: Customer) -> Decision:
    return allow() if _works(actor) else deny("not_found")


def visible_documents(actor: User) -> ColumnElement[bool]:
    """Condition on `Document` rows whose metadata (title, grade, customer) the actor sees."""
    return true() if _works(actor) else false()


def document_visible(actor: User, document: Document) -> Decision:
    return allow() if _works(actor) else deny("not_found")


def visible_loans(actor: User) -> ColumnElement[bool]:
    """Condition on `Loan` rows the actor sees: their own; those they decided, released or closed; open
    ones for approvers (so a decision they may not take is refused with its reason, not hidden); approved
    and active ones for custodians. The one-row rule is `policy.loans` `loan:read`."""
    roles = actor.role_set
    decided = exists().where(LoanDecision.loan_id == Loan.id, LoanDecision.approver_id == actor.id)
    conditions: list[ColumnElement[bool]] = [
        Loan.borrower_id == actor.id, decided, Loan.released_by_id == actor.id, Loan.closed_by_id == actor.id,
    ]
    if Role.APPROVER in roles:
        conditions.append(Loan.status.in_(OPEN_STATUSES))
    if Role.CUSTODIAN in roles:
        conditions.append(Loan.status.in_((LoanStatus.APPROVED, LoanStatus.ACTIVE)))
    return and_(or_(*conditions))
