"""Twenty simultaneous look-ups by one person with three left give exactly three, on SQLite and PostgreSQL:
the daily cap is spent by the database's conditional UPDATE (the reveal counter's), so two requests at once
cannot both take the last unit; and a look-up refused at the cap looks nothing up."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import func, select

from tests.support.factories import make_customer
from tests.support.simultaneous import at_once
from vault.config.policy_file import LookupSettings
from vault.core.context import AccessContext
from vault.models import AuditEvent, CustomerAccess, Role, Segment, User
from vault.services import customers, reveal_quota

SEEKERS = 20


def test_twenty_simultaneous_look_ups_with_three_left_give_three(rt: Any, users: Any) -> None:
    rt.settings = replace(rt.settings, lookups=LookupSettings(per_day=3))
    owner = users.make("olga", Role.BORROWER)
    seeker = users.make("sam", Role.BORROWER)
    with rt.db.session() as session:
        make_customer(session, owner_id=owner.id, name="Aurelia Private Bank", segment=Segment.VIP)
        session.commit()

    def load(session):
        actor = session.get(User, seeker.id)
        _ = actor.role_set
        return actor

    def look_up(session, actor) -> None:
        customers.lookup(rt, session, actor, "aurelia", ctx=AccessContext(client_addr="10.0.0.9"))

    results = at_once(rt, SEEKERS, load, look_up, success="found")
    assert results == ["found"] * 3 + ["lookup_cap_reached"] * 17, results
    with rt.db.session() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "customer:lookup", AuditEvent.outcome == "allowed")) == 3
        assert session.scalar(select(func.count()).select_from(CustomerAccess).where(
            CustomerAccess.user_id == seeker.id)) == 3
        day = reveal_quota.local_day(customers.utcnow(), rt.settings.working_hours.zone)
        assert reveal_quota.used(session, seeker.id, reveal_quota.LOOKUP, 0, day) == 3
        assert customers.lookups_left(rt, session, session.get(User, seeker.id)) == customers.LookupsLeft(0, 3)
