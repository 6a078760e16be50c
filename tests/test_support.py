"""The shared test support works as the tests rely on: the clock moves the time the services see, and
the factories make real, usable things."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.factories import make_document, make_loan
from vault.core.clock import Clock, utcnow
from vault.core.context import AccessContext
from vault.models import Loan, LoanStatus, Role
from vault.models import utcnow as model_utcnow


def test_the_clock_moves_and_freezes_the_time_everything_sees(clock: Clock) -> None:
    start = utcnow()
    clock.advance(timedelta(days=3))
    assert timedelta(days=3) <= model_utcnow() - start < timedelta(days=3, minutes=1)
    moment = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    clock.freeze(moment)
    assert utcnow() == model_utcnow() == moment and clock.timestamp() == moment.timestamp()
    clock.advance(timedelta(seconds=5))
    assert utcnow() == moment + timedelta(seconds=5)
    clock.reset()
    assert abs(utcnow() - datetime.now(UTC)) < timedelta(seconds=5)


def test_a_frozen_clock_dates_the_audit_record(rt, clock: Clock) -> None:
    moment = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    clock.freeze(moment)
    with rt.db.session() as session:
        event = rt.audit.record(session, action="storage:fsck", actor=None, ctx=AccessContext.cli())
        session.commit()
        assert event.ts == moment


def test_the_factories_make_a_document_a_loan_can_be_asked_for(rt, users) -> None:
    carl, bob = users.make("carl", Role.COMPILER), users.make("bob", Role.BORROWER)
    document_id = make_document(rt, compiler_id=carl.id, grade=2)
    loan_id = make_loan(rt, document_id=document_id, borrower_id=bob.id)
    with rt.db.session() as session:
        loan = session.get(Loan, loan_id)
        assert loan is not None and loan.status == LoanStatus.REQUESTED and loan.borrower_id == bob.id
