"""Rotation of account managers: the plan that proposes moving customers between the account managers of
a team once their owner has held them for the segment's interval (`[rotation]` in the policy file), and
a manager's decision on each proposal.

A team is the account managers (compilers and borrowers) who share a direct manager: the people a
manager already oversees in the need-to-know rules (`policy.visibility.reports_of`). A proposal never names
the current owner, anyone on notice, disabled or unable to own customers; within a team the plan gives
each customer to the member whose book of that segment would be smallest after the swaps already
planned, so nobody collects a disproportionate share, and not back to the person who held it before
when someone else can take it.

Approving moves ownership through `customers.move_owner` (the record, the contact log and the files
belong to the customer and follow it), ends every open loan of the previous owner on the customer's
files (active loans revoked, undecided requests closed, each with the rotation as its reason), and gives
the new owner a handover task: confirming, after logging it, that they reached the customer's main
contact (`records.reached_main_contact`), as a successor does after a departure.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, and_, false, func, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, undefer

from vault import policy
from vault.core.actions import Action
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.core.errors import Conflict, NotFound, ServiceError
from vault.db.locking import locked, locked_rows
from vault.models import (
    OPEN_STATUSES,
    Customer,
    Document,
    Loan,
    ProposalStatus,
    Role,
    RoleAssignment,
    RotationProposal,
    Segment,
    User,
    UserStatus,
    utcnow,
)
from vault.policy.rotation import may_decide_customer
from vault.policy.visibility import reports_of
from vault.runtime import Runtime
from vault.services import quota
from vault.services.customers import OWNER_ROLES, eligible_owner, move_owner
from vault.services.departures import revoke_by_system
from vault.services.records import reached_main_contact

PAGE_SIZE = 50
MAX_REASON = 2000
MIN_REASON = 5
ROTATION_REASON = "The customer rotated to another account manager"


def months_before(moment: datetime, months: int) -> datetime:
    """The same instant `months` calendar months earlier (the 31st becomes the month's last day)."""
    month_index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(month_index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def can_receive(user: User) -> bool:
    """Whether the plan (or a manager editing it) may give a customer to `user`: an active account manager
    who can sign in, is not on notice and whose customer access is not suspended."""
    return (user.can_sign_in and user.status == UserStatus.ACTIVE and user.customers_suspended_at is None
            and bool(user.role_set & set(OWNER_ROLES)))


def team_of(session: Session, manager_id: int | None) -> list[User]:
    """The account managers reporting directly to `manager_id` who may receive a customer, by id."""
    if manager_id is None:
        return []
    people = session.scalars(
        select(User).join(RoleAssignment, RoleAssignment.user_id == User.id)
        .where(User.manager_id == manager_id, RoleAssignment.role.in_(OWNER_ROLES)).distinct().order_by(User.id))
    return [person for person in people if can_receive(person)]


# -- the plan ------------------------------------------------------------------------------------------


def _void(rt: Runtime, session: Session, proposal: RotationProposal, why: str, *, actor: User | None,
          ctx: AccessContext) -> None:
    proposal.status = ProposalStatus.VOID
    proposal.decided_at = utcnow()
    proposal.reason = why
    session.flush()
    rt.audit.record(session, action=AuditAction.ROTATION_VOID, actor=actor, ctx=ctx, customer_id=proposal.customer_id,
                    subject_user_id=proposal.to_user_id, reason_text=why,
                    detail={"proposal_id": proposal.id, "from_user_id": proposal.from_user_id,
                            "to_user_id": proposal.to_user_id})


def _void_stale(rt: Runtime, session: Session, *, actor: User | None, ctx: AccessContext) -> None:
    """Open proposals the world has overtaken: the owner changed another way or gave notice (the departure's
    handover takes over), or the proposed owner can no longer receive customers (on notice, disabled). They
    are voided; the plan may propose afresh."""
    stale = session.scalars(select(RotationProposal).where(RotationProposal.status == ProposalStatus.OPEN)
                            .options(selectinload(RotationProposal.customer)).order_by(RotationProposal.id))
    for proposal in stale:
        if proposal.customer.owner_id != proposal.from_user_id:
            _void(rt, session, proposal, "owner_changed", actor=actor, ctx=ctx)
        elif proposal.from_user.status != UserStatus.ACTIVE:
            _void(rt, session, proposal, "owner_departing", actor=actor, ctx=ctx)
        elif not can_receive(proposal.to_user):
            _void(rt, session, proposal, "proposed_owner_unavailable", actor=actor, ctx=ctx)


def _due(session: Session, rt: Runtime, now: datetime) -> list[Customer]:
    """Customers whose owner has held them for their segment's interval, with no open proposal and no skip
    within that interval, whose owner is active (a leaver's customers go with the departure), oldest
    tenure first."""
    settings = rt.settings.rotation
    open_or_recently_skipped: list[ColumnElement[bool]] = []
    segment_conditions: list[ColumnElement[bool]] = []
    for segment in Segment:
        months = settings.due_after(segment)
        if not months:
            continue
        cutoff = months_before(now, months)
        segment_conditions.append(and_(Customer.segment == segment.value, Customer.owner_since <= cutoff))
        open_or_recently_skipped.append(and_(RotationProposal.customer_id == Customer.id,
                                             RotationProposal.segment == segment.value,
                                             RotationProposal.status == ProposalStatus.SKIPPED,
                                             RotationProposal.decided_at > cutoff))
    if not segment_conditions:
        return []
    blocked = select(RotationProposal.id).where(
        RotationProposal.customer_id == Customer.id,
        or_(RotationProposal.status == ProposalStatus.OPEN, *open_or_recently_skipped))
    return list(session.scalars(
        select(Customer).join(User, User.id == Customer.owner_id)
        .where(or_(*segment_conditions), ~blocked.exists(), User.status == UserStatus.ACTIVE,
               User.manager_id.is_not(None))
        .options(selectinload(Customer.owner), undefer(Customer.owner_since))
        .order_by(Customer.owner_since, Customer.id)))


def _last_owner(session: Session, customer_ids: list[int]) -> dict[int, int]:
    """For each customer, who held it before the last approved rotation (not to be handed it straight back)."""
    if not customer_ids:
        return {}
    rows = session.execute(
        select(RotationProposal.customer_id, RotationProposal.from_user_id)
        .where(RotationProposal.customer_id.in_(customer_ids), RotationProposal.status == ProposalStatus.APPROVED)
        .order_by(RotationProposal.decided_at, RotationProposal.id)).all()
    return {customer_id: from_user_id for customer_id, from_user_id in rows}


def propose(rt: Runtime, session: Session, actor: User | None, *, ctx: AccessContext,
            now: datetime | None = None) -> list[RotationProposal]:
    """Run the plan: void open proposals the world has overtaken, then propose a new owner for every
    customer that is due (see the module docstring). Idempotent: a customer with an open proposal gets no
    second one (a unique index holds this against two runs at once). `actor` None is the command line.
    Returns the proposals made now.

    Raises:
        policy.Denied: the role gate, for a person (deciders of customer assignments run the plan), and
            `rotation_departing` (on notice).
    """
    if actor is not None:
        policy.require(actor, Action.ROTATION_DECIDE)
    now = now or utcnow()
    _void_stale(rt, session, actor=actor, ctx=ctx)
    due = _due(session, rt, now)
    by_team: dict[tuple[int, str], list[Customer]] = defaultdict(list)
    for customer in due:
        assert customer.owner is not None
        by_team[(customer.owner.manager_id or 0, str(customer.segment))].append(customer)
    before = _last_owner(session, [c.id for c in due])
    made: list[RotationProposal] = []
    for (manager_id, segment), customers in sorted(by_team.items()):
        team = team_of(session, manager_id)
        if len(team) < 2:
            continue
        # Each member's book of this segment, as it will be once the open proposals are decided.
        book = dict.fromkeys((m.id for m in team), 0)
        for owner_id, count in session.execute(
                select(Customer.owner_id, func.count()).where(Customer.owner_id.in_(book),
                                                              Customer.segment == segment)
                .group_by(Customer.owner_id)).all():
            book[owner_id] = count
        for from_id, to_id in session.execute(
                select(RotationProposal.from_user_id, RotationProposal.to_user_id)
                .where(RotationProposal.status == ProposalStatus.OPEN, RotationProposal.segment == segment)).all():
            if from_id in book:
                book[from_id] -= 1
            if to_id in book:
                book[to_id] += 1
        # Every due customer leaves its owner: their books count without them from the start, so an owner
        # giving customers away receives in turn (swaps), rather than ending with none.
        for customer in customers:
            if customer.owner_id in book:
                book[customer.owner_id] -= 1
        received: dict[int, int] = defaultdict(int)
        for customer in customers:
            candidates = [m for m in team if m.id != customer.owner_id]
            fresh = [m for m in candidates if m.id != before.get(customer.id)] or candidates
            if not fresh:
                book[customer.owner_id] = book.get(customer.owner_id, 0) + 1
                continue
            chosen = min(fresh, key=lambda m: (book[m.id], received[m.id], m.id))
            proposal = RotationProposal(customer_id=customer.id, segment=segment, team_manager_id=manager_id,
                                        from_user_id=customer.owner_id, proposed_user_id=chosen.id,
                                        to_user_id=chosen.id, owner_since=customer.owner_since, created_at=now,
                                        created_by_id=actor.id if actor else None)
            try:
                with session.begin_nested():
                    session.add(proposal)
                    session.flush()
            except IntegrityError:
                book[customer.owner_id] = book.get(customer.owner_id, 0) + 1
                continue  # proposed meanwhile by another run
            book[chosen.id] += 1
            received[chosen.id] += 1
            made.append(proposal)
            rt.audit.record(session, action=AuditAction.ROTATION_PROPOSE, actor=actor, ctx=ctx,
                            customer_id=customer.id, subject_user_id=chosen.id,
                            detail={"proposal_id": proposal.id, "segment": segment, "from_user_id": customer.owner_id,
                                    "to_user_id": chosen.id, "team_manager_id": manager_id,
                                    "owner_since": customer.owner_since.isoformat() if customer.owner_since else None})
    return made


# -- reading -------------------------------------------------------------------------------------------


def decidable(actor: User) -> ColumnElement[bool]:
    """Condition on open `RotationProposal` rows (joined to their `Customer`) that `actor` may decide: the
    customer's owner is below them in the chain of managers, or they are an approver; never one that
    would give them the customer or take it from them (`policy.rotation`). None for a person on notice: the
    listing asks the decision's own rule (`rotation_departing`), so it shows only what they may decide."""
    if not policy.authorize(actor, Action.ROTATION_DECIDE):
        return false()
    above = true() if Role.APPROVER in actor.role_set else Customer.owner_id.in_(select(reports_of(actor.id).c.id))
    return and_(RotationProposal.status == ProposalStatus.OPEN, RotationProposal.customer_id == Customer.id,
                RotationProposal.from_user_id != actor.id, RotationProposal.to_user_id != actor.id, above)


@dataclass(frozen=True)
class ProposalPage:
    proposals: list[RotationProposal]
    total: int
    page: int
    pages: int


def page_for(rt: Runtime, session: Session, actor: User, *, page: int = 1, page_size: int = PAGE_SIZE,
             ctx: AccessContext) -> ProposalPage:
    """One page of the open proposals `actor` may decide, oldest tenure first, counted and cut in SQL.

    Each names a customer, its owner and who would take it over, customers an approver may not otherwise
    see: the page is recorded as a listing of customers (`customer:list`, "rotation", with their ids)."""
    condition = decidable(actor)
    total = session.scalar(select(func.count()).select_from(RotationProposal).join(Customer).where(condition)) or 0
    pages = max(1, -(-total // page_size))
    page = min(max(1, page), pages)
    found = list(session.scalars(
        select(RotationProposal).join(Customer).where(condition)
        .options(selectinload(RotationProposal.customer), selectinload(RotationProposal.from_user),
                 selectinload(RotationProposal.to_user))
        .order_by(RotationProposal.owner_since, RotationProposal.id)
        .offset((page - 1) * page_size).limit(page_size)))
    if found:
        rt.audit.record(session, action=AuditAction.CUSTOMER_LIST, actor=actor, ctx=ctx,
                        detail={"listing": "rotation", "ids": [p.customer_id for p in found], "page": page})
    return ProposalPage(proposals=found, total=total, page=page, pages=pages)


def open_proposals(rt: Runtime, session: Session, *, ctx: AccessContext) -> list[RotationProposal]:
    """Every open proposal, oldest tenure first: the operator's list at the command line (`vault rotation
    list`), recorded under the operator's name as the page's listing is (`customer:list`, "rotation", with
    the customers' ids) in the listing's transaction; an empty list is not recorded."""
    found = list(session.scalars(
        select(RotationProposal).where(RotationProposal.status == ProposalStatus.OPEN)
        .options(selectinload(RotationProposal.customer), selectinload(RotationProposal.from_user),
                 selectinload(RotationProposal.to_user))
        .order_by(RotationProposal.owner_since, RotationProposal.id)))
    if found:
        rt.audit.record(session, action=AuditAction.CUSTOMER_LIST, actor=None, ctx=ctx,
                        detail={"listing": "rotation", "ids": [p.customer_id for p in found]})
    return found


def get_for_decision(session: Session, actor: User, proposal_id: int) -> RotationProposal:
    """A proposal `actor` stands above (the owner's manager, an approver), decided or not; "not found" for
    anyone else, so ids reveal nothing.

    Raises:
        NotFound: no such proposal, or not one the actor may decide.
    """
    proposal = session.get(RotationProposal, proposal_id)
    if proposal is None or not policy.authorize(actor, Action.ROTATION_DECIDE) \
            or not may_decide_customer(actor, proposal.customer):
        raise NotFound("rotation proposal", customer_id=proposal.customer_id if proposal else None)
    return proposal


def get_task(session: Session, actor: User, proposal_id: int) -> RotationProposal:
    """An approved proposal giving a customer to `actor`; "not found" for anyone else.

    Raises:
        NotFound: no such proposal, or not the actor's.
    """
    proposal = session.get(RotationProposal, proposal_id)
    if proposal is None or proposal.to_user_id != actor.id or proposal.status != ProposalStatus.APPROVED:
        raise NotFound("rotation proposal")
    return proposal


def tasks_for(session: Session, user: User) -> list[RotationProposal]:
    """The handover tasks of `user`: customers rotated to them that they still own and have not yet
    confirmed reaching."""
    if not policy.authorize(user, Action.ROTATION_CONFIRM):
        return []
    return list(session.scalars(
        select(RotationProposal).join(Customer)
        .where(RotationProposal.to_user_id == user.id, RotationProposal.status == ProposalStatus.APPROVED,
               RotationProposal.confirmed_at.is_(None), Customer.owner_id == user.id)
        .options(selectinload(RotationProposal.customer)).order_by(RotationProposal.decided_at, RotationProposal.id)))


# -- deciding ------------------------------------------------------------------------------------------


def read_tasks(rt: Runtime, session: Session, actor: User, *, ctx: AccessContext,
               again: bool = False) -> list[RotationProposal]:
    """`tasks_for` shown to the person (the tasks page, the API): recorded as a listing of the customers it
    names (`customer:list`, "rotation_tasks", with their ids) in the listing's transaction, as a successor's
    handover list is; an empty list is not recorded. `again`: the page shown once more with a confirmation
    refused names them a second time, a read of its own, marked so the log tells a retry from a visit."""
    found = tasks_for(session, actor)
    if found:
        detail: dict[str, object] = {"listing": "rotation_tasks", "ids": [p.customer_id for p in found]}
        if again:
            detail["again"] = True
        rt.audit.record(session, action=AuditAction.CUSTOMER_LIST, actor=actor, ctx=ctx, detail=detail)
    return found


def _clean_reason(reason: str | None, *, required: bool) -> str:
    text = (reason or "").strip()
    if required and len(text) < MIN_REASON:
        raise ServiceError("reason_required", _l("Say why, in at least %(count)s characters.", count=MIN_REASON))
    if len(text) > MAX_REASON:
        raise ServiceError("reason_too_long", _l("A reason has at most %(count)s characters.", count=MAX_REASON))
    return text


def _hold(session: Session, proposal: RotationProposal) -> None:
    """Lock the proposal, the loans an approval ends, its owner (shared) and its customer, and read them
    again, before deciding.

    Two decisions at once (two tabs, a manager and an approver) otherwise each read the proposal open and
    the second wrote over the first: a proposal "skipped" whose customer had moved. The owner comes before
    the customer, in the order a notice takes them (`quota.hold_notice`, then the handover of the customers),
    so a decision waits for a notice being recorded and sees the owner leaving.
    """
    locked(session, RotationProposal, proposal.id)
    # The loans an approval ends, before its first record: a record holds the head of its chain until the
    # commit, and a return (or an approval) of one of them holds the loan and then writes its own record.
    # Before the owner, as approvals and a notice take a person's loans before the person.
    _previous_owners_loans(session, proposal)
    quota.hold_notice(session, proposal.from_user)
    locked(session, Customer, proposal.customer_id)


def _still_open(proposal: RotationProposal) -> None:
    if not proposal.is_open:
        raise Conflict("already_decided", _l("This proposal has already been decided."))
    if proposal.customer.owner_id != proposal.from_user_id:
        raise Conflict("owner_changed", _l("The customer has changed owner since the proposal; propose again."))
    if proposal.from_user.status != UserStatus.ACTIVE:
        # A leaver's customers go with the departure's handover, which has its own confirmations.
        raise Conflict("owner_departing", _l("The owner has given notice: the customer goes with the handover."))


def _previous_owners_loans(session: Session, proposal: RotationProposal) -> list[Loan]:
    """The previous owner's open loans on the customer's files, locked as they are read, in id order."""
    return locked_rows(session, select(Loan).join(Document, Document.id == Loan.document_id)
                       .where(Document.customer_id == proposal.customer_id, Loan.borrower_id == proposal.from_user_id,
                              Loan.status.in_(OPEN_STATUSES)).order_by(Loan.id), of=Loan)


def end_previous_owners_loans(rt: Runtime, session: Session, proposal: RotationProposal, *,
                              ctx: AccessContext) -> list[int]:
    """End every open loan (active, approved, or requested and undecided) of the previous owner on the
    customer's files, with the rotation as the reason; returns their ids."""
    return [loan.id for loan in _previous_owners_loans(session, proposal)
            if revoke_by_system(rt, session, loan, reason=ROTATION_REASON, ctx=ctx,
                                detail={"rotation_proposal_id": proposal.id})]


def approve(rt: Runtime, session: Session, actor: User, proposal: RotationProposal, *, to_user: User | None = None,
            reason: str = "", ctx: AccessContext) -> RotationProposal:
    """Approve the proposal, or name another member of the team (`to_user`): ownership moves, the previous
    owner's open loans on the customer's files end, and the new owner has a contact to confirm.

    Raises:
        policy.Denied: `rotation_departing`, `own_gain`, `own_rotation`, `not_owners_manager`.
        Conflict: `already_decided`, `owner_changed`, `owner_departing`.
        ServiceError: `invalid_owner` (cannot receive customers, or the current owner), `not_in_team`.
    """
    customer = proposal.customer
    target = to_user or proposal.to_user
    policy.require(actor, Action.ROTATION_DECIDE, proposal, gaining=target,
                   audit={"customer_id": customer.id, "subject_user_id": target.id})
    _hold(session, proposal)
    _still_open(proposal)
    reason = _clean_reason(reason, required=False)
    eligible_owner(target)
    if not can_receive(target) or target.id == proposal.from_user_id:
        raise ServiceError("invalid_owner", _l("The new owner must be an active account manager, not on notice, "
                                               "other than the current owner."))
    if target.id != proposal.proposed_user_id and target.manager_id != proposal.from_user.manager_id:
        raise ServiceError("not_in_team", _l("The new owner must be in the same team as the current owner."))
    previous = move_owner(rt, session, actor, customer, target, cause="rotation", ctx=ctx, reason=reason)
    proposal.status = ProposalStatus.APPROVED
    proposal.to_user_id = target.id
    proposal.decided_at = utcnow()
    proposal.decided_by_id = actor.id
    proposal.reason = reason or None
    session.flush()
    ended = end_previous_owners_loans(rt, session, proposal, ctx=ctx)
    rt.audit.record(session, action=AuditAction.ROTATION_APPROVE, actor=actor, ctx=ctx, customer_id=customer.id,
                    subject_user_id=target.id, reason_text=reason or None,
                    detail={"proposal_id": proposal.id, "from_user_id": previous, "to_user_id": target.id,
                            "proposed_user_id": proposal.proposed_user_id,
                            "edited": target.id != proposal.proposed_user_id, "loans_ended": ended})
    return proposal


def skip(rt: Runtime, session: Session, actor: User, proposal: RotationProposal, *, reason: str,
         ctx: AccessContext) -> RotationProposal:
    """Keep the customer with its owner, saying why; the plan proposes it again after another interval.

    Raises:
        policy.Denied: `rotation_departing`, `own_gain`, `own_rotation`, `not_owners_manager`.
        Conflict: `already_decided`, `owner_changed`, `owner_departing`.
        ServiceError: `reason_required`, `reason_too_long`.
    """
    policy.require(actor, Action.ROTATION_DECIDE, proposal, gaining=None,
                   audit={"customer_id": proposal.customer_id, "subject_user_id": proposal.from_user_id})
    _hold(session, proposal)
    _still_open(proposal)
    reason = _clean_reason(reason, required=True)
    proposal.status = ProposalStatus.SKIPPED
    proposal.decided_at = utcnow()
    proposal.decided_by_id = actor.id
    proposal.reason = reason
    session.flush()
    rt.audit.record(session, action=AuditAction.ROTATION_SKIP, actor=actor, ctx=ctx, customer_id=proposal.customer_id,
                    subject_user_id=proposal.from_user_id, reason_text=reason,
                    detail={"proposal_id": proposal.id, "from_user_id": proposal.from_user_id,
                            "to_user_id": proposal.to_user_id})
    return proposal


def confirm_contact(rt: Runtime, session: Session, actor: User, proposal: RotationProposal, *, note: str = "",
                    ctx: AccessContext) -> RotationProposal:
    """The new owner confirms having reached the customer, which they must first have logged in the
    customer's contact log (its main contact, since the approval): the handover task is then done.

    Raises:
        policy.Denied: `not_new_owner`, `no_longer_owner`, `already_confirmed`, `contact_not_logged`.
        ServiceError: `reason_too_long` for the note.
    """
    note = _clean_reason(note, required=False)
    locked(session, RotationProposal, proposal.id)  # a confirmation sent twice is confirmed once
    since = proposal.decided_at or proposal.created_at
    logged = reached_main_contact(session, proposal.customer_id, actor.id, since)
    policy.require(actor, Action.ROTATION_CONFIRM, proposal, contact_logged=logged,
                   audit={"customer_id": proposal.customer_id, "subject_user_id": proposal.from_user_id})
    proposal.confirmed_at = utcnow()
    proposal.confirmation_note = note or None
    session.flush()
    rt.audit.record(session, action=AuditAction.ROTATION_CONFIRM, actor=actor, ctx=ctx,
                    customer_id=proposal.customer_id, subject_user_id=proposal.from_user_id,
                    reason_text=note or None, detail={"proposal_id": proposal.id})
    return proposal


__all__ = ["ProposalPage", "approve", "can_receive", "confirm_contact", "decidable", "end_previous_owners_loans",
           "get_for_decision", "get_task", "months_before", "open_proposals", "page_for", "propose", "read_tasks",
           "skip", "tasks_for", "team_of"]
