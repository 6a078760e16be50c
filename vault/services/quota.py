"""The view quota: one counter row per person and document, spent and given back atomically.

A unit is spent by a conditional UPDATE (`used = used + 1 WHERE used < limit`) on a row that exists
beforehand (`INSERT ... ON CONFLICT DO NOTHING`); the database decides who gets the last unit, so fifty
simultaneous openings on a quota of three give exactly three views on SQLite (one writer at a time) and
on PostgreSQL (the row lock makes a second UPDATE re-check its WHERE against the committed value).

A unit goes back ("refund") only for a view that never delivered a byte, and every refund is audited,
so the units spent always equal the views that delivered content.

How many units a person has is the policy's (`policy.loans.view_quota`): their own quota, else the file's,
else the grade's, and for a person on notice never more than the lower of the grade's and the file's
(`view_quota_ceiling`). Approved extensions add their extra views, those approved before the notice inside
that ceiling and those approved during it, with the notice's approvals, above it (`view_limit`). Every limit
below, shown or spent against, is computed from these.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from vault.config.settings import Settings
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.db.locking import locked
from vault.models import (
    Departure,
    Document,
    DocumentView,
    Loan,
    LoanKind,
    LoanStatus,
    QuotaUsage,
    User,
    ViewStatus,
    utcnow,
)
from vault.policy.loans import extension_views as split_extensions
from vault.policy.loans import view_limit, view_quota, view_quota_ceiling
from vault.policy.notice import on_notice
from vault.runtime import Runtime

SETTINGS_KEY = "vault_settings"


def settings_of(session: Session) -> Settings:
    """The settings of the runtime that made `session` (see `Runtime.__post_init__`).

    Some look-ups get only a session (the API's document view asks for the remaining views), yet the
    quota depends on the grade rules of the deployment.
    """
    settings = session.info.get(SETTINGS_KEY)
    if settings is None:
        raise RuntimeError("this session was not made by a vault Runtime: its settings are unknown")
    return settings


def limit_for(settings: Settings, session: Session, user_id: int, document: Document) -> int:
    """Views allowed to one person on one document: their own, the document's or the grade's number, plus
    the extra views of the person's approved extensions for it, on notice under the notice's ceiling but for
    the extensions approved during it (`policy.loans.view_limit`)."""
    held = list(session.scalars(
        select(Loan).where(Loan.borrower_id == user_id, Loan.document_id == document.id,
                           Loan.kind == LoanKind.EXTENSION, Loan.status == LoanStatus.APPROVED)
    ))
    holder = session.get(User, user_id)
    return full_limit(settings, document, person_quota(session, user_id, document.id), holder=holder,
                      extensions=extension_views(session, holder, held))


def full_limit(settings: Settings, document: Document, person: int | None, *, holder: User | None,
               extensions: tuple[int, int]) -> int:
    """`base_limit` with the extensions (`extension_views`: within and beyond the notice's ceiling)."""
    within, beyond = extensions
    return view_limit(holder, settings.grade(document.grade).views, document.view_quota, person,
                      within=within, beyond=beyond)


def hold_notice(session: Session, person: User, *, recording: bool = False) -> User:
    """Read whether `person` is on notice afresh, under a lock on their row until the transaction ends.

    An approval (shared) and the recording of a notice (`recording`: exclusive) take it before anything
    else and before they read the clock, so an extension is either approved under the rules for someone not
    leaving and stamped before the notice began (its views count inside the ceiling), or waits for the
    notice and is judged by its rules (its views go above it). Without it an approval reading the person
    just before a notice committed was stamped after the notice's start with one approver's word, and
    counted above the ceiling. SQLite takes one writer at a time, so the lock is PostgreSQL's.
    """
    held = locked(session, User, person.id, shared=not recording)
    assert held is not None, "a person with a loan or a notice has a row"
    return held


def notice_since(session: Session, holder: User | None) -> datetime | None:
    """When `holder`'s notice was recorded, or None when they are not on notice (then nothing is read):
    extensions approved before it count inside the notice's ceiling, those approved since above it."""
    if holder is None or not on_notice(holder):
        return None
    return session.scalar(select(Departure.started_at).where(Departure.user_id == holder.id))


def base_limit(settings: Settings, document: Document, person: int | None = None, *, holder: User | None) -> int:
    """The quota of `holder` before any extension: their own override (`person`), else the document's (an
    approver's), else its grade's number; on notice never above the lower of the last two
    (`policy.loans.view_quota`). `holder` None: nobody's in particular (no notice to apply)."""
    return view_quota(holder, settings.grade(document.grade).views, document.view_quota, person)


def person_quota(session: Session, user_id: int, document_id: int) -> int | None:
    """The override a custodian or an approver set for this one person on this document, if any."""
    return session.scalar(
        select(QuotaUsage.view_quota).where(QuotaUsage.user_id == user_id, QuotaUsage.document_id == document_id)
    )


def set_person_quota(session: Session, user_id: int, document_id: int, views: int | None) -> int | None:
    """Set (or with None, clear) one person's quota of a document; returns the previous one."""
    row = session.get(QuotaUsage, (user_id, document_id))
    if row is None:
        if views is None:
            return None
        row = QuotaUsage(user_id=user_id, document_id=document_id, used=0, note="")
        session.add(row)
    previous = row.view_quota
    row.view_quota = views
    session.flush()
    return previous


def extension_views(session: Session, holder: User | None, loans: list[Loan]) -> tuple[int, int]:
    """The extra views granted by the approved extensions among `loans` (one person's, of one document):
    (within, beyond) the notice's ceiling (`policy.loans.extension_views`). Only for a person on notice is
    anything read (when the notice was recorded)."""
    if not any(loan.kind == LoanKind.EXTENSION and loan.status == LoanStatus.APPROVED for loan in loans):
        return 0, 0
    return split_extensions(holder, loans, notice_since(session, holder))


def used(session: Session, user_id: int, document_id: int) -> int:
    return session.scalar(
        select(QuotaUsage.used).where(QuotaUsage.user_id == user_id, QuotaUsage.document_id == document_id)
    ) or 0


# Every opening spends: built once, bound by parameter, on the table rather than the mapped class (an
# ORM-enabled UPDATE costs about four times the Python of the same statement in Core; nothing in the
# session needs to learn of this one).
_USAGE = QuotaUsage.__table__
# The conditional spend (bound by `spend_parameters`; also part of a larger statement in the views
# service): its row is (units spent now, the person's own quota), read by `limit_after`. The limit is the
# person's own quota, else `base` (the document's or grade's number), plus `extra` (the extensions approved
# before any notice), never above `cap` (the notice's ceiling, `policy.loans.view_quota_ceiling`; NULL for
# anyone not on notice, when the second condition is the first again), plus `beyond` (the extensions
# approved during the notice, 0 for anyone else): the policy's `view_limit`, in SQL, so the counter row
# decides it in the same statement.
_BASE = bindparam("base", type_=Integer)
_EXTRA = bindparam("extra", type_=Integer)
_BEYOND = bindparam("beyond", type_=Integer)
_OWN_OR_BASE = func.coalesce(_USAGE.c.view_quota, _BASE) + _EXTRA
SPEND = (
    update(_USAGE)
    .where(_USAGE.c.user_id == bindparam("user"), _USAGE.c.document_id == bindparam("document"),
           _USAGE.c.used < _OWN_OR_BASE + _BEYOND,
           _USAGE.c.used < func.coalesce(bindparam("cap", type_=Integer), _OWN_OR_BASE) + _BEYOND)
    .values(used=_USAGE.c.used + 1)
    .returning(_USAGE.c.used, _USAGE.c.view_quota)
)


def spend_parameters(settings: Settings, user: User, document: Document,
                     extensions: tuple[int, int]) -> dict[str, int | None]:
    """The spend's parameters; `extensions`: the extra views within and beyond the notice's ceiling."""
    grade_views = settings.grade(document.grade).views
    base = document.view_quota if document.view_quota is not None else grade_views
    within, beyond = extensions
    return {"user": user.id, "document": document.id, "base": base, "extra": within, "beyond": beyond,
            "cap": view_quota_ceiling(user, grade_views, document.view_quota)}


def limit_after(parameters: dict[str, int | None], person: int | None) -> int:
    """The limit a spend was decided against: the person's own quota, else the document's or grade's, plus
    the extensions approved before any notice, under the notice's ceiling, plus those approved during it."""
    limit = (person if person is not None else int(parameters["base"] or 0)) + int(parameters["extra"] or 0)
    cap = parameters["cap"]
    return (limit if cap is None else min(limit, cap)) + int(parameters["beyond"] or 0)


def spend(settings: Settings, session: Session, user: User, document: Document,
          extensions: tuple[int, int]) -> tuple[int, int] | None:
    """Spend one unit of `document` for `user`; (units spent now, the limit), or None if none is left.

    The limit is decided in the same statement as the spend: the person's override (a column of the
    counter row itself) or the document's or grade's number, plus the extensions approved before any
    notice, under the notice's ceiling when `user` is on notice, plus those approved during it
    (`extensions`, from `extension_views`). So the
    common case (the row exists) is one statement; only a first opening creates the row and tries again.
    """
    values = spend_parameters(settings, user, document, extensions)
    row = session.execute(SPEND, values).one_or_none()
    if row is None:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        session.execute(
            insert(QuotaUsage).values(user_id=user.id, document_id=document.id, used=0, note="")
            .on_conflict_do_nothing()
        )
        row = session.execute(SPEND, values).one_or_none()
    if row is None:
        return None
    used_now, person = row
    return used_now, limit_after(values, person)


def refund(
    rt: Runtime, session: Session, view: DocumentView, *, cause: str, actor: User | None,
    ctx: AccessContext | None = None,
) -> bool:
    """Give back the unit of a view that delivered nothing; False if it was not (or no longer) refundable.

    The view's own row is the guard: only a reserved or just-claimed view with no byte sent turns to
    refunded, once, so two sweeps or a sweep racing a late opening cannot give a unit back twice.
    """
    now = utcnow()
    result = session.execute(
        update(DocumentView)
        .where(DocumentView.id == view.id, DocumentView.bytes_sent == 0,
               DocumentView.status.in_([ViewStatus.RESERVED, ViewStatus.DELIVERING]))
        .values(status=ViewStatus.REFUNDED, completed_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    session.execute(
        update(QuotaUsage)
        .where(QuotaUsage.user_id == view.user_id, QuotaUsage.document_id == view.document_id, QuotaUsage.used > 0)
        .values(used=QuotaUsage.used - 1)
        .execution_options(synchronize_session=False)
    )
    session.expire(view)
    document = session.get(Document, view.document_id)
    rt.audit.record(
        session, action=AuditAction.VIEW_REFUND, actor=actor, ctx=ctx or AccessContext(),
        customer_id=document.customer_id if document else None, document_id=view.document_id,
        version_id=view.version_id, loan_id=view.loan_id, subject_user_id=view.user_id,
        detail={"view_id": view.id, "cause": cause},
    )
    return True


def refund_stale(
    rt: Runtime, session: Session, *, now: datetime | None = None, user_id: int | None = None,
    actor: User | None = None, ctx: AccessContext | None = None,
) -> int:
    """Refund reservations whose content URL expired unused (all of them, or one person's)."""
    now = now or utcnow()
    query = select(DocumentView).where(DocumentView.status == ViewStatus.RESERVED, DocumentView.expires_at < now)
    if user_id is not None:
        query = query.where(DocumentView.user_id == user_id)
    count = 0
    for view in session.scalars(query.order_by(DocumentView.id)).all():
        count += refund(rt, session, view, cause="expired_unused", actor=actor, ctx=ctx)
    return count


def refund_loan_reservations(
    rt: Runtime, session: Session, loan: Loan, *, cause: str, actor: User | None, ctx: AccessContext | None,
) -> int:
    """Refund the unused reservations made under a loan that has just ended: they can no longer deliver."""
    views = session.scalars(
        select(DocumentView).where(DocumentView.loan_id == loan.id, DocumentView.status == ViewStatus.RESERVED)
    ).all()
    return sum(refund(rt, session, view, cause=cause, actor=actor, ctx=ctx) for view in views)
