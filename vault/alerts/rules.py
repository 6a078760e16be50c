"""The early-warning rules, evaluated on every view, refusal, loan request and spent quota.

Each rule looks at what the database already holds (the views table, the audit log) and returns a
`Finding`, or nothing. Windows are days (or hours) in the working-hours timezone, so "one alert per
rule, person and window" means what a reader of the alerts page expects: one per evening, not one per
rolling 24 hours.

1. many_customers   more than N distinct customers' files opened in 24 hours
2. volume_spike     views today at least K times the person's own 30-day daily median
3. outside_hours    a view, or a reveal of contacts, outside the working hours
4. new_place        a view, or a reveal of contacts, from an address, named place or declared place
                    seen in none of the person's earlier views and reveals
5. probing          M or more refused attempts within an hour (slips in what was typed left out)
6. departing_access a grade 2-3 file viewed (or asked for) by a person on notice
7. quotas_exhausted several documents' quotas used up in one day

and, on the customer directory (below): 8. directory_sweep, 9. outside_book, 10. crafted_file (on an upload)
and 11. outside_book_reveals.
"""

from __future__ import annotations

import gettext
import logging
import math
import statistics
import threading
from collections.abc import Callable
from datetime import date, datetime, timedelta
from time import monotonic
from typing import Any

from sqlalchemy import bindparam, case, exists, func, not_, or_, select
from sqlalchemy.orm import Session

from vault.alerts import webhook
from vault.alerts.raising import Finding, raise_alert
from vault.config.policy_file import AlertSettings, WorkingHours
from vault.core import alert_wording, events
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.models import (
    AuditEvent,
    Customer,
    CustomerAccess,
    CustomerCoOwner,
    Departure,
    Document,
    DocumentVersion,
    DocumentView,
    Loan,
    QuotaExhaustion,
    Severity,
    User,
    UserStatus,
    utcnow,
)
from vault.runtime import Runtime
from vault.services.loans import counted_refusals
from vault.services.view_facts import MINE, PLACE_KINDS, RECENT_CUSTOMERS, ViewFacts, midnight

log = logging.getLogger(__name__)

MEDIAN_DAYS = 30
MAX_LISTED = 50  # refusals whose codes and documents are named in a probing alert


def day_key(hours: WorkingHours, moment: datetime) -> str:
    return hours.local(moment).date().isoformat()


def hour_key(hours: WorkingHours, moment: datetime) -> str:
    return hours.local(moment).strftime("%Y-%m-%dT%H")


def _local_midnight(hours: WorkingHours, moment: datetime) -> datetime:
    local = hours.local(moment)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _english(params: dict[str, Any]) -> str:
    """The stored English summary from the sentence that words it for readers: counts in their plural
    forms (two counts in one sentence cannot be written as one f-string with a conditional)."""
    return alert_wording.sentence("", params, gettext.NullTranslations())


def _view_evidence(view: DocumentView, document: Document) -> dict[str, Any]:
    return {"documents": [document.id], "customers": [document.customer_id], "views": [view.id]}


# -- rules on a view -----------------------------------------------------------------------------------


def many_customers(session: Session, cfg: AlertSettings, hours: WorkingHours, view: DocumentView,
                   document: Document, facts: ViewFacts) -> Finding | None:
    if not cfg.customers_per_day or facts.customers_24h <= cfg.customers_per_day:
        return None
    # Counted with the facts; the customers are listed only for an alert (the view is tallied by now).
    day_ago = view.opened_at - timedelta(hours=24)
    customers = list(session.scalars(RECENT_CUSTOMERS, {"user": view.user_id, "day_ago": day_ago,
                                                        "window_day": hours.local(day_ago).date()}))
    return Finding(
        "many_customers", Severity.HIGH, day_key(hours, view.opened_at),
        f"Files of {len(customers)} different customers opened within 24 hours "
        f"(more than {cfg.customers_per_day}).",
        {**_view_evidence(view, document), "customers": sorted(customers), "value": len(customers),
         "threshold": cfg.customers_per_day},
        {"id": "many_customers", "n": len(customers), "limit": cfg.customers_per_day},
    )


