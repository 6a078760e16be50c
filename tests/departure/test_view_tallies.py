"""The daily tallies the view rules count from: the same counts as the views themselves, each view once.

The rules' facts (views today, customers of the last 24 hours) are read from `ViewTally` rows, not from
the views table, so that a bulk reader's every further view costs what the first did. These tests hold
the tallies to the views: counted again from the views by hand after every view of a seeded sequence
that crosses a 25-hour day, through both ways a view is evaluated (the request's, with the view as its
opening wrote it, which is one statement on PostgreSQL; the sweep's, which reads it).
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from sqlalchemy import select

from tests.departure.conftest import TRUSTED
from vault.alerts import rules
from vault.db import schema
from vault.models import Document, DocumentView, ViewStatus, ViewTally, utcnow
from vault.services import view_alerts, view_facts

BERLIN = ZoneInfo("Europe/Berlin")
ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # Berlin, whose 31 October 2027 lasts 25 hours; every hour is a working hour (no other rule in the way).
    return {"trusted_places": TRUSTED,
            "policy": {"working_hours": {"timezone": "Europe/Berlin", "days": ALL_DAYS, "start": 0, "end": 24}}}


def _row(session: Any, document_id: int, user_id: int, moment: datetime, evaluated: bool = False) -> DocumentView:
    """A view as an opening writes it (the tests choose its time); `evaluated`: its rules have run."""
    version = session.get(Document, document_id).latest.id
    row = DocumentView(document_id=document_id, version_id=version, user_id=user_id, reason="history",
                       declared_place="Head office", client_addr="10.1.2.3", named_place="Head office",
                       status=ViewStatus.DELIVERED, token_hash=f"{moment.timestamp():064.6f}{user_id}"[-64:],
                       opened_at=moment, expires_at=moment, alerts_at=moment if evaluated else None)
    session.add(row)
    session.flush()
    return row


def _tallies(rt: Any) -> dict[tuple[int, date, int], tuple[int, datetime]]:
    with rt.db.session() as session:
        return {(t.user_id, t.day, t.customer_id): (t.views, t.last_at) for t in session.scalars(select(ViewTally))}


def test_the_facts_from_the_tallies_are_the_counts_of_the_views_themselves(rt, company, monkeypatch):
    customers = [company.customer(name) for name in ("Acme", "Bolt", "Cobalt")]
    documents = {customer: [company.document(customer)] for customer in customers}
    documents[customers[1]].append(company.document(customers[1], title="Terms"))  # two files, one customer
    seen: list[view_facts.ViewFacts] = []
    evaluate_view = rules.evaluate_view
    monkeypatch.setattr(rules, "evaluate_view", lambda rt, session, view, facts: (
        seen.append(facts), evaluate_view(rt, session, view, facts))[1])
    chance = random.Random(20271031)
    start = datetime(2027, 10, 29, 21, 0, tzinfo=UTC)
    moments = sorted(start + timedelta(minutes=chance.randrange(0, 4 * 24 * 60)) for _ in range(48))
    sam, tom = company.ids["sam"], company.ids["tom"]
    opened: list[tuple[int, datetime, int]] = []  # (person, time, customer)
    with rt.db.session() as session:
        for n, moment in enumerate(moments):
            person = tom if n % 5 == 0 else sam  # another person's views count for them only
            customer = chance.choice(customers)
            row = _row(session, chance.choice(documents[customer]), person, moment)
            opened.append((person, moment, customer))
            # The request's way (the view as written, one statement on PostgreSQL) and the sweep's.
            known = row if n % 2 else None
            assert view_alerts.evaluate(rt, session, row.id, exhausted=False, own_unit=True, known=known)
            mine = [(when, cust) for who, when, cust in opened if who == person]
            today = moment.astimezone(BERLIN).date()
            expected = (len({cust for when, cust in mine if when > moment - timedelta(hours=24)}),
                        sum(1 for when, _ in mine if when.astimezone(BERLIN).date() == today))
            assert (seen[-1].customers_24h, seen[-1].views_today) == expected, (n, moment)
            assert seen[-1].any_earlier == (len(mine) > 1)
    assert len(seen) == len(moments)
    # Among them, views on the 25-hour day.
    assert date(2027, 10, 31) in {when.astimezone(BERLIN).date() for _, when, _ in opened}
    tallies = _tallies(rt)
    assert sum(count for count, _ in tallies.values()) == len(moments)
    for (person, day, customer), (count, last) in tallies.items():
        mine = [when for who, when, cust in opened
                if who == person and cust == customer and when.astimezone(BERLIN).date() == day]
        assert (count, last) == (len(mine), max(mine))


def test_a_view_is_tallied_once_however_often_its_evaluation_is_asked(rt, company):
    document = company.document(company.customer("Acme"))
    company.view(document)  # evaluated after its opening committed
    with rt.db.session() as session:
        view = session.scalar(select(DocumentView))
        assert view.alerts_at is not None
        assert not view_alerts.evaluate(rt, session, view.id, exhausted=False)
        assert view_alerts.sweep(rt, session, now=utcnow() + view_alerts.SWEEP_GRACE) == 0
    ((key, (count, last)),) = _tallies(rt).items()
    assert key[0] == company.ids["sam"] and count == 1 and last == view.opened_at


def test_a_view_whose_rules_could_not_run_is_tallied_by_the_sweep(rt, company, monkeypatch):
    def broken(*_args: Any) -> Any:
        raise RuntimeError("rule bug")

    document = company.document(company.customer("Acme"))
    with monkeypatch.context() as patch:
        patch.setattr(rules, "VIEW_RULES", (broken,))
        company.view(document)
    assert _tallies(rt) == {}  # rolled back with the evaluation
    company.view(document)
    with rt.db.session() as session:
        assert view_alerts.sweep(rt, session, now=utcnow() + view_alerts.SWEEP_GRACE) == 1
    assert [count for count, _ in _tallies(rt).values()] == [2]


def test_the_maintenance_sweep_drops_the_days_no_window_reaches(rt, company):
    customer = company.customer("Acme")
    now = datetime(2027, 11, 1, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
    with rt.db.session() as session:
        for back in range(5):
            session.add(ViewTally(user_id=company.ids["sam"], day=date(2027, 11, 1) - timedelta(days=back),
                                  customer_id=customer, views=1, last_at=now - timedelta(days=back)))
    with rt.db.session() as session:
        assert view_facts.purge_tallies(session, rt.settings.working_hours, now) == 2
    # A view now looks back to 09:00 UTC on 31 October, which is that day in Berlin: kept, and the day before.
    assert sorted(day for _, day, _ in _tallies(rt)) == [date(2027, 10, 30), date(2027, 10, 31), date(2027, 11, 1)]


def test_the_upgrade_tallies_the_evaluated_views_of_the_last_two_days(rt, company):
    acme, bolt = company.customer("Acme"), company.customer("Bolt")
    plan, terms = company.document(acme), company.document(bolt)
    now = utcnow()
    sam, tom = company.ids["sam"], company.ids["tom"]
    with rt.db.session() as session:
        counted = [_row(session, plan, sam, now - timedelta(hours=30), evaluated=True),
                   _row(session, terms, sam, now - timedelta(hours=1), evaluated=True),
                   _row(session, terms, sam, now - timedelta(hours=2), evaluated=True),
                   _row(session, plan, tom, now - timedelta(hours=49), evaluated=True)]
        _row(session, plan, sam, now - timedelta(hours=3))  # not evaluated yet: the sweep will tally it
        _row(session, plan, sam, now - timedelta(hours=60), evaluated=True)  # no window reaches it
        customer_of = {plan: acme, terms: bolt}
        expected: dict[tuple[int, date, int], tuple[int, datetime]] = {}
        for view in counted:
            key = (view.user_id, view.opened_at.astimezone(BERLIN).date(), customer_of[view.document_id])
            count, last = expected.get(key, (0, view.opened_at))
            expected[key] = (count + 1, max(last, view.opened_at))
    config = schema.alembic_config(rt.db.url)
    with rt.db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0022")
    schema.upgrade(rt.db, zone="Europe/Berlin")
    assert _tallies(rt) == expected
