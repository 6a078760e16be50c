"""Reveal quotas and the daily look-up cap, spent atomically: one counter row per person, scope, target and
period.

The same approach as the view quota (`vault.services.quota`): the row is made beforehand with INSERT …
ON CONFLICT DO NOTHING, and a unit is spent by a conditional UPDATE (`used = used + 1 WHERE used <
limit`) whose RETURNING says whether it was spent. The database decides who gets the last unit: twenty
simultaneous reveals on a quota of three give exactly three on SQLite (one writer at a time) and on
PostgreSQL (the row lock makes the second UPDATE re-check its WHERE against the committed count).

Periods are fixed windows: the per-customer quota resets every `reveal_window_days` counted from
1970-01-01 in UTC; the daily cap at the company's midnight, per local day of the working-hours timezone
(`local_day`): a company in Shanghai whose cap reset at 08:00 would give a person two days' reveals in one
working day. A reveal spends both in the request's transaction; if the second is refused the transaction
rolls back and gives the first back.

Look-ups by name (`vault.services.customers.lookup`) are counted the same way under scope "lookup" (target
0), per local day too.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from vault.config.settings import Settings
from vault.models import RevealUsage

CUSTOMER = "customer"
DAY = "day"
LOOKUP = "lookup"


def day_number(moment: datetime) -> int:
    return (moment.date() - datetime(1970, 1, 1).date()).days


def local_day(moment: datetime, zone: ZoneInfo) -> int:
    """The calendar day `moment` falls on in `zone`, as days since 1970-01-01: a daily cap that resets at
    the company's midnight, not at UTC's."""
    return day_number(moment.astimezone(zone))


def company_day(settings: Settings, moment: datetime) -> int:
    """The day the daily caps (reveals, look-ups) count `moment` in: the company's, the working hours' time
    zone's (`local_day`)."""
    return local_day(moment, settings.working_hours.zone)


def period_of(scope: str, moment: datetime, window_days: int) -> int:
    return day_number(moment) // window_days if scope == CUSTOMER else day_number(moment)


def spend(session: Session, user_id: int, scope: str, target: int, period: int, limit: int) -> int | None:
    """Spend one unit if fewer than `limit` are spent; the count after spending, or None if none is left."""
    key = (RevealUsage.user_id == user_id, RevealUsage.scope == scope, RevealUsage.target == target,
           RevealUsage.period == period)
    statement = (update(RevealUsage).where(*key, RevealUsage.used < limit).values(used=RevealUsage.used + 1)
                 .returning(RevealUsage.used).execution_options(synchronize_session=False))
    spent = session.execute(statement).scalar_one_or_none()
    if spent is not None:
        return spent
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(RevealUsage).values(user_id=user_id, scope=scope, target=target, period=period, used=0)
                    .on_conflict_do_nothing())
    return session.execute(statement).scalar_one_or_none()


def used(session: Session, user_id: int, scope: str, target: int, period: int) -> int:
    return session.scalar(select(RevealUsage.used).where(
        RevealUsage.user_id == user_id, RevealUsage.scope == scope, RevealUsage.target == target,
        RevealUsage.period == period)) or 0
