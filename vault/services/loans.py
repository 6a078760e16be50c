"""Loans: request → approve/reject → release (grade 3) → active until due → returned, expired or revoked.

Every transition locks the loan row, asks the policy (which refuses with a reason code when the state
or the person is wrong), changes the state and appends its audit record in the caller's transaction.

Expiry is checked wherever a loan is used, not only by `vault loans expire`: a loan past its due time
is expired on the spot. That expiry stands even when the act that found it is refused (the act is
usually refused because of it): `settle` marks the unit of work so a refusal commits the expiry and its
audit record with the refusal's record instead of rolling them back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from vault import policy
from vault.core import events
from vault.core.actions import Action
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.core.errors import NotFound
from vault.db import unit_of_work
from vault.db.locking import locked
from vault.models import (
    OPEN_STATUSES,
    SPENT_STATUSES,
    AuditEvent,
    Document,
    DocumentView,
    Loan,
    LoanDecision,
    LoanKind,
    LoanStatus,
    QuotaUsage,
    User,
    utcnow,
)
from vault.policy import loans as rules
from vault.runtime import Runtime
from vault.services import quota


def targets(loan: Loan) -> dict[str, int | None]:
    """The audit targets of a loan: the refusal or success record names loan, document and customer."""
    return {"loan_id": loan.id, "document_id": loan.document_id, "customer_id": loan.document.customer_id}


def _record(rt: Runtime, session: Session, action: AuditAction, actor: User | None, loan: Loan,
            ctx: AccessContext | None,
            reason_text: str | None = None, **detail: object) -> None:
    rt.audit.record(session, action=action, actor=actor, ctx=ctx or AccessContext(), reason_text=reason_text,
                    subject_user_id=loan.borrower_id, detail={"kind": str(loan.kind), "status": str(loan.status),
                                                              **detail},
                    **targets(loan))


def lock_loan(session: Session, loan: Loan) -> Loan:
    """Reload the loan under a row lock (PostgreSQL; SQLite's transaction already holds the database),
    so two approvers deciding at once count each other's decisions (`vault.db.locking`: before it read the
    row it locked, a request rejected meanwhile was still "requested" and one approval made it an active loan)."""
    locked(session, Loan, loan.id)
    session.expire(loan, ["decisions"])
    return loan


# -- expiry --------------------------------------------------------------------------------------------


def expire_loan(rt: Runtime, session: Session, loan: Loan, *, now: datetime, ctx: AccessContext | None = None) -> None:
    """Mark an active loan past its due time expired (by the system), and refund its unused reservations."""
    loan.status = LoanStatus.EXPIRED
    loan.closed_at = now
    session.flush()
    _record(rt, session, AuditAction.LOAN_EXPIRE, None, loan, ctx,
            due_at=loan.due_at.isoformat() if loan.due_at else None)
    quota.refund_loan_reservations(rt, session, loan, cause="loan_expired", actor=None, ctx=ctx)


def _due(loan: Loan, now: datetime) -> bool:
    return loan.status == LoanStatus.ACTIVE and loan.due_at is not None and loan.due_at <= now


def settle(rt: Runtime, session: Session, *, user: User, document: Document | None = None,
           loan: Loan | None = None, held: list[Loan] | None = None, actor: User | None = None,
           ctx: AccessContext | None = None, stale: bool = True) -> bool:
    """Expire the person's due loans (of `document`, or just `loan`) and refund their stale reservations
    (unless `stale` is False: opening a view settles those only when its spend finds no unit left).

    `held`: the person's loans of `document` as `loans_of` returned them, when the caller has them
    already (they are not looked up again). `actor` (default: `user`) is who touched them, named on
    the refund records. Marks the unit of work to keep this when the act is refused (see the module
    docstring); returns whether it changed anything.
    """
    now = utcnow()
    changed = False
    if loan is not None:
        due = [loan] if _due(loan, now) else []
    elif held is not None:
        due = [item for item in held if _due(item, now)]
    else:
        query = select(Loan).where(Loan.borrower_id == user.id, Loan.status == LoanStatus.ACTIVE,
                                   Loan.due_at <= now)
        if document is not None:
            query = query.where(Loan.document_id == document.id)
        due = list(session.scalars(query))
    for item in due:
        expire_loan(rt, session, item, now=now, ctx=ctx)
        changed = True
    if stale and quota.refund_stale(rt, session, now=now, user_id=user.id, actor=actor or user, ctx=ctx):
        changed = True
    if changed:
        unit_of_work.keep_on_refusal(session)
    return changed


@dataclass(frozen=True)
class Sweep:
    loans_expired: int
    views_refunded: int


def sweep(rt: Runtime, session: Session, *, now: datetime | None = None, ctx: AccessContext | None = None) -> Sweep:
    """Expire every loan past due and refund every reservation whose content URL expired unused."""
    now = now or utcnow()
    ctx = ctx or AccessContext.cli()
    due = session.scalars(
        select(Loan).where(Loan.status == LoanStatus.ACTIVE, Loan.due_at <= now).order_by(Loan.id)
    ).all()
    for loan in due:
        expire_loan(rt, session, loan, now=now, ctx=ctx)
    refunded = quota.refund_stale(rt, session, now=now, ctx=ctx)
    return Sweep(loans_expired=len(due), views_refunded=refunded)


def expire_due(rt: Runtime, session: Session, *, now: datetime | None = None) -> int:
    """Expire loans past due and refund stale reservations; returns the number of loans expired."""
    return sweep(rt, session, now=now).loans_expired


# -- look-ups ------------------------------------------------------------------------------------------


def get_loan(session: Session, actor: User, loan_id: int) -> Loan:
    """The loan if the actor may see it (policy `loan:read`); otherwise NotFound, so ids cannot be probed."""
    loan = session.get(Loan, loan_id)
    if loan is None or not policy.authorize(actor, Action.LOAN_READ, loan):
        raise NotFound("loan", loan_id=loan_id)
    return loan


def record_read(rt: Runtime, session: Session, actor: User, loan: Loan, *, what: str, ctx: AccessContext,
                again: bool = False) -> None:
    """Record `actor`'s read of someone else's `loan` (`what`: "loan", or "context": what it is decided on),
    in the read's own transaction: a loan names a customer and a file, and its context shows the borrower's
    dealings with that customer, so a read whose record cannot be written shows nothing.

    The borrower reading their own loan or request is not recorded: it names only what they asked for
    themselves, and reading the file is recorded where it opens (`document:view`). `again`: the loan shown
    once more with a form's input refused, a read of its own, marked so the log tells a retry from a visit.
    """
    if loan.borrower_id != actor.id:
        marked: dict[str, object] = {"again": True} if again else {}
        _record(rt, session, AuditAction.LOAN_READ, actor, loan, ctx, read=what, **marked)


def read_loan(rt: Runtime, session: Session, actor: User, loan_id: int, *, ctx: AccessContext) -> Loan:
    """`get_loan` for showing the loan, recorded as `record_read` says."""
    loan = get_loan(session, actor, loan_id)
    record_read(rt, session, actor, loan, what="loan", ctx=ctx)
    return loan


def record_listing(rt: Runtime, session: Session, actor: User, found: LoanPage | Sequence[Loan], *, listing: str,
                   ctx: AccessContext, again: bool = False) -> None:
    """Record that `actor` was shown other people's loans (`listing`: the queue, "list", "home" for the start
    page's to-do list, "leavers"), with their ids, in the listing's own transaction: each names a customer
    and a file the reader may not work, so a list whose record cannot be written shows nothing (as the
    pool's list: `pool:read`). `found`: a page of a queue, or the loans shown.

    A page that shows only the reader's own loans is not recorded (as `record_read`). `again`: the list shown
    once more with a form's input refused, a read of its own, marked so the log tells a retry from a visit.
    """
    shown, page = (found.loans, found.page) if isinstance(found, LoanPage) else (list(found), 1)
    others = [loan.id for loan in shown if loan.borrower_id != actor.id]
    if others:
        detail: dict[str, object] = {"listing": listing, "ids": others, "page": page}
        if again:
            detail["again"] = True
        rt.audit.record(session, action=AuditAction.LOAN_QUEUE, actor=actor, ctx=ctx, detail=detail)


def list_loans(session: Session, actor: User, *, mine: bool = False, status: str | None = None) -> list[Loan]:
    """Loans the actor may see, newest first; `mine` keeps those they borrow."""
    query = select(Loan).order_by(Loan.requested_at.desc(), Loan.id.desc())
    if status is not None:
        query = query.where(Loan.status == LoanStatus(status))
    if mine:
        query = query.where(Loan.borrower_id == actor.id)
    return list(session.scalars(query.where(policy.visible_loans(actor))))


_ORDERS = {
    "newest": (Loan.requested_at.desc(), Loan.id.desc()),
    "oldest": (Loan.requested_at, Loan.id),
    "due": (Loan.due_at, Loan.id),
}
PAGE_SIZE = 50  # as the customer list: a page a person reads, and a bounded answer


@dataclass(frozen=True)
class LoanPage:
    loans: list[Loan]
    total: int
    page: int
    pages: int


def page_of_loans(session: Session, actor: User, *, mine: bool = False, others: bool = False, status: str | None = None,
                  awaiting_release: bool = False, page: int = 1, page_size: int | None = None,
                  order: str = "newest") -> LoanPage:
    """One page of the loans the actor may see (filtered in SQL, counted in SQL), numbered from 1 like
    the customer list; a page past the end is the last page.

    `mine`: only those the actor borrows; `others`: only other people's.
    `order`: "newest" (the borrower's own list, the API), "oldest" (queues: first come, first served) or
    "due" (active loans, the one that ends first on top). `awaiting_release`: approved loans a custodian
    still has to hand out.
    """
    page_size = page_size or PAGE_SIZE
    condition = policy.visible_loans(actor)
    if status is not None:
        condition = and_(condition, Loan.status == LoanStatus(status))
    if mine:
        condition = and_(condition, Loan.borrower_id == actor.id)
    if others:  # a queue never offers one's own requests
        condition = and_(condition, Loan.borrower_id != actor.id)
    if awaiting_release:
        condition = and_(condition, Loan.kind == LoanKind.LOAN, Loan.release_required.is_(True))
    total = session.scalar(select(func.count()).select_from(Loan).where(condition)) or 0
    pages = max(1, -(-total // page_size))
    page = min(max(1, page), pages)
    query = select(Loan).where(condition)
    loans = list(session.scalars(query.order_by(*_ORDERS[order]).offset((page - 1) * page_size).limit(page_size)))
    return LoanPage(loans=loans, total=total, page=page, pages=pages)


def active_loan(session: Session, user: User, document: Document) -> Loan | None:
    """The person's active loan of the document (the one a view is opened under), if any."""
    return session.scalars(
        select(Loan).where(Loan.borrower_id == user.id, Loan.document_id == document.id,
                           Loan.kind == LoanKind.LOAN, Loan.status == LoanStatus.ACTIVE)
        .order_by(Loan.due_at.desc())
    ).first()


def loans_of(session: Session, user: User, document: Document) -> list[Loan]:
    """Every loan and extension the person has (had) of the document, in one query: opening a view
    needs the active loan, the latest loan and the approved extensions, all among these."""
    return list(session.scalars(
        select(Loan).where(Loan.borrower_id == user.id, Loan.document_id == document.id).order_by(Loan.id)
    ))


_NEVER = datetime.min.replace(tzinfo=UTC)  # an active loan always has a due time; sorts one without first


def active_among(held: list[Loan]) -> Loan | None:
    """`active_loan`, chosen among `loans_of`'s list (the active loan due last)."""
    active = [loan for loan in held if loan.kind == LoanKind.LOAN and loan.status == LoanStatus.ACTIVE]
    return max(active, key=lambda loan: loan.due_at or _NEVER,
               default=None)


def latest_among(held: list[Loan]) -> Loan | None:
    """`latest_loan`, chosen among `loans_of`'s list (the loan asked for last)."""
    return max((loan for loan in held if loan.kind == LoanKind.LOAN),
               key=lambda loan: (loan.requested_at, loan.id), default=None)


def open_request(session: Session, user: User, document: Document, kind: LoanKind) -> Loan | None:
    """An undecided extension request, or an open (requested, approved or active) loan."""
    statuses = (LoanStatus.REQUESTED,) if kind == LoanKind.EXTENSION else OPEN_STATUSES
    return session.scalars(
        select(Loan).where(Loan.borrower_id == user.id, Loan.document_id == document.id,
                           Loan.kind == kind, Loan.status.in_(statuses)).order_by(Loan.id.desc())
    ).first()


def latest_loan(session: Session, user: User, document: Document) -> Loan | None:
    return session.scalars(
        select(Loan).where(Loan.borrower_id == user.id, Loan.document_id == document.id, Loan.kind == LoanKind.LOAN)
        .order_by(Loan.requested_at.desc(), Loan.id.desc())
    ).first()


# -- transitions ---------------------------------------------------------------------------------------


def _typed(document: Document, *, reason: str, category: str, place: str, days: int | None,
           extra_views: int | None) -> dict[str, object]:
    """A request as typed, as the policy's input rules read it: the decision (`request_loan`) and the
    list of every slip (`request_problems`) must judge the very same values."""
    return {"grade": document.grade, "reason": (reason or "").strip(), "category": category,
            "place": (place or "").strip(), "days": days, "extra_views": extra_views}


def request_problems(rt: Runtime, document: Document, *, reason: str, category: str, place: str,
                     days: int | None = None, kind: str = "loan",
                     extra_views: int | None = None) -> dict[str, policy.Decision]:
    """Every input rule (`policy.loans.request_input_problems`) a request as typed breaks, by field.

    `request_loan` refuses with the first of them only (one reason code, one refusal record); a page
    asks for them all so the person sees every slip in one answer. This decides nothing and records
    nothing: only `request_loan` does, and a slip never counts against anyone (`policy.SLIPS`).
    """
    loan_kind = LoanKind.EXTENSION if kind == LoanKind.EXTENSION.value else LoanKind.LOAN
    return rules.request_input_problems(
        rt.settings.grade(document.grade),
        _typed(document, reason=reason, category=category, place=place, days=days, extra_views=extra_views),
        loan_kind)


def request_loan(
    rt: Runtime,
    session: Session,
    actor: User,
    document: Document,
    *,
    reason: str,
    category: str,
    place: str,
    days: int,
    ctx: AccessContext,
    kind: str = "loan",
    extra_views: int = 0,
) -> Loan:
    """Ask to borrow `document` for `days` days (kind "loan"), or for `extra_views` more views of it
    once the quota is spent (kind "extension", which needs no days: it adds views, not time).

    Raises:
        policy.Denied: not a borrower; no loan needed (grade 1, not the compiler); an open request
            exists; a person on notice where `[departure] on_notice = "refuse"`; bad reason, category,
            place, days or extra views (each with its reason code).
        ConfigError: `[departure] on_notice` is not a known value.
    """
    audit = {"document_id": document.id, "customer_id": document.customer_id}
    settle(rt, session, user=actor, document=document, ctx=ctx)
    rule = rt.settings.grade(document.grade)
    loan_kind = LoanKind(kind) if kind in {k.value for k in LoanKind} else None
    reason = (reason or "").strip()
    place = (place or "").strip()
    remaining = 0
    if loan_kind == LoanKind.EXTENSION:
        remaining = quota.limit_for(rt.settings, session, actor.id, document) - quota.used(
            session, actor.id, document.id)
    policy.require(
        actor, Action.LOAN_REQUEST, document, rule=rule, kind=kind, remaining=remaining,
        open_request=loan_kind is not None and open_request(session, actor, document, loan_kind) is not None,
        departure_mode=rt.settings.departure.on_notice, audit=audit,
        **_typed(document, reason=reason, category=category, place=place, days=days, extra_views=extra_views),
    )
    loan_kind = LoanKind(kind)  # known: the policy refuses any other
    extension = loan_kind == LoanKind.EXTENSION
    loan = Loan(
        kind=loan_kind, document_id=document.id, borrower_id=actor.id, reason=reason, category=category,
        declared_place=place, days=0 if extension else days, extra_views=extra_views if extension else 0,
        approvals_required=rules.approvals_needed(rule, actor),
        release_required=rule.release_required and not extension,
        status=LoanStatus.REQUESTED, requested_at=utcnow(),
    )
    session.add(loan)
    session.flush()
    _record(rt, session, AuditAction.LOAN_REQUEST, actor, loan, ctx.declaring(place), reason_text=reason,
            category=category, days=loan.days, extra_views=loan.extra_views, grade=document.grade,
            approvals_required=loan.approvals_required, release_required=loan.release_required)
    events.emit("loan.requested", session=session, rt=rt, loan=loan)
    return loan


def approve(rt: Runtime, session: Session, actor: User, loan: Loan, *, comment: str, ctx: AccessContext) -> Loan:
    """Record one approval; with enough distinct approvals the loan becomes active (or waits for release).

    Raises:
        policy.Denied: `separation_of_duties` (own request, own file), `already_decided`,
            `invalid_state`, `borrower_inactive`.
    """
    lock_loan(session, loan)
    # After the loan's lock, as the last day's steps and a suspension take them (loans, then the person).
    quota.hold_notice(session, loan.borrower)
    decided = {d.approver_id for d in loan.decisions}
    rule = rt.settings.grade(loan.document.grade)
    policy.require(actor, Action.LOAN_APPROVE, loan, decided=decided, comment=comment, rule=rule,
                   departure_mode=rt.settings.departure.on_notice, audit=targets(loan))
    loan.approvals_required = rules.approvals_due(rule, loan)
    now = utcnow()
    session.add(LoanDecision(loan_id=loan.id, approver_id=actor.id, decision="approve",
                             comment=(comment or "").strip(), decided_at=now))
    session.flush()
    session.expire(loan, ["decisions"])
    approvals = len(loan.approver_ids)
    if approvals >= loan.approvals_required:
        loan.approved_at = now
        if loan.kind == LoanKind.LOAN and not loan.release_required:
            loan.status = LoanStatus.ACTIVE
            loan.due_at = now + timedelta(days=loan.days)
        else:
            # An extension counts from approval on; a grade-3 loan waits for a custodian's release.
            loan.status = LoanStatus.APPROVED
    session.flush()
    _record(rt, session, AuditAction.LOAN_APPROVE, actor, loan, ctx, reason_text=(comment or "").strip() or None,
            approvals=approvals, approvals_required=loan.approvals_required)
    events.emit("loan.decided", session=session, rt=rt, loan=loan, actor=actor)
    return loan


@dataclass(frozen=True)
class BulkApproval:
    """What one approval of several requests did: each loan approved or refused on its own."""

    approved: list[Loan]
    refused: list[tuple[int, policy.Decision]]  # loan id and the policy's refusal


def approve_many(rt: Runtime, session: Session, actor: User, loan_ids: list[int], *, comment: str,
                 ctx: AccessContext) -> BulkApproval:
    """Approve several requests with one comment, each exactly as if approved alone.

    One comment saves typing, not judgement: the policy decides every loan by itself (separation of
    duties holds per loan, so a request for a file the approver compiled is refused while the others
    go through), and every approval and every refusal gets its own audit record. A loan the approver
    may not see is refused as `not_found`, like a probe on its page. `approve` refuses before it writes
    anything, so a refusal leaves nothing of its own behind but its record.
    """
    decided: dict[int, Loan | policy.Decision] = {}
    # Once each, locked in the order of their ids: two batches of the same requests given in other orders
    # would each lock a loan the other waits for (the database then ends one); in one order the second
    # waits. All of them, and their borrowers after them, before the first record is written: a record
    # holds the head of its chain until the commit, and an approval holding a later loan of the batch
    # writes its own record next, perhaps to the same chain. The answer keeps the order given.
    found: dict[int, Loan] = {}
    for loan_id in sorted(set(loan_ids)):
        try:
            found[loan_id] = get_loan(session, actor, loan_id)
        except NotFound:
            continue
    for loan in found.values():
        lock_loan(session, loan)
    for borrower in sorted({loan.borrower for loan in found.values()}, key=lambda person: person.id):
        quota.hold_notice(session, borrower)
    for loan_id in sorted(set(loan_ids)):
        try:
            if loan_id not in found:
                raise NotFound("loan")
            decided[loan_id] = approve(rt, session, actor, found[loan_id], comment=comment, ctx=ctx)
        except NotFound:
            decided[loan_id] = _refusal(rt, session, actor, ctx, policy.deny("not_found"), loan_id=loan_id)
        except policy.Denied as exc:
            decided[loan_id] = _refusal(rt, session, actor, ctx, exc.decision, **exc.audit)
    given = [(loan_id, decided[loan_id]) for loan_id in dict.fromkeys(loan_ids)]
    return BulkApproval(approved=[result for _id, result in given if isinstance(result, Loan)],
                        refused=[(loan_id, result) for loan_id, result in given if not isinstance(result, Loan)])


def _refusal(rt: Runtime, session: Session, actor: User, ctx: AccessContext, decision: policy.Decision,
             **audit: int | None) -> policy.Decision:
    """Record one refused approval of a batch (the batch itself is no refusal: the others stand)."""
    rt.audit.record(session, action=AuditAction.LOAN_APPROVE, actor=actor, ctx=ctx, outcome="denied",
                    reason_code=decision.code, detail={"batch": True},
                    **{k: v for k, v in audit.items() if k in _AUDIT_TARGETS})
    events.emit("access.denied", session=session, rt=rt, user=actor, action=AuditAction.LOAN_APPROVE,
                code=decision.code, ctx=ctx)
    return decision


_AUDIT_TARGETS = {"loan_id", "document_id", "customer_id", "subject_user_id"}


def designate_custodian(rt: Runtime, session: Session, actor: User, loan: Loan, custodian: User | None, *,
                        reason: str, ctx: AccessContext) -> Loan:
    """An approver names the custodian who may release `loan` while the file's own custodian is away.

    Raises:
        policy.Denied: `separation_of_duties`, `invalid_state`, `invalid_custodian`, a reason too short.
    """
    lock_loan(session, loan)
    reason = (reason or "").strip()
    policy.require(actor, Action.LOAN_DESIGNATE, loan, custodian=custodian, reason=reason, audit=targets(loan))
    loan.release_custodian_id = custodian.id  # type: ignore[union-attr]  (the policy refuses None)
    session.flush()
    _record(rt, session, AuditAction.LOAN_DESIGNATE, actor, loan, ctx, reason_text=reason,
            custodian_id=loan.release_custodian_id, file_custodian_id=loan.document.custodian_id)
    return loan


def reject(rt: Runtime, session: Session, actor: User, loan: Loan, *, comment: str, ctx: AccessContext) -> Loan:
    """One rejection, with its reason, ends the request.

    Raises:
        policy.Denied: as `approve`, plus `comment_required`.
    """
    lock_loan(session, loan)
    decided = {d.approver_id for d in loan.decisions}
    comment = (comment or "").strip()
    policy.require(actor, Action.LOAN_REJECT, loan, decided=decided, comment=comment, audit=targets(loan))
    now = utcnow()
    session.add(LoanDecision(loan_id=loan.id, approver_id=actor.id, decision="reject", comment=comment,
                             decided_at=now))
    loan.status = LoanStatus.REJECTED
    loan.closed_at = now
    loan.closed_by_id = actor.id
    loan.close_reason = comment
    session.flush()
    _record(rt, session, AuditAction.LOAN_REJECT, actor, loan, ctx, reason_text=comment)
    events.emit("loan.decided", session=session, rt=rt, loan=loan, actor=actor)
    return loan


def release(rt: Runtime, session: Session, actor: User, loan: Loan, *, ctx: AccessContext) -> Loan:
    """A custodian hands out an approved grade-3 loan; its days run from now.

    Raises:
        policy.Denied: `separation_of_duties` (borrower, compiler or an approver of it), `invalid_state`,
            `not_the_custodian`, `borrower_inactive`; `departing_refused` or `approvals_missing` when the
            borrower has given notice since the approval.
    """
    lock_loan(session, loan)
    policy.require(actor, Action.LOAN_RELEASE, loan, rule=rt.settings.grade(loan.document.grade),
                   departure_mode=rt.settings.departure.on_notice, audit=targets(loan))
    now = utcnow()
    loan.status = LoanStatus.ACTIVE
    loan.released_by_id = actor.id
    loan.released_at = now
    loan.due_at = now + timedelta(days=loan.days)
    session.flush()
    _record(rt, session, AuditAction.LOAN_RELEASE, actor, loan, ctx, due_at=loan.due_at.isoformat())
    return loan


def return_loan(rt: Runtime, session: Session, actor: User, loan: Loan, *, ctx: AccessContext) -> Loan:
    """The borrower (or a custodian) ends an active loan before its due time.

    Raises:
        policy.Denied: `not_borrower`, `loan_expired` (it ran out: it is expired, not returned),
            `invalid_state`.
    """
    settle(rt, session, user=loan.borrower, loan=loan, actor=actor, ctx=ctx)
    lock_loan(session, loan)
    policy.require(actor, Action.LOAN_RETURN, loan, audit=targets(loan))
    _close(loan, LoanStatus.RETURNED, actor, None)
    session.flush()
    _record(rt, session, AuditAction.LOAN_RETURN, actor, loan, ctx)
    quota.refund_loan_reservations(rt, session, loan, cause="loan_returned", actor=actor, ctx=ctx)
    return loan


def revoke(rt: Runtime, session: Session, actor: User, loan: Loan, *, reason: str, ctx: AccessContext) -> Loan:
    """A custodian or an approver ends an approved or active loan (or an extension), saying why.

    Raises:
        policy.Denied: `separation_of_duties` (own loan), `loan_expired`, `invalid_state`, and the
            reason codes of a bad reason.
    """
    settle(rt, session, user=loan.borrower, loan=loan, actor=actor, ctx=ctx)
    lock_loan(session, loan)
    reason = (reason or "").strip()
    policy.require(actor, Action.LOAN_REVOKE, loan, reason=reason, audit=targets(loan))
    _close(loan, LoanStatus.REVOKED, actor, reason)
    session.flush()
    _record(rt, session, AuditAction.LOAN_REVOKE, actor, loan, ctx, reason_text=reason)
    quota.refund_loan_reservations(rt, session, loan, cause="loan_revoked", actor=actor, ctx=ctx)
    return loan


def withdraw(rt: Runtime, session: Session, actor: User, loan: Loan, *, ctx: AccessContext) -> Loan:
    """The borrower takes back a request nobody has approved yet; it ends as "withdrawn".

    Raises:
        policy.Denied: `not_your_request` (someone else's), `already_decided_withdraw` (an approval is
            recorded), `invalid_state` (decided, active or ended).
    """
    lock_loan(session, loan)
    policy.require(actor, Action.LOAN_WITHDRAW, loan, audit=targets(loan))
    _close(loan, LoanStatus.WITHDRAWN, actor, None)
    session.flush()
    _record(rt, session, AuditAction.LOAN_WITHDRAW, actor, loan, ctx)
    return loan


def _close(loan: Loan, status: LoanStatus, actor: User, reason: str | None) -> None:
    loan.status = status
    loan.closed_at = utcnow()
    loan.closed_by_id = actor.id
    loan.close_reason = reason


def set_quota_override(
    rt: Runtime, session: Session, actor: User, document: Document, views: int | None, *,
    person: User | None = None, person_given: bool = False, ctx: AccessContext,
) -> None:
    """Set how many views `person` gets of this document (None: back to the document's number); without
    a person, how many everyone gets, which only an approver decides.

    Units already spent stay spent; lowering the quota below them only stops further views.

    Raises:
        policy.Denied: `separation_of_duties` (the compiler), `quota_own_reach` (the actor may borrow, or
            sets their own), `quota_document_wide` (not an approver), `quota_unknown_person`, `quota_invalid`,
            `quota_person_departing` (raising the quota of a person on notice).
    """
    audit, limits = _quota_question(rt, session, document, person)
    policy.require(actor, Action.QUOTA_OVERRIDE, document, views=views, person=person, person_given=person_given,
                   audit=audit, **limits)
    detail: dict[str, object] = {"views": views, "grade": document.grade,
                                 "grade_views": rt.settings.grade(document.grade).views}
    if person is None:
        detail["previous"], document.view_quota = document.view_quota, views
        detail["scope"] = "document"
        session.flush()
    else:
        detail["previous"] = quota.set_person_quota(session, person.id, document.id, views)
        detail["scope"], detail["person"] = "person", person.username
    rt.audit.record(session, action=AuditAction.QUOTA_OVERRIDE, actor=actor, ctx=ctx, detail=detail, **audit)


def require_quota_setter(rt: Runtime, session: Session, actor: User, document: Document, *,
                         person: User | None, person_given: bool) -> None:
    """Whether `actor` may set this quota for `person` at all, asked when the number typed could not be read:
    a refusal for who asks stands (and is recorded) whatever was typed, before any "enter a number".

    Raises:
        policy.Denied: as `set_quota_override` does for who asks and for whom.
    """
    audit, limits = _quota_question(rt, session, document, person)
    policy.require(actor, Action.QUOTA_OVERRIDE, document, views_unread=True, person=person,
                   person_given=person_given, audit=audit, **limits)


def _quota_question(rt: Runtime, session: Session, document: Document,
                    person: User | None) -> tuple[dict[str, int], dict[str, int]]:
    """The audit targets of a quota decision, and for one person their quota now and by default."""
    audit = {"document_id": document.id, "customer_id": document.customer_id}
    limits: dict[str, int] = {}
    if person is not None:
        audit["subject_user_id"] = person.id
        own = quota.person_quota(session, person.id, document.id)
        limits = {"current": quota.base_limit(rt.settings, document, own, holder=person),
                  "default": quota.base_limit(rt.settings, document, holder=person)}
    return audit, limits


@dataclass(frozen=True)
class QuotaOverrides:
    """Every view quota set apart from the grade's number: for everyone on a document, and for one person."""

    documents: list[Document]  # by title
    personal: list[tuple[QuotaUsage, Document, User]]  # by title, then user name


def quota_overrides(session: Session, actor: User) -> QuotaOverrides:
    """The overrides custodians keep an eye on (the custody page and the API list the same ones): those of
    the documents the actor sees, which are the ones they could change; a title of another customer's file
    is need to know like the file itself."""
    seen = policy.visible_documents(actor)
    documents = session.scalars(select(Document).where(Document.view_quota.is_not(None), seen)
                                .order_by(Document.title))
    personal = session.execute(
        select(QuotaUsage, Document, User).join(Document, Document.id == QuotaUsage.document_id)
        .join(User, User.id == QuotaUsage.user_id).where(QuotaUsage.view_quota.is_not(None), seen)
        .order_by(Document.title, User.username))
    return QuotaOverrides(documents=list(documents),
                          personal=[(usage, document, user) for usage, document, user in personal])


# -- for the approver: what the requester did before ----------------------------------------------------


@dataclass(frozen=True)
class History:
    loans: int
    views: int
    refusals: int


def counted_refusals() -> ColumnElement[bool]:
    """The audit records that count against their actor: refusals of reach (a customer, a file, a place, a
    quota, a state), less the slips in what was typed (`policy.SLIPS`: a reason too short, no place, too many
    days, a contact dated tomorrow), which the person corrects at once and which say nothing of an attempt to
    reach what one may not (a refusal with no reason code counts), and less the refusals of signing in
    (`auth:*`: a mistyped password or code, a session or token that ran out), which are about the account, not
    the data, and which the sign-in throttle and its lockout answer. One condition for the histories an
    approver and a custodian weigh and for the probing rule, and one list of slips for them and the pages, so
    what counts cannot differ between them: before, the histories counted a borrower's typos at the sign-in
    as refusals while the probing rule left them out."""
    return and_(AuditEvent.outcome == "denied", AuditEvent.action.not_like("auth:%"),
                or_(AuditEvent.reason_code.is_(None), AuditEvent.reason_code.not_in(sorted(policy.SLIPS))))


def requester_history(session: Session, loan: Loan) -> History:
    """Earlier loans, views and refusals of the person asking: what an approver weighs a request by
    (refusals of what was typed left out: `policy.SLIPS`)."""
    borrower_id = loan.borrower_id
    loans = session.scalar(select(func.count(Loan.id)).where(Loan.borrower_id == borrower_id, Loan.id != loan.id))
    views = session.scalar(select(func.count(DocumentView.id)).where(
        DocumentView.user_id == borrower_id, DocumentView.status.in_(SPENT_STATUSES)))
    refusals = session.scalar(select(func.count(AuditEvent.seq)).where(
        AuditEvent.actor_id == borrower_id, counted_refusals()))
    return History(loans=loans or 0, views=views or 0, refusals=refusals or 0)


def customer_history(session: Session, loan: Loan) -> History:
    """The borrower's earlier loans, views and refusals on the customer of this loan's file: what a
    custodian weighs a release by (someone who has read this customer's files every week is not someone
    asking for the first time)."""
    borrower_id, customer_id = loan.borrower_id, loan.document.customer_id
    loans = session.scalar(select(func.count(Loan.id)).join(Document, Document.id == Loan.document_id).where(
        Loan.borrower_id == borrower_id, Document.customer_id == customer_id, Loan.id != loan.id))
    views = session.scalar(select(func.count(DocumentView.id)).join(
        Document, Document.id == DocumentView.document_id).where(
        DocumentView.user_id == borrower_id, Document.customer_id == customer_id,
        DocumentView.status.in_(SPENT_STATUSES)))
    refusals = session.scalar(select(func.count(AuditEvent.seq)).where(
        AuditEvent.actor_id == borrower_id, AuditEvent.customer_id == customer_id, counted_refusals()))
    return History(loans=loans or 0, views=views or 0, refusals=refusals or 0)


def last_known_place(session: Session, user_id: int) -> tuple[bool, str | None]:
    """Whether the person has been seen at all, and the trusted place of their latest recorded act
    (None: outside every trusted place). An approver or a custodian of a grade-3 loan is warned when the
    borrower is not in one: such a file opens only from a trusted place, so the loan would be unusable."""
    row = session.execute(select(AuditEvent.named_place).where(AuditEvent.actor_id == user_id)
                          .order_by(AuditEvent.seq.desc()).limit(1)).first()
    return (row is not None, row[0] if row is not None else None)


def check_view_loan(rt: Runtime, session: Session, actor: User, view: DocumentView, audit: dict[str, int | None],
                ctx: AccessContext) -> None:
    """The loan a view was opened under must still be active when its bytes or pages are fetched: a
    revocation takes effect at once (one rule for downloads and the viewer)."""
    loan = session.get(Loan, view.loan_id)
    assert loan is not None
    now = utcnow()
    if loan.status == LoanStatus.ACTIVE and loan.due_at is not None and loan.due_at <= now:
        expire_loan(rt, session, loan, now=now, ctx=ctx)  # refunds this reservation too
        raise policy.Denied(policy.deny("loan_expired"), keep_work=True, **audit)
    if loan.status != LoanStatus.ACTIVE:
        quota.refund(rt, session, view, cause="loan_ended", actor=actor, ctx=ctx)
        raise policy.Denied(policy.deny("no_active_loan"), keep_work=True, **audit)
