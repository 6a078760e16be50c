"""What the early-warning rules count about a view, read in one statement before any rule runs.

The view rules run after every view, so what they count is asked at once, by a statement built once and
bound by parameter: building a statement costs more than SQLite takes to run it, and on PostgreSQL every
statement is a round trip. The counts (the person's views today, the customers of their last 24 hours)
come from the person's daily tallies (`ViewTally`): a row per customer and day, whatever the number of
views, so a bulk reader's every further view costs what their first did. Counted from the views table,
the 3,000th view of a day read the 2,999 before it (1.2 ms of the database's time for the customers
alone). Whether the person had earlier views, and from which places, are existence tests on the views
table, one index probe each (the indexes on the person with each kind of place).

A view is tallied in the unit that claims its evaluation (`vault.services.view_alerts`), once per view.
The facts are read without the view's own tally and the view is added to them here, so they are the
same whether the tally is written before the read (SQLite: a statement of its own, after the read) or
in the same statement (PostgreSQL, below).

On PostgreSQL the claim on the view's evaluation and its tally are the same round trip as the read:
data-modifying CTEs in front of it, whose first column says whether this unit claimed the view (a
statement's reads do not see its own CTEs' writes, so the read leaves the tally out, as on SQLite). The
read runs either way; a view another unit claimed first is then not evaluated, nor tallied.

Here, below the rules (`vault.alerts.rules`), so that the unit claiming a view can read its facts too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import CTE, Update, bindparam, delete, distinct, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from vault.config.policy_file import WorkingHours
from vault.models import DocumentView, ViewTally

PLACE_KINDS = ("address", "named place", "declared place")
# A local day lasts 23 to 25 hours: "the last 24 hours" reaches at most into the day before yesterday.
TALLY_DAYS_KEPT = 3

MINE = DocumentView.user_id == bindparam("user")
_TALLIES = ViewTally.__table__
_MY_TALLIES = _TALLIES.c.user_id == bindparam("user")
_EARLIER = select(DocumentView.id).where(MINE, DocumentView.id != bindparam("view"))
# A place the view does not have is bound as NULL, which matches nothing, and its answer is not asked.
_COUNTS = (
    # The other customers of the last 24 hours (the view's own is in them by definition).
    select(func.count(distinct(_TALLIES.c.customer_id))).where(
        _MY_TALLIES, _TALLIES.c.day >= bindparam("window_day"), _TALLIES.c.last_at > bindparam("day_ago"),
        _TALLIES.c.customer_id != bindparam("customer"),
    ).scalar_subquery(),
    # The day's other views.
    select(func.sum(_TALLIES.c.views)).where(_MY_TALLIES, _TALLIES.c.day == bindparam("today")).scalar_subquery(),
    _EARLIER.exists(),
    _EARLIER.where(DocumentView.client_addr == bindparam("address")).exists(),
    _EARLIER.where(DocumentView.named_place == bindparam("named")).exists(),
    _EARLIER.where(func.lower(func.trim(DocumentView.declared_place)) == bindparam("declared")).exists(),
)
FACTS = select(*_COUNTS)
# The customers of the last 24 hours, listed (for an alert's evidence) once the view is tallied.
RECENT_CUSTOMERS = (
    select(_TALLIES.c.customer_id).where(_MY_TALLIES, _TALLIES.c.day >= bindparam("window_day"),
                                         _TALLIES.c.last_at > bindparam("day_ago"))
    .distinct().order_by(_TALLIES.c.customer_id)
)


def _adding(insert: Any, dialect: str) -> Any:
    """`insert` (of a view's tally) made to add to the row of its person, day and customer if there is one."""
    latest = func.greatest if dialect == "postgresql" else func.max
    return insert.on_conflict_do_update(
        index_elements=[_TALLIES.c.user_id, _TALLIES.c.day, _TALLIES.c.customer_id],
        set_={"views": _TALLIES.c.views + 1, "last_at": latest(_TALLIES.c.last_at, insert.excluded.last_at)},
    )


_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
_TALLY = {dialect: _adding(insert(_TALLIES).values(
    user_id=bindparam("user"), day=bindparam("today"), customer_id=bindparam("customer"), views=1,
    last_at=bindparam("opened")), dialect) for dialect, insert in _INSERT.items()}
_PURGE = delete(_TALLIES).where(_TALLIES.c.day < bindparam("before"))


def midnight(hours: WorkingHours, day: date) -> datetime:
    """The start of a local calendar day (its UTC offset taken on that day, across clock changes)."""
    return datetime.combine(day, time(0), tzinfo=hours.zone)


def claiming(claim: Update) -> Any:
    """The facts statement behind a claim (an UPDATE of the view bound by "view"), for PostgreSQL: the
    view is tallied only if the claim changed it; the first column counts the rows the claim changed (1:
    claimed here), the facts follow."""
    claimed: CTE = claim.returning(DocumentView.__table__.c.id).cte("claimed")
    tallied = _adding(postgresql.insert(_TALLIES).from_select(
        ["user_id", "day", "customer_id", "views", "last_at"],
        select(*(bindparam(name, type_=column.type) for name, column in (
            ("user", _TALLIES.c.user_id), ("today", _TALLIES.c.day), ("customer", _TALLIES.c.customer_id),
        )), literal(1), bindparam("opened", type_=_TALLIES.c.last_at.type)).select_from(claimed),
    ), "postgresql").cte("tallied")
    return (select(select(func.count()).select_from(claimed).scalar_subquery(), *_COUNTS)
            .add_cte(claimed).add_cte(tallied))


def tally(session: Session, dialect: str, parameters: dict[str, Any]) -> None:
    """Add a view to its person's tally, in the unit that claimed its evaluation (after reading its facts).
    `parameters`: `ViewFacts.parameters` of the view."""
    session.execute(_TALLY[dialect], parameters)


def purge_tallies(session: Session, hours: WorkingHours, now: datetime) -> int:
    """Drop the tallies of days no window of the rules reaches any more; returns how many."""
    before = hours.local(now).date() - timedelta(days=TALLY_DAYS_KEPT - 1)
    return session.execute(_PURGE, {"before": before}).rowcount or 0


@dataclass(frozen=True)
class ViewFacts:
    """What the rules on a view count."""

    customers_24h: int  # distinct customers whose files the person opened in the last 24 hours
    views_today: int  # the person's views since local midnight
    any_earlier: bool  # the person had a view before this one
    seen: dict[str, bool]  # per kind of place ("address", ...): seen in an earlier view

    @staticmethod
    def parameters(hours: WorkingHours, view: DocumentView) -> dict[str, Any]:
        """The statement's parameters for `view`, whose `document` is loaded."""
        declared = (view.declared_place or "").strip()
        day_ago = view.opened_at - timedelta(hours=24)
        return {"user": view.user_id, "view": view.id, "customer": view.document.customer_id,
                "opened": view.opened_at, "today": hours.local(view.opened_at).date(), "day_ago": day_ago,
                "window_day": hours.local(day_ago).date(), "address": view.client_addr or None,
                "named": view.named_place or None, "declared": declared.lower() or None}

    @classmethod
    def of_row(cls, row: Any) -> ViewFacts:
        """The facts from the statement's row, which left the view itself out: it is added here."""
        return cls(int(row[0] or 0) + 1, int(row[1] or 0) + 1, bool(row[2]),
                   dict(zip(PLACE_KINDS, (bool(found) for found in row[3:]), strict=True)))
