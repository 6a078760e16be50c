"""Views per day and per person, and a person's day-by-day strip, counted by the database and drawn
as plain SVG geometry.

The page's Content-Security-Policy forbids scripts and inline styles, so the charts are server-side
SVG: bars as <rect> elements with presentation attributes, sized here, drawn by a template macro,
with axes, labels and totals so that a chart can be read without hovering.

A view counts once it was opened and not given back: a view refunded because it never delivered a
byte (its content URL expired unused, its loan ended first) is not a view anyone saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from babel.dates import format_skeleton
from flask_babel import get_locale
from sqlalchemy import BigInteger, ColumnElement, and_, case, cast, exists, func, not_, or_, select
from sqlalchemy.orm import Session

from vault.audit.filters import AuditFilter
from vault.core.actions import Action
from vault.core.audit_actions import AuditAction
from vault.models import AuditEvent, DocumentView, ViewStatus, utcnow

# "View opened" is the event counted as a view; refusals and content deliveries are other events.
VIEW_ACTION = str(Action.DOCUMENT_VIEW)
ALERT_ACTION = str(AuditAction.ALERT_RAISE)
DEFAULT_DAYS = 30
MAX_DAYS = 92
TOP_USERS = 12
# Room around the plot for the axis labels (SVG user units).
LEFT, RIGHT, BOTTOM = 44, 24, 34


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Tick:
    """An axis label at `at` (x for the day axis, y for the count axis)."""

    at: float
    label: str


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    width: int
    height: int  # of the plot area; the axis labels take BOTTOM more
    maximum: int
    first_label: str = ""
    last_label: str = ""
    total: int = 0
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    left: int = LEFT

    @property
    def empty(self) -> bool:
        return self.maximum == 0


def _day(dialect: str):  # type: ignore[no-untyped-def]
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", AuditEvent.ts), "YYYY-MM-DD")
    return func.substr(AuditEvent.ts, 1, 10)


def view_filters(filters: AuditFilter) -> AuditFilter:
    """The same selection, narrowed to views opened (whatever action the table shows)."""
    return replace(filters, action=VIEW_ACTION, outcome="allowed")


def _view_id(dialect: str) -> Any:
    """The view a "view opened" record names in its detail (`view_id`), read by the database.

    Read without parsing, or only where the text is valid JSON: a record someone damaged in the
    database must show up in verification, not break the auditor's charts.
    """
    if dialect == "postgresql":
        # The detail is canonical JSON (no spaces), so the number follows the key directly.
        return cast(func.substring(AuditEvent.detail, '"view_id":([0-9]{1,18})[,}]'), BigInteger)
    return case((func.json_valid(AuditEvent.detail) == 1, func.json_extract(AuditEvent.detail, "$.view_id")),
                else_=None)


def not_refunded(dialect: str) -> ColumnElement[bool]:
    """Leave out the views whose unit was given back (refunded views delivered nothing)."""
    refunded = exists().where(DocumentView.id == _view_id(dialect), DocumentView.status == ViewStatus.REFUNDED)
    return not_(refunded)


def view_conditions(filters: AuditFilter, dialect: str) -> list[ColumnElement[bool]]:
    """The records counted as views within `filters`: opened, allowed and not refunded."""
    return [*view_filters(filters).conditions(), not_refunded(dialect)]


def day_range(filters: AuditFilter, today: date | None = None) -> tuple[date, date]:
    """The days to draw: the filter's period, or the last 30 days; at most 92 days (the latest)."""
    today = today or utcnow().date()
    last = (filters.until - timedelta(microseconds=1)).date() if filters.until else today
    first = filters.since.date() if filters.since else last - timedelta(days=DEFAULT_DAYS - 1)
    if (last - first).days + 1 > MAX_DAYS:
        first = last - timedelta(days=MAX_DAYS - 1)
    return first, last


def views_per_day(session: Session, filters: AuditFilter, today: date | None = None) -> Chart:
    first, last = day_range(filters, today)
    bounded = replace(view_filters(filters),
                      since=max(filters.since, _midnight(first)) if filters.since else _midnight(first),
                      until=min(filters.until, _midnight(last + timedelta(days=1))) if filters.until
                      else _midnight(last + timedelta(days=1)))
    dialect = session.get_bind().dialect.name
    day = _day(dialect)
    counts = dict(session.execute(
        select(day, func.count()).where(*bounded.conditions(), not_refunded(dialect)).group_by(day)
    ).all())
    days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    return columns([(d, int(counts.get(d, 0))) for d in days])