# One count per earlier local day, computed in the database (one row back, however many views):
# column i counts the views before the end of day i.
_DAY_ENDS = [bindparam(f"end{n}") for n in range(1, MEDIAN_DAYS + 1)]
_HISTORY = (
    select(*[func.coalesce(func.sum(case((DocumentView.opened_at < end, 1), else_=0)), 0) for end in _DAY_ENDS])
    .where(MINE, DocumentView.opened_at >= bindparam("start"), DocumentView.opened_at < _DAY_ENDS[-1])
)


# The median of the days before today does not change during today: kept per database, person and day
# for a while, so a busy reader's views do not each re-count a month of their history.
MEDIAN_KEPT_SECONDS = 600
_medians: dict[tuple[str, int, date], tuple[float, float]] = {}
_medians_lock = threading.Lock()


def _median_before(session: Session, hours: WorkingHours, user_id: int, today: date) -> float:
    bind = session.get_bind()
    key = (f"{bind.url!r}:{id(bind)}", user_id, today)
    now = monotonic()
    with _medians_lock:
        kept = _medians.get(key)
    if kept is not None and kept[1] > now:
        return kept[0]
    starts = [midnight(hours, today - timedelta(days=n)) for n in range(MEDIAN_DAYS, -1, -1)]
    ends = {f"end{n}": starts[n] for n in range(1, MEDIAN_DAYS + 1)}
    counts = session.execute(_HISTORY, {"user": user_id, "start": starts[0], **ends}).one()
    # counts[i] is the number of views before the end of day i; per day is the difference.
    history = [int(counts[0])] + [int(counts[i]) - int(counts[i - 1]) for i in range(1, MEDIAN_DAYS)]
    median = float(statistics.median(history))
    with _medians_lock:
        if len(_medians) > 10_000:
            _medians.clear()
        _medians[key] = (median, now + MEDIAN_KEPT_SECONDS)
    return median


def volume_spike(session: Session, cfg: AlertSettings, hours: WorkingHours, view: DocumentView,
                 document: Document, facts: ViewFacts) -> Finding | None:
    count_today = facts.views_today
    # The threshold is never below `median_min_views`: under it the history cannot matter.
    if not cfg.median_factor or count_today < cfg.median_min_views:
        return None
    median = _median_before(session, hours, view.user_id, hours.local(view.opened_at).date())
    threshold = max(cfg.median_min_views, math.ceil(cfg.median_factor * median))
    if count_today < threshold:
        return None
    return Finding(
        "volume_spike", Severity.MEDIUM, day_key(hours, view.opened_at),
        f"{count_today} views today, against a usual {median:g} a day over the last {MEDIAN_DAYS} days.",
        {**_view_evidence(view, document), "value": count_today, "median": median, "threshold": threshold},
        {"id": "volume_spike", "n": count_today, "median": f"{median:g}", "days": MEDIAN_DAYS},
    )


def outside_hours(session: Session, cfg: AlertSettings, hours: WorkingHours, view: DocumentView,
                  document: Document, facts: ViewFacts) -> Finding | None:
    if not cfg.outside_hours or hours.contains(view.opened_at):
        return None
    local = hours.local(view.opened_at)
    severity = Severity.MEDIUM if document.grade >= 2 else Severity.LOW
    return Finding(
        "outside_hours", severity, day_key(hours, view.opened_at),
        f"Files opened outside working hours ({local:%A %H:%M}).",
        {**_view_evidence(view, document), "times": [local.isoformat(timespec="minutes")]},
        {"id": "outside_hours", "weekday": local.weekday(), "time": f"{local:%H:%M}"},
    )


# Where the person revealed contacts: the places of their reveals are in the audit log only (a reveal is
# a `customer:reveal` record with the request's address and named place and the declared place). "Seen
# before" for rule 4 is seen in an earlier view or an earlier reveal; `reveal` is the record of the reveal
# being judged (-1 for a view), left out. A place the act does not have is bound as NULL, matching nothing.
_MY_REVEALS = select(AuditEvent.seq).where(
    AuditEvent.actor_id == bindparam("user"), AuditEvent.action == str(AuditAction.CUSTOMER_REVEAL),
    AuditEvent.outcome == "allowed", AuditEvent.seq != bindparam("reveal"))
