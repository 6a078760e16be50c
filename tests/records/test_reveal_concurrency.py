"""Twenty simultaneous reveals of one customer by one person on a quota of three give exactly three, on
SQLite and PostgreSQL; and a refused reveal spends nothing (the daily cap's refusal gives the customer's
unit back)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import func, select

from tests.support.factories import make_customer
from tests.support.simultaneous import at_once
from vault import policy
from vault.config.policy_file import RecordSettings
from vault.core.context import AccessContext
from vault.models import AuditEvent, Customer, Role, Segment, User
from vault.services import accounts, managers, records, reveal_quota

REVEALERS = 20


def _scene(rt: Any, users: Any) -> tuple[int, int]:
    owner = users.make("olga", Role.BORROWER)
    boss = users.make("hana", Role.BORROWER)
    with rt.db.session() as session:
        managers.set_manager(rt, session, accounts.get_user(session, "olga"), accounts.get_user(session, "hana"),
                             actor=None)
        customer = make_customer(session, owner_id=owner.id, name="Aurelia Private Bank", segment=Segment.VIP)
        records.edit(rt, session, None, customer, {"contacts": [{"name": "Ada Quist", "phones": ["+41 44 5550101"]}]},
                     ctx=AccessContext.cli())
        session.commit()
        return customer.id, boss.id


def test_twenty_simultaneous_reveals_on_a_quota_of_three_give_three(rt: Any, users: Any) -> None:
    customer_id, boss_id = _scene(rt, users)  # the manager: a VIP customer's ordinary quota, 3

    def load(session):
        customer = session.get(Customer, customer_id)
        actor = session.get(User, boss_id)
        _ = customer.co_owners, actor.role_set
        return actor, customer

    def reveal_once(session, loaded) -> None:
        actor, customer = loaded
        records.reveal(rt, session, actor, customer, reason="Meeting them on Monday", place="Office",
                       ctx=AccessContext(client_addr="10.0.0.9"))

    results = at_once(rt, REVEALERS, load, reveal_once, success="revealed")
    assert sorted(results) == ["reveal_quota"] * 17 + ["revealed"] * 3, results
    with rt.db.session() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "customer:reveal", AuditEvent.outcome == "allowed")) == 3
        day = reveal_quota.day_number(records.utcnow())
        assert reveal_quota.used(session, boss_id, reveal_quota.DAY, 0, day) == 3


def test_a_refusal_at_the_daily_cap_gives_the_customer_unit_back(rt: Any, users: Any) -> None:
    customer_id, boss_id = _scene(rt, users)
    rt.settings = replace(rt.settings, records=RecordSettings(reveals_per_day=1))
    with rt.db.session() as session:
        other = make_customer(session, owner_id=session.get(Customer, customer_id).owner_id, name="Second Bank",
                              segment=Segment.VIP)
        session.commit()
        other_id = other.id
    outcomes = []
    for target in (other_id, customer_id):
        with rt.db.session() as session:
            try:
                records.reveal(rt, session, session.get(User, boss_id), session.get(Customer, target),
                               reason="Checking the renewal date", place="Office", ctx=AccessContext.cli())
                session.commit()
                outcomes.append("revealed")
            except policy.Denied as exc:
                session.rollback()
                outcomes.append(exc.decision.code)
    assert outcomes == ["revealed", "reveal_daily_cap"]
    with rt.db.session() as session:
        window = rt.settings.records.reveal_window_days
        period = reveal_quota.period_of(reveal_quota.CUSTOMER, records.utcnow(), window)
        assert reveal_quota.used(session, boss_id, reveal_quota.CUSTOMER, customer_id, period) == 0