def views_per_user(session: Session, filters: AuditFilter, today: date | None = None) -> Chart:
    first, last = day_range(filters, today)
    bounded = replace(view_filters(filters),
                      since=filters.since or _midnight(first),
                      until=filters.until or _midnight(last + timedelta(days=1)))
    count = func.count().label("n")
    found = session.execute(
        select(AuditEvent.actor_name, count).where(*bounded.conditions(),
                                                    not_refunded(session.get_bind().dialect.name))
        .group_by(AuditEvent.actor_name).order_by(count.desc(), AuditEvent.actor_name).limit(TOP_USERS)
    ).all()
    return rows_chart([(name or "?", int(n)) for name, n in found])


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def columns(data: list[tuple[str, int]], *, width: int = 720, height: int = 160) -> Chart:
    """Vertical bars, one per label, left to right, right of a count axis (0, half, maximum) and above
    a day axis labelled about once a week."""
    maximum = max((v for _, v in data), default=0)
    plot = width - LEFT - RIGHT
    step = plot / max(1, len(data))
    bars = []
    for i, (label, value) in enumerate(data):
        h = 0.0 if maximum == 0 else round(value / maximum * (height - 4), 1)
        bars.append(Bar(label, value, round(LEFT + i * step + 1, 1), round(height - h, 1),
                        round(max(1.0, step - 2), 1), h))
    every = max(1, -(-len(data) // 6))
    x_ticks = [Tick(round(LEFT + i * step + step / 2, 1), _short_day(label))
               for i, (label, _v) in enumerate(data) if i % every == 0 or i == len(data) - 1]
    if len(x_ticks) > 1 and x_ticks[-1].at - x_ticks[-2].at < 60:
        del x_ticks[-2]  # the last day is always labelled; drop the tick it would overlap
    y_ticks = [Tick(round(height - value / maximum * (height - 4), 1), str(value))
               for value in sorted({0, maximum // 2, maximum})] if maximum else []
    return Chart(bars, width, height, maximum, data[0][0] if data else "", data[-1][0] if data else "",
                 total=sum(v for _, v in data), x_ticks=x_ticks, y_ticks=y_ticks)


def _short_day(label: str) -> str:
    """"2026-03-09" → "Mar 9", "9 мар.", "3月9日": short enough for a tick, unambiguous within a 92-day
    window, written the reader's way (English when drawn outside a request)."""
    try:
        day = date.fromisoformat(label)
    except ValueError:
        return label
    return format_skeleton("MMMd", day, locale=str(get_locale() or "en"))


def rows_chart(data: list[tuple[str, int]], *, width: int = 720, row: int = 22) -> Chart:
    """Horizontal bars, one per label, top to bottom; the left 180 units hold the labels."""
    maximum = max((v for _, v in data), default=0)
    span = width - 240
    bars = []
    for i, (label, value) in enumerate(data):
        w = 0.0 if maximum == 0 else round(value / maximum * span, 1)
        bars.append(Bar(label, value, 180.0, float(i * row + 3), w, float(row - 6)))
    return Chart(bars, width, max(row, len(data) * row), maximum, total=sum(v for _, v in data))


# -- one person's days ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StripRow:
    """One line of the strip: a kind of event and its count per day."""

    key: str  # "views" | "refusals" | "alerts"
    counts: list[int]

    @property
    def total(self) -> int:
        return sum(self.counts)

    @property
    def maximum(self) -> int:
        return max(self.counts, default=0)


@dataclass(frozen=True)
class Strip:
    """A person's days side by side: views they opened, refusals they met, alerts raised about them."""

    days: list[date]
    rows: list[StripRow]
    cell: int = 20
    label_width: int = 90

    @property
    def width(self) -> int:
        return self.label_width + self.cell * len(self.days) + 50

    @property
    def height(self) -> int:
        return self.cell * len(self.rows) + 30

    @property
    def empty(self) -> bool:
        return all(row.total == 0 for row in self.rows)

    def x(self, index: int) -> int:
        return self.label_width + index * self.cell

    def ticks(self) -> list[Tick]:
        """Day labels under the strip: each Monday, and the first day unless a Monday follows closely."""
        shown = [i for i, day in enumerate(self.days) if day.weekday() == 0]
        if not shown or shown[0] >= 3:
            shown.insert(0, 0)
        return [Tick(self.x(i) + self.cell / 2, _short_day(self.days[i].isoformat())) for i in shown]


def person_strip(session: Session, user_id: int, filters: AuditFilter, today: date | None = None) -> Strip:
    """Counts per day for one person within the filters' period (30 days by default, 92 at most).

    Views are theirs (they opened them; refunded ones left out); refusals are any act of theirs that
    was denied; alerts are those raised about them.
    """
    first, last = day_range(filters, today)
    since, until = _midnight(first), _midnight(last + timedelta(days=1))
    if filters.since is not None:
        since = max(since, filters.since)
    if filters.until is not None:
        until = min(until, filters.until)
    dialect = session.get_bind().dialect.name
    e = AuditEvent
    day = _day(dialect)
    is_view = and_(e.actor_id == user_id, e.action == VIEW_ACTION, e.outcome == "allowed", not_refunded(dialect))
    is_refusal = and_(e.actor_id == user_id, e.outcome == "denied")
    is_alert = and_(e.subject_user_id == user_id, e.action == ALERT_ACTION)
    counted = select(
        day, func.sum(case((is_view, 1), else_=0)), func.sum(case((is_refusal, 1), else_=0)),
        func.sum(case((is_alert, 1), else_=0)),
    ).where(e.ts >= since, e.ts < until, or_(e.actor_id == user_id, e.subject_user_id == user_id)).group_by(day)
    found = {row[0]: (int(row[1] or 0), int(row[2] or 0), int(row[3] or 0)) for row in session.execute(counted)}
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    per_day = [found.get(d.isoformat(), (0, 0, 0)) for d in days]
    rows = [StripRow(key, [counts[i] for counts in per_day]) for i, key in enumerate(("views", "refusals", "alerts"))]
    return Strip(days, rows)
