"""The shared pool: customers without an owner, claimed by sales staff, assigned from by managers, returned
to by owners, managers, lapsed claims and departures.

No one holds the whole base: each person holds at most `[pool] max_claims_<segment>` pooled customers of
a segment at once, and a claim nobody works (no contact logged, no record update or confirmation by the
holder) for `[pool] lapse_days` goes back to the pool in the maintenance sweep (`lapse_due`).

Concurrency: a claim or an assignment first locks the claimant's user row (SELECT … FOR UPDATE; SQLite
runs every transaction under BEGIN IMMEDIATE), so two claims of one person are counted one after the
other and the limit holds; then it locks the customer's row and takes it only while it has no owner, so
of two people claiming one customer exactly one wins. The lock order (person, then customer) is the same
everywhere, so claims cannot deadlock.

Every claim, assignment, release and lapse is audited (`pool:*`) and emits `customer.owner_changed` when
someone becomes the owner; a release or lapse leaves the customer without one and emits nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, and_, false, func, select
from sqlalchemy.orm import Session

from vault import policy
from vault.core import events
from vault.core.actions import Action
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.core.errors import NotFound, ServiceError
from vault.db.locking import locked
from vault.models import (
    AuditEvent,
    ContactLogEntry,
    Customer,
    CustomerRecord,
    CustomerRecordVersion,
    PoolClaim,
    Role,
    Segment,
    User,
    utcnow,
)
from vault.policy.customers import on_notice
from vault.policy.pool import may_claim_segment
from vault.runtime import Runtime
from vault.services.customers import OWNER_ROLES

PAGE_SIZE = 50
MAX_REASON = 2000
MIN_REASON = 5

# Audit actions that change who owns a customer: the customer's ownership history.
OWNERSHIP_ACTIONS = (AuditAction.CUSTOMER_CREATE, AuditAction.CUSTOMER_OWNER, AuditAction.CUSTOMER_HANDOVER,
                     AuditAction.POOL_CLAIM, AuditAction.POOL_ASSIGN, AuditAction.POOL_RELEASE,
                     AuditAction.POOL_LAPSE, AuditAction.POOL_RETURN)


@dataclass(frozen=True)
class PoolPage:
    customers: list[Customer]
    total: int
    page: int
    pages: int
    # Segments the caller may claim from, and whether they may assign from the pool (a manager, an approver).
    claimable: frozenset[Segment]
    may_assign: bool


def claimable_segments(rt: Runtime, actor: User) -> frozenset[Segment]:
    """The segments whose pooled customers the actor may claim (none for roles that cannot own customers)."""
    if not policy.authorize(actor, Action.POOL_CLAIM):
        return frozenset()
    return frozenset(s for s in Segment if may_claim_segment(actor, rt.settings.pool.claim_roles(s)))


def may_assign(session: Session, actor: User) -> bool:
    """Whether the actor may give pooled customers to someone: approvers, and anyone with people below them."""
    if not policy.authorize(actor, Action.POOL_ASSIGN):
        return False
    return Role.APPROVER in actor.role_set or session.scalar(
        select(func.count()).select_from(User).where(User.manager_id == actor.id)) > 0


def _pool_condition(segments: frozenset[Segment]) -> ColumnElement[bool]:
    if not segments:
        return false()
    return and_(Customer.owner_id.is_(None), Customer.segment.in_([str(s) for s in segments]))


def list_pool(rt: Runtime, session: Session, actor: User, *, page: int = 1, page_size: int = PAGE_SIZE,
              ctx: AccessContext) -> PoolPage:
    """The pooled customers the actor may take: of the segments they may claim, or every segment for
    someone who may assign. Names and segments only (the caller shows nothing else); audited with the ids.

    Raises:
        policy.Denied: `not_permitted` for roles without pool rights, or a person who may neither claim
            nor assign (`person_departing` for someone on notice); `access_suspended`.
    """
    policy.require(actor, Action.POOL_READ)
    if actor.customers_suspended_at is not None:
        raise policy.Denied(policy.deny("access_suspended"))
    claimable = claimable_segments(rt, actor)
    assigner = may_assign(session, actor)
    if not claimable and not assigner:
        raise policy.Denied(policy.deny("person_departing" if on_notice(actor) else "not_permitted"))
    segments = frozenset(Segment) if assigner else claimable
    condition = _pool_condition(segments)
    total = session.scalar(select(func.count()).select_from(Customer).where(condition)) or 0
    pages = max(1, -(-total // page_size))
    page = min(max(1, page), pages)
    customers = list(session.scalars(
        select(Customer).where(condition).order_by(func.lower(Customer.name), Customer.id)
        .offset((page - 1) * page_size).limit(page_size)))
    rt.audit.record(session, action=AuditAction.POOL_READ, actor=actor, ctx=ctx,
                    detail={"ids": [c.id for c in customers], "page": page})
    return PoolPage(customers=customers, total=total, page=page, pages=pages, claimable=claimable,
                    may_assign=assigner)


def open_claims(session: Session, user_id: int, segment: Segment | str) -> int:
    """How many pooled customers of `segment` the person holds now (open claims they still own)."""
    return session.scalar(
        select(func.count()).select_from(PoolClaim).join(Customer, Customer.id == PoolClaim.customer_id)
        .where(PoolClaim.user_id == user_id, PoolClaim.segment == str(Segment(segment)),
               PoolClaim.ended_at.is_(None), Customer.owner_id == user_id)) or 0


def _lock_person(session: Session, user_id: int) -> None:
    locked(session, User, user_id)


def _lock_customer(session: Session, customer_id: int) -> Customer | None:
    return locked(session, Customer, customer_id)


def _not_in_pool(actor: User, customer: Customer) -> None:
    """A customer with an owner: "not in the pool" to someone who sees it, "not found" to anyone else,
    so the pool's answers reveal nothing of customers the caller does not work."""
    if policy.authorize(actor, Action.CUSTOMER_READ, customer):
        raise policy.Denied(policy.deny("not_in_pool"), customer_id=customer.id)
    raise NotFound("customer", customer_id=customer.id)