_REVEALED_FROM = (
    _MY_REVEALS.exists(),
    _MY_REVEALS.where(AuditEvent.client_addr == bindparam("address")).exists(),
    _MY_REVEALS.where(AuditEvent.named_place == bindparam("named")).exists(),
    _MY_REVEALS.where(func.lower(func.trim(AuditEvent.declared_place)) == bindparam("declared")).exists(),
)
_MY_VIEWS = select(DocumentView.id).where(MINE)
_VIEWED_FROM = (
    _MY_VIEWS.exists(),
    _MY_VIEWS.where(DocumentView.client_addr == bindparam("address")).exists(),
    _MY_VIEWS.where(DocumentView.named_place == bindparam("named")).exists(),
    _MY_VIEWS.where(func.lower(func.trim(DocumentView.declared_place)) == bindparam("declared")).exists(),
)
REVEALED_FROM = select(*_REVEALED_FROM)
VIEWED_OR_REVEALED_FROM = select(*_VIEWED_FROM, *_REVEALED_FROM)


def _places(address: str | None, named: str | None, declared: str | None) -> dict[str, str]:
    """An act's places by kind (`PLACE_KINDS`), "" for a place it does not have."""
    return dict(zip(PLACE_KINDS, (address or "", named or "", (declared or "").strip()), strict=True))


def _place_parameters(user_id: int, values: dict[str, str], reveal: int) -> dict[str, Any]:
    address, named, declared = (values[kind] for kind in PLACE_KINDS)
    return {"user": user_id, "reveal": reveal, "address": address or None, "named": named or None,
            "declared": declared.lower() or None}


def _seen(row: Any) -> tuple[bool, dict[str, bool]]:
    """(any earlier act, per kind of place: seen in one) from the four answers of `_VIEWED_FROM` or
    `_REVEALED_FROM`."""
    return bool(row[0]), dict(zip(PLACE_KINDS, (bool(found) for found in row[1:4]), strict=True))


def new_place(session: Session, cfg: AlertSettings, hours: WorkingHours, view: DocumentView,
              document: Document, facts: ViewFacts) -> Finding | None:
    """A place seen in none of the person's earlier views and reveals. Someone who neither opened a file
    nor revealed contacts before has no baseline, so their first views say nothing.

    The facts answer for the views; the reveals are asked only when a place of the view is new to them
    (or the person has no earlier view), which is when the rule is about to raise an alert: a view from
    a known place costs what it did before reveals counted."""
    if not cfg.new_place:
        return None
    values = _places(view.client_addr, view.named_place, view.declared_place)
    unseen = [kind for kind, value in values.items() if value and not facts.seen[kind]]
    if not unseen:
        return None
    any_reveal, revealed = _seen(session.execute(REVEALED_FROM, _place_parameters(view.user_id, values, -1)).one())
    if not (facts.any_earlier or any_reveal):
        return None
    places = [(kind, values[kind]) for kind in unseen if not revealed[kind]]
    if not places:
        return None
    novel = [f"{label}: {value}" for label, value in places]
    return Finding(
        "new_place", Severity.MEDIUM, day_key(hours, view.opened_at),
        "Files opened from a place not seen before for this person (" + "; ".join(novel) + ").",
        {**_view_evidence(view, document), "places": novel},
        {"id": "new_place", "places": places},
    )


def departing_view(session: Session, cfg: AlertSettings, hours: WorkingHours, view: DocumentView,
                   document: Document, facts: ViewFacts) -> Finding | None:
    user = view.user
    if not cfg.departing_access or user.status != UserStatus.DEPARTING or document.grade < 2:
        return None
    return Finding(
        "departing_access", Severity.HIGH, day_key(hours, view.opened_at),
        f"A grade-{document.grade} file was opened by a person on notice.",
        {**_view_evidence(view, document), "grades": [document.grade]},
        {"id": "departing_view", "grade": document.grade},
    )


