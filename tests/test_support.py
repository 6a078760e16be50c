"""The shared test support works as the tests rely on: the clock moves the time the services see, the
factories make real, usable things, and what later applications reuse from earlier ones (URL builders,
compiled templates) gives them the same answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jinja2 import DictLoader, Environment

from tests.support.factories import make_document, make_loan
from tests.support.templates import SharedTemplateCode
from vault import create_app
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


def test_a_later_application_builds_its_urls_with_the_builders_of_the_first(app, rt) -> None:
    later = create_app(runtime=rt)
    [rule], [again] = app.url_map.iter_rules("admin.role_decide"), later.url_map.iter_rules("admin.role_decide")
    assert rule is not again and rule._build.__func__ is again._build.__func__
    with app.test_request_context(), later.test_request_context():
        for application in (app, later):
            adapter = application.url_map.bind("vault.test")
            assert adapter.build("admin.role_decide", {"request_id": 7, "verdict": "grant", "next": "/x y"}) \
                == "/admin/role-requests/7/grant?next=/x+y"
            assert adapter.build("admin.user", {"user_id": 42}) == "/admin/users/42"


def test_a_template_edited_since_it_was_compiled_is_compiled_afresh() -> None:
    shared = SharedTemplateCode()
    sources = {"page.html": "Hello {{ name }}"}

    def render() -> str:
        environment = Environment(loader=DictLoader(dict(sources)), bytecode_cache=shared)
        return environment.get_template("page.html").render(name="Ann")

    assert render() == "Hello Ann"
    assert render() == "Hello Ann"  # from the shared code
    sources["page.html"] = "Goodbye {{ name }}"
    assert render() == "Goodbye Ann"
