"""What waits for a person: the home page's to-do list and the counts on the menu.

Each list is read through the policy's visibility conditions (`policy.visible_loans`, `visible_alerts`)
and then, for acts, the same object rule the act itself checks (so a request the person may not decide,
their own or one of a file they compiled, never shows as waiting for them). Everything is a handful of
statements whatever the numbers: the loans of each queue in one query, the quotas of the person's active
loans in two, the handovers and the alerts in one each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from vault import policy
from vault.core.actions import Action
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.models import (
    Alert,
    AlertStatus,
    Departure,
    DepartureStatus,
    Document,
    HandoverItem,
    Loan,
    LoanKind,
    LoanStatus,
    ManagerRequest,
    QuotaUsage,
    RoleRequest,
    RotationProposal,
    User,
)
from vault.policy.loans import extension_views
from vault.runtime import Runtime
from vault.services import accounts, departures, loan_context, loans, managers, quota, rotation, upkeep

# Lists of files show their type, the latest version's: loaded with the loans, not one query per row.
_WITH_FILE = selectinload(Loan.document).selectinload(Document.versions)
# The home page lists at most this many alerts; the count says how many there are in all.
ALERTS_SHOWN = 10


@dataclass(frozen=True)
class HeldLoan:
    """One of the person's active loans: what they may still do with it, and until when."""

    loan: Loan
    views_left: int
    due_at: datetime | None


@dataclass(frozen=True)
class OpenDeparture:
    """A departure on notice that the person manages, and whether it may be completed now."""

    departure: Departure
    ready: bool


@dataclass
class Todo:
    decisions: list[Loan] = field(default_factory=list)  # requests waiting for my decision (approvers)
    releases: list[Loan] = field(default_factory=list)  # approved grade-3 loans waiting for my release
    handovers: list[HandoverItem] = field(default_factory=list)  # customers handed to me, to confirm
    rotations: list[RotationProposal] = field(default_factory=list)  # customers rotated to me, to confirm
    overdue: list[upkeep.Overdue] = field(default_factory=list)  # my customer records past their cadence
    loans: list[HeldLoan] = field(default_factory=list)  # my active loans
    alerts: list[Alert] = field(default_factory=list)  # open alerts, for those who handle them
    alerts_total: int = 0
    departures: list[OpenDeparture] = field(default_factory=list)  # departures to see through (admins)
    # Roles and managers asked for by another administrator, which I may approve or refuse.
    role_requests: list[RoleRequest] = field(default_factory=list)
    manager_requests: list[ManagerRequest] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"decisions": len(self.decisions), "releases": len(self.releases),
                "handovers": len(self.handovers), "rotations": len(self.rotations), "overdue": len(self.overdue),
                "alerts": self.alerts_total,
                "departures": len(self.departures),
                "grants": len(self.role_requests) + len(self.manager_requests)}

    @property
    def empty(self) -> bool:
        return not (any(self.counts().values()) or self.loans)


def overdue_customers(rt: Runtime, session: Session, actor: User) -> list[upkeep.Overdue]:
    """The records of the actor's book (and, for a manager, their team's) past their update cadence, most
    overdue first (`services.upkeep`); nobody else's."""
    if not policy.authorize(actor, Action.CUSTOMER_READ) or actor.customers_suspended_at is not None:
        return []
    return upkeep.overdue_book(rt, session, actor)


def _grants(session: Session, actor: User) -> tuple[list[RoleRequest], list[ManagerRequest]]:
    """The role and manager requests waiting for a second person that `actor` may decide (the same object
    rules as the decision: never one they asked for, nor one about themselves)."""
    roles = accounts.pending_role_requests(session) if policy.authorize(actor, Action.ROLE_APPROVE) else []
    named = (managers.pending_manager_requests(session) if policy.authorize(actor, Action.MANAGER_APPROVE)
             else [])
    holders = accounts.request_holders(session, roles, named)
    return ([request for request in roles if accounts.role_decider(session, actor, request, holders)],
            [request for request in named if managers.manager_decider(session, actor, request, holders)])


def _decisions(session: Session, actor: User) -> list[Loan]:
    if not policy.authorize(actor, Action.LOAN_APPROVE):
        return []
    waiting = session.scalars(
        select(Loan).where(policy.visible_loans(actor), Loan.status == LoanStatus.REQUESTED)
        .options(selectinload(Loan.decisions), _WITH_FILE, selectinload(Loan.borrower))
        .order_by(Loan.requested_at, Loan.id))
    return [loan for loan in waiting
            if policy.authorize(actor, Action.LOAN_APPROVE, loan, decided={d.approver_id for d in loan.decisions})]


def _releases(session: Session, actor: User) -> list[Loan]:
    if not policy.authorize(actor, Action.LOAN_RELEASE):
        return []
    approved = session.scalars(
        select(Loan).where(policy.visible_loans(actor), Loan.status == LoanStatus.APPROVED,
                           Loan.kind == LoanKind.LOAN, Loan.release_required.is_(True))
        .options(selectinload(Loan.decisions), _WITH_FILE, selectinload(Loan.borrower))
        .order_by(Loan.approved_at, Loan.id))
    settings = quota.settings_of(session)
    return [loan for loan in approved
            if policy.authorize(actor, Action.LOAN_RELEASE, loan, **loan_context.release_context(settings, loan))]


def _handovers(session: Session, actor: User) -> list[HandoverItem]:
    if not policy.authorize(actor, Action.HANDOVER_CONFIRM):
        return []
    # The successor's own list (`departures.items_for`: not a customer given since to someone else).
    # A key customer who said nobody called is back on it, though confirmed.
    return [item for item in departures.items_for(session, actor) if not item.settled or item.disputed]