def get_pooled(session: Session, actor: User, customer_id: int) -> Customer:
    """A customer in the pool, for a form about it; one with an owner is refused as a claim would be.

    Raises:
        NotFound: no such customer, or one with an owner the actor does not see.
        policy.Denied: `not_in_pool`.
    """
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("customer", customer_id=customer_id)
    if customer.owner_id is not None:
        _not_in_pool(actor, customer)
    return customer


def _end_open_claims(session: Session, customer_id: int, cause: str, now: datetime) -> list[PoolClaim]:
    claims = list(session.scalars(select(PoolClaim).where(PoolClaim.customer_id == customer_id,
                                                          PoolClaim.ended_at.is_(None))))
    for claim in claims:
        claim.ended_at, claim.end_cause = now, cause
    return claims


def _take(rt: Runtime, session: Session, customer: Customer, holder: User, *, kind: str,
          assigned_by: User | None) -> PoolClaim:
    now = utcnow()
    _end_open_claims(session, customer.id, "moved", now)
    customer.owner_id = holder.id  # the column's event restarts the tenure (`Customer.owner_since`)
    customer.owner = holder  # and the relationship, so what answers the request names the new owner
    for co in list(customer.co_owners):
        if co.user_id == holder.id:  # the new owner is no longer a co-owner too
            customer.co_owners.remove(co)
    claim = PoolClaim(customer_id=customer.id, user_id=holder.id, segment=str(customer.segment), kind=kind,
                      assigned_by_id=assigned_by.id if assigned_by else None, started_at=now)
    session.add(claim)
    session.flush()
    return claim


