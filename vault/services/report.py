"""The departure report: what a person touched in the look-back window, as evidence.

For a leaver the window opens `lookback_days` before the notice began and runs to the report's making, so
the same pre-notice weeks are in it on the first day of the notice and long after the person has left.

It is built from the audit log (every act the person did that names a document or a customer, with
its time, address, place and stated reason) and completed from the loans and views tables (loan
states, what was actually delivered). The audit log is the source of "touched": a customer appears
here when an audit record of the person names it or one of its files, and so does every customer the
person owns or co-owns, or co-owned or owned at any time in the window (read from the records of
co-ownerships given and ended, and of owners changed and customers returned to the pool), touched or not,
since the company hands each of them over. A file appears when
the person touched it, and so does every file named in the evidence of an alert the report shows, which
the person may never have opened (a probing alert names the files refused). The report names the head of
the audit chain when it was made, and its own audit record, so a reader can check it against the log later.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, BinaryIO, TextIO

from flask_babel import get_translations, gettext, ngettext, pgettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from vault import policy
from vault.audit import rows as audit_rows
from vault.core import alert_wording
from vault.core.actions import Action
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.core.errors import ServiceError
from vault.core.languages import N_
from vault.models import (
    Alert,
    AuditEvent,
    Customer,
    CustomerAccess,
    CustomerCoOwner,
    Departure,
    Document,
    DocumentView,
    HandoverItem,
    Loan,
    User,
    ViewStatus,
    utcnow,
)
from vault.rendering import fonts
from vault.runtime import Runtime
from vault.services import pdf_layout
from vault.services.departures import departure_of, end_of_day, notice_began
from vault.services.upkeep import states_for

FORMATS = ("html", "csv", "pdf")
MAX_LISTED = 20  # distinct reasons or places shown per document

COMPILED = {AuditAction.DOCUMENT_UPLOAD, AuditAction.DOCUMENT_VERSION}
BORROWED = {AuditAction.LOAN_REQUEST}
VIEWED = {AuditAction.DOCUMENT_VIEW}
DOWNLOADED = {AuditAction.DOCUMENT_DOWNLOAD}


@dataclass
class DocumentLine:
    document_id: int
    title: str
    grade: int
    customer_id: int
    compiled: int = 0
    borrowed: int = 0
    viewed: int = 0
    downloaded: int = 0
    delivered: int = 0  # views whose content was actually sent (views table)
    seconds_open: int = 0  # time on the document in the viewer (heartbeats)
    pages_seen: int = 0  # the most pages seen in one view
    refused: int = 0
    other: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    places: list[str] = field(default_factory=list)
    declared_places: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    alerts: list[int] = field(default_factory=list)  # the report's alerts whose evidence names the file

    @property
    def events(self) -> int:
        return self.compiled + self.borrowed + self.viewed + self.downloaded + self.refused + self.other

    @property
    def alert_refs(self) -> str:
        """The alerts naming the file as the report's alerts table numbers them: "#3, #5"."""
        return ", ".join(f"#{alert_id}" for alert_id in self.alerts)


@dataclass
class CustomerLine:
    customer_id: int
    name: str
    segment: str
    owned: bool  # owned by the person (now, or until handed over in their departure)
    # Co-owned by the person and not owned: now, or at any time in the window (a co-ownership ended by
    # someone during the notice, or by their departure's last day).
    co_owned: bool = False
    # Owned by the person until this moment in the window, and not owned now: another owner was named, or the
    # customer went back to the pool. A relationship taken from a leaver in the weeks before the notice is one
    # the company hands over all the same.
    owned_until: datetime | None = None
    handover_to: str = ""
    handover_state: str = ""
    documents: int = 0
    events: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    read: int = 0  # times the person opened the customer's record
    looked_up: int = 0  # times a look-up of theirs returned the customer
    listed: int = 0  # times a list or a search of theirs showed the customer (its name, owner, segment)
    # Times they changed its contacts: the letter introducing a successor goes to the main contact's address
    # as the record holds it, so a leaver who put their own mailbox there first would hear instead.
    contacts_edited: int = 0
    revealed: int = 0  # times they revealed the customer's contacts and terms
    # For customers they owned: the record's completeness (0-100) at the end of the day of notice (or now
    # without a departure), and how many days it was overdue then: what the successor inherits.
    completeness: int | None = None
    overdue_days: int | None = None

    @property
    def formerly_owned(self) -> bool:
        return self.owned_until is not None


@dataclass
class LoanLine:
    loan_id: int
    document_id: int
    title: str
    customer: str
    kind: str
    status: str
    category: str
    reason: str
    declared_place: str
    requested_at: datetime
    approvals: int
    approvals_required: int


