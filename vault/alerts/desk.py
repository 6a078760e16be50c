"""The alerts desk: auditors and approvers list, acknowledge and resolve alerts (never their own)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault import policy
from vault.alerts.raising import RULE_TITLES
from vault.core.actions import Action
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.core.errors import NotFound, ServiceError
from vault.db.locking import locked
from vault.models import SEVERITY_RANK, Alert, AlertStatus, Severity, User, utcnow
from vault.runtime import Runtime

PAGE_SIZE = 50
MAX_ID = 2**31 - 1  # user ids are 32-bit columns; PostgreSQL refuses to compare with a larger number
STATUS_FILTERS = ("active", "open", "acknowledged", "resolved", "all")


@dataclass(frozen=True)
class AlertPage:
    alerts: list[Alert]
    total: int
    page: int
    pages: int


def list_alerts(session: Session, actor: User, *, status: str = "active", severity: str | None = None,
                rule: str | None = None, user_id: int | None = None, since: datetime | None = None,
                page: int = 1) -> AlertPage:
    """Alerts the actor may see, newest first; "active" means open or acknowledged.

    Raises:
        policy.Denied: the role gate (auditors and approvers).
        ServiceError: an unknown status or severity filter.
    """
    policy.require(actor, Action.ALERT_READ)
    query = select(Alert).where(Alert.user_id != actor.id)  # the object rule, as a query
    if status not in STATUS_FILTERS:
        raise ServiceError("invalid_filter", _l("The status filter is one of %(value)s.",
                                                value=", ".join(STATUS_FILTERS)))
    if status == "active":
        query = query.where(Alert.status.in_([AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED]))
    elif status != "all":
        query = query.where(Alert.status == AlertStatus(status))
    if severity:
        if severity not in {s.value for s in Severity}:
            raise ServiceError("invalid_filter", _l("The severity filter is low, medium or high."))
        query = query.where(Alert.severity == severity)
    if rule:
        if rule not in RULE_TITLES:
            raise ServiceError("invalid_filter", _l("The rule filter is one of %(value)s.",
                                                    value=", ".join(RULE_TITLES)))
        query = query.where(Alert.rule == rule)
    if user_id is not None:
        if not 0 < user_id <= MAX_ID:
            raise ServiceError("invalid_filter", _l("The person filter is a user id."))
        query = query.where(Alert.user_id == user_id)
    if since is not None:
        query = query.where(Alert.last_seen_at >= since)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages)
    alerts = list(session.scalars(query.order_by(Alert.last_seen_at.desc(), Alert.id.desc())
                                  .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)))
    return AlertPage(alerts=alerts, total=total, page=page, pages=pages)


def get_alert(session: Session, actor: User, alert_id: int) -> Alert:
    """The alert if the actor may read it; NotFound otherwise (their own alerts included)."""
    alert = session.get(Alert, alert_id)
    if alert is None or not policy.authorize(actor, Action.ALERT_READ, alert):
        raise NotFound("alert")
    return alert


def read_alert(rt: Runtime, session: Session, actor: User, alert_id: int, *, shown: str,
               ctx: AccessContext, again: bool = False) -> Alert:
    """`get_alert`, recorded: an alert's evidence names customers and files (an auditor's only sight of
    them), so reading it is an `alert:read` about its person, with the customers and files it names.
    `again`: the page shown once more with its resolution refused names them a second time, a read of its
    own, marked so the log tells a retry from a second visit.

    Raises:
        NotFound: as `get_alert`.
    """
    alert = get_alert(session, actor, alert_id)
    evidence = alert.evidence
    detail: dict[str, object] = {"alert_id": alert.id, "shown": shown, "customers": evidence.get("customers", []),
                                 "documents": evidence.get("documents", [])}
    if again:
        detail["again"] = True
    rt.audit.record(session, action=AuditAction.ALERT_READ, actor=actor, ctx=ctx, subject_user_id=alert.user_id,
                    detail=detail)
    return alert


def count_open(session: Session, actor: User) -> dict[str, int]:
    rows = session.execute(
        select(Alert.severity, func.count()).where(Alert.status == AlertStatus.OPEN, Alert.user_id != actor.id)
        .group_by(Alert.severity)
    ).all()
    counts = {str(severity): int(n) for severity, n in rows}
    return dict(sorted(counts.items(), key=lambda kv: -SEVERITY_RANK[Severity(kv[0])]))


def acknowledge(rt: Runtime, session: Session, actor: User, alert: Alert, *, ctx: AccessContext) -> Alert:
    """Someone is looking into it: the alert stays on the list, marked as taken.

    Raises:
        policy.Denied: `own_alert`, `alert_resolved`, `alert_acknowledged`.
    """
    locked(session, Alert, alert.id)  # a decision made meanwhile is seen (`vault.db.locking`)
    policy.require(actor, Action.ALERT_MANAGE, alert, step="acknowledge",
                   audit={"subject_user_id": alert.user_id})
    alert.status = AlertStatus.ACKNOWLEDGED
    alert.acknowledged_by_id = actor.id
    alert.acknowledged_at = utcnow()
    session.flush()
    rt.audit.record(session, action=AuditAction.ALERT_ACKNOWLEDGE, actor=actor, ctx=ctx, subject_user_id=alert.user_id,
                    detail={"alert_id": alert.id, "rule": alert.rule, "severity": str(alert.severity)})
    # A suspension of content access the alert caused stays (`viewer.access_suspended`): only its resolution
    # lifts it, and records `access:resume`.
    return alert


def resolve(rt: Runtime, session: Session, actor: User, alert: Alert, *, note: str, ctx: AccessContext) -> Alert:
    """Close the alert with what was found (the note is kept in the audit log too).

    Raises:
        policy.Denied: `own_alert`, `alert_resolved`, `note_required`.
    """
    note = (note or "").strip()
    locked(session, Alert, alert.id)
    policy.require(actor, Action.ALERT_MANAGE, alert, step="resolve", note=note,
                   audit={"subject_user_id": alert.user_id})
    alert.status = AlertStatus.RESOLVED
    alert.resolved_by_id = actor.id
    alert.resolved_at = utcnow()
    alert.resolution_note = note[:2000]
    if alert.acknowledged_at is None:
        alert.acknowledged_by_id, alert.acknowledged_at = actor.id, alert.resolved_at
    session.flush()
    rt.audit.record(session, action=AuditAction.ALERT_RESOLVE, actor=actor, ctx=ctx, subject_user_id=alert.user_id,
                    reason_text=alert.resolution_note,
                    detail={"alert_id": alert.id, "rule": alert.rule, "severity": str(alert.severity)})
    if alert.evidence.get("access_suspended"):
        # Resolving the alert is what lifts the suspension of content access it caused.
        rt.audit.record(session, action=AuditAction.ACCESS_RESUME, actor=actor, ctx=ctx, subject_user_id=alert.user_id,
                        reason_text=alert.resolution_note, detail={"alert_id": alert.id, "rule": alert.rule})
    return alert


def lift_suspension(rt: Runtime, session: Session, actor: User, alert: Alert, *, ctx: AccessContext) -> User:
    """Give the person back their access to customer records (an approver, after looking into the alert).

    Raises:
        policy.Denied: `own_alert`, `not_permitted` (not an approver), `not_suspended`.
    """
    locked(session, Alert, alert.id)
    policy.require(actor, Action.ALERT_MANAGE, alert, step="lift", audit={"subject_user_id": alert.user_id})
    person = alert.user
    person.customers_suspended_at = None
    session.flush()
    rt.audit.record(session, action=AuditAction.CUSTOMER_ACCESS_RESTORE, actor=actor, ctx=ctx,
                    subject_user_id=person.id, detail={"alert_id": alert.id, "rule": alert.rule})
    return person
