"""What the early-warning rules count about a view, read in one statement before any rule runs.

The view rules run after every view, so what they count is asked at once, by a statement built once and
bound by parameter: building a statement costs more than SQLite takes to run it, and on PostgreSQL every
statement is a round trip. A person's views of the last day are read once (through the index on person
and time) for both counts, and the customers are counted over the distinct documents of those views:
joining each view to its document made a bulk reader's every further view cost more (3,000 views in a
day: 2.2 ms in the database for that count alone, 0.5 ms this way).

On PostgreSQL the claim on the view's evaluation (`vault.services.view_alerts`) is the same round trip:
a data-modifying CTE in front of the read, whose one row says whether this unit claimed the view. The
read runs either way; a view another unit claimed first is then not evaluated.

Here, below the rules (`vault.alerts.rules`), so that the unit claiming a view can read its facts too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import CTE, Update, bindparam, distinct, func, select
from sqlalchemy.orm import Session

from vault.config.policy_file import WorkingHours
from vault.models import Document, DocumentView

PLACE_KINDS = ("address", "named place", "declared place")

MINE = DocumentView.user_id == bindparam("user")
_RECENT = (select(DocumentView.document_id, DocumentView.opened_at)
           .where(MINE, DocumentView.opened_at >= bindparam("since")).cte("recent"))
_EARLIER = select(DocumentView.id).where(MINE, DocumentView.id != bindparam("view"))
# A place the view does not have is bound as NULL, which matches nothing, and its answer is not asked.
_COUNTS = (
    select(func.count(distinct(Document.customer_id))).where(Document.id.in_(
        select(_RECENT.c.document_id).where(_RECENT.c.opened_at > bindparam("day_ago")).distinct()
    )).scalar_subquery(),
    select(func.count()).select_from(_RECENT).where(_RECENT.c.opened_at >= bindparam("midnight")).scalar_subquery(),
    _EARLIER.exists(),
    _EARLIER.where(DocumentView.client_addr == bindparam("address")).exists(),
    _EARLIER.where(DocumentView.named_place == bindparam("named")).exists(),
    _EARLIER.where(func.lower(func.trim(DocumentView.declared_place)) == bindparam("declared")).exists(),
)
_FACTS = select(*_COUNTS)


def midnight(hours: WorkingHours, day: date) -> datetime:
    """The start of a local calendar day (its UTC offset taken on that day, across clock changes)."""
    return datetime.combine(day, time(0), tzinfo=hours.zone)


def claiming(claim: Update) -> Any:
    """The facts statement behind a claim (an UPDATE of the view bound by "view"), for PostgreSQL: its
    first column counts the rows the claim changed (1: claimed here), the facts follow."""
    claimed: CTE = claim.returning(DocumentView.__table__.c.id).cte("claimed")
    return select(select(func.count()).select_from(claimed).scalar_subquery(), *_COUNTS).add_cte(claimed)


@dataclass(frozen=True)
class ViewFacts:
    """What the rules on a view count."""

    customers_24h: int  # distinct customers whose files the person opened in the last 24 hours
    views_today: int  # the person's views since local midnight
    any_earlier: bool  # the person had a view before this one
    seen: dict[str, bool]  # per kind of place ("address", ...): seen in an earlier view

    @staticmethod
    def parameters(hours: WorkingHours, view: DocumentView) -> dict[str, Any]:
        """The statement's parameters for `view` (committed, so counted among the day's views)."""
        declared = (view.declared_place or "").strip()
        day_ago = view.opened_at - timedelta(hours=24)
        today = midnight(hours, hours.local(view.opened_at).date())  # before `day_ago` on a 25-hour day
        return {"user": view.user_id, "view": view.id, "day_ago": day_ago, "midnight": today,
                "since": min(day_ago, today), "address": view.client_addr or None,
                "named": view.named_place or None, "declared": declared.lower() or None}

    @classmethod
    def of_row(cls, row: Any) -> ViewFacts:
        return cls(int(row[0] or 0), int(row[1] or 0), bool(row[2]),
                   dict(zip(PLACE_KINDS, (bool(found) for found in row[3:]), strict=True)))

    @classmethod
    def read(cls, session: Session, hours: WorkingHours, view: DocumentView) -> ViewFacts:
        return cls.of_row(session.execute(_FACTS, cls.parameters(hours, view)).one())