@dataclass
class Report:
    user: User
    departure: Departure | None
    generated_at: datetime
    window_start: datetime  # `lookback_days` before the notice for a leaver, else before `generated_at`
    lookback_days: int
    customers: list[CustomerLine]
    documents: list[DocumentLine]
    loans: list[LoanLine]
    alerts: list[Alert]
    events: int
    audit_head_seq: int
    audit_head_mac: str
    generated_by: str = "command line"
    audit_seq: int | None = None  # the report's own audit record
    customer_names: dict[int, str] = field(default_factory=dict)
    # Facts copied at build time, so the report renders without a database session.
    status: str = ""
    notice_date: date | None = None
    last_day: date | None = None
    successor: str = ""

    def customer_name(self, customer_id: int) -> str:
        return self.customer_names.get(customer_id, f"#{customer_id}")


def _widen(line: DocumentLine | CustomerLine, ts: datetime) -> None:
    if line.first_at is None or ts < line.first_at:
        line.first_at = ts
    if line.last_at is None or ts > line.last_at:
        line.last_at = ts


def _add_distinct(values: list[str], value: str | None) -> None:
    value = (value or "").strip()
    if value and value not in values and len(values) < MAX_LISTED:
        values.append(value)


def _place(event: AuditEvent) -> str:
    if event.named_place and event.client_addr:
        return f"{event.named_place} ({event.client_addr})"
    return event.named_place or event.client_addr or ""


def _changed(detail: str | None) -> list[str]:
    """The fields a `customer:edit` record names as changed."""
    try:
        changed = json.loads(detail or "{}").get("changed", [])
    except (ValueError, AttributeError):
        return []
    return changed if isinstance(changed, list) else []


