"""Early-warning alerts, and the quota exhaustions one of their rules counts."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vault.models.base import Base, UTCDateTime, utcnow
from vault.models.documents import Document
from vault.models.users import User


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


SEVERITY_RANK = {Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3}


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Alert(Base):
    """One early-warning finding about one person, for one rule and one time window.

    The unique key (person, rule, window) is what keeps a burst of views from raising forty alerts:
    later triggers in the same window add their evidence to the existing alert.
    """

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("user_id", "rule", "window_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    rule: Mapped[str] = mapped_column(String(32), index=True)
    window_key: Mapped[str] = mapped_column(String(64))
    severity: Mapped[Severity] = mapped_column(String(8), index=True)
    status: Mapped[AlertStatus] = mapped_column(String(16), default=AlertStatus.OPEN, index=True)
    summary: Mapped[str] = mapped_column(Text)
    # JSON: the summary's sentence id and values, to show it in the reader's language (None: older alerts).
    summary_params: Mapped[str | None] = mapped_column(Text, nullable=True)
    evidence_json: Mapped[str] = mapped_column(Text, default="{}")
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution_note: Mapped[str | None] = mapped_column(Text)

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    acknowledged_by: Mapped[User | None] = relationship(foreign_keys=[acknowledged_by_id])
    resolved_by: Mapped[User | None] = relationship(foreign_keys=[resolved_by_id])

    @property
    def params(self) -> dict[str, Any] | None:
        return json.loads(self.summary_params) if self.summary_params else None

    @params.setter
    def params(self, value: dict[str, Any] | None) -> None:
        self.summary_params = params_text(value)

    @property
    def evidence(self) -> dict[str, Any]:
        return evidence_of(self.evidence_json)

    @evidence.setter
    def evidence(self, value: dict[str, Any]) -> None:
        self.evidence_json = evidence_text(value)


def evidence_of(text: str | None) -> dict[str, Any]:
    """An alert's evidence from its stored JSON."""
    return json.loads(text or "{}")


def evidence_text(value: dict[str, Any]) -> str:
    """The stored JSON of an alert's evidence (also written by an UPDATE that loads no object)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def params_text(value: dict[str, Any] | None) -> str | None:
    """The stored JSON of a summary's sentence id and values (None when there are none)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False) if value else None


class QuotaExhaustion(Base):
    """A person used up their views of a document: the history rule 7 ("several quotas in a day") counts."""

    __tablename__ = "quota_exhaustions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    document: Mapped[Document] = relationship()
