"""Views per day and per person, counted by the database and drawn as plain SVG geometry.

The page's Content-Security-Policy forbids scripts and inline styles, so the charts are server-side
SVG: bars as <rect> elements with presentation attributes, sized here, drawn by a template macro.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault.audit.filters import AuditFilter
from vault.core.actions import Action
from vault.models import AuditEvent, utcnow

# "View opened" is the event counted as a view; refusals and content deliveries are other events.
VIEW_ACTION = str(Action.DOCUMENT_VIEW)
DEFAULT_DAYS = 30
MAX_DAYS = 92
TOP_USERS = 12


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    width: int
    height: int
    maximum: int
    first_label: str = ""
    last_label: str = ""

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
    day = _day(session.get_bind().dialect.name)
    counts = dict(session.execute(
        select(day, func.count()).where(*bounded.conditions()).group_by(day)
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
        select(AuditEvent.actor_name, count).where(*bounded.conditions())
        .group_by(AuditEvent.actor_name).order_by(count.desc(), AuditEvent.actor_name).limit(TOP_USERS)
    ).all()
    return rows_chart([(name or "?", int(n)) for name, n in found])


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def columns(data: list[tuple[str, int]], *, width: int = 720, height: int = 160) -> Chart:
    """Vertical bars, one per label, left to right."""
    maximum = max((v for _, v in data), default=0)
    step = width / max(1, len(data))
    bars = []
    for i, (label, value) in enumerate(data):
        h = 0.0 if maximum == 0 else round(value / maximum * (height - 4), 1)
        bars.append(Bar(label, value, round(i * step + 1, 1), round(height - h, 1), round(max(1.0, step - 2), 1), h))
    return Chart(bars, width, height, maximum, data[0][0] if data else "", data[-1][0] if data else "")


def rows_chart(data: list[tuple[str, int]], *, width: int = 720, row: int = 22) -> Chart:
    """Horizontal bars, one per label, top to bottom; the left 180 units hold the labels."""
    maximum = max((v for _, v in data), default=0)
    span = width - 240
    bars = []
    for i, (label, value) in enumerate(data):
        w = 0.0 if maximum == 0 else round(value / maximum * span, 1)
        bars.append(Bar(label, value, 180.0, float(i * row + 3), w, float(row - 6)))
    return Chart(bars, width, max(row, len(data) * row), maximum)