def build_report(rt: Runtime, session: Session, user: User, *, lookback_days: int | None = None,
                 now: datetime | None = None) -> Report:
    """Collect the report (no policy, no audit: see `produce`)."""
    now = now or utcnow()
    lookback_days = lookback_days or rt.settings.departure.lookback_days
    departure = departure_of(session, user)
    # For a leaver the window reaches `lookback_days` back from the notice, not from today: the weeks
    # before the notice are when customers are pulled, and a report made at the end of a long notice period
    # (or after the person left) must not have let them slip out of it. The days since stay in it too.
    start = now - timedelta(days=lookback_days)
    if departure is not None:
        start = min(start, notice_began(rt.settings, departure) - timedelta(days=lookback_days))

    documents: dict[int, DocumentLine] = {}
    customer_events: dict[int, CustomerLine] = {}
    loose_customer_ids: set[int] = set()
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.actor_id == user.id, AuditEvent.ts >= start, AuditEvent.ts <= now,
                                 or_(AuditEvent.document_id.is_not(None), AuditEvent.customer_id.is_not(None)))
        .order_by(AuditEvent.seq).execution_options(yield_per=500)
    )
    document_cache: dict[int, Document | None] = {}
    count = 0
    for event in events:
        count += 1
        customer_id = event.customer_id
        if event.document_id is not None:
            if event.document_id not in document_cache:
                document_cache[event.document_id] = session.get(Document, event.document_id)
            document = document_cache[event.document_id]
            if document is not None:
                customer_id = document.customer_id
                line = documents.get(document.id)
                if line is None:
                    line = documents[document.id] = DocumentLine(document.id, document.title, document.grade,
                                                                 document.customer_id)
                if event.outcome == "denied":
                    line.refused += 1
                elif event.action in COMPILED:
                    line.compiled += 1
                elif event.action in BORROWED:
                    line.borrowed += 1
                elif event.action in VIEWED:
                    line.viewed += 1
                elif event.action in DOWNLOADED:
                    line.downloaded += 1
                else:
                    line.other += 1
                _widen(line, event.ts)
                _add_distinct(line.places, _place(event))
                _add_distinct(line.declared_places, event.declared_place)
                if event.outcome != "denied" and event.action in BORROWED | VIEWED | DOWNLOADED:
                    _add_distinct(line.reasons, event.reason_text)
        if customer_id is None:
            continue
        loose_customer_ids.add(customer_id)
        cline = customer_events.get(customer_id)
        if cline is None:
            cline = customer_events[customer_id] = CustomerLine(customer_id, "", "", False)
        cline.events += 1
        if event.action == AuditAction.CUSTOMER_EDIT and "contacts" in _changed(event.detail):
            cline.contacts_edited += 1
        _widen(cline, event.ts)

    delivered = session.execute(
        select(DocumentView.document_id, DocumentView.id, DocumentView.seconds_open, DocumentView.pages_seen).where(
            DocumentView.user_id == user.id, DocumentView.opened_at >= start, DocumentView.opened_at <= now,
            DocumentView.status.in_([ViewStatus.DELIVERED, ViewStatus.PARTIAL, ViewStatus.DELIVERING]))
    ).all()
    for document_id, _view_id, seconds, pages in delivered:
        if document_id in documents:
            line = documents[document_id]
            line.delivered += 1
            line.seconds_open += seconds or 0
            line.pages_seen = max(line.pages_seen, pages or 0)

    # Customers: those touched, those owned now, those handed over in the departure, and those co-owned,
    # touched or not: each is a relationship of the person's that someone must take on.
    owned_ids = set(session.scalars(select(Customer.id).where(Customer.owner_id == user.id)))
    items: dict[int, HandoverItem] = {}
    if departure is not None:
        items = {item.customer_id: item for item in departure.items}
        owned_ids |= set(items)
    co_owned_ids = co_owned_customers(session, user, departure, since=start, until=now) - owned_ids
    owned_until = {customer_id: ended for customer_id, ended
                   in formerly_owned_customers(session, user, since=start, until=now).items()
                   if customer_id not in owned_ids}
    for line in documents.values():
        loose_customer_ids.add(line.customer_id)
    # Records read and customers looked up, with or without a file opened: the directory is what a
    # leaver takes, so every customer they looked at is named.
    accessed: dict[tuple[int, str], int] = {}
    for customer_id, kind, n, first, last in session.execute(
        select(CustomerAccess.customer_id, CustomerAccess.kind, func.count(), func.min(CustomerAccess.at),
               func.max(CustomerAccess.at))
        .where(CustomerAccess.user_id == user.id, CustomerAccess.at >= start, CustomerAccess.at <= now)
        .group_by(CustomerAccess.customer_id, CustomerAccess.kind)
    ).all():
        accessed[(customer_id, kind)] = n
        loose_customer_ids.add(customer_id)
        cline = customer_events.get(customer_id)
        if cline is None:
            cline = customer_events[customer_id] = CustomerLine(customer_id, "", "", False)
        _widen(cline, first)
        _widen(cline, last)
    all_ids = loose_customer_ids | owned_ids | co_owned_ids | set(owned_until)
    customers = {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(all_ids)))} if all_ids else {}
    lines: list[CustomerLine] = []
    for customer_id in all_ids:
        customer = customers.get(customer_id)
        line = customer_events.get(customer_id) or CustomerLine(customer_id, "", "", False)
        line.name = customer.name if customer else f"#{customer_id}"
        line.segment = str(customer.segment) if customer else ""
        line.owned = customer_id in owned_ids
        line.co_owned = customer_id in co_owned_ids
        line.owned_until = owned_until.get(customer_id)
        line.documents = sum(1 for d in documents.values() if d.customer_id == customer_id)
        line.read = accessed.get((customer_id, "read"), 0)
        line.looked_up = accessed.get((customer_id, "lookup"), 0)
        line.listed = accessed.get((customer_id, "list"), 0) + accessed.get((customer_id, "search"), 0)
        line.revealed = accessed.get((customer_id, "reveal"), 0)
        item = items.get(customer_id)
        if item is not None:
            line.handover_to = item.to_user.display_name if item.to_user else ""
            line.handover_state = _handover_state(item)
        lines.append(line)
    lines.sort(key=lambda c: (c.name.casefold(), c.customer_id))
    notice_end = min(now, end_of_day(rt.settings, departure.notice_date)) if departure else None
    for customer_id, state in states_for(rt, session, sorted(owned_ids), at=notice_end).items():
        line = next(c for c in lines if c.customer_id == customer_id)
        line.completeness, line.overdue_days = state.completeness, state.overdue_days

    loans = [
        LoanLine(loan.id, loan.document_id, loan.document.title, loan.document.customer.name, str(loan.kind),
                 str(loan.status), str(loan.category), loan.reason, loan.declared_place,
                 loan.requested_at, len(loan.approver_ids), loan.approvals_required)
        for loan in session.scalars(select(Loan).where(Loan.borrower_id == user.id, Loan.requested_at >= start,
                                                       Loan.requested_at <= now).order_by(Loan.requested_at))
    ]
    alerts = list(session.scalars(select(Alert).where(Alert.user_id == user.id, Alert.last_seen_at >= start)
                                  .order_by(Alert.created_at)))
    # Files an alert shown here names, touched or not (a probing alert names the files refused, which no
    # record of a view names): listed, with the alerts naming them, so the reader sees what each alert is about.
    # Their customers are named beside them, but listed as customers only when touched, owned or co-owned.
    for document_id, alert_ids in alert_documents(alerts).items():
        line = documents.get(document_id)
        if line is None:
            document = session.get(Document, document_id)
            if document is None:
                continue
            line = documents[document_id] = DocumentLine(document.id, document.title, document.grade,
                                                         document.customer_id)
            if document.customer_id not in customers:
                customers[document.customer_id] = document.customer
        line.alerts = alert_ids
    head_seq, head_mac = audit_rows.head_state(session)
    names = {cid: c.name for cid, c in customers.items()}
    return Report(
        user=user, departure=departure, generated_at=now, window_start=start, lookback_days=lookback_days,
        customers=lines, documents=sorted(documents.values(), key=lambda d: (names.get(d.customer_id, ""), d.title)),
        loans=loans, alerts=alerts, events=count, audit_head_seq=head_seq,
        audit_head_mac=head_mac, customer_names=names, status=str(user.status),
        notice_date=departure.notice_date if departure else None, last_day=user.last_day,
        successor=departure.successor.display_name if departure and departure.successor else "",
    )