def _pooled_for(rt: Runtime, session: Session, actor: User, holder_id: int,
                customer_id: int) -> tuple[Customer, int, int]:
    """What a claim or an assignment weighs, under the locks they take in the same order (the person
    who would hold it, then the customer): the customer, still pooled, and the claims of its segment
    the person holds with their limit.

    Raises:
        policy.Denied: `not_in_pool` (it has an owner the actor sees).
        NotFound: no such customer, or one with an owner the actor does not see.
    """
    _lock_person(session, holder_id)
    customer = _lock_customer(session, customer_id)
    if customer is None:
        raise NotFound("customer", customer_id=customer_id)
    if customer.owner_id is not None:
        _not_in_pool(actor, customer)
    return customer, open_claims(session, holder_id, customer.segment), rt.settings.pool.max_claims(customer.segment)


def released_by(session: Session, customer_id: int) -> int | None:
    """Who put the customer in the pool from someone else's book, if that is how it came there: a manager
    or an approver who released it (its owner releasing it gives them nothing back by claiming it). Read
    from the audit log, which records every way into the pool, the latest first."""
    latest = session.execute(
        select(AuditEvent.action, AuditEvent.actor_id, AuditEvent.subject_user_id)
        .where(AuditEvent.customer_id == customer_id, AuditEvent.outcome == "allowed",
               AuditEvent.action.in_((AuditAction.POOL_RELEASE, AuditAction.POOL_RETURN, AuditAction.POOL_LAPSE)))
        .order_by(AuditEvent.seq.desc()).limit(1)).first()
    if latest is None or latest.action != AuditAction.POOL_RELEASE or latest.actor_id == latest.subject_user_id:
        return None
    return latest.actor_id


def claim(rt: Runtime, session: Session, actor: User, customer_id: int, *, ctx: AccessContext) -> Customer:
    """The actor takes a pooled customer and becomes its owner.

    Raises:
        policy.Denied: `not_permitted`, `pool_segment` (the actor's roles may not claim this segment),
            `pool_limit` (they hold as many as allowed), `person_departing` (they are on notice), `access_suspended`.
            `not_in_pool` (it has an owner the actor sees: someone claimed it first).
        NotFound: no such customer, or one with an owner the actor does not see.
    """
    policy.require(actor, Action.POOL_CLAIM, audit={"customer_id": customer_id})
    if actor.customers_suspended_at is not None:
        raise policy.Denied(policy.deny("access_suspended"), customer_id=customer_id)
    customer, held, limit = _pooled_for(rt, session, actor, actor.id, customer_id)
    settings = rt.settings.pool
    policy.require(actor, Action.POOL_CLAIM, customer, claim_roles=settings.claim_roles(customer.segment),
                   held=held, limit=limit, released_by=released_by(session, customer.id),
                   audit={"customer_id": customer.id})
    claimed = _take(rt, session, customer, actor, kind="claim", assigned_by=None)
    rt.audit.record(session, action=AuditAction.POOL_CLAIM, actor=actor, ctx=ctx, customer_id=customer.id,
                    subject_user_id=actor.id,
                    detail={"claim_id": claimed.id, "segment": claimed.segment, "held": held + 1, "limit": limit})
    events.emit("customer.owner_changed", session=session, rt=rt, customer=customer, previous_owner_id=None,
                new_owner=actor, cause="pool_claim", actor=actor, ctx=ctx)
    return customer


