"""Departures: notice → handover → last day → departed.

On notice the person's status turns to "departing" at once (their requests for grade 2-3 loans then
need one approver more, or are refused: see `policy.loans`), every customer they own is handed to the
successor (or put on the reassignment list), an alert is raised, and custodians see their open loans.

The last working day ends at midnight in the company's timezone. From that instant `User.can_sign_in`
is false, so every page, API call and old token is refused without anything else happening; the
last-day steps (loans and tokens revoked, sessions ended, account disabled, each audited) are then
carried out by `vault departures run`, by the first request that notices, or by completing the
departure.

The "customer confirmation" rule: each key customer (a configured segment, VIP by default, or any
customer with a grade 2-3 file) counts as handed over only once its new owner confirms having spoken
to the customer, or an approver waives that with a reason. Until then the departure cannot complete.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from vault import policy
from vault.config.policy_file import zone
from vault.config.settings import Settings
from vault.core import events
from vault.core.actions import Action
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.core.errors import Conflict, NotFound, ServiceError
from vault.db.locking import locked, locked_rows
from vault.models import (
    OPEN_STATUSES,
    ApiToken,
    Customer,
    CustomerCoOwner,
    Departure,
    DepartureStatus,
    Document,
    HandoverItem,
    Loan,
    LoanStatus,
    Segment,
    User,
    UserStatus,
    utcnow,
)
from vault.policy import departures as rules
from vault.policy.visibility import visible_loans
from vault.runtime import Runtime
from vault.services import accounts, pool, quota
from vault.services.customers import OWNER_ROLES
from vault.services.loans import lock_loan, record_listing, targets
from vault.services.records import reached_main_contact

LAST_DAY_REASON = "Access ended on the borrower's last working day"
MAX_NOTE = 2000
# How far from today a notice date or a last day may lie: far enough for any real notice period, near
# enough that the end of the last day is an instant the calendar can hold (9999-12-31 has no midnight after).
DATE_RANGE = timedelta(days=3660)



# -- time ----------------------------------------------------------------------------------------------


def today(settings: Settings, now: datetime | None = None) -> date:
    """The date in the company's timezone (VAULT_TIMEZONE): what "today" means for notices and last days."""
    return (now or utcnow()).astimezone(zone(settings.timezone, "VAULT_TIMEZONE")).date()


def end_of_day(settings: Settings, day: date) -> datetime:
    """The instant `day` ends (midnight after it) in the company's timezone, in UTC."""
    tz = zone(settings.timezone, "VAULT_TIMEZONE")
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)


def notice_began(settings: Settings, departure: Departure) -> datetime:
    """The instant the notice began: the start of its notice day in the company's timezone (a notice dated
    earlier than it was recorded counts from that day), or when it was recorded, if that is earlier.

    What a leaver did before this is looked at `[departure] lookback_days` back from it, however long the
    notice period runs (`report.build_report`, `letter_addresses.doubted_since`): the weeks before a notice
    are when customers are carried away, and a window counted back from a later day would let them slip out
    of it as the notice period goes on."""
    return min(end_of_day(settings, departure.notice_date - timedelta(days=1)), departure.started_at)


# -- look-ups ------------------------------------------------------------------------------------------


def departure_of(session: Session, user: User) -> Departure | None:
    return session.scalar(select(Departure).where(Departure.user_id == user.id))


def get_departure(session: Session, departure_id: int) -> Departure:
    departure = session.get(Departure, departure_id)
    if departure is None:
        raise NotFound("departure")
    return departure


def _hold(session: Session, departure: Departure) -> None:
    """Lock the departure and read it, and its handover, again before a step changes them
    (`vault.db.locking`): two steps at once (a completion and a withdrawal, two confirmations) otherwise
    each read it open and the second wrote over the first, withdrawing a completed departure.

    Raises:
        NotFound: withdrawn (deleted) while this step waited.
    """
    if locked(session, Departure, departure.id) is None:
        raise NotFound("departure")
    session.expire(departure, ["items"])


def _hold_owned(session: Session, user_id: int) -> list[Customer]:
    """The customers `user_id` owns, locked as they are read, in the order of their ids (one they no longer
    own once a change committed meanwhile is passed over); see `_hold_customers`."""
    return locked_rows(session, select(Customer).where(Customer.owner_id == user_id).order_by(Customer.id))


def _hold_customers(session: Session, *items: HandoverItem) -> None:
    """Lock the customers of `items` (in the order of their ids) and read them again, after the departure
    (`_hold`), before a step judges whether they are still in the handover and moves them.

    A manager's assignment, a rotation or a claim from the pool may move one of them at the same moment;
    a step that read it before waited for that change, then wrote over it, recording it as taken from an
    owner it no longer had. Those decisions lock the customer too (`customers`, `rotation`, `pool`).

    Before the step writes any record: a record holds the head of its chain until the commit, and a
    decision holding the customer writes its own record next, perhaps to the same chain; a step that
    recorded first and then waited for the customer held what that decision waited for (a deadlock).
    """
    ids = sorted({item.customer_id for item in items})
    if not ids:
        return
    for customer in locked_rows(session, select(Customer).where(Customer.id.in_(ids)).order_by(Customer.id)):
        session.expire(customer, ["owner", "co_owners"])


