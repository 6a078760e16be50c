"""Customers: creation by compilers, who works each one, and every read of the directory.

Need to know (see `vault.policy.visibility`): the list holds only the customers the person sees, and
reaching any other customer is a look-up by name (at least 4 letters, at most 5 answers). Every read of
a customer's record, every list and every look-up is an audited act; reads and look-ups are also
`CustomerAccess` rows, so the early warning can count them and a departure report can name them.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, and_, exists, false, func, or_, select
from sqlalchemy.orm import Session

from vault import policy
from vault.core import events
from vault.core.actions import Action
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.core.errors import Conflict, NotFound, ServiceError
from vault.db.locking import locked
from vault.models import (
    Customer,
    CustomerAccess,
    CustomerCoOwner,
    Role,
    RoleAssignment,
    Segment,
    User,
    utcnow,
)
from vault.models.customers import name_key
from vault.runtime import Runtime
from vault.services import quota, records, reveal_quota

MAX_NAME = 200
PAGE_SIZE = 50
# Account managers: the people a customer relationship can belong to (and be handed over from).
OWNER_ROLES = (Role.COMPILER, Role.BORROWER)


def clean_name(name: str | None) -> str:
    text = " ".join(unicodedata.normalize("NFC", name or "").split())
    if not text:
        raise ServiceError("invalid_name", _l("A customer needs a name."))
    if len(text) > MAX_NAME:
        raise ServiceError("invalid_name", _l("A customer name has at most %(MAX_NAME)s characters.",
                                              MAX_NAME=MAX_NAME))
    if any(unicodedata.category(ch) in {"Cc", "Cf"} for ch in text):
        raise ServiceError("invalid_name", _l("A customer name cannot contain control characters."))
    return text


def owner_choices(session: Session) -> list[User]:
    """Active people who can be given a customer relationship (never someone on notice, whom the policy
    would refuse it: `policy.new_owner_problem`)."""
    users = session.scalars(
        select(User).join(RoleAssignment, RoleAssignment.user_id == User.id)
        .where(RoleAssignment.role.in_(OWNER_ROLES)).distinct().order_by(User.display_name)
    )
    return [u for u in users if u.can_sign_in and policy.new_owner_problem(u)]


def find_by_name(session: Session, name: str) -> Customer | None:
    return session.scalar(select(Customer).where(Customer.name_key == name_key(clean_name(name))))


def create_customer(
    rt: Runtime,
    session: Session,
    actor: User,
    *,
    name: str,
    segment: Segment | str,
    owner: User | None = None,
    notes: str = "",
    to_pool: bool = False,
    ctx: AccessContext,
) -> Customer:
    """Create a customer; the owner (account manager) defaults to the creator, or with `to_pool` there is
    none: a new lead for the shared pool (`vault.services.pool`). `notes` are sealed into the customer's
    record (`vault.services.records.first_version`), never kept in clear.

    Raises:
        policy.Denied: the actor may not create customers; `person_departing` when the owner is on notice.
        ServiceError: bad name, segment, owner or notes (`invalid_record`); Conflict when the name is taken.
    """
    policy.require(actor, Action.CUSTOMER_CREATE)
    name = clean_name(name)
    try:
        segment = Segment(segment)
    except ValueError:
        raise ServiceError("invalid_segment", _l("The segment must be vip, key or ordinary.")) from None
    if to_pool and owner is not None:
        raise ServiceError("invalid_owner", _l("A new lead for the shared pool has no owner."))
    owner = None if to_pool else owner or actor
    refused = policy.new_owner_problem(owner)
    if not refused:
        raise policy.Denied(refused, action=Action.CUSTOMER_CREATE, subject_user_id=owner.id if owner else None)
    if owner is not None and (not owner.can_sign_in or not (owner.role_set & set(OWNER_ROLES))):
        raise ServiceError("invalid_owner", _l("The owner must be an active account manager (compiler or borrower)."))
    if find_by_name(session, name) is not None:
        raise Conflict("customer_exists", _l("A customer named %(name)s already exists.", name=name))
    sealed = records.clean_changes({"notes": notes}) if (notes or "").strip() else {}
    customer = Customer(name=name, segment=segment, owner_id=owner.id if owner else None, created_by_id=actor.id)
    session.add(customer)
    session.flush()
    rt.audit.record(session, action=AuditAction.CUSTOMER_CREATE, actor=actor, ctx=ctx, customer_id=customer.id,
                    subject_user_id=owner.id if owner else None,
                    detail={"name": name, "segment": str(segment), **({"pool": True} if to_pool else {})})
    if sealed:
        # Notes are the relationship's, never clear text: they open the sealed record as its first version.
        records.first_version(rt, session, actor, customer, sealed, ctx=ctx)
    return customer


@dataclass(frozen=True)
class CustomerPage:
    customers: list[Customer]
    total: int
    page: int
    pages: int


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def list_customers(rt: Runtime, session: Session, actor: User, *, query: str = "", page: int = 1,
                   page_size: int = PAGE_SIZE, ctx: AccessContext, mine: bool = False) -> CustomerPage:
    """Customers the actor sees, by name, optionally those whose name contains `query` (accents and case
    ignored) or only their own book (`mine`); the page's ids are recorded ("customer:list").

    Raises:
        policy.Denied: the actor's roles do not allow reading customers (admins, auditors), or their
            customer access is suspended.
    """
    policy.require(actor, Action.CUSTOMER_READ)
    _not_suspended(actor)
    condition: ColumnElement[bool] = policy.visible_customers(actor)
    if mine:
        condition = and_(condition, or_(Customer.owner_id == actor.id, exists().where(
            CustomerCoOwner.customer_id == Customer.id, CustomerCoOwner.user_id == actor.id)))
    text = " ".join(unicodedata.normalize("NFC", query or "").split())[:MAX_NAME]
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        # No name holds one (see `clean_name`); SQLite would cut the pattern at a NUL and match every
        # name, PostgreSQL refuses the query.
        condition = false()
    elif text:
        condition = and_(condition, Customer.name_key.like(_like_pattern(name_key(text)), escape="\\"))
    total = session.scalar(select(func.count()).select_from(Customer).where(condition)) or 0
    pages = max(1, -(-total // page_size))
    page = min(max(1, page), pages)
    customers = list(session.scalars(
        select(Customer).where(condition).order_by(func.lower(Customer.name), Customer.id)
        .offset((page - 1) * page_size).limit(page_size)
    ))
    rt.audit.record(session, action=AuditAction.CUSTOMER_LIST, actor=actor, ctx=ctx,
                    detail={"ids": [c.id for c in customers], "query": text, "page": page, "mine": mine})
    record_access(rt, session, actor, [c.id for c in customers], "list")
    return CustomerPage(customers=customers, total=total, page=page, pages=pages)


def _not_suspended(actor: User, **audit: Any) -> None:
    if actor.customers_suspended_at is not None:
        raise policy.Denied(policy.deny("access_suspended"), **audit)


def record_access(rt: Runtime, session: Session, actor: User, ids: list[int], kind: str) -> None:
    """Count that `actor` was shown these customers (`kind`: "read", "lookup", or "list" and "search",
    which show names, segments and owners): the departure report names every one, and the early warning
    judges them (a directory sweep counts reads and look-ups; a leaver's reach outside their book, all)."""
    if not ids:
        return
    now = utcnow()
    session.add_all(CustomerAccess(user_id=actor.id, customer_id=i, kind=kind, at=now) for i in ids)
    session.flush()
    # The early warning counts the directory reads (sweeps, reads outside a leaver's book).
    events.emit("customer.accessed", session=session, rt=rt, user=actor, customer_ids=ids, kind=kind, now=now)


def read_customer(rt: Runtime, session: Session, actor: User, customer_id: int, *, ctx: AccessContext,
                  again: bool = False) -> Customer:
    """Open a customer's record: visible customers only (anything else is "not found"), audited. `again` marks
    the record of a page shown again with a refused form on it, so the log tells it from a visit.

    Raises:
        NotFound: no such customer, or one the actor does not see.
        policy.Denied: `access_suspended`.
    """
    # Before the row is looked for: the same refusal whether the id exists or not, so a suspended person
    # cannot tell customers from empty ids.
    _not_suspended(actor, customer_id=customer_id)
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("customer", customer_id=customer_id)
    decision = policy.authorize(actor, Action.CUSTOMER_READ, customer)
    if not decision:
        if decision.code == "not_found":
            raise NotFound("customer", customer_id=customer_id)
        raise policy.Denied(decision, customer_id=customer_id)
    rt.audit.record(session, action=AuditAction.CUSTOMER_READ, actor=actor, ctx=ctx, customer_id=customer.id,
                    detail={"again": True} if again else None)
    record_access(rt, session, actor, [customer.id], "read")
    return customer


LOOKUP_MIN = 4
LOOKUP_MAX = 5


@dataclass(frozen=True)
class LookupsLeft:
    """What the look-up page and the API tell the person: look-ups left today and their daily cap."""

    remaining: int
    cap: int


def lookups_left(rt: Runtime, session: Session, actor: User) -> LookupsLeft:
    """How many look-ups `actor` has left today (the working-hours timezone's day), without spending any."""
    cap = policy.lookup_cap(actor, rt.settings.lookups)
    used = reveal_quota.used(session, actor.id, reveal_quota.LOOKUP, 0, reveal_quota.company_day(rt.settings, utcnow()))
    return LookupsLeft(remaining=max(0, cap - used), cap=cap)


def lookup(rt: Runtime, session: Session, actor: User, query: str, *, ctx: AccessContext) -> list[Customer]:
    """Look a customer up by name, whoever works it: at most `LOOKUP_MAX` answers to a query of at least
    `LOOKUP_MIN` letters, accents and case ignored; audited with the query and the ids returned. Each
    answer is visible to the person for a day (`policy.visibility.LOOKUP_GRANT`), so they can ask for a
    file of it; the directory as a whole cannot be browsed this way.

    Every query that is run spends one unit of the person's daily cap (`[lookups]`, lower on notice), in
    this transaction and before the names are searched: five names a query would otherwise let enough
    queries walk the directory. A query that finds nothing counts too (probing with misses tells what is
    not there, and then what is); one refused as too short is a slip and costs nothing.

    Raises:
        policy.Denied: the role gate, `access_suspended`, `lookup_cap_reached` (recorded with the query).
        ServiceError: `query_too_short` (or control characters).
    """
    policy.require(actor, Action.CUSTOMER_LOOKUP)
    _not_suspended(actor)
    text = " ".join(unicodedata.normalize("NFC", query or "").split())[:MAX_NAME]
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise ServiceError("invalid_query", _l("A name cannot contain control characters."))
    key = name_key(text)
    if len(key.replace(" ", "")) < LOOKUP_MIN:
        raise ServiceError("query_too_short", policy.message_for("query_too_short"))
    # The database decides who gets the last unit (a conditional UPDATE): two queries at once cannot both.
    cap = policy.lookup_cap(actor, rt.settings.lookups)
    today = reveal_quota.company_day(rt.settings, utcnow())
    spent = reveal_quota.spend(session, actor.id, reveal_quota.LOOKUP, 0, today, cap)
    decision = policy.lookup_spent(spent)
    if not decision:
        raise policy.Denied(decision, reason_text=text[:200])
    found = list(session.scalars(
        select(Customer).where(Customer.name_key.like(_like_pattern(key), escape="\\"))
        # The exact name first (false sorts before true), then the shortest names.
        .order_by(Customer.name_key != key, func.length(Customer.name_key), Customer.id).limit(LOOKUP_MAX)
    ))
    rt.audit.record(session, action=AuditAction.CUSTOMER_LOOKUP, actor=actor, ctx=ctx, reason_text=text[:200],
                    detail={"query": text, "ids": [c.id for c in found], "today": spent, "cap": cap})
    record_access(rt, session, actor, [c.id for c in found], "lookup")
    return found


# -- who works a customer --------------------------------------------------------------------------------


def get_for_assignment(session: Session, actor: User, customer_id: int) -> Customer:
    """The customer, for someone who may decide who works it (the owner's managers, approvers), whether or
    not they see it otherwise; "not found" for anyone else (the change itself is audited).

    Raises:
        NotFound: no such customer, or the actor may not assign it.
    """
    customer = session.get(Customer, customer_id)
    if customer is None or not policy.authorize(actor, Action.CUSTOMER_ASSIGN, customer, gaining=None):
        raise NotFound("customer", customer_id=customer_id)
    return customer


def _hold(session: Session, customer: Customer, *people: User | None) -> None:
    """Lock the people a decision about who works `customer` names (shared), then the customer, and read
    them again before the rules judge it.

    The rules read the customer's owner (whose managers decide), its co-owners (at most three, none twice)
    and whether a person is on notice. Two decisions at once each read those before the first committed:
    the second was judged on an owner the customer no longer had and recorded a change from them, or added
    a fourth co-owner, or the same one twice. The people come first, in the order a notice takes them
    (`quota.hold_notice`, then the handover of the customers), so a decision waits for a notice being
    recorded and sees the person leaving.
    """
    named = {person.id: person for person in people if person is not None}  # None: the operator, no row
    for person in sorted(named.values(), key=lambda person: person.id):
        quota.hold_notice(session, person)
    locked(session, Customer, customer.id)
    # The owner and the co-owners come with the customer's row, as it now stands.
    session.expire(customer, ["owner", "co_owners"])


def eligible_owner(user: User) -> None:
    """Raise unless `user` may be given a customer (as owner or co-owner): an active account manager
    (compiler or borrower) who is not on notice (their customers are being handed over, as rotation and
    the pool never give one to someone leaving).

    Raises:
        ServiceError: `invalid_owner`.
    """
    if not user.can_sign_in or not policy.new_owner_problem(user) or not (user.role_set & set(OWNER_ROLES)):
        raise ServiceError("invalid_owner", _l("The owner must be an active account manager (compiler or borrower)."))


def set_owner(rt: Runtime, session: Session, actor: User | None, customer: Customer, owner: User, *,
              ctx: AccessContext, reason: str = "") -> Customer:
    """Give the customer to another account manager (the previous one stays in the history).

    Raises:
        policy.Denied: `own_gain`, `not_owners_manager` (see `policy.customers`).
        ServiceError: the new owner cannot own customers.
    """
    _hold(session, customer, owner, actor)
    if actor is not None:
        policy.require(actor, Action.CUSTOMER_ASSIGN, customer, gaining=owner,
                       audit={"customer_id": customer.id, "subject_user_id": owner.id})
    eligible_owner(owner)
    move_owner(rt, session, actor, customer, owner, cause="assignment", ctx=ctx, reason=reason)
    return customer


def move_owner(rt: Runtime, session: Session, actor: User | None, customer: Customer, owner: User, *,
               cause: str, ctx: AccessContext, reason: str = "") -> int | None:
    """Make `owner` the customer's owner: the one step every decided change of owner shares (an assignment,
    a rotation), so each leaves the same `customer:owner` record and the same `customer.owner_changed`
    event. The caller has checked the decision and that `owner` may own customers. Returns the previous
    owner's id; nothing happens when `owner` already owns it."""
    previous = customer.owner_id
    if previous == owner.id:
        return previous
    customer.owner_id = owner.id  # the column's event restarts the tenure (`Customer.owner_since`)
    customer.owner = owner  # and the relationship, so what answers the request names the new owner
    for co in list(customer.co_owners):
        if co.user_id == owner.id:  # the new owner is no longer a co-owner too
            customer.co_owners.remove(co)
    session.flush()
    detail: dict[str, object] = {"from": previous, "to": owner.id}
    if cause != "assignment":
        detail["cause"] = cause
    rt.audit.record(session, action=AuditAction.CUSTOMER_OWNER, actor=actor, ctx=ctx, customer_id=customer.id,
                    subject_user_id=owner.id, reason_text=reason.strip()[:2000] or None, detail=detail)
    events.emit("customer.owner_changed", session=session, rt=rt, customer=customer, previous_owner_id=previous,
                new_owner=owner, cause=cause, actor=actor, ctx=ctx)
    return previous


def add_co_owner(rt: Runtime, session: Session, actor: User | None, customer: Customer, person: User, *,
                 ctx: AccessContext) -> Customer:
    """Add a co-owner (team selling: at most `policy.customers.MAX_CO_OWNERS`).

    Raises:
        policy.Denied: `own_gain`, `not_owners_manager`, `too_many_co_owners`.
        ServiceError: the person cannot work customers, or already does.
    """
    _hold(session, customer, person, actor)
    if actor is not None:
        policy.require(actor, Action.CUSTOMER_ASSIGN, customer, gaining=person,
                       co_owners=len(customer.co_owners) + 1,
                       audit={"customer_id": customer.id, "subject_user_id": person.id})
    eligible_owner(person)
    if customer.worked_by(person.id):
        raise Conflict("already_working", _l("%(display_name)s already works this customer.",
                                             display_name=person.display_name))
    customer.co_owners.append(CustomerCoOwner(user_id=person.id, added_by_id=actor.id if actor else None))
    session.flush()
    rt.audit.record(session, action=AuditAction.CUSTOMER_CO_OWNER_ADD, actor=actor, ctx=ctx, customer_id=customer.id,
                    subject_user_id=person.id)
    return customer


def remove_co_owner(rt: Runtime, session: Session, actor: User | None, customer: Customer, person: User, *,
                    ctx: AccessContext) -> Customer:
    """Take a co-owner off the customer.

    Raises:
        policy.Denied: `not_owners_manager`.
        NotFound: the person is not a co-owner.
    """
    _hold(session, customer, actor)
    if actor is not None:
        policy.require(actor, Action.CUSTOMER_ASSIGN, customer, gaining=None,
                       audit={"customer_id": customer.id, "subject_user_id": person.id})
    row = next((co for co in customer.co_owners if co.user_id == person.id), None)
    if row is None:
        raise NotFound("co-owner")
    customer.co_owners.remove(row)
    session.flush()
    rt.audit.record(session, action=AuditAction.CUSTOMER_CO_OWNER_REMOVE, actor=actor, ctx=ctx, customer_id=customer.id,
                    subject_user_id=person.id)
    return customer