# The report's words for a handover item's state (`HandoverItem.state`); "confirmed" adds the contact's day.
_HANDOVER_WORDS = {"pooled": "returned to the pool", "unassigned": "to reassign", "waived": "confirmation waived",
                   "pending": "awaiting confirmation", "handed_over": "handed over"}


def _handover_state(item: HandoverItem) -> str:
    if item.state == "confirmed":
        return f"confirmed (contact {item.contact_date.isoformat() if item.contact_date else '?'})"
    return _HANDOVER_WORDS[item.state]


# The records of a co-ownership given or ended: the customer in `customer_id`, the person in `subject_user_id`.
CO_OWNERSHIP_CHANGES = (AuditAction.CUSTOMER_CO_OWNER_ADD, AuditAction.CUSTOMER_CO_OWNER_REMOVE)
# The records that end someone's ownership, each with the key of its detail that names the previous owner (the
# subject is the new one): a change of owner (an assignment, a rotation) "from"; a departure's handover, and
# a withdrawn departure's giving back, "from_user_id". A customer released to the pool, returned to it in a
# departure, or whose claim lapsed names the previous owner (the claim's holder) as its subject.
OWNER_CHANGES = {AuditAction.CUSTOMER_OWNER: "from", AuditAction.CUSTOMER_HANDOVER: "from_user_id"}
RETURNS_TO_POOL = (AuditAction.POOL_RELEASE, AuditAction.POOL_RETURN, AuditAction.POOL_LAPSE)


def _relationships_in_window(session: Session, names_person: Any, *, since: datetime, until: datetime,
                             keep: Callable[[str, int | None, str], bool] | None = None) -> dict[int, datetime]:
    """The customers that allowed audit records from `since` to `until` matching `names_person` name, each with
    the latest such record's time: the one rule by which the report reads a relationship of the person's back
    from the log once the tables no longer hold it. `keep(action, subject, detail)` decides for records whose
    condition can only narrow the search (a detail is text)."""
    found: dict[int, datetime] = {}
    for customer_id, action, subject, detail, ts in session.execute(
            select(AuditEvent.customer_id, AuditEvent.action, AuditEvent.subject_user_id, AuditEvent.detail,
                   AuditEvent.ts)
            .where(names_person, AuditEvent.outcome == "allowed", AuditEvent.ts >= since, AuditEvent.ts <= until)):
        if customer_id is None or (keep is not None and not keep(action, subject, detail)):
            continue
        if customer_id not in found or ts > found[customer_id]:
            found[customer_id] = ts
    return found


def co_owned_customers(session: Session, user: User, departure: Departure | None, *, since: datetime,
                       until: datetime) -> set[int]:
    """The customers `user` co-owned at any time from `since` to `until`: those they co-own now, those a
    co-ownership given or ended in that time names (`customer:co_owner_add` / `_remove`: a co-owner taken
    off during the notice, by their manager or an approver, shared the relationship all the same), and those
    their departure's last day took them off (`departure:offboard` records them), so a report made after
    the person left, or after someone took them off a customer, still lists every relationship they shared."""
    named = set(session.scalars(select(CustomerCoOwner.customer_id).where(CustomerCoOwner.user_id == user.id)))
    named |= set(_relationships_in_window(
        session, (AuditEvent.action.in_(CO_OWNERSHIP_CHANGES)) & (AuditEvent.subject_user_id == user.id),
        since=since, until=until))
    if departure is not None and departure.offboarded_at is not None:
        for detail in session.scalars(select(AuditEvent.detail).where(
                AuditEvent.action == AuditAction.DEPARTURE_OFFBOARD, AuditEvent.subject_user_id == user.id,
                AuditEvent.outcome == "allowed")):
            recorded = json.loads(detail or "{}")
            if recorded.get("departure_id") == departure.id:
                named |= {i for i in recorded.get("co_ownerships_ended", []) if _is_id(i)}
    return named