# How many of the leaver's loans, latest first, the departure's page lists beside the handover.
LOANS_SHOWN = 100


def loans_shown(session: Session, departure: Departure) -> list[Loan]:
    """The leaver's latest loans as the departure's page lists them (their files and customers by name): one
    query for the page and for the record of its reading (`read_departure`), so both name the same loans."""
    return list(session.scalars(select(Loan).where(Loan.borrower_id == departure.user_id)
                                .order_by(Loan.requested_at.desc(), Loan.id.desc()).limit(LOANS_SHOWN)))


def read_departure(rt: Runtime, session: Session, actor: User | None, departure: Departure, *, shown: str,
                   ctx: AccessContext, again: bool = False, loans: list[Loan] | None = None) -> Departure:
    """Show a departure (its page, its JSON, `vault departure show`): the leaver's customers by name and
    their loans, as the report does, so recorded as a read of the report (`departure:report`, `shown`
    saying where: "page", "json", "cli") naming every customer shown, as the report's record does: the
    handover's customers, and with `loans` (the page's, `loans_shown`) the customer of each loan's file,
    which need not be one the leaver hands over (a file of a customer they co-own, or were lent), with the
    loans' ids. `actor` None is the operator at the command line, who answers to no role gate but is
    recorded all the same (as `report.produce` records them).
    `again`: the page shown once more with a form's input refused names them a second time, a read of its
    own, marked so the log tells a retry from a second visit (as `read_override`).

    Raises:
        policy.Denied: `own_departure`, or the role gate.
    """
    if actor is not None:
        policy.require(actor, Action.DEPARTURE_REPORT, departure.user, audit={"subject_user_id": departure.user_id})
    customers = {item.customer_id for item in departure.items}
    if loans is not None:
        customers |= {loan.document.customer_id for loan in loans}
    detail: dict[str, object] = {"format": shown, "departure_id": departure.id, "customers": sorted(customers)}
    if loans is not None:
        detail["loans"] = [loan.id for loan in loans]
    if again:
        detail["again"] = True
    rt.audit.record(session, action=AuditAction.DEPARTURE_REPORT, actor=actor, ctx=ctx,
                    subject_user_id=departure.user_id, detail=detail)
    return departure


def get_item(session: Session, item_id: int) -> HandoverItem:
    item = session.get(HandoverItem, item_id)
    if item is None:
        raise NotFound("handover item")
    return item


_DEPARTURE_ORDER = (Departure.status.desc(), Departure.started_at.desc(), Departure.id.desc())
PAGE_SIZE = 50


def list_departures(session: Session) -> list[Departure]:
    """Every departure, open ones first (the command line's list, for the operator)."""
    return list(session.scalars(select(Departure).order_by(*_DEPARTURE_ORDER)))


@dataclass(frozen=True)
class DeparturePage:
    departures: list[Departure]
    total: int
    page: int
    pages: int


