"""The demo company's work in progress: something waiting on every desk.

A company with people, customers and files but no activity shows empty desks: the approver has no
request, the custodian nothing to release, nobody holds a loan, nobody is leaving and the alerts desk is
empty, so someone trying the product would have to play three roles before seeing its main flows. This
module leaves one piece of work at each step, made the way the product makes it (the loan, departure
and customer services called as the pages call them, by the people whose acts they are), so the audit
records, quotas, notifications and alerts are the ones the product writes:

- Eva's request for a grade-2 dossier, waiting for an approver (Mia, Leo);
- Lena's grade-3 loan, approved, waiting for its custodian's release (Tom);
- Raj's grade-3 loan of a file Nora compiled, approved and released (by Ines), with every view left;
- Sam on notice, his last day weeks away, his customers handed to Eva;
- the alerts the early warning raises from that: the notice itself, and Sam's look-up of a customer
  outside his book.

Every piece is found first by something stable (a loan by its borrower and reason, the departure by its
person, the look-up's alert by its person and rule), and each is made in a transaction of its own, so a
second run adds nothing and an interrupted one finishes what is missing. Dates count from now.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault import policy
from vault.core.context import AccessContext
from vault.models import Alert, AlertStatus, Customer, Document, Loan, LoanStatus, UserStatus
from vault.runtime import Runtime
from vault.services import accounts, customers, departures, loans


@dataclass(frozen=True)
class DemoLoan:
    """One loan of the demo and how far it has gone (`stage`: requested, approved or active)."""

    borrower: str
    customer: str
    title: str
    reason: str  # what finds the loan again on the next run
    category: str
    place: str
    days: int
    stage: str
    approvers: tuple[str, ...] = ()  # in the order they decide, as many as the grade needs

    @property
    def file(self) -> tuple[str, str]:
        return (self.customer, self.title)


# Separation of duties holds on each: the borrower works the customer (owner or co-owner), and neither
# the approvers nor the custodian who releases compiled the file or borrow it.
WAITING_FOR_APPROVAL = DemoLoan(
    "eva", "Castellano Foods S.L.", "Customer dossier", "Prepare the annual price review with the buyer",
    "visit_preparation", "Head office, sales floor", 5, "requested")
WAITING_FOR_RELEASE = DemoLoan(
    "lena", "Sable Ridge Hotels", "Customer dossier", "Check the credit terms before the contract renewal meeting",
    "contract_renewal", "Head office, meeting room 2", 5, "approved", ("leo", "mia", "xiaoyan", "olga"))
ACTIVE = DemoLoan(
    "raj", "Nordlicht Logistik GmbH", "Customer dossier", "Prepare the quarterly business review on site",
    "visit_preparation", "Head office, sales floor", 5, "active", ("mia", "leo", "xiaoyan", "olga"))
LOANS = (WAITING_FOR_APPROVAL, WAITING_FOR_RELEASE, ACTIVE)
# The files the work opens: seeded even when the demo leaves the other files out (`demo.seed(files=False)`).
FILES = frozenset(loan.file for loan in LOANS)

# Sam leaves: four of his six customers are key accounts (a VIP and three with grade-2 files), so the
# departure report, the handover and its confirmations have something to show. Eva, on his team, takes over.
LEAVER = "sam"
SUCCESSOR = "eva"
LAST_DAY_IN = timedelta(days=18)
NOTICE_NOTE = "Leaving for a position abroad; Eva takes over his customers."
# On notice, Sam looks up a customer he neither owns nor co-owns (Lena's private bank): the early
# warning's rule 9 raises a high alert for it.
OUTSIDE_BOOK_QUERY = "Aurelia"
OUTSIDE_BOOK_RULE = "outside_book"


@dataclass
class WorkSummary:
    """What exists of the work in progress after a run, and what this run added (by kind)."""

    existing: dict[str, int] = field(default_factory=dict)
    created: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, *, new: bool) -> None:
        self.existing[kind] = self.existing.get(kind, 0) + 1
        if new:
            self.created[kind] = self.created.get(kind, 0) + 1


def acting_here(rt: Runtime, user_agent: str = "vault demo") -> AccessContext:
    """The place the demo's people act from: this computer, named as the settings name it (loopback is the
    demo's trusted place), as if they had clicked through the pages on it."""
    here = ipaddress.ip_address("127.0.0.1")
    named = next((place.name for place in rt.settings.trusted_places for net in place.networks
                  if net.version == 4 and here in net), None)
    return AccessContext(client_addr=str(here), named_place=named, user_agent=user_agent)


def last_working_day(rt: Runtime) -> date:
    """The leaver's last day: `LAST_DAY_IN` from today in the company's timezone, moved on to a Monday if
    it falls on a weekend (nobody's last working day is a Sunday)."""
    day = departures.today(rt.settings) + LAST_DAY_IN
    return day + timedelta(days=max(0, 7 - day.weekday())) if day.weekday() >= 5 else day