VIEW_RULES: tuple[Callable[..., Finding | None], ...] = (
    many_customers, volume_spike, outside_hours, new_place, departing_view,
)


def evaluate_view(rt: Runtime, session: Session, view: DocumentView, facts: ViewFacts) -> list[Finding]:
    """The view rules on `view`; `facts`: what the unit claiming the view read with its claim."""
    cfg, hours = rt.settings.alerts, rt.settings.working_hours
    document = view.document
    findings = [f for rule in VIEW_RULES if (f := rule(session, cfg, hours, view, document, facts)) is not None]
    for finding in findings:
        raise_alert(rt, session, view.user, finding, now=view.opened_at)
    return findings


# -- rules on refusals, loan requests and quotas ---------------------------------------------------------


def probing(rt: Runtime, session: Session, user: User, now: datetime) -> Finding | None:
    """Refusals of the last hour that say someone tried to reach what they may not (a person, a place, a
    file, a quota), counted as the histories an approver weighs count them (`counted_refusals`): a refused
    sign-in is the throttle's business, and a slip in what was typed (`policy.SLIPS`) is corrected at once
    and never counts against anyone."""
    cfg, hours = rt.settings.alerts, rt.settings.working_hours
    if not cfg.refusals_per_hour:
        return None
    counted = (AuditEvent.actor_id == user.id, counted_refusals(), AuditEvent.ts > now - timedelta(hours=1))
    refusals = session.execute(
        select(AuditEvent.reason_code, AuditEvent.document_id).where(*counted)
        .order_by(AuditEvent.seq.desc()).limit(MAX_LISTED)
    ).all()
    count = session.scalar(select(func.count()).select_from(AuditEvent).where(*counted)) or 0
    if count < cfg.refusals_per_hour:
        return None
    return Finding(
        "probing", Severity.HIGH, hour_key(hours, now),
        f"{count} refused attempts within an hour (the limit is {cfg.refusals_per_hour}).",
        {"value": count, "threshold": cfg.refusals_per_hour,
         "codes": sorted({code for code, _doc in refusals if code}),
         "documents": sorted({doc for _code, doc in refusals if doc is not None})},
        {"id": "probing", "n": count, "limit": cfg.refusals_per_hour},
    )


def departing_request(rt: Runtime, loan: Loan) -> Finding | None:
    cfg, hours = rt.settings.alerts, rt.settings.working_hours
    user, document = loan.borrower, loan.document
    if not cfg.departing_access or user.status != UserStatus.DEPARTING or document.grade < 2:
        return None
    return Finding(
        "departing_access", Severity.HIGH, day_key(hours, loan.requested_at),
        f"A person on notice asked to borrow a grade-{document.grade} file.",
        {"documents": [document.id], "customers": [document.customer_id], "loans": [loan.id],
         "grades": [document.grade]},
        {"id": "departing_request", "grade": document.grade},
    )


def quotas_exhausted(rt: Runtime, session: Session, user: User, document: Document, now: datetime) -> Finding | None:
    cfg, hours = rt.settings.alerts, rt.settings.working_hours
    session.add(QuotaExhaustion(user_id=user.id, document_id=document.id, at=now))
    session.flush()
    if not cfg.quotas_per_day:
        return None
    since = _local_midnight(hours, now)
    documents = sorted(session.scalars(
        select(QuotaExhaustion.document_id).where(QuotaExhaustion.user_id == user.id,
                                                  QuotaExhaustion.at >= since).distinct()
    ))
    if len(documents) < cfg.quotas_per_day:
        return None
    return Finding(
        "quotas_exhausted", Severity.MEDIUM, day_key(hours, now),
        f"The view quotas of {len(documents)} documents were used up today.",
        {"documents": documents, "value": len(documents), "threshold": cfg.quotas_per_day},
        {"id": "quotas_exhausted", "n": len(documents)},
    )


# -- listeners -----------------------------------------------------------------------------------------


