"""Who sees which rows: the policy's visibility rules as SQL conditions, and the same rules for one row.

Need to know: people see the customers they work, and nothing else of the customer base without an
audited look-up. A person sees a customer (its name, segment, owner and file titles) when they
- own or co-own it;
- manage its owner, directly or further up the chain of managers, unless they are on notice (below);
- hold an active loan of one of its files;
- looked it up by name within the last `LOOKUP_GRANT` (a look-up returns at most five names and is
  audited: it is the way to reach a customer one does not work, never a way to browse);
- as an approver, have one of its files' loans open in their queue (requested, approved or active; an
  extension only while it is requested);
- as a custodian, have one of its files' loans (not extensions) awaiting release or active, or keep one of
  its files;
- as a compiler, created it or compiled one of its files.
Auditors see customers through the audit log only; administrators see none. A person whose customer
access is suspended (a high-severity directory alert) sees none until an approver lifts it. A person on
notice keeps what they see as anyone working customers does, but not what an approver's or custodian's
work opens (queues, kept files): they decide nothing for others any more (`policy.loans`); nor what
managing opens: a manager on notice no longer sees the customers of the people below them, whose books
they would otherwise list, read and reveal in their last weeks (no successor takes that sight back). Their
team's customers are reached by a look-up only, with its limits, as anyone's. A withdrawn notice gives
the sight back; a manager above them who is not leaving keeps it.

Lists and look-ups are filtered in the database through these conditions (and paginated there), not in
Python after loading: a row the actor may not see is never loaded, and an id outside the visible set is
the same "not found" whether it exists or not. The one-row rules evaluate the same condition for that
row, so the two cannot disagree.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

from sqlalchemy import BindParameter, ColumnElement, Integer, and_, bindparam, exists, false, or_, select
from sqlalchemy.orm import object_session

from vault.core.actions import Action
from vault.models import (
    OPEN_STATUSES,
    Alert,
    Customer,
    CustomerAccess,
    CustomerCoOwner,
    Document,
    Loan,
    LoanDecision,
    LoanKind,
    LoanStatus,
    Role,
    User,
    UTCDateTime,
    utcnow,
)
from vault.policy.core import Decision, allow, authorize, deny
from vault.policy.notice import on_notice

LOOKUP_GRANT = timedelta(hours=24)
_WORKING_ROLES = frozenset({Role.BORROWER, Role.COMPILER, Role.CUSTODIAN, Role.APPROVER})
# The roles whose sight comes with deciding over other people's loans (their queues, the files they keep).
_DECIDING_ROLES = frozenset({Role.CUSTODIAN, Role.APPROVER})


def reports_of(manager_id: int | BindParameter[int]):
    """Everyone below `manager_id` in the chain of managers (a recursive query; UNION stops at cycles)."""
    chain = select(User.id).where(User.manager_id == manager_id).cte("reports", recursive=True)
    return chain.union(select(User.id).where(User.manager_id == chain.c.id))


def _loan_on_customer(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(Loan.document_id == Document.id, Document.customer_id == Customer.id, *conditions)


def sees_team(actor: User) -> bool:
    """Whether the actor sees the customers of the people below them in the chain of managers: not while
    they are on notice (see the module docstring). Every rule that opens a customer through managing asks
    this (`book_and_team`, `policy.records`)."""
    return not on_notice(actor)


def book_and_team(actor: User) -> ColumnElement[bool]:
    """Condition on `Customer` rows the actor owns or co-owns, or (`sees_team`) whose owner is below them in
    the chain of managers: the records they answer for keeping up to date (the to-do list's overdue ones)."""
    conditions: list[ColumnElement[bool]] = [
        Customer.owner_id == actor.id,
        exists().where(CustomerCoOwner.customer_id == Customer.id, CustomerCoOwner.user_id == actor.id),
    ]
    if sees_team(actor):
        conditions.append(Customer.owner_id.in_(select(reports_of(actor.id).c.id)))
    return or_(*conditions)


def _seeing_roles(actor: User) -> frozenset[Role]:
    """The roles the actor sees customers by: without the deciding ones while their queues are suspended
    (`queues_suspended`), whose sight goes with the work of deciding."""
    roles = actor.role_set
    return roles - _DECIDING_ROLES if queues_suspended(actor) else roles


def visible_customers(actor: User, now: datetime | None = None) -> ColumnElement[bool]:
    """Condition on `Customer` rows the actor sees (see the module docstring)."""
    if not actor.role_set & _WORKING_ROLES or actor.customers_suspended_at is not None:
        return false()
    return _customers_seen(_seeing_roles(actor), sees_team(actor), actor.id, (now or utcnow()) - LOOKUP_GRANT)


def _customers_seen(roles: frozenset[Role], team: bool, actor_id: int | BindParameter[int],
                    lookups_since: datetime | BindParameter[datetime] | None) -> ColumnElement[bool]:
    """The rule itself, for the actor's roles: `team` whether managing opens the team's customers
    (`sees_team`); `actor_id` and `lookups_since` are values or parameters (`lookups_since` None: no look-up
    counts)."""
    conditions: list[ColumnElement[bool]] = [
        Customer.owner_id == actor_id,
        exists().where(CustomerCoOwner.customer_id == Customer.id, CustomerCoOwner.user_id == actor_id),
        _loan_on_customer(Loan.borrower_id == actor_id, Loan.status == LoanStatus.ACTIVE),
    ]
    if team:
        conditions.append(Customer.owner_id.in_(select(reports_of(actor_id).c.id)))
    if lookups_since is not None:
        conditions.append(exists().where(CustomerAccess.customer_id == Customer.id, CustomerAccess.user_id == actor_id,
                                         CustomerAccess.kind == "lookup", CustomerAccess.at >= lookups_since))
    # An approved extension is no loan in a queue: it stays approved as long as its views count, and
    # must not open its customer to every approver and custodian for that long.
    if Role.APPROVER in roles:
        conditions.append(_loan_on_customer(Loan.status.in_(OPEN_STATUSES),
                                            or_(Loan.kind == LoanKind.LOAN, Loan.status == LoanStatus.REQUESTED)))
    if Role.CUSTODIAN in roles:
        conditions.append(_loan_on_customer(Loan.kind == LoanKind.LOAN,
                                            Loan.status.in_((LoanStatus.APPROVED, LoanStatus.ACTIVE))))
        conditions.append(exists().where(Document.customer_id == Customer.id, Document.custodian_id == actor_id))
    if Role.COMPILER in roles:
        conditions.append(Customer.created_by_id == actor_id)
        conditions.append(exists().where(Document.customer_id == Customer.id, Document.compiler_id == actor_id))
    return or_(*conditions)


# The parameters of `visible_documents_by_parameter`'s condition (see `visibility_values`).
VISIBLE_TO = "visible_to"
LOOKUPS_SINCE = "lookups_since"


@functools.cache
def _documents_seen_by_parameter(roles: frozenset[Role], team: bool, sees_any: bool) -> ColumnElement[bool]:
    if not sees_any:
        return false()
    seen = _customers_seen(roles, team, bindparam(VISIBLE_TO, type_=Integer),
                           bindparam(LOOKUPS_SINCE, type_=UTCDateTime))
    return Document.customer_id.in_(select(Customer.id).where(seen))


def visible_documents_by_parameter(actor: User) -> ColumnElement[bool]:
    """`visible_documents` for statements built once and run often (a view's opening): the same
    condition for everyone with the actor's roles, the actor bound at execution (`visibility_values`)."""
    return _documents_seen_by_parameter(_seeing_roles(actor), sees_team(actor), bool(actor.role_set & _WORKING_ROLES)
                                        and actor.customers_suspended_at is None)


def visibility_values(actor: User, now: datetime | None = None) -> dict[str, object]:
    return {VISIBLE_TO: actor.id, LOOKUPS_SINCE: (now or utcnow()) - LOOKUP_GRANT}


def customer_visible(actor: User, customer: Customer) -> Decision:
    """The one-row twin of `visible_customers`."""
    if actor.customers_suspended_at is not None and actor.role_set & _WORKING_ROLES:
        return deny("access_suspended")
    session = object_session(customer)
    if session is None or customer.id is None:
        return deny("not_found")
    seen = session.scalar(select(exists().where(Customer.id == customer.id, visible_customers(actor))))
    return allow() if seen else deny("not_found")


def worked_customers(actor: User) -> ColumnElement[bool]:
    """Condition on `Customer` rows the actor works by a standing tie (`customer_worked`): what they see,
    without the customers a look-up shows them for a day. The customers a file may be added to, and so all
    that the upload form offers."""
    if not actor.role_set & _WORKING_ROLES or actor.customers_suspended_at is not None:
        return false()
    return _customers_seen(_seeing_roles(actor), sees_team(actor), actor.id, None)


def customer_worked(actor: User, customer: Customer) -> bool:
    """Whether the actor works the customer by a standing tie (owner, co-owner, their team, a loan, a file
    they keep or compiled, a customer they created), not only by a look-up's day of sight: what adding to
    the customer's files asks, since a file compiled there lets its compiler see the customer for good."""
    session = object_session(customer)
    if session is None or customer.id is None:
        return False
    return bool(session.scalar(select(exists().where(Customer.id == customer.id, worked_customers(actor)))))


def visible_documents(actor: User, now: datetime | None = None) -> ColumnElement[bool]:
    """Condition on `Document` rows whose metadata (title, grade, customer) the actor sees: those of the
    customers they see."""
    return Document.customer_id.in_(select(Customer.id).where(visible_customers(actor, now)))


def document_visible(actor: User, document: Document) -> Decision:
    if actor.customers_suspended_at is not None and actor.role_set & _WORKING_ROLES:
        return deny("access_suspended")
    session = object_session(document)
    if session is None or document.id is None:
        return deny("not_found")
    seen = session.scalar(select(exists().where(Document.id == document.id, visible_documents(actor))))
    return allow() if seen else deny("not_found")


def queues_suspended(actor: User) -> bool:
    """Whether the actor's sight of other people's loans in the queues is suspended: with their sight of
    customers (a directory alert; an approver lifts it), or while they are on notice, when they decide
    nothing for others (`policy.loans`, `decider_departing`) and so are shown nothing to decide (a
    withdrawn notice gives the queues back)."""
    return actor.customers_suspended_at is not None or on_notice(actor)


def visible_loans(actor: User) -> ColumnElement[bool]:
    """Condition on `Loan` rows the actor sees: their own; those they decided, released or closed; open
    ones for approvers (so a decision they may not take is refused with its reason, not hidden); approved
    and active ones for custodians. The one-row rule is `policy.loans` `loan:read`.

    A queue names the customer and file of every loan in it: someone whose customer access is suspended,
    or who is on notice (`queues_suspended`), sees no queue, only the loans that are theirs or that they
    acted on."""
    roles = actor.role_set
    decided = exists().where(LoanDecision.loan_id == Loan.id, LoanDecision.approver_id == actor.id)
    conditions: list[ColumnElement[bool]] = [
        Loan.borrower_id == actor.id, decided, Loan.released_by_id == actor.id, Loan.closed_by_id == actor.id,
    ]
    if queues_suspended(actor):
        return or_(*conditions)
    if Role.APPROVER in roles:
        conditions.append(Loan.status.in_(OPEN_STATUSES))
    if Role.CUSTODIAN in roles:
        conditions.append(Loan.status.in_((LoanStatus.APPROVED, LoanStatus.ACTIVE)))
    return and_(or_(*conditions))


def visible_alerts(actor: User) -> ColumnElement[bool]:
    """Condition on `Alert` rows the actor sees: auditors and approvers see everyone's alerts but their
    own (the one-row rule is `policy.departures` `alert:read`); everyone else sees none, nor does anyone on
    notice (`alerts_departing`): the action's own decision is asked, not a copy of it."""
    if not authorize(actor, Action.ALERT_READ):
        return false()
    return Alert.user_id != actor.id