def _document(session: Session, spec: DemoLoan) -> Document | None:
    return session.scalar(select(Document).join(Customer, Customer.id == Document.customer_id)
                          .where(Customer.name == spec.customer, Document.title == spec.title))


def _existing_loan(session: Session, spec: DemoLoan) -> Loan | None:
    borrower = accounts.get_user(session, spec.borrower)
    return session.scalar(select(Loan).where(Loan.borrower_id == borrower.id, Loan.reason == spec.reason)
                          .order_by(Loan.id).limit(1))


def seed_loan(rt: Runtime, session: Session, spec: DemoLoan, ctx: AccessContext) -> Loan | None:
    """Request the loan as its borrower, approve it with as many approvers as its grade needs, and have
    the file's custodian release it, up to `spec.stage`. None when the file is missing.

    Raises:
        policy.Denied: the product refuses a step (someone changed the demo's people or files since).
    """
    document = _document(session, spec)
    if document is None:
        return None
    borrower = accounts.get_user(session, spec.borrower)
    loan = loans.request_loan(rt, session, borrower, document, reason=spec.reason, category=spec.category,
                              place=spec.place, days=spec.days, ctx=ctx)
    if spec.stage == "requested":
        return loan
    for name in spec.approvers:
        if loan.status != LoanStatus.REQUESTED:
            break
        loans.approve(rt, session, accounts.get_user(session, name), loan, comment="", ctx=ctx)
    if spec.stage == "active" and loan.status == LoanStatus.APPROVED:
        custodian = document.custodian
        if custodian is None:
            raise policy.Denied(policy.deny("invalid_custodian"))
        loans.release(rt, session, custodian, loan, ctx=ctx)
    return loan


def seed_work(rt: Runtime, *, echo: Callable[[str], None] = lambda _m: None) -> WorkSummary:
    """Add what is missing of the work in progress; one line a kind of work on `echo`."""
    ctx = acting_here(rt)
    summary = WorkSummary()
    with rt.db.session() as session:
        alerts_before = session.scalar(select(func.count()).select_from(Alert)) or 0
    labels = {WAITING_FOR_APPROVAL: "loan request waiting for an approver",
              WAITING_FOR_RELEASE: "grade-3 loan waiting for a custodian's release",
              ACTIVE: "active loan"}
    for spec in LOANS:
        with rt.db.session() as session:
            loan = _existing_loan(session, spec)
            new = loan is None
            if loan is None:
                loan = seed_loan(rt, session, spec, ctx)
            if loan is None:
                echo(f"{labels[spec]}: not seeded, {spec.customer}'s {spec.title} is missing")
                continue
            summary.count(spec.stage, new=new)
            who = _who(spec, loan)
        echo(f"{labels[spec]}: 1 ({int(new)} new; {who})")

    with rt.db.session() as session:
        leaver = accounts.get_user(session, LEAVER)
        new = departures.departure_of(session, leaver) is None
        if new:
            admin = accounts.get_user(session, "admin")
            departures.start_departure(rt, session, admin, leaver, last_day=last_working_day(rt),
                                       successor=accounts.get_user(session, SUCCESSOR), note=NOTICE_NOTE, ctx=ctx)
        summary.count("notice", new=new)
        last_day = leaver.last_day
    echo(f"person on notice: 1 ({int(new)} new; {LEAVER}, last day {last_day}, customers handed to {SUCCESSOR})")

    with rt.db.session() as session:
        leaver = accounts.get_user(session, LEAVER)
        if _outside_book_alert(session, leaver.id) is None and leaver.status == UserStatus.DEPARTING:
            # Sam's own act, as from the look-up page: audited, spending his (notice) daily cap, and judged
            # by the early warning as any look-up is.
            customers.lookup(rt, session, leaver, OUTSIDE_BOOK_QUERY, ctx=ctx)
        raised = (session.scalar(select(func.count()).select_from(Alert)) or 0) - alerts_before
        open_alerts = list(session.scalars(select(Alert.rule).where(Alert.status == AlertStatus.OPEN)))
    summary.existing["alert"] = len(open_alerts)
    if raised:
        summary.created["alert"] = raised
    echo(f"open alerts: {len(open_alerts)} ({raised} new; {', '.join(sorted(open_alerts))})")
    return summary


def _outside_book_alert(session: Session, user_id: int) -> int | None:
    """The alert of the leaver's look-up outside their book, whatever became of it since (acknowledged or
    resolved on the desk, it is not raised again by another look-up)."""
    return session.scalar(select(Alert.id).where(Alert.user_id == user_id, Alert.rule == OUTSIDE_BOOK_RULE).limit(1))


def _who(spec: DemoLoan, loan: Loan) -> str:
    """Who to sign in as to carry the loan on, or to see it."""
    document = loan.document
    what = f"{spec.borrower} borrows the {document.title.lower()} of {document.customer.name}"
    if spec.stage == "requested":
        return f"{what}; mia or leo decides"
    if spec.stage == "approved":
        custodian = document.custodian.username if document.custodian is not None else "a custodian"
        return f"{what}; {custodian} releases it"
    return f"{what}, views left: {spec.borrower} opens it"