def guarded(session: Session, what: str, evaluate: Callable[[], object]) -> None:
    """Run a rule evaluation in a savepoint: a fault in the early warning is logged and undone, and the
    act it watches (already decided, already audited) goes on."""
    queued = len(webhook.pending(session))
    try:
        with session.begin_nested():
            evaluate()
    except Exception:
        del webhook.pending(session)[queued:]
        log.exception("early warning: evaluating %s failed", what)


@events.listen("view.opened")
def on_view_opened(session: Session, rt: Runtime, view: DocumentView, facts: ViewFacts, own_unit: bool = False,
                   **_: Any) -> None:
    if own_unit:
        # A fault rolls back the unit, which leaves the view to the maintenance sweep (and the unit's
        # owner redoes what else it held), so no savepoint is needed (two round trips fewer per view).
        evaluate_view(rt, session, view, facts)
    else:
        guarded(session, "a view", lambda: evaluate_view(rt, session, view, facts))


@events.listen("access.denied")
def on_access_denied(session: Session, rt: Runtime, user: User | None, action: str = "", code: str = "",
                     ctx: AccessContext | None = None, **_: Any) -> None:
    if user is None:
        return

    def evaluate() -> None:
        now = utcnow()
        finding = probing(rt, session, user, now)
        if finding is not None:
            raise_alert(rt, session, user, finding, now=now)

    guarded(session, "a refusal", evaluate)


@events.listen("loan.requested")
def on_loan_requested(session: Session, rt: Runtime, loan: Loan, **_: Any) -> None:
    def evaluate() -> None:
        finding = departing_request(rt, loan)
        if finding is not None:
            raise_alert(rt, session, loan.borrower, finding, now=loan.requested_at)

    guarded(session, "a loan request", evaluate)


@events.listen("quota.exhausted")
def on_quota_exhausted(session: Session, rt: Runtime, user: User, document: Document, **_: Any) -> None:
    def evaluate() -> None:
        now = utcnow()
        finding = quotas_exhausted(rt, session, user, document, now)
        if finding is not None:
            raise_alert(rt, session, user, finding, now=now)

    guarded(session, "a spent quota", evaluate)


@events.listen("departure.started")
def on_departure_started(session: Session, rt: Runtime, departure: Departure, user: User, customers: list[int],
                         loans: list[int], now: datetime, **_: Any) -> None:
    """A notice is always an alert (not a guarded rule): if it cannot be raised, the notice is not given."""
    params = {"id": "notice", "name": user.display_name, "day": departure.user.last_day.isoformat(),
              "customers": len(customers), "loans": len(loans)}
    raise_alert(rt, session, user, Finding(
        "notice", Severity.MEDIUM, f"departure-{departure.id}", _english(params),
        {"customers": customers, "loans": loans, "departure_id": departure.id}, params,
    ), now=now)


@events.listen("upload.drawing_misbehaved")
def on_drawing_misbehaved(session: Session, rt: Runtime, user: User, document: Document, version: DocumentVersion,
                          **_: Any) -> None:
    """Rule 10, always on, and not guarded (as a notice): a file whose drawing sent what a drawing never
    sends may be an attack on the server by the person who uploaded it; if the alert cannot be raised, the
    upload does not happen."""
    params = {"id": "crafted_file", "name": user.display_name, "title": document.title}
    raise_alert(rt, session, user, Finding(
        "crafted_file", Severity.HIGH, f"version-{version.id}", _english(params),
        {"documents": [document.id], "customers": [document.customer_id], "versions": [version.id]}, params,
    ))


# -- the customer directory ------------------------------------------------------------------------------


# The accesses a directory sweep counts: records opened, looked up or revealed. A list or a search shows a
# page of names, owners and segments at once (an account manager's own book, say): counting each would
# make every browse a sweep. They still count for a leaver's reach outside their book (`outside_book`).
SWEEP_KINDS = ("read", "lookup", "reveal")


def _distinct_customers(session: Session, user: User, since: datetime) -> int:
    return session.scalar(select(func.count(func.distinct(CustomerAccess.customer_id)))
                          .where(CustomerAccess.user_id == user.id, CustomerAccess.at >= since,
                                 CustomerAccess.kind.in_(SWEEP_KINDS))) or 0