def formerly_owned_customers(session: Session, user: User, *, since: datetime, until: datetime) -> dict[int, datetime]:
    """The customers whose ownership by `user` ended from `since` to `until`, each with when it last did: a
    customer given to someone else (`customer:owner` naming them as "from", or a departure's handover, of a
    notice since withdrawn, naming them as "from_user_id") or sent back to the pool. Before,
    a customer reassigned in the weeks before the notice left the report unless the person had touched it,
    though it was theirs in the very window the report looks at. The caller leaves out those owned again."""
    # The canonical detail (`vault.audit.chain.canonical_detail`) writes `"from":7` with no space; the text
    # match only narrows the search, the parsed detail decides.
    named_from = or_(*(AuditEvent.detail.contains(f'"{key}":{user.id}{end}', autoescape=True)
                       for key in set(OWNER_CHANGES.values()) for end in (",", "}")))
    names_person = or_(AuditEvent.action.in_(list(OWNER_CHANGES)) & named_from,
                       AuditEvent.action.in_(RETURNS_TO_POOL) & (AuditEvent.subject_user_id == user.id))
    return _relationships_in_window(
        session, names_person, since=since, until=until,
        keep=lambda action, subject, detail: _previous_owner(action, subject, detail) == user.id)


def _previous_owner(action: str, subject: int | None, detail: str) -> int | None:
    """Whose ownership an ownership-ending record ended (see `OWNER_CHANGES`, `RETURNS_TO_POOL`)."""
    if action in RETURNS_TO_POOL:
        return subject
    try:
        previous = json.loads(detail or "{}").get(OWNER_CHANGES.get(action, "from"))
    except (ValueError, AttributeError):
        return None
    return previous if _is_id(previous) else None


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def alert_documents(alerts: list[Alert]) -> dict[int, list[int]]:
    """The files the alerts' evidence names, each with the ids of the alerts naming it: the report shows these
    alerts, so it lists their files and its record names them, though the person may have opened none."""
    named: dict[int, list[int]] = {}
    for alert in alerts:
        listed = alert.evidence.get("documents", [])
        if isinstance(listed, list):
            for document_id in listed:
                if _is_id(document_id) and alert.id not in named.setdefault(document_id, []):
                    named[document_id].append(alert.id)
    return named


def alert_customers(alerts: list[Alert]) -> set[int]:
    """The customers the alerts' evidence names (a sweep's, a leaver's reads outside the book): the report
    shows these alerts, so its record names their customers too, though the person may have opened none."""
    named: set[int] = set()
    for alert in alerts:
        listed = alert.evidence.get("customers", [])
        if isinstance(listed, list):
            named |= {i for i in listed if _is_id(i)}
    return named


def produce(rt: Runtime, session: Session, actor: User | None, user: User, *, fmt: str,
            lookback_days: int | None = None, ctx: AccessContext) -> Report:
    """Build the report for `actor` (None: the operator at the command line) and audit its production.

    Raises:
        policy.Denied: the role gate (admins, auditors) or `own_departure`.
        ServiceError: an unknown format or a look-back outside 1-3660 days.
    """
    if fmt not in FORMATS:
        raise ServiceError("invalid_format", _l("The format must be one of %(value)s.", value=", ".join(FORMATS)))
    if lookback_days is not None and not 1 <= lookback_days <= 3660:
        raise ServiceError("invalid_lookback", _l("The look-back window is 1 to 3660 days."))
    if actor is not None:
        policy.require(actor, Action.DEPARTURE_REPORT, user, audit={"subject_user_id": user.id})
    report = build_report(rt, session, user, lookback_days=lookback_days)
    # The report names every customer and file of the leaver's: the record names them too (by id), as a
    # departure's page records its customers, so "who read this customer" finds the report's readers.
    named_documents = ({line.document_id for line in report.documents} | {line.document_id for line in report.loans}
                       | set(alert_documents(report.alerts)))
    named_customers = ({line.customer_id for line in report.customers} | {line.customer_id for line in report.documents}
                       | set(report.customer_names) | alert_customers(report.alerts))
    event = rt.audit.record(
        session, action=AuditAction.DEPARTURE_REPORT, actor=actor, ctx=ctx, subject_user_id=user.id,
        detail={"format": fmt, "lookback_days": report.lookback_days, "customers": len(report.customers),
                "documents": len(report.documents), "events": report.events,
                "customer_ids": sorted(named_customers), "document_ids": sorted(named_documents),
                "audit_head_seq": report.audit_head_seq, "window_start": report.window_start.isoformat()},
    )
    report.audit_seq = event.seq
    report.generated_by = actor.display_name if actor else "command line"
    return report


# -- CSV -----------------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "kind", "customer_id", "customer", "segment", "owned", "handover_to", "handover_state", "read", "looked_up",
    "listed", "revealed", "contacts_edited", "completeness", "overdue_days", "document_id",
    "document", "grade", "files", "records", "compiled", "borrowed", "viewed", "downloaded", "delivered",
    "seconds_open", "pages_seen", "refused", "other", "first_at", "last_at", "places", "declared_places",
    "reasons", "loan_id", "status",
    "alert_id", "rule", "severity", "summary", "co_owned", "named_by_alerts", "formerly_owned", "owned_until",
)