def page_of_departures(session: Session, actor: User, *, page: int = 1, page_size: int = PAGE_SIZE) -> DeparturePage:
    """One page of the departures `actor` may look at, open ones first, counted and cut in SQL: everyone's
    but their own (nobody manages or reports on their own departure, `policy.departures`). A page past the
    end is the last page."""
    condition = Departure.user_id != actor.id
    total = session.scalar(select(func.count()).select_from(Departure).where(condition)) or 0
    pages = max(1, -(-total // page_size))
    page = min(max(1, page), pages)
    found = list(session.scalars(select(Departure).where(condition).order_by(*_DEPARTURE_ORDER)
                                 .offset((page - 1) * page_size).limit(page_size)))
    return DeparturePage(departures=found, total=total, page=page, pages=pages)


def items_for(session: Session, user: User) -> list[HandoverItem]:
    """Handover items given to `user` in departures still open whose customer `user` still owns: the
    contacts they have to confirm.

    A customer given since to someone else (`HandoverItem.moved`) is left out rather than shown as moved:
    the successor has nothing left to do with it (only its present owner confirms the contact, once the
    item is handed to them), and a customer they no longer work is no longer theirs to see. HR, who must
    act on it, sees it marked as moved on the departure's page and in the API's departure.
    """
    return list(session.scalars(
        select(HandoverItem).join(Departure).join(Customer, Customer.id == HandoverItem.customer_id)
        .where(HandoverItem.to_user_id == user.id, Customer.owner_id == user.id,
               Departure.status == DepartureStatus.NOTICE)
        .order_by(HandoverItem.key.desc(), HandoverItem.id)
    ))


@dataclass(frozen=True)
class Handover:
    """What the handover list shows its reader: the customers handed to them (`items_for`) and the open
    departures whose missing confirmations they may waive (`awaiting_override`)."""

    items: list[HandoverItem]
    awaiting: list[Departure]


def read_handover(rt: Runtime, session: Session, actor: User, *, name_waivable: bool,
                  ctx: AccessContext, again: bool = False) -> Handover:
    """The actor's handover list (page, API), recorded as a listing of the customers it names
    (`customer:list`, "handover", with their ids) in the listing's transaction, as the rotation proposals
    are: every customer handed to them, and, when the caller shows them (`name_waivable`: the API names
    each waivable item's customer, the page only the leaver), the key customers of the departures an
    approver may waive, customers the approver may not otherwise see. A list that names no customer is
    not recorded. `again`: the page shown once more with a confirmation refused names them a second time, a
    read of its own, marked so the log tells a retry from a second visit (as `read_override`)."""
    items = items_for(session, actor)
    awaiting = awaiting_override(session, actor) if policy.authorize(actor, Action.DEPARTURE_OVERRIDE) else []
    shown = [item.customer_id for item in items]
    if name_waivable:
        shown += [item.customer_id for departure in awaiting for item in rules.waivable(departure)]
    ids = list(dict.fromkeys(shown))
    if ids:
        detail: dict[str, object] = {"listing": "handover", "ids": ids}
        if again:
            detail["again"] = True
        rt.audit.record(session, action=AuditAction.CUSTOMER_LIST, actor=actor, ctx=ctx, detail=detail)
    return Handover(items=items, awaiting=awaiting)


def read_override(rt: Runtime, session: Session, actor: User, departure: Departure, *,
                  ctx: AccessContext, again: bool = False) -> list[HandoverItem]:
    """The key customers an override of `departure` would waive, shown to an approver before they decide,
    recorded as a listing of those customers (`customer:list`, "override", with the departure and their ids)
    in the page's transaction, as the handover list records the same customers through the API: customers
    the approver may not otherwise see. `again`: the form shown once more with its input refused names them a
    second time, a read of its own, marked so the log tells a retry from a second visit.

    Raises:
        policy.Denied: the role gate, `separation_of_duties` (the successor), `nothing_to_override`,
            `decider_departing`.
    """
    # A reason long enough for the rule on reasons: only the person and the departure are judged here.
    policy.require(actor, Action.DEPARTURE_OVERRIDE, departure, reason="x" * 20,
                   audit={"subject_user_id": departure.user_id})
    pending = rules.waivable(departure)
    ids = list(dict.fromkeys(item.customer_id for item in pending))
    if ids:
        detail: dict[str, object] = {"listing": "override", "departure_id": departure.id, "ids": ids}
        if again:
            detail["again"] = True
        rt.audit.record(session, action=AuditAction.CUSTOMER_LIST, actor=actor, ctx=ctx,
                        subject_user_id=departure.user_id, detail=detail)
    return pending


def awaiting_override(session: Session, actor: User) -> list[Departure]:
    """Open departures with unconfirmed key customers that `actor` could waive."""
    departures = session.scalars(select(Departure).where(Departure.status == DepartureStatus.NOTICE)
                                 .order_by(Departure.started_at))
    return [d for d in departures
            if rules.waivable(d)
            and policy.authorize(actor, Action.DEPARTURE_OVERRIDE, d, reason="x" * 20)]


def leavers_open_loans(rt: Runtime, session: Session, actor: User, *, ctx: AccessContext,
                       again: bool = False) -> list[Loan]:
    """Open loans (requested, approved, active) of everyone on notice that `actor` sees at all
    (`policy.visibility.visible_loans`: approvers every open one, custodians approved and active ones):
    what custodians look at first, and no window onto requests they are not shown anywhere else. Recorded
    as a listing of other people's loans (`loan:queue`, "leavers"), in the listing's transaction; `again`
    marks the list shown once more after a revocation's input was refused (`record_listing`)."""
    found = list(session.scalars(
        select(Loan).join(User, User.id == Loan.borrower_id)
        .where(User.status == UserStatus.DEPARTING, Loan.status.in_(OPEN_STATUSES), visible_loans(actor))
        .order_by(User.username, Loan.id)
    ))
    record_listing(rt, session, actor, found, listing="leavers", ctx=ctx, again=again)
    return found


# The reason the leavers' page offers for revoking a leaver's loan (the person may type another).
LEAVER_REVOKE_REASON = "The borrower is leaving the company (notice given)."


def revocable_by(actor: User, loans: list[Loan]) -> set[int]:
    """The ids of those `loans` the actor may revoke now (approved or active ones, not their own), judged
    with the leavers' reason: what the leavers' page offers a button for."""
    return {loan.id for loan in loans if loan.status in (LoanStatus.APPROVED, LoanStatus.ACTIVE)
            and policy.authorize(actor, Action.LOAN_REVOKE, loan, reason=LEAVER_REVOKE_REASON)}


def is_key_customer(session: Session, customer: Customer, key_segments: frozenset[Segment]) -> str:
    """Why the customer is a key one ("" if it is not): its segment, or a grade 2-3 file."""
    if Segment(customer.segment) in key_segments:
        return f"segment {customer.segment}"
    graded = session.scalar(select(exists().where(Document.customer_id == customer.id, Document.grade >= 2)))
    return "grade 2-3 file" if graded else ""


# -- checks --------------------------------------------------------------------------------------------


def _decide(actor: User | None, action: Action, target: Any, fallback: policy.Decision | None = None,
            **context: Any) -> None:
    """Ask the policy for a person; for the operator at the command line (actor None), apply the same
    state rules (`fallback`) without the role gate."""
    if actor is not None:
        policy.require(actor, action, target, **context)
    elif fallback is not None and not fallback:
        raise policy.Denied(fallback, action=action, **context.get("audit", {}))


def _check_successor(user: User, successor: User | None) -> None:
    if successor is None:
        return
    if successor.id == user.id:
        raise ServiceError("invalid_successor", _l("The successor must be someone other than the person leaving."))
    if not successor.can_sign_in or successor.status != UserStatus.ACTIVE:
        raise ServiceError("invalid_successor", _l("The successor must be an active person who is not leaving."))
    if not successor.role_set & set(OWNER_ROLES):
        raise ServiceError("invalid_successor", _l("The successor must be an account manager (compiler or borrower)."))


def _check_range(current: date, *days: date) -> None:
    """Refuse a notice date or last day more than `DATE_RANGE` away from today."""
    if any(abs(day - current) > DATE_RANGE for day in days):
        raise ServiceError("invalid_dates", _l("The notice date and the last working day lie within ten years of "
                                               "today."))


def _clean_note(note: str | None) -> str:
    """The note as stored: lines and tabs kept, no other control character (a terminal escape would reach
    the departure's report and `vault departure show`)."""
    text = (note or "").strip()
    if len(text) > MAX_NOTE:
        raise ServiceError("note_too_long", _l("A note has at most %(MAX_NOTE)s characters.", MAX_NOTE=MAX_NOTE))
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\r\t" for ch in text):
        raise ServiceError("invalid_note", _l("A note cannot contain control characters."))
    return text


# -- starting ------------------------------------------------------------------------------------------


def start_departure(
    rt: Runtime,
    session: Session,
    actor: User | None,
    user: User,
    *,
    last_day: date,
    successor: User | None,
    notice_date: date | None = None,
    note: str = "",
    ctx: AccessContext,
) -> Departure:
    """Record the notice of `user`: departing at once, customers handed over, alert raised.

    `actor` None is the operator at the command line. A last day already past ends access at once
    (`User.can_sign_in`); the last-day steps follow with `run_due`.

    Raises:
        policy.Denied: `own_departure`, or the role gate (admins manage departures).
        ServiceError: bad dates or successor; Conflict when the person already gave notice or is gone.
    """
    audit = {"subject_user_id": user.id}
    _decide(actor, Action.DEPARTURE_MANAGE, user, step="hand_over" if successor is not None else None, audit=audit)
    # The person's open loans first, in the order approvals take them (the loan, then the person;
    # `vault.db.locking`): a notice recorded after its last day ends them in this unit of work.
    _hold_open_loans(session, [user.id])
    quota.hold_notice(session, user, recording=True)  # approvals under way finish first (see hold_notice)
    if departure_of(session, user) is not None or user.status != UserStatus.ACTIVE:
        raise Conflict("already_departing", _l("%(username)s has already given notice or left.",
                                               username=user.username))
    if user.disabled:
        raise Conflict("account_disabled", _l("The account of %(username)s is disabled.", username=user.username))
    _check_successor(user, successor)
    current = today(rt.settings)
    notice_date = notice_date or current
    if notice_date > current:
        raise ServiceError("invalid_dates", _l("The notice date cannot be in the future."))
    _check_range(current, notice_date)
    if last_day < notice_date:
        raise ServiceError("invalid_dates", _l("The last working day cannot be before the notice date."))
    _check_range(current, last_day)
    _hold_owned(session, user.id)  # before the record (see `_hold_customers`); `sync_items` hands them over
    now = utcnow()
    user.status = UserStatus.DEPARTING
    user.last_day = last_day
    user.access_ends_at = end_of_day(rt.settings, last_day)
    departure = Departure(user_id=user.id, status=DepartureStatus.NOTICE, notice_date=notice_date,
                          successor_id=successor.id if successor else None, note=_clean_note(note),
                          started_by_id=actor.id if actor else None, started_at=now)
    session.add(departure)
    session.flush()
    open_loans = session.scalars(select(Loan.id).where(Loan.borrower_id == user.id,
                                                       Loan.status.in_(OPEN_STATUSES))).all()
    rt.audit.record(session, action=AuditAction.DEPARTURE_START, actor=actor, ctx=ctx, subject_user_id=user.id,
                    reason_text=departure.note or None,
                    detail={"departure_id": departure.id, "notice_date": notice_date.isoformat(),
                            "last_day": last_day.isoformat(), "access_ends_at": user.access_ends_at.isoformat(),
                            "successor_id": departure.successor_id, "open_loans": list(open_loans)})
    added = sync_items(rt, session, departure, actor=actor, ctx=ctx)
    # The early warning raises its "notice" alert from this event, in this transaction.
    events.emit("departure.started", session=session, rt=rt, departure=departure, user=user,
                customers=[item.customer_id for item in added], loans=list(open_loans), now=now)
    events.emit("departure.step", session=session, rt=rt, departure=departure, step="started", actor=actor)
    events.emit("decider.lost", session=session, rt=rt, user=user, roles=user.role_set)
    return departure


def sync_items(rt: Runtime, session: Session, departure: Departure, *, actor: User | None,
               ctx: AccessContext) -> list[HandoverItem]:
    """Add a handover item for every customer the leaver still owns (new ones since the notice too),
    handing it to the successor at once; refresh which open items are key customers."""
    key_segments = rt.settings.departure.key_segments
    known = {item.customer_id for item in departure.items}
    owned = _hold_owned(session, departure.user_id)
    added: list[HandoverItem] = []
    for customer in owned:
        if customer.id in known:
            continue
        reason = is_key_customer(session, customer, key_segments)
        item = HandoverItem(departure_id=departure.id, customer_id=customer.id, key=bool(reason), key_reason=reason)
        departure.items.append(item)
        session.flush()
        added.append(item)
        if departure.successor is not None:
            _transfer(rt, session, item, departure.successor, actor=actor, ctx=ctx)
    for item in departure.items:
        if not item.key:  # a customer that got a grade 2-3 file since the notice now needs confirming
            reason = is_key_customer(session, item.customer, key_segments)
            if reason:
                item.key, item.key_reason = True, reason
    session.flush()
    return added


def _transfer(rt: Runtime, session: Session, item: HandoverItem, to_user: User, *, actor: User | None,
              ctx: AccessContext) -> None:
    customer = item.customer
    previous_owner = customer.owner_id
    customer.owner_id = to_user.id
    item.to_user_id = to_user.id
    item.transferred_at = utcnow()
    # A new owner confirms for themselves: an earlier confirmation or waiver was about someone else.
    item.confirmed_at = item.confirmed_by_id = item.contact_date = item.confirmation_note = None
    item.waived_at = item.waived_by_id = item.waived_reason = None
    item.customer_answer = item.customer_answered_at = None  # the customer's word was about the one before
    item.pooled_at = None
    session.flush()
    leaver_id = item.departure.user_id
    stays = previous_owner == leaver_id and leaver_id not in customer.co_owner_ids
    if stays:
        # The leaver stays on the customer as a co-owner until their last day, to introduce the successor;
        # the last-day steps take them off (`offboard`).
        customer.co_owners.append(CustomerCoOwner(user_id=leaver_id, added_by_id=actor.id if actor else None))
    session.flush()
    rt.audit.record(session, action=AuditAction.CUSTOMER_HANDOVER, actor=actor, ctx=ctx, customer_id=customer.id,
                    subject_user_id=to_user.id,
                    detail={"departure_id": item.departure_id, "item_id": item.id, "from_user_id": previous_owner,
                            "to_user_id": to_user.id, "key": item.key, "leaver_co_owner_until_last_day": stays})
    events.emit("customer.handed_over", session=session, rt=rt, item=item, to_user=to_user)
    events.emit("customer.owner_changed", session=session, rt=rt, customer=customer, previous_owner_id=previous_owner,
                new_owner=to_user, cause="handover", actor=actor, ctx=ctx)


# -- changes during the notice period -------------------------------------------------------------------


def update_departure(
    rt: Runtime,
    session: Session,
    actor: User | None,
    departure: Departure,
    *,
    last_day: date | None = None,
    successor: User | None = None,
    note: str | None = None,
    ctx: AccessContext,
) -> Departure:
    """Move the last day (a day in the past ends access at once; `run_due` then carries out the
    last-day steps), name a (new) successor, who receives every customer not yet confirmed that is still
    in the handover (`in_handover`), or change the note.

    Raises:
        policy.Denied: `own_departure`, `departure_closed`, `last_day_passed` (moving the last day once
            access has ended: the account is re-enabled by an administrator, as for a withdrawal).
        ServiceError: bad dates or successor.
    """
    _hold(session, departure)
    _decide(actor, Action.DEPARTURE_MANAGE, departure,
            None if departure.is_open else policy.deny("departure_closed"),
            audit={"subject_user_id": departure.user_id})
    user = departure.user
    changes: dict[str, Any] = {}
    if last_day is not None and last_day != user.last_day:
        # Once access has ended, moving the last day would give it back before the last-day steps run.
        _decide(actor, Action.DEPARTURE_MANAGE, departure, rules.last_day_problem(departure), step="last_day",
                audit={"subject_user_id": departure.user_id})
        if last_day < departure.notice_date:
            raise ServiceError("invalid_dates", _l("The last working day cannot be before the notice date."))
        _check_range(today(rt.settings), last_day)
        if end_of_day(rt.settings, last_day) <= utcnow():
            # Access ends at once and the last-day steps follow in this unit of work: the loans before
            # the person's row, in the order approvals take them (as `start_departure` does).
            _hold_open_loans(session, [departure.user_id])
        changes["last_day"] = {"from": user.last_day.isoformat() if user.last_day else None,
                               "to": last_day.isoformat()}
        user.last_day = last_day
        user.access_ends_at = end_of_day(rt.settings, last_day)
    if successor is not None and successor.id != departure.successor_id:
        _decide(actor, Action.DEPARTURE_MANAGE, departure, step="hand_over", audit={"subject_user_id": user.id})
        _check_successor(user, successor)
        _hold_customers(session, *departure.items)  # before the record: a new successor receives them
        changes["successor_id"] = {"from": departure.successor_id, "to": successor.id}
        departure.successor_id = successor.id
        session.flush()
        session.refresh(departure, ["successor"])
    if note is not None and note.strip() != departure.note:
        departure.note = _clean_note(note)
        changes["note"] = True
    if not changes:
        return departure
    session.flush()
    rt.audit.record(session, action=AuditAction.DEPARTURE_UPDATE, actor=actor, ctx=ctx, subject_user_id=user.id,
                    detail={"departure_id": departure.id, **changes})
    if "successor_id" in changes and successor is not None:
        for item in departure.items:
            if not item.confirmed and item.pooled_at is None and in_handover(item) and (
                    item.to_user_id is None or item.to_user_id == changes["successor_id"]["from"]):
                _transfer(rt, session, item, successor, actor=actor, ctx=ctx)
    return departure


def in_handover(item: HandoverItem) -> bool:
    """Whether the customer is still where the handover put it: with the leaver, with the person the item
    gave it to, or in the pool it sent it to (`HandoverItem.moved`). One given since to someone else (a
    manager's assignment, a rotation, a claim from the pool) is no longer the departure's to move: the item
    can only be handed to that present owner, who then confirms the contact."""
    return not item.moved


def _require_in_handover(item: HandoverItem, to_user: User | None = None) -> None:
    if not in_handover(item) and (to_user is None or item.customer.owner_id != to_user.id):
        raise Conflict("not_leavers", _l("This customer has since been given to someone else: hand it over to its "
                                         "present owner, or leave it with them."))


def reassign(rt: Runtime, session: Session, actor: User | None, item: HandoverItem, to_user: User, *,
             ctx: AccessContext) -> HandoverItem:
    """Hand one customer to someone other than the successor (or take it off the reassignment list).

    Raises:
        policy.Denied: `own_departure`, `departure_closed`.
        ServiceError: `invalid_successor` for a recipient who cannot own customers.
        Conflict: `not_leavers` (the customer has since been given to someone outside this handover).
    """
    departure = item.departure
    _hold(session, departure)
    _decide(actor, Action.DEPARTURE_MANAGE, item, None if departure.is_open else policy.deny("departure_closed"),
            step="hand_over", audit={"subject_user_id": departure.user_id, "customer_id": item.customer_id})
    _hold_customers(session, item)
    _check_successor(departure.user, to_user)
    if item.to_user_id == to_user.id:
        return item
    _require_in_handover(item, to_user)
    _transfer(rt, session, item, to_user, actor=actor, ctx=ctx)
    return item


def return_to_pool(rt: Runtime, session: Session, actor: User | None, item: HandoverItem, *,
                   ctx: AccessContext) -> HandoverItem:
    """Send one of the leaver's customers to the shared pool instead of to a person: it is left without an
    owner (the leaver does not stay on it) until a colleague claims it or a manager assigns it, and the
    item counts as handed over. Reassigning the item later gives it to a person again.

    Raises:
        policy.Denied: `own_departure`, `departure_closed`.
        Conflict: `not_leavers` (the customer has since been given to someone outside this handover).
    """
    departure = item.departure
    _hold(session, departure)
    _decide(actor, Action.DEPARTURE_MANAGE, item, None if departure.is_open else policy.deny("departure_closed"),
            step="hand_over", audit={"subject_user_id": departure.user_id, "customer_id": item.customer_id})
    _hold_customers(session, item)
    if item.pooled_at is not None:
        return item
    customer = item.customer
    _require_in_handover(item)
    for co in list(customer.co_owners):
        if co.user_id == departure.user_id:  # nobody to introduce: the leaver leaves it now
            customer.co_owners.remove(co)
    item.to_user_id = None
    item.transferred_at = None
    item.confirmed_at = item.confirmed_by_id = item.contact_date = item.confirmation_note = None
    item.waived_at = item.waived_by_id = item.waived_reason = None
    item.pooled_at = utcnow()
    pool.return_from_departure(rt, session, actor, customer, departure_id=departure.id, ctx=ctx)
    return item


def confirm_contact(rt: Runtime, session: Session, actor: User, item: HandoverItem, *, contact_date: date | None,
                    note: str, ctx: AccessContext) -> HandoverItem:
    """The new owner confirms having spoken to the customer (the "customer confirmation" rule). For a key
    customer the successor must first have logged reaching its main contact (the record's first contact)
    since the notice began (`records.reached_main_contact`).

    Raises:
        policy.Denied: `not_successor`, `own_departure`, `departure_closed`, `not_transferred`,
            `already_confirmed`, `contact_date_future`, `contact_before_notice`, `contact_not_logged`, or a
            bad note.
    """
    note = (note or "").strip()
    departure = item.departure
    _hold(session, departure)
    _hold_customers(session, item)
    logged = reached_main_contact(session, item.customer_id, actor.id, departure.started_at)
    policy.require(actor, Action.HANDOVER_CONFIRM, item, contact_date=contact_date, note=note,
                   today=today(rt.settings), contact_logged=logged, audit={"customer_id": item.customer_id,
                                                    "subject_user_id": departure.user_id})
    item.contact_date = contact_date
    item.confirmation_note = _clean_note(note)
    item.confirmed_by_id = actor.id
    item.confirmed_at = utcnow()
    session.flush()
    rt.audit.record(session, action=AuditAction.HANDOVER_CONFIRM, actor=actor, ctx=ctx, customer_id=item.customer_id,
                    subject_user_id=departure.user_id, reason_text=item.confirmation_note,
                    detail={"departure_id": departure.id, "item_id": item.id,
                            "contact_date": contact_date.isoformat() if contact_date else None})
    return item


def override(rt: Runtime, session: Session, actor: User, departure: Departure, *, reason: str,
             ctx: AccessContext) -> list[HandoverItem]:
    """An approver waives the confirmation of every key customer still unconfirmed, saying why; the same
    waiver answers a key customer who said through the letter's link that nobody has contacted them
    (`HandoverItem.disputed`), which otherwise stops the departure from completing.

    Raises:
        policy.Denied: `own_departure`, `separation_of_duties` (the successor waiving their own
            confirmations), `departure_closed`, `nothing_to_override`, or a bad reason.
    """
    reason = (reason or "").strip()
    _hold(session, departure)
    policy.require(actor, Action.DEPARTURE_OVERRIDE, departure, reason=reason,
                   audit={"subject_user_id": departure.user_id})
    now = utcnow()
    waived = rules.waivable(departure)
    disputed = [item.id for item in waived if item.disputed]
    for item in waived:
        item.waived_by_id = actor.id
        item.waived_at = now
        item.waived_reason = _clean_note(reason)
    session.flush()
    rt.audit.record(session, action=AuditAction.DEPARTURE_OVERRIDE, actor=actor, ctx=ctx,
                    subject_user_id=departure.user_id,
                    reason_text=reason,
                    detail={"departure_id": departure.id, "items": [i.id for i in waived],
                            "customers": [i.customer_id for i in waived], "not_contacted": disputed})
    return waived


# -- the end -------------------------------------------------------------------------------------------


def revoke_by_system(rt: Runtime, session: Session, loan: Loan, *, reason: str, ctx: AccessContext,
                     detail: dict[str, Any] | None = None, actor: User | None = None) -> bool:
    """End an open loan as a step of something else (last day, early-warning suspension), audited as
    `loan:revoke` by the system, or by `actor` whose decision it follows from (a departure completed before
    its last day); its unused reservations are given back. False if it was not open."""
    lock_loan(session, loan)
    if loan.status not in OPEN_STATUSES:
        return False
    previous = loan.status
    loan.status = LoanStatus.REVOKED
    loan.closed_at = utcnow()
    loan.closed_by_id = actor.id if actor is not None else None
    loan.close_reason = reason
    session.flush()
    rt.audit.record(session, action=AuditAction.LOAN_REVOKE, actor=actor, ctx=ctx, reason_text=reason,
                    subject_user_id=loan.borrower_id,
                    detail={"kind": str(loan.kind), "status": str(loan.status), "previous": str(previous),
                            "by": "system" if actor is None else "departure", **(detail or {})},
                    **targets(loan))
    quota.refund_loan_reservations(rt, session, loan, cause="loan_revoked", actor=actor, ctx=ctx)
    return True


@dataclass(frozen=True)
class Offboarding:
    loans_revoked: int
    tokens_revoked: int


def offboard(rt: Runtime, session: Session, departure: Departure, *, actor: User | None = None,
             ctx: AccessContext) -> Offboarding:
    """The last-day steps: every open loan revoked, every token revoked, every session ended, the account
    disabled; each step audited, then one record summing them up. Safe to run again."""
    user = departure.user
    loans = _hold_open_loans(session, [user.id])
    revoked = sum(revoke_by_system(rt, session, loan, reason=LAST_DAY_REASON, ctx=ctx,
                                   detail={"departure_id": departure.id}, actor=actor) for loan in loans)
    tokens = len(session.scalars(select(ApiToken.id).where(ApiToken.user_id == user.id,
                                                           ApiToken.revoked_at.is_(None))).all())
    # Tokens are revoked (each audited), sessions end (the epoch moves) and the account is disabled.
    epoch = user.session_epoch
    accounts.disable_user(rt, session, user, actor, ctx, decided=True)
    if user.session_epoch == epoch:
        accounts.end_sessions(user)
    rt.audit.record(session, action=AuditAction.AUTH_SESSIONS_END, actor=actor, ctx=ctx, subject_user_id=user.id,
                    detail={"session_epoch": user.session_epoch, "departure_id": departure.id})
    # Off every customer they still co-own (those they handed over, and any other).
    left = session.scalars(select(CustomerCoOwner).where(CustomerCoOwner.user_id == user.id)).all()
    for row in left:
        session.delete(row)
    departure.offboarded_at = utcnow()
    session.flush()
    rt.audit.record(session, action=AuditAction.DEPARTURE_OFFBOARD, actor=actor, ctx=ctx, subject_user_id=user.id,
                    detail={"departure_id": departure.id, "loans_revoked": revoked, "tokens_revoked": tokens,
                            "session_epoch": user.session_epoch, "disabled": True,
                            "co_ownerships_ended": sorted(row.customer_id for row in left)})
    events.emit("departure.step", session=session, rt=rt, departure=departure, step="offboarded", actor=actor)
    return Offboarding(loans_revoked=revoked, tokens_revoked=tokens)


def run_due(rt: Runtime, session: Session, *, ctx: AccessContext | None = None,
            now: datetime | None = None) -> list[Departure]:
    """Carry out the last-day steps of every departure whose last day has ended (`vault departures run`)."""
    now = now or utcnow()
    due = session.scalars(
        select(Departure).join(User, User.id == Departure.user_id)
        .where(Departure.offboarded_at.is_(None), User.access_ends_at <= now).order_by(Departure.id)
    ).all()
    _hold_open_loans(session, [departure.user_id for departure in due])
    for departure in due:
        offboard(rt, session, departure, ctx=ctx or AccessContext.cli())
    return list(due)


def _hold_open_loans(session: Session, user_ids: list[int]) -> list[Loan]:
    """The open loans of these people, locked as they are read, in the order of their ids: the last-day
    steps take every loan they end before they write any record (`vault.db.locking`), as a revocation or a
    return holding one of them writes its own record next."""
    if not user_ids:
        return []
    return locked_rows(session, select(Loan).where(Loan.borrower_id.in_(user_ids), Loan.status.in_(OPEN_STATUSES))
                       .order_by(Loan.id))


def complete(rt: Runtime, session: Session, actor: User | None, departure: Departure, *,
             ctx: AccessContext) -> Departure:
    """Close the departure: every customer has a new owner and every key one is confirmed or waived.
    The person is "departed" from now on; the last-day steps run now if they have not yet.

    Raises:
        policy.Denied: `handover_incomplete`, `customer_not_contacted` (a key customer said through the letter's
            link that nobody contacted them, and no approver waived it since), `customers_unconfirmed`,
            `departure_closed`, `own_departure`.
    """
    _hold(session, departure)
    if departure.is_open:
        sync_items(rt, session, departure, actor=actor, ctx=ctx)
    _decide(actor, Action.DEPARTURE_MANAGE, departure, rules.completion_problem(departure), step="complete",
            audit={"subject_user_id": departure.user_id})
    if departure.offboarded_at is None:
        offboard(rt, session, departure, actor=actor, ctx=ctx)
    user = departure.user
    user.status = UserStatus.DEPARTED
    departure.status = DepartureStatus.COMPLETED
    departure.completed_at = utcnow()
    departure.completed_by_id = actor.id if actor else None
    session.flush()
    rt.audit.record(session, action=AuditAction.DEPARTURE_COMPLETE, actor=actor, ctx=ctx, subject_user_id=user.id,
                    detail={"departure_id": departure.id, "customers": len(departure.items),
                            "confirmed": sum(1 for i in departure.items if i.confirmed),
                            "waived": sum(1 for i in departure.items if i.waived_at is not None)})
    events.emit("departure.step", session=session, rt=rt, departure=departure, step="completed", actor=actor)
    return departure


def withdraw(rt: Runtime, session: Session, actor: User | None, departure: Departure, *, reason: str,
             ctx: AccessContext) -> User:
    """The notice is withdrawn (the person stays): normal policy again for them, customers given back.

    The person's status is "active" again, their last day cleared; every customer still owned by the
    one it was handed to goes back to them (each audited as a handover), and the co-ownerships the
    handover gave them until the last day end (named in the record), of the customers given back and
    of those given since to someone else. The departure and its
    handover items are removed, so a later notice starts afresh; the audit log keeps the whole story
    (`departure:withdraw` names the departure, its dates and the customers given back).

    Raises:
        policy.Denied: `own_departure`, `departure_closed`, `already_offboarded` (the last day has
            passed: access ended, tokens revoked; the account is re-enabled by an administrator,
            not by a withdrawal), or a reason too short.
    """
    reason = (reason or "").strip()
    _hold(session, departure)
    _decide(actor, Action.DEPARTURE_MANAGE, departure, rules.withdrawal_problem(departure, reason),
            step="withdraw", reason=reason, audit={"subject_user_id": departure.user_id})
    user = departure.user
    returned = []
    ended: list[int] = []
    for item in departure.items:
        customer = item.customer
        for co in list(customer.co_owners):
            # The handover kept the leaver on as co-owner until the last day; withdrawn, there is none.
            if co.user_id == user.id:
                customer.co_owners.remove(co)
                ended.append(customer.id)
        if (item.to_user_id is not None and customer.owner_id == item.to_user_id) or (
                item.pooled_at is not None and customer.owner_id is None):
            previous_owner = customer.owner_id
            customer.owner_id = user.id
            returned.append(customer.id)
            rt.audit.record(session, action=AuditAction.CUSTOMER_HANDOVER, actor=actor, ctx=ctx,
                            customer_id=customer.id, subject_user_id=user.id,
                            detail={"departure_id": departure.id, "from_user_id": item.to_user_id,
                                    "to_user_id": user.id, "withdrawn": True, "from_pool": item.pooled_at is not None})
            # The customer was told of the successor: it is told, the same way, that its manager stays.
            events.emit("customer.owner_changed", session=session, rt=rt, customer=customer,
                        previous_owner_id=previous_owner, new_owner=user, cause="withdrawal", actor=actor, ctx=ctx)
    detail = {"departure_id": departure.id, "notice_date": departure.notice_date.isoformat(),
              "last_day": user.last_day.isoformat() if user.last_day else None, "customers_returned": returned,
              "co_ownerships_ended": sorted(ended)}
    user.status = UserStatus.ACTIVE
    user.last_day = None
    user.access_ends_at = None
    session.delete(departure)
    session.flush()
    rt.audit.record(session, action=AuditAction.DEPARTURE_WITHDRAW, actor=actor, ctx=ctx, subject_user_id=user.id,
                    reason_text=reason, detail=detail)
    return user