def directory_sweep(rt: Runtime, session: Session, user: User, now: datetime) -> Finding | None:
    """Rule 8: more distinct customer records read or looked up than `directory_per_hour` within the
    last hour, or than `directory_per_day` within the last 24 hours: someone copying the directory. A
    rolling day, not the calendar's: counted from midnight, a sweep spread over the hours either side of
    it stayed under the limit twice."""
    cfg, hours = rt.settings.alerts, rt.settings.working_hours
    if cfg.directory_per_hour and (n := _distinct_customers(session, user, now - timedelta(hours=1))) \
            > cfg.directory_per_hour:
        return Finding("directory_sweep", Severity.HIGH, "h:" + hour_key(hours, now),
                       f"{user.display_name} read or looked up {n} different customers within an hour "
                       f"(more than {cfg.directory_per_hour}).", {"customers_in_hour": n},
                       {"id": "directory_hour", "name": user.display_name, "n": n, "limit": cfg.directory_per_hour})
    if cfg.directory_per_day and (n := _distinct_customers(session, user, now - timedelta(hours=24))) \
            > cfg.directory_per_day:
        return Finding("directory_sweep", Severity.HIGH, "d:" + day_key(hours, now),
                       f"{user.display_name} read or looked up {n} different customers within 24 hours "
                       f"(more than {cfg.directory_per_day}).", {"customers_today": n},
                       {"id": "directory_day", "name": user.display_name, "n": n, "limit": cfg.directory_per_day})
    return None


def outside_book(rt: Runtime, session: Session, user: User, customer_ids: list[int], now: datetime) -> Finding | None:
    """Rule 9: a person on notice reads or looks up a customer they neither own nor co-own."""
    if not rt.settings.alerts.outside_book or user.status != UserStatus.DEPARTING or not customer_ids:
        return None
    outside = sorted(set(customer_ids) - set(session.scalars(
        select(Customer.id).where(Customer.id.in_(customer_ids), or_(
            Customer.owner_id == user.id,
            exists().where(CustomerCoOwner.customer_id == Customer.id, CustomerCoOwner.user_id == user.id))))))
    if not outside:
        return None
    params = {"id": "outside_book", "name": user.display_name, "n": len(outside)}
    return Finding("outside_book", Severity.HIGH, day_key(rt.settings.working_hours, now), _english(params),
                   {"customers": outside}, params)


def reveal_new_place(rt: Runtime, session: Session, user: User, customer_ids: list[int], ctx: AccessContext | None,
                     audit_seq: int | None, now: datetime) -> Finding | None:
    """Rule 4 for contacts: a reveal from an address, named place or declared place seen in none of the
    person's earlier views and reveals. Contacts revealed from a place never seen (a home, another
    company's network) were seen by no rule, which judged views of files only. The person's first act
    has no baseline and says nothing, as with views."""
    cfg, hours = rt.settings.alerts, rt.settings.working_hours
    if not cfg.new_place or ctx is None:
        return None
    values = _places(ctx.client_addr, ctx.named_place, ctx.declared_place)
    if not any(values.values()):
        return None
    row = session.execute(VIEWED_OR_REVEALED_FROM,
                          _place_parameters(user.id, values, -1 if audit_seq is None else audit_seq)).one()
    any_view, viewed = _seen(row[:4])
    any_reveal, revealed = _seen(row[4:])
    if not (any_view or any_reveal):
        return None
    places = [(kind, value) for kind, value in values.items() if value and not viewed[kind] and not revealed[kind]]
    if not places:
        return None
    novel = [f"{label}: {value}" for label, value in places]
    return Finding(
        "new_place", Severity.MEDIUM, day_key(hours, now),
        "Contacts revealed from a place not seen before for this person (" + "; ".join(novel) + ").",
        {"customers": customer_ids, "places": novel},
        {"id": "new_place_reveal", "places": places},
    )