def _held_loans(session: Session, actor: User) -> list[HeldLoan]:
    active = list(session.scalars(
        select(Loan).where(policy.visible_loans(actor), Loan.borrower_id == actor.id,
                           Loan.kind == LoanKind.LOAN, Loan.status == LoanStatus.ACTIVE)
        .options(_WITH_FILE).order_by(Loan.due_at, Loan.id)))
    if not active:
        return []
    ids = {loan.document_id for loan in active}
    usage = {row.document_id: row for row in session.scalars(
        select(QuotaUsage).where(QuotaUsage.user_id == actor.id, QuotaUsage.document_id.in_(ids)))}
    extensions: dict[int, list[Loan]] = {}
    for extension in session.scalars(
            select(Loan).where(Loan.borrower_id == actor.id, Loan.document_id.in_(ids),
                               Loan.kind == LoanKind.EXTENSION, Loan.status == LoanStatus.APPROVED)):
        extensions.setdefault(extension.document_id, []).append(extension)
    # On notice, extensions approved before it count inside the notice's ceiling (`quota.extension_views`).
    since = quota.notice_since(session, actor) if extensions else None
    settings = quota.settings_of(session)
    held = []
    for loan in active:
        row = usage.get(loan.document_id)
        limit = quota.full_limit(settings, loan.document, row.view_quota if row else None, holder=actor,
                                 extensions=extension_views(actor, extensions.get(loan.document_id, []), since))
        held.append(HeldLoan(loan=loan, views_left=max(0, limit - (row.used if row else 0)), due_at=loan.due_at))
    return held


def _alerts(session: Session, actor: User) -> tuple[list[Alert], int]:
    if not policy.authorize(actor, Action.ALERT_MANAGE):
        return [], 0
    condition = (policy.visible_alerts(actor), Alert.status == AlertStatus.OPEN)
    total = session.scalar(select(func.count()).select_from(Alert).where(*condition)) or 0
    if not total:
        return [], 0
    shown = list(session.scalars(select(Alert).where(*condition)
                                 .order_by(Alert.last_seen_at.desc(), Alert.id.desc()).limit(ALERTS_SHOWN)))
    return shown, total


def _departures(session: Session, actor: User) -> list[OpenDeparture]:
    """The departures on notice the actor may see through (never their own): an administrator is mailed
    their steps, so the home page must show them too, each saying whether it may be completed now."""
    if not policy.authorize(actor, Action.DEPARTURE_MANAGE):
        return []
    open_ = session.scalars(
        select(Departure).where(Departure.status == DepartureStatus.NOTICE)
        .options(selectinload(Departure.user), selectinload(Departure.items))
        .order_by(Departure.id))
    return [OpenDeparture(departure, policy.authorize(actor, Action.DEPARTURE_MANAGE, departure, step="complete"))
            for departure in open_ if policy.authorize(actor, Action.DEPARTURE_MANAGE, departure)]


def todo_for(rt: Runtime, session: Session, actor: User) -> Todo:
    """Everything waiting for `actor`, each list empty when their roles give them no part in it."""
    alerts, alerts_total = _alerts(session, actor)
    role_requests, manager_requests = _grants(session, actor)
    return Todo(decisions=_decisions(session, actor), releases=_releases(session, actor),
                handovers=_handovers(session, actor), rotations=rotation.tasks_for(session, actor),
                overdue=overdue_customers(rt, session, actor),
                loans=_held_loans(session, actor), alerts=alerts, alerts_total=alerts_total,
                departures=_departures(session, actor), role_requests=role_requests,
                manager_requests=manager_requests)


def read_todo(rt: Runtime, session: Session, actor: User, *, ctx: AccessContext) -> Todo:
    """`todo_for` shown to the person (the start page), recorded in the page's transaction as the lists it
    repeats are: the requests and releases waiting for them are other people's loans (`loan:queue`,
    "home"); the handovers to confirm, the customers rotated to them and their overdue customers name
    customers (`customer:list`, "home", with their ids, each once), as the handover list, the rotation
    tasks and the customer lists record theirs. A page that names no customer writes no `customer:list`."""
    waiting = todo_for(rt, session, actor)
    loans.record_listing(rt, session, actor, [*waiting.decisions, *waiting.releases], listing="home", ctx=ctx)
    named = [item.customer_id for item in waiting.handovers]
    named += [task.customer_id for task in waiting.rotations]
    named += [customer.id for customer in waiting.overdue]
    ids = list(dict.fromkeys(named))
    if ids:
        rt.audit.record(session, action=AuditAction.CUSTOMER_LIST, actor=actor, ctx=ctx,
                        detail={"listing": "home", "ids": ids})
    return waiting


def counts_for(rt: Runtime, session: Session, actor: User) -> dict[str, int]:
    """The menu's badges: how many requests, releases, handovers, rotated customers, overdue records, open
    alerts and role or manager requests wait."""
    _shown, alerts_total = _alerts(session, actor)
    roles, named = _grants(session, actor)
    return {"decisions": len(_decisions(session, actor)), "releases": len(_releases(session, actor)),
            "handovers": len(_handovers(session, actor)), "rotations": len(rotation.tasks_for(session, actor)),
            "overdue": len(overdue_customers(rt, session, actor)),
            "alerts": alerts_total, "departures": len(_departures(session, actor)),
            "grants": len(roles) + len(named)}


__all__ = ["ALERTS_SHOWN", "HeldLoan", "OpenDeparture", "Todo", "counts_for", "overdue_customers", "read_todo",
           "todo_for"]
