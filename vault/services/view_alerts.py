"""The early-warning rules on a view, evaluated after the view has committed, never inside its transaction.

Opening a view holds the quota row and the audit chain head until it commits; the rules read the views
table and the audit log and may raise alerts, which is work every other opening would wait for. So the
opening only notes (in its session) that its view is to be looked at, and once the opening has
committed the rules run in a short unit of work of their own, in the same request thread: not a queue
that a crash could lose. A delivery in one request runs them after its last byte instead, in the short
unit that records how the delivery ended (`run_in`; see the API's content route), so they cost its
client nothing and cost no transaction of their own.

Each view row carries `alerts_at`, set in the same unit that evaluates the rules for it, by a
conditional UPDATE: the rules run for a view once, whoever gets there first. If that unit fails (the
database went away between the two), the maintenance sweep finds the views still unevaluated and
evaluates them from what was recorded: the view row, and its opening audit record for whether that
opening spent the person's last view.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, SessionTransaction, joinedload

from vault.core import events
from vault.core.actions import Action
from vault.db.unit_of_work import unit_of_work
from vault.models import AuditEvent, DocumentView, User, utcnow
from vault.runtime import Runtime
from vault.services.view_facts import FACTS, ViewFacts, claiming, tally

log = logging.getLogger(__name__)

_PENDING = "vault_view_alerts_pending"
# The sweep leaves a view this long to its own request before evaluating it (a request evaluates right
# after its commit; a one-request delivery after its last byte, hence the margin).
SWEEP_GRACE = timedelta(minutes=2)
OPENING_ACTIONS = (str(Action.DOCUMENT_VIEW), str(Action.DOCUMENT_DOWNLOAD))
# In Core, on the table: the session has nothing to learn from it, and the ORM's bulk UPDATE machinery
# costs several times the statement's own Python on every view.
_VIEWS = DocumentView.__table__
_CLAIM = (
    update(_VIEWS).where(_VIEWS.c.id == bindparam("view"), _VIEWS.c.alerts_at.is_(None))
    .values(alerts_at=bindparam("at"))
)
_CLAIM_AND_FACTS = claiming(_CLAIM)
# Built once (a `Session.get` builds its statement, and the statement's cache key, anew on every view).
# The person's roles are not asked by the rules: not loaded (they would cost a statement of their own).
_VIEW_WITH_DOCUMENT_AND_USER = (
    select(DocumentView)
    .options(joinedload(DocumentView.document), joinedload(DocumentView.user).lazyload(User.roles))
    .where(DocumentView.id == bindparam("view"))
)


@dataclass(frozen=True)
class Pending:
    """A committed view whose rules are still to run."""

    rt: Runtime
    # The view as its opening wrote it, with its document and person: the rules read nothing else of it,
    # so it is not read back (`evaluate`).
    view: DocumentView
    exhausted: bool  # the opening spent the person's last view of the document


def defer(session: Session, rt: Runtime, view: DocumentView, *, exhausted: bool) -> None:
    """Note that `view` is to be evaluated once `session` commits (forgotten if it rolls back).

    `view` must have its `document` and `user` loaded; it is copied into the evaluating session as it
    stands when the rules run, without a statement.
    """
    session.info.setdefault(_PENDING, []).append(Pending(rt, view, exhausted))


def take(session: Session) -> list[Pending]:
    """The evaluations `session` owes, handed to the caller (who runs them later with `run`)."""
    return session.info.pop(_PENDING, [])


def run(pending: list[Pending]) -> None:
    """Evaluate each view in a unit of work of its own; a failure is logged and left to the sweep."""
    for item in pending:
        try:
            with unit_of_work(item.rt.db) as session:
                evaluate(item.rt, session, item.view.id, exhausted=item.exhausted, own_unit=True, known=item.view)
        except Exception:
            log.exception("early warning: view %d not evaluated now; the maintenance sweep will", item.view.id)


def run_in(session: Session, pending: list[Pending]) -> None:
    """Evaluate each view in `session`, a short unit that ends after them (a delivery's end record).

    A fault in a rule propagates: the caller rolls the unit back and redoes what else it held, and the
    views stay unevaluated, for the sweep (as `run`'s own units do).
    """
    for item in pending:
        evaluate(item.rt, session, item.view.id, exhausted=item.exhausted, own_unit=True, known=item.view)


def evaluate(rt: Runtime, session: Session, view_id: int, *, exhausted: bool, now: datetime | None = None,
             own_unit: bool = False, known: DocumentView | None = None) -> bool:
    """Claim the view's evaluation and run the rules on it, in the caller's unit of work.

    `own_unit`: a fault in a rule may roll the whole unit back (the view stays unevaluated, for the
    sweep; the unit's owner redoes anything else it held); otherwise each rule's fault is logged and
    undone on its own. `known`: the view as its opening wrote it (see `Pending`), else it is read.

    Returns False when the view was evaluated already (by its request or by a sweep).
    """
    at = now or utcnow()
    hours = rt.settings.working_hours
    facts = None
    if known is not None and rt.db.dialect == "postgresql":
        # The claim, the view's tally and the rules' facts in one round trip (`view_facts`).
        row = session.execute(_CLAIM_AND_FACTS, {**ViewFacts.parameters(hours, known), "at": at}).one()
        if row[0] != 1:
            return False
        facts = ViewFacts.of_row(row[1:])
    elif session.execute(_CLAIM, {"view": view_id, "at": at}).rowcount != 1:
        return False
    if known is not None:
        # What the opening wrote, with its document and person, copied into this session as they stand
        # (no statement); anything the rules touch beyond them loads here as usual.
        view = session.merge(known, load=False)
    else:
        # The rules read the view's document and person: loaded with it, in one statement.
        view = session.execute(_VIEW_WITH_DOCUMENT_AND_USER, {"view": view_id}).scalar_one()
    if facts is None:
        # The facts first, then the view's tally (which they leave out, as the single statement does).
        parameters = ViewFacts.parameters(hours, view)
        facts = ViewFacts.of_row(session.execute(FACTS, parameters).one())
        tally(session, rt.db.dialect, parameters)
    events.emit("view.opened", session=session, rt=rt, view=view, own_unit=own_unit, facts=facts)
    if exhausted:
        events.emit("quota.exhausted", session=session, rt=rt, user=view.user, document=view.document)
    return True


def sweep(rt: Runtime, session: Session, *, now: datetime | None = None) -> int:
    """Evaluate the views whose own request could not (older than `SWEEP_GRACE`); returns how many."""
    now = now or utcnow()
    views = session.execute(
        select(DocumentView.id, DocumentView.user_id, DocumentView.document_id)
        .where(DocumentView.alerts_at.is_(None), DocumentView.opened_at <= now - SWEEP_GRACE)
        .order_by(DocumentView.id)
    ).all()
    done = 0
    for view_id, user_id, document_id in views:
        done += evaluate(rt, session, view_id, exhausted=_spent_last(session, view_id, user_id, document_id))
    return done


def _spent_last(session: Session, view_id: int, user_id: int, document_id: int) -> bool:
    """Whether the view's opening record says it spent the last view ("remaining": 0)."""
    details = session.scalars(
        select(AuditEvent.detail).where(AuditEvent.actor_id == user_id, AuditEvent.document_id == document_id,
                                        AuditEvent.action.in_(OPENING_ACTIONS), AuditEvent.outcome == "allowed")
        .order_by(AuditEvent.seq.desc())
    )
    for text in details:
        detail = json.loads(text or "{}")
        if detail.get("view_id") == view_id:
            return detail.get("remaining") == 0
    return False


@sa_event.listens_for(Session, "after_commit")
def _evaluate_after_commit(session: Session) -> None:
    # A released savepoint fires this too, while the opening's transaction still holds its locks.
    if session.in_nested_transaction():
        return
    pending = take(session)
    if pending:
        run(pending)


@sa_event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: SessionTransaction) -> None:
    # The outermost transaction ended without committing (a commit has taken its list already): its
    # views were rolled back with it. A savepoint's end changes nothing.
    if transaction.parent is None and not transaction.nested:
        session.info.pop(_PENDING, None)