def assign(rt: Runtime, session: Session, actor: User, customer_id: int, owner: User, *,
           ctx: AccessContext) -> Customer:
    """A manager (or an approver) gives a pooled customer to someone below them, who then holds it as a
    claim (same limit, same lapse).

    Raises:
        policy.Denied: `not_permitted`, `own_gain`, `not_gainers_manager`, `pool_segment`, `pool_limit`,
            `person_departing` (the person is on notice), `not_in_pool`.
        NotFound: no such customer, or one with an owner the actor does not see.
        ServiceError: `invalid_owner` (the person cannot own customers).
    """
    policy.require(actor, Action.POOL_ASSIGN, audit={"customer_id": customer_id, "subject_user_id": owner.id})
    if not owner.can_sign_in or not (owner.role_set & set(OWNER_ROLES)):
        raise ServiceError("invalid_owner", _l("The owner must be an active account manager (compiler or borrower)."))
    customer, held, limit = _pooled_for(rt, session, actor, owner.id, customer_id)
    settings = rt.settings.pool
    policy.require(actor, Action.POOL_ASSIGN, customer, gaining=owner,
                   claim_roles=settings.claim_roles(customer.segment), held=held, limit=limit,
                   audit={"customer_id": customer.id, "subject_user_id": owner.id})
    claimed = _take(rt, session, customer, owner, kind="assignment", assigned_by=actor)
    rt.audit.record(session, action=AuditAction.POOL_ASSIGN, actor=actor, ctx=ctx, customer_id=customer.id,
                    subject_user_id=owner.id,
                    detail={"claim_id": claimed.id, "segment": claimed.segment, "held": held + 1, "limit": limit})
    events.emit("customer.owner_changed", session=session, rt=rt, customer=customer, previous_owner_id=None,
                new_owner=owner, cause="pool_assignment", actor=actor, ctx=ctx)
    return customer


def clean_reason(reason: str | None) -> str:
    text = " ".join((reason or "").split())
    if len(text) < MIN_REASON:
        raise ServiceError("reason_required", _l("Say why the customer goes back to the pool (at least %(n)s "
                                                 "characters).", n=MIN_REASON))
    if len(text) > MAX_REASON:
        raise ServiceError("reason_too_long", _l("A reason has at most %(n)s characters.", n=MAX_REASON))
    return text


def release(rt: Runtime, session: Session, actor: User, customer_id: int, *, reason: str,
            ctx: AccessContext) -> Customer:
    """The owner, their manager (up the chain) or an approver returns a customer to the pool, saying why.
    Co-owners stay on it; the customer has no owner until someone claims or is assigned it.

    Raises:
        NotFound: no such customer, or one the actor does not see.
        policy.Denied: `not_owner_or_manager`, `already_in_pool`.
        ServiceError: `reason_required`, `reason_too_long`.
    """
    policy.require(actor, Action.POOL_RELEASE, audit={"customer_id": customer_id})
    customer = _lock_customer(session, customer_id)
    if customer is None or not policy.authorize(actor, Action.CUSTOMER_READ, customer):
        raise NotFound("customer", customer_id=customer_id)
    policy.require(actor, Action.POOL_RELEASE, customer, audit={"customer_id": customer.id})
    text = clean_reason(reason)
    previous = customer.owner_id
    _leave_to_pool(session, customer, "released")
    rt.audit.record(session, action=AuditAction.POOL_RELEASE, actor=actor, ctx=ctx, customer_id=customer.id,
                    subject_user_id=previous, reason_text=text, detail={"from": previous})
    return customer


def _leave_to_pool(session: Session, customer: Customer, cause: str) -> None:
    _end_open_claims(session, customer.id, cause, utcnow())
    customer.owner_id = None
    customer.owner = None  # the relationship too, so what answers the request shows no owner
    session.flush()


def return_from_departure(rt: Runtime, session: Session, actor: User | None, customer: Customer, *,
                          departure_id: int, ctx: AccessContext) -> None:
    """A leaver's customer goes to the pool instead of to a successor (the departure decides who may)."""
    previous = customer.owner_id
    _leave_to_pool(session, customer, "released")
    rt.audit.record(session, action=AuditAction.POOL_RETURN, actor=actor, ctx=ctx, customer_id=customer.id,
                    subject_user_id=previous, detail={"from": previous, "departure_id": departure_id})


# -- lapse ------------------------------------------------------------------------------------------------