def _cell(value: Any) -> str:
    """A CSV cell a spreadsheet will not run: text starting like a formula gets a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = " | ".join(value) if isinstance(value, list) else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def csv_rows(report: Report) -> Iterable[dict[str, Any]]:
    for c in report.customers:
        yield {"kind": "customer", "customer_id": c.customer_id, "customer": c.name, "segment": c.segment,
               "owned": c.owned, "co_owned": c.co_owned, "formerly_owned": c.formerly_owned,
               "owned_until": c.owned_until, "handover_to": c.handover_to,
               "handover_state": c.handover_state,
               "read": c.read, "looked_up": c.looked_up, "listed": c.listed, "revealed": c.revealed,
               "contacts_edited": c.contacts_edited,
               "completeness": c.completeness,
               "overdue_days": c.overdue_days, "files": c.documents, "records": c.events,
               "first_at": c.first_at, "last_at": c.last_at}
    for d in report.documents:
        yield {"kind": "document", "customer_id": d.customer_id, "customer": report.customer_name(d.customer_id),
               "document_id": d.document_id, "document": d.title, "grade": d.grade, "compiled": d.compiled,
               "borrowed": d.borrowed, "viewed": d.viewed, "downloaded": d.downloaded, "delivered": d.delivered,
               "seconds_open": d.seconds_open, "pages_seen": d.pages_seen, "refused": d.refused, "other": d.other,
               "records": d.events, "first_at": d.first_at,
               "last_at": d.last_at,
               "places": d.places, "declared_places": d.declared_places, "reasons": d.reasons,
               "named_by_alerts": [str(alert_id) for alert_id in d.alerts]}
    for loan in report.loans:
        yield {"kind": "loan", "customer": loan.customer, "document_id": loan.document_id, "document": loan.title,
               "loan_id": loan.loan_id, "status": loan.status, "first_at": loan.requested_at,
               "declared_places": [loan.declared_place], "reasons": [loan.reason]}
    for alert in report.alerts:
        yield {"kind": "alert", "alert_id": alert.id, "rule": alert.rule, "severity": str(alert.severity),
               "status": str(alert.status), "summary": alert.summary, "first_at": alert.created_at,
               "last_at": alert.last_seen_at}


def write_csv(report: Report, out: TextIO) -> None:
    """One table, a `kind` column telling customer, document, loan and alert rows apart."""
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="raise")
    writer.writeheader()
    for row in csv_rows(report):
        writer.writerow({name: _cell(row.get(name)) for name in CSV_COLUMNS})


def csv_bytes(report: Report) -> bytes:
    text = io.StringIO()
    write_csv(report, text)
    return text.getvalue().encode("utf-8-sig")  # the BOM makes spreadsheets read UTF-8


# -- PDF -----------------------------------------------------------------------------------------------
# Words are in the language of the request that asks for the report (English at the command line);
# names, places and reasons are drawn with fonts that cover Latin, Cyrillic and CJK (vault.rendering.fonts),
# and every font is embedded, so the report reads the same on any machine.


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


def _draw_runs(canvas: Any, x: float, y: float, text: str, size: float, *, right: bool = False) -> None:
    """Draw `text` on the page canvas one font run at a time (reportlab's canvas has no font fallback)."""
    runs: list[tuple[str, str]] = []
    for char in text:
        face = fonts.font_for(char)
        if runs and runs[-1][0] == face:
            runs[-1] = (face, runs[-1][1] + char)
        else:
            runs.append((face, char))
    if right:
        x -= sum(canvas.stringWidth(chunk, face, size) for face, chunk in runs)
    for face, chunk in runs:
        canvas.setFont(face, size)
        canvas.drawString(x, y, chunk)
        x += canvas.stringWidth(chunk, face, size)


# Stored codes shown in the reader's words (the msgids are the pages' own labels for them).
_LOAN_STATUS = {"requested": "waiting for approval", "approved": "approved", "active": "active",
                "rejected": "rejected", "returned": "returned", "expired": "expired", "revoked": "revoked"}
_SEGMENT = {"vip": "VIP", "key": "Key account", "ordinary": "Ordinary"}
_LOAN_KIND = {"loan": "loan", "extension": N_("more views")}


def _word(table: dict[str, str], code: str) -> str:
    return gettext(table[code]) if code in table else code


# An alert's severity and state in the pages' words.
_ALERT_WORDS: dict[str, Callable[[], str]] = {
    "high": lambda: pgettext("severity", "high"), "medium": lambda: pgettext("severity", "medium"),
    "low": lambda: pgettext("severity", "low"), "open": lambda: pgettext("alert state", "open"),
    "acknowledged": lambda: pgettext("alert state", "acknowledged"),
    "resolved": lambda: pgettext("alert state", "resolved"),
}


def _alert_word(code: object) -> str:
    words = _ALERT_WORDS.get(str(code))
    return words() if words is not None else str(code)


def person_status(code: str) -> str:
    """A person's state in the reader's words (the same words as the pages' labels)."""
    return {"active": pgettext("person status", "active"), "departing": pgettext("person status", "on notice"),
            "departed": pgettext("person status", "departed")}.get(code, code)


def ownership_words(line: CustomerLine, when: Callable[[datetime | None], str]) -> str:
    """The "Owned" cell of a customer not owned now, in the reader's words (page and PDF alike): owned until
    a moment of the window, co-owned, or both; `when` writes the moment as the medium does."""
    words = []
    if line.owned_until is not None:
        words.append(gettext("formerly, until %(when)s", when=when(line.owned_until)))
    if line.co_owned:
        words.append(gettext("co-owner"))
    return "; ".join(words)


def handover_label(state: str) -> str:
    """The handover state in the reader's language (the CSV keeps the stable English words)."""
    if state.startswith("confirmed (contact "):
        return gettext("confirmed (contact %(date)s)", date=state[len("confirmed (contact "):-1])
    return {"to reassign": gettext("to reassign"), "confirmation waived": gettext("confirmation waived"),
            "awaiting confirmation": gettext("awaiting confirmation"),
            "handed over": gettext("handed over")}.get(state, state)


def write_pdf(report: Report, out: BinaryIO, rule_titles: Mapping[str, str] | None = None) -> None:
    """A landscape A4 document: the facts, the customers, the documents, the loans and the alerts."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    fonts.register_fonts()
    styles = getSampleStyleSheet()
    body = styles["BodyText"].clone("body", fontName=fonts.SANS)
    heading = styles["Heading2"].clone("heading", fontName=f"{fonts.SANS}-Bold")
    title_style = styles["Title"].clone("title", fontName=f"{fonts.SANS}-Bold")
    small = body.clone("small", fontSize=7.5, leading=9)
    head = small.clone("head", fontName=f"{fonts.SANS}-Bold")

    def p(text: Any, style: Any = small) -> Paragraph:
        return Paragraph(fonts.markup(str(text if text is not None else "")), style)

    def table(header: list[str], rows: list[list[Any]], widths: list[float]) -> Table:
        data = [[p(h, head) for h in header]] + [[p(cell) for cell in row] for row in rows]
        # Wide enough for every header word: a header split mid-word reads as a typo.
        columns = pdf_layout.fit_widths(header, [w * mm for w in widths], head.fontName, head.fontSize,
                                        total=landscape(A4)[0] - 24 * mm)
        result = Table(data, colWidths=columns, repeatRows=1)
        result.setStyle(TableStyle([
            ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e7ebf2")),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("FONTNAME", (0, 0), (-1, -1), fonts.SANS),  # the cells' own face (the text is in Paragraphs)
        ]))
        return result

    user = report.user
    yes = gettext("yes")
    title = gettext("Departure report: %(name)s (%(login)s)", name=user.display_name, login=user.username)
    footer = gettext("%(title)s · generated %(when)s · audit chain head #%(seq)s", title=title,
                     when=_when(report.generated_at), seq=report.audit_head_seq)
    if report.audit_seq:
        footer += " · " + gettext("report recorded as audit event #%(seq)s", seq=report.audit_seq)

    def on_page(canvas: Any, document: Any) -> None:
        canvas.saveState()
        _draw_runs(canvas, 12 * mm, 7 * mm, footer, 7)  # "page x of y" is drawn by the canvas, once y is known
        canvas.restoreState()

    story: list[Any] = [p(title, title_style)]
    status = gettext("Status: %(status)s", status=person_status(report.status))
    if report.notice_date:
        status += "; " + gettext("notice given %(date)s", date=report.notice_date.isoformat())
    facts = [
        status,
        gettext("Last working day: %(date)s", date=report.last_day.isoformat() if report.last_day else "-"),
        gettext("Successor: %(name)s", name=report.successor or "-"),
        (ngettext("Look-back window: %(num)d day before the notice, from %(start)s to %(end)s",
                  "Look-back window: %(num)d days before the notice, from %(start)s to %(end)s",
                  report.lookback_days, start=_when(report.window_start), end=_when(report.generated_at))
         if report.departure is not None else
         ngettext("Look-back window: %(num)d day, from %(start)s to %(end)s",
                  "Look-back window: %(num)d days, from %(start)s to %(end)s", report.lookback_days,
                  start=_when(report.window_start), end=_when(report.generated_at))),
        gettext("Audit records of the person naming a customer or file: %(n)s", n=report.events),
        gettext("Audit chain head when generated: #%(seq)s (MAC %(mac)s…)", seq=report.audit_head_seq,
                mac=report.audit_head_mac[:16]),
        gettext("Generated by: %(name)s", name=gettext("command line") if report.generated_by == "command line"
                else report.generated_by),
    ]
    story += [p(line, body) for line in facts]
    story.append(Spacer(1, 4 * mm))

    story.append(p(gettext("Customers (%(n)s)", n=len(report.customers)), heading))
    story.append(table(
        [gettext("Customer"), gettext("Segment"), gettext("Owned"), gettext("Handed to"), gettext("Handover"),
         gettext("Read"), gettext("Looked up"), gettext("Listed"), gettext("Reveals"), gettext("Complete"),
         gettext("Files"),
         gettext("Records"), gettext("First"), gettext("Last")],
        [[c.name + (" (" + ngettext("%(num)d edit of its contacts", "%(num)d edits of its contacts",
                                    c.contacts_edited) + ")" if c.contacts_edited else ""),
          _word(_SEGMENT, c.segment), yes if c.owned else ownership_words(c, _when), c.handover_to,
          handover_label(c.handover_state),
          c.read, c.looked_up, c.listed, c.revealed, "" if c.completeness is None else f"{c.completeness}%"
          + (", " + ngettext("%(num)d day late", "%(num)d days late", c.overdue_days) if c.overdue_days else ""),
          c.documents, c.events, _when(c.first_at), _when(c.last_at)] for c in report.customers],
        [45, 14, 24, 22, 22, 10, 13, 11, 12, 18, 10, 12, 20, 20],
    ))
    story.append(p(gettext("Documents (%(n)s)", n=len(report.documents)), heading))
    declared = gettext("declared: %(place)s", place="%s")
    story.append(table(
        [gettext("Customer"), gettext("Document"), gettext("Gr."), gettext("Comp."), gettext("Loans"),
         gettext("Views"), gettext("Downl."), gettext("Deliv."), gettext("Refused"), gettext("First"),
         gettext("Last"), gettext("Places"), gettext("Reasons")],
        [[report.customer_name(d.customer_id),
          d.title + (" (" + ngettext("named by alert %(ids)s", "named by alerts %(ids)s", len(d.alerts),
                                     ids=d.alert_refs) + ")" if d.alerts else ""),
          d.grade, d.compiled, d.borrowed, d.viewed, d.downloaded,
          d.delivered, d.refused, _when(d.first_at), _when(d.last_at),
          "; ".join(d.places + [declared % x for x in d.declared_places]), "; ".join(d.reasons)]
         for d in report.documents],
        [30, 32, 8, 10, 10, 10, 11, 10, 12, 24, 24, 43, 49],
    ))
    story.append(p(gettext("Loans (%(n)s)", n=len(report.loans)), heading))
    story.append(table(
        [gettext("Loan"), gettext("Customer"), gettext("Document"), gettext("Kind"), gettext("Status"),
         gettext("Approvals"), gettext("Requested"), gettext("Place"), gettext("Reason")],
        [[loan.loan_id, loan.customer, loan.title, _word(_LOAN_KIND, loan.kind), _word(_LOAN_STATUS, loan.status),
          f"{loan.approvals}/{loan.approvals_required}", _when(loan.requested_at), loan.declared_place, loan.reason]
         for loan in report.loans],
        [12, 38, 40, 16, 18, 18, 30, 35, 66],
    ))
    titles = rule_titles or {}
    story.append(p(gettext("Alerts (%(n)s)", n=len(report.alerts)), heading))
    story.append(table(
        [gettext("Alert"), gettext("Rule"), gettext("Severity"), gettext("Status"), gettext("Raised"),
         gettext("Last seen"), gettext("Times"), gettext("Summary")],
        [[a.id, gettext(titles[a.rule]) if a.rule in titles else a.rule, _alert_word(a.severity),
          _alert_word(a.status), _when(a.created_at),
          _when(a.last_seen_at), a.occurrences,
          alert_wording.sentence(a.summary, a.params, get_translations())] for a in report.alerts],
        [12, 28, 16, 22, 30, 30, 12, 123],
    ))
    doc = SimpleDocTemplate(out, pagesize=landscape(A4), leftMargin=12 * mm, rightMargin=12 * mm,
                            topMargin=12 * mm, bottomMargin=14 * mm, title=title, author="vault",
                            subject=gettext("Departure report"),
                            # The canvas starts in our own face, so no unembedded standard font is named.
                            initialFontName=fonts.SANS)
    page_label = gettext("page %(n)s of %(total)s")  # the format, filled in by the canvas

    class Numbered(pdf_layout.NumberedCanvas):
        label = page_label

        def draw_label(self, text: str) -> None:  # in the report's embedded faces, CJK included
            _draw_runs(self, self._pagesize[0] - self.margin, self.baseline, text, 7, right=True)

    doc.build(story, onFirstPage=on_page, onLaterPages=on_page, canvasmaker=Numbered)


def pdf_bytes(report: Report, rule_titles: Mapping[str, str] | None = None) -> bytes:
    """The report as a PDF; `rule_titles` names the alerts' rules (the alerts layer keeps them)."""
    out = io.BytesIO()
    write_pdf(report, out, rule_titles)
    return out.getvalue()