# The distinct customers whose contacts the person revealed since a moment and who are not in their own book
# now (neither owned nor co-owned; a customer of the pool has no owner, and is in nobody's book).
_REVEALED_OUTSIDE_BOOK = (
    select(CustomerAccess.customer_id).distinct()
    .join(Customer, Customer.id == CustomerAccess.customer_id)
    .where(CustomerAccess.user_id == bindparam("user"), CustomerAccess.kind == "reveal",
           CustomerAccess.at >= bindparam("since"), Customer.owner_id.is_distinct_from(bindparam("user")),
           not_(exists().where(CustomerCoOwner.customer_id == Customer.id,
                               CustomerCoOwner.user_id == bindparam("user"))))
    .order_by(CustomerAccess.customer_id)
)


def reveals_outside_book(rt: Runtime, session: Session, user: User, customer_ids: list[int],
                         now: datetime) -> Finding | None:
    """Rule 11: more than `reveals_outside_book` distinct customers outside the person's own book (as rule
    9 reads it: neither owned nor co-owned) whose contacts they revealed within the last
    `reveals_outside_book_days` days, counted when such a customer's contacts are revealed.

    Before notice nothing else saw it: someone preparing to leave looks up colleagues' customers one at a
    time and reveals a few a day, under any sweep and within the working hours. One such reveal is
    ordinary (covering for a colleague, a call put through); a run of them over days is the pattern, so a
    count over a rolling window, at medium severity. Reveals in one's own book are everyday work and are
    not counted. On notice rule 9 already raises a high alert on every such access: this one then stays
    quiet, unless rule 9 is switched off."""
    cfg, hours = rt.settings.alerts, rt.settings.working_hours
    limit, days = cfg.reveals_outside_book, cfg.reveals_outside_book_days
    if not limit or not customer_ids or (cfg.outside_book and user.status == UserStatus.DEPARTING):
        return None
    customers = list(session.scalars(_REVEALED_OUTSIDE_BOOK, {"user": user.id, "since": now - timedelta(days=days)}))
    # Counted on a reveal outside the book only: one's own book's reveals do not raise the window's alert again.
    if len(customers) <= limit or not set(customer_ids) & set(customers):
        return None
    params = {"id": "outside_book_reveals", "name": user.display_name, "n": len(customers), "days": days,
              "limit": limit}
    return Finding("outside_book_reveals", Severity.MEDIUM, day_key(hours, now), _english(params),
                   {"customers": customers, "value": len(customers), "threshold": limit, "days": days}, params)


def reveal_outside_hours(rt: Runtime, customer_ids: list[int], now: datetime) -> Finding | None:
    """Rule 3 for contacts: a reveal outside the working hours. The contacts are what a leaver copies; a
    night spent revealing them was seen by no rule, which judged views of files only."""
    cfg, hours = rt.settings.alerts, rt.settings.working_hours
    if not cfg.outside_hours or hours.contains(now):
        return None
    local = hours.local(now)
    return Finding(
        "outside_hours", Severity.MEDIUM, day_key(hours, now),
        f"Contacts revealed outside working hours ({local:%A %H:%M}).",
        {"customers": customer_ids, "times": [local.isoformat(timespec="minutes")]},
        {"id": "outside_hours_reveal", "weekday": local.weekday(), "time": f"{local:%H:%M}"},
    )


@events.listen("customer.accessed")
def on_customer_accessed(session: Session, rt: Runtime, user: User, customer_ids: list[int], now: datetime,
                         kind: str = "read", ctx: AccessContext | None = None, audit_seq: int | None = None,
                         **_: Any) -> None:
    """The directory rules on every access; on a reveal (`ctx`: its place, `audit_seq`: its audit record),
    the rules for contacts too, which run on the reveal's path only."""
    def evaluate() -> None:
        findings = [directory_sweep(rt, session, user, now), outside_book(rt, session, user, customer_ids, now)]
        if kind == "reveal":
            findings += [reveal_outside_hours(rt, customer_ids, now),
                         reveal_new_place(rt, session, user, customer_ids, ctx, audit_seq, now),
                         reveals_outside_book(rt, session, user, customer_ids, now)]
        for finding in findings:
            if finding is not None:
                raise_alert(rt, session, user, finding, now=now)

    guarded(session, "a customer read", evaluate)