def last_work(session: Session, claim: PoolClaim) -> datetime:
    """The latest moment the holder worked the customer since the claim: a contact logged, a record
    version saved, the record confirmed current; the claim's start if none."""
    moments: list[Any] = [
        claim.started_at,
        session.scalar(select(func.max(ContactLogEntry.logged_at)).where(
            ContactLogEntry.customer_id == claim.customer_id, ContactLogEntry.author_id == claim.user_id)),
        session.scalar(select(func.max(CustomerRecordVersion.at)).where(
            CustomerRecordVersion.customer_id == claim.customer_id, CustomerRecordVersion.author_id == claim.user_id)),
        session.scalar(select(CustomerRecord.confirmed_at).where(CustomerRecord.customer_id == claim.customer_id)),
    ]
    return max(m for m in moments if m is not None)


def lapse_due(rt: Runtime, session: Session, *, ctx: AccessContext, now: datetime | None = None) -> int:
    """Return to the pool every claimed customer whose holder did no work for `[pool] lapse_days`; claims
    whose customer went to someone else by other means are closed as "moved". Returns how many lapsed."""
    now = now or utcnow()
    window = timedelta(days=rt.settings.pool.lapse_days)
    lapsed = 0
    claims = list(session.scalars(select(PoolClaim).where(PoolClaim.ended_at.is_(None),
                                                          PoolClaim.started_at <= now - window)
                                  .order_by(PoolClaim.id)))
    for claim in claims:
        customer = _lock_customer(session, claim.customer_id)
        # Read again under the customer's lock: another sweep (another host) may have closed it meanwhile.
        session.refresh(claim)
        if claim.ended_at is not None:
            continue
        if customer is None or customer.owner_id != claim.user_id:
            claim.ended_at, claim.end_cause = now, "moved"
            continue
        worked = last_work(session, claim)
        if worked > now - window:
            continue
        _leave_to_pool(session, customer, "lapsed")
        lapsed += 1
        rt.audit.record(session, action=AuditAction.POOL_LAPSE, actor=None, ctx=ctx, customer_id=customer.id,
                        subject_user_id=claim.user_id,
                        detail={"claim_id": claim.id, "claimed_at": claim.started_at.isoformat(),
                                "last_work": worked.isoformat(), "lapse_days": rt.settings.pool.lapse_days})
    session.flush()
    return lapsed


@events.listen("customer.owner_changed")
def _owner_changed(*, session: Session, customer: Customer, new_owner: User, **_: Any) -> None:
    """A pooled customer given to someone else by other means (an assignment, a handover) is no longer the
    claim of its holder: the claim closes, so it stops counting against their limit."""
    now = utcnow()
    for claim in session.scalars(select(PoolClaim).where(PoolClaim.customer_id == customer.id,
                                                         PoolClaim.ended_at.is_(None),
                                                         PoolClaim.user_id != new_owner.id)):
        claim.ended_at, claim.end_cause = now, "moved"


# -- history ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OwnershipEvent:
    at: datetime
    action: str
    actor: str  # who did it ("" for the product itself: a lapse)
    person: str  # whom it was about: the new owner, or the one who lost the customer
    reason: str | None


def ownership_history(session: Session, customer: Customer) -> list[OwnershipEvent]:
    """Who owned the customer when, from the audit log: creation, assignments, handovers, pool claims,
    releases, lapses and returns, newest first (the caller has checked the actor may read the history)."""
    rows = list(session.scalars(select(AuditEvent).where(
        AuditEvent.customer_id == customer.id, AuditEvent.outcome == "allowed",
        AuditEvent.action.in_([str(a) for a in OWNERSHIP_ACTIONS])).order_by(AuditEvent.seq.desc()).limit(200)))
    names = {u.id: u.display_name for u in session.scalars(
        select(User).where(User.id.in_({r.subject_user_id for r in rows if r.subject_user_id})))}
    return [OwnershipEvent(at=r.ts, action=r.action, actor=r.actor_name, person=names.get(r.subject_user_id or 0, ""),
                           reason=r.reason_text) for r in rows]
