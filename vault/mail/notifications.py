"""Which events send mail, to whom: listeners on `vault.core.events`, registered when this module is imported.

Each listener runs in the transaction of the act it is about (see `vault.core.events`) and only writes to the
outbox. It runs inside a savepoint and swallows its own errors: a mail that cannot be written (a
template bug) is logged, and the loan request or departure it is about still happens.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.alerts.raising import RULE_TITLES
from vault.core import events
from vault.mail.audience import may_be_told
from vault.mail.kinds import Kind
from vault.mail.outbox import enqueue, users_with_role
from vault.models import Alert, Departure, HandoverItem, Loan, LoanStatus, Role, User

log = logging.getLogger(__name__)


def _guarded(func: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(func)
    def run(*, session: Session, **kwargs: Any) -> None:
        try:
            with session.begin_nested():
                func(session=session, **kwargs)
        except Exception:
            log.exception("mail: %s could not queue its mail", func.__name__)

    return run


def _loan_context(loan: Loan) -> dict[str, Any]:
    document = loan.document
    return {
        "loan_id": loan.id, "document_title": document.title, "customer_name": document.customer.name,
        "grade": document.grade, "borrower_name": loan.borrower.display_name, "reason": loan.reason,
        "days": loan.days, "extra_views": loan.extra_views, "extension": str(loan.kind) == "extension",
    }


def _except(people: Iterable[User], *ids: int | None) -> list[User]:
    return [person for person in people if person.id not in ids]


def _deciders(session: Session, role: Role, loan: Loan, kind: Kind) -> list[User]:
    """The holders of `role` who may be asked to act on `loan`: not its borrower nor its file's compiler,
    and nobody who may not be told (`vault.mail.audience`: whose queues are suspended, who is shown no
    queue and so is mailed none; a mail names the customer and the file as the queue would)."""
    return [person for person in _except(users_with_role(session, role), loan.borrower_id, loan.document.compiler_id)
            if may_be_told(kind, person)]


def _approvers_left(session: Session, loan: Loan) -> list[User]:
    """Who may still approve `loan`: a decider who has not approved it yet (each approval is another person)."""
    return _except(_deciders(session, Role.APPROVER, loan, Kind.LOAN_REQUESTED), *loan.approver_ids)


def _custodians_left(session: Session, loan: Loan) -> list[User]:
    """Who may release `loan`: a custodian who approved none of it (releasing is a duty of its own)."""
    return _except(_deciders(session, Role.CUSTODIAN, loan, Kind.RELEASE_NEEDED), *loan.approver_ids)


def _nobody_may_act(session: Session, loan: Loan, role: Role) -> None:
    """To the administrators: `loan` waits for `role` and nobody who holds it may act (they gave notice,
    are suspended, are its borrower or its file's compiler, or approved it already). Without this it would
    wait unseen until it lapsed. The mail names the loan and the borrower, never the file or the customer:
    administrators read no file."""
    context = {"loan_id": loan.id, "borrower_name": loan.borrower.display_name, "grade": loan.document.grade,
               "role": str(role)}
    enqueue(session, Kind.NO_DECIDER, users_with_role(session, Role.ADMIN), "no_decider", context,
            dedupe=f"no-decider:{loan.id}:{role}")


@events.listen("loan.requested")
@_guarded
def loan_requested(*, session: Session, rt: Any, loan: Loan) -> None:
    """To every approver who may decide it (`_deciders`); to the administrators when there is none."""
    approvers = _approvers_left(session, loan)
    enqueue(session, Kind.LOAN_REQUESTED, approvers, "loan_requested", _loan_context(loan),
            dedupe=f"loan-requested:{loan.id}")
    if not approvers:
        _nobody_may_act(session, loan, Role.APPROVER)


@events.listen("loan.decided")
@_guarded
def loan_decided(*, session: Session, rt: Any, loan: Loan, actor: User | None = None) -> None:
    """To the borrower once the request is decided; to the custodians when it waits for a release; to the
    administrators when nobody is left to give the next approval or the release."""
    if loan.status == LoanStatus.REQUESTED:
        # One approval of several: nothing is decided yet, unless nobody is left to give the next one.
        if not _approvers_left(session, loan):
            _nobody_may_act(session, loan, Role.APPROVER)
        return
    approved = loan.status != LoanStatus.REJECTED
    waits = loan.status == LoanStatus.APPROVED and loan.release_required
    context = {**_loan_context(loan), "approved": approved, "waits_for_release": waits,
               "decided_by": actor.display_name if actor else "",
               "comment": "" if approved else loan.close_reason or ""}
    enqueue(session, Kind.LOAN_DECIDED, [loan.borrower], "loan_decided", context,
            dedupe=f"loan-decided:{loan.id}")
    if waits:
        # The file's own custodian when it has one who may release this loan; otherwise every custodian
        # (one on notice is no longer among them: `policy.loans.custodian_acts`).
        custodians = _custodians_left(session, loan)
        named = [person for person in custodians if person.id == loan.document.custodian_id]
        enqueue(session, Kind.RELEASE_NEEDED, named or custodians, "release_needed", _loan_context(loan),
                dedupe=f"release-needed:{loan.id}")
        if not custodians:
            _nobody_may_act(session, loan, Role.CUSTODIAN)


@events.listen("customer.handed_over")
@_guarded
def handed_over(*, session: Session, rt: Any, item: HandoverItem, to_user: User) -> None:
    """To the person who now owns a leaver's customer."""
    context = {"leaver_name": item.departure.user.display_name, "customer_name": item.customer.name,
               "key": bool(item.key), "departure_id": item.departure_id}
    enqueue(session, Kind.HANDOVER_ASSIGNED, [to_user], "handover_assigned", context,
            dedupe=f"handover:{item.id}:{to_user.id}:{item.transferred_at.isoformat() if item.transferred_at else ''}")


@events.listen("departure.step")
@_guarded
def departure_step(*, session: Session, rt: Any, departure: Departure, step: str, actor: User | None = None) -> None:
    """To whoever started the departure (there is no line manager in vault); to the admins when it was
    started at the command line. Never to the person who just took the step, nor to the leaver."""
    people = [departure.started_by] if departure.started_by is not None else users_with_role(session, Role.ADMIN)
    recipients = _except(people, actor.id if actor else None, departure.user_id)
    context = {"step": step, "leaver_name": departure.user.display_name, "departure_id": departure.id,
               "last_day": departure.user.last_day.isoformat() if departure.user.last_day else ""}
    enqueue(session, Kind.DEPARTURE_STEP, recipients, "departure_step", context,
            dedupe=f"departure:{departure.id}:{step}")


@events.listen("decider.lost")
@_guarded
def decider_lost(*, session: Session, rt: Any, user: User, roles: frozenset[Role]) -> None:
    """Someone who approved or released may act no longer (notice, a disabled account, the role taken away,
    a suspension): the open loans that had only them are told to the administrators, who can name somebody."""
    if not roles & {Role.APPROVER, Role.CUSTODIAN}:
        return
    waiting = session.scalars(select(Loan).where(Loan.status.in_([LoanStatus.REQUESTED, LoanStatus.APPROVED]))
                              .order_by(Loan.id))
    for loan in waiting:
        if loan.status == LoanStatus.REQUESTED and not _approvers_left(session, loan):
            _nobody_may_act(session, loan, Role.APPROVER)
        elif loan.status == LoanStatus.APPROVED and loan.release_required and not _custodians_left(session, loan):
            _nobody_may_act(session, loan, Role.CUSTODIAN)


@events.listen("alert.announced")
@_guarded
def alert_announced(*, session: Session, rt: Any, alert: Alert, user: User, announcement: str) -> None:
    """To the security contacts (`VAULT_SECURITY_CONTACTS`), for a new alert and for each escalation."""
    contacts = rt.settings.security_contacts
    if not contacts:
        return
    context = {"alert_id": alert.id, "title": RULE_TITLES.get(alert.rule, alert.rule), "severity": str(alert.severity),
               "summary": alert.summary, "summary_params": alert.params, "person_name": user.display_name,
               "event": announcement}
    enqueue(session, Kind.SECURITY_ALERT, contacts, "security_alert", context,
            dedupe=f"alert:{alert.id}:{alert.severity}")


@events.listen("account.password_link")
def password_link(*, session: Session, rt: Any, user: User, link_path: str, hours: int, actor: User,
                  queued: list[int]) -> None:
    """To the person whose account an administrator made a password link for (an account in use: see
    `policy.accounts`). Not guarded like the others: the administrator is told the link was sent, so a mail
    that cannot be written must fail the act, not leave a link nobody holds. The ids of the rows written are
    added to `queued`, which the service checks."""
    context = {"username": user.username, "admin_name": actor.display_name, "hours": hours, "link_path": link_path}
    queued.extend(row.id for row in enqueue(session, Kind.PASSWORD_LINK, [user], "password_link", context))
