"""Raising an alert: one per person, rule and window, with its evidence, audit record, webhook and,
when configured, the suspension of the person's loans.

A later trigger in the same window adds its evidence to the existing alert (and may raise its
severity) instead of raising another: forty views in an evening are one alert with forty documents,
not forty alerts nobody reads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Text, bindparam, case, cast, func, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from vault.alerts import webhook
from vault.core import events
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.core.languages import N_
from vault.models import SEVERITY_RANK, Alert, AlertStatus, Loan, LoanStatus, Severity, User, utcnow
from vault.models.alerts import evidence_of, evidence_text, params_text
from vault.runtime import Runtime
from vault.services.departures import revoke_by_system

log = logging.getLogger(__name__)

# Evidence lists are capped: the alert points at the audit trail, it does not copy it.
MAX_EVIDENCE_ITEMS = 100
SUSPEND_REASON = "suspended by early warning"
SYSTEM_CTX = AccessContext(named_place="system", user_agent="vault early warning")

RULE_TITLES: dict[str, str] = {
    "many_customers": N_("Many customers' files in 24 hours"),
    "volume_spike": N_("Views far above the person's usual"),
    "outside_hours": N_("Access outside working hours"),
    "new_place": N_("Access from a new place"),
    "probing": N_("Repeated refused attempts"),
    "departing_access": N_("Important file accessed by a person on notice"),
    "quotas_exhausted": N_("Several view quotas used up in a day"),
    "notice": N_("Notice given"),
    "directory_sweep": N_("Many customer records read or looked up"),
    "outside_book": N_("Customer outside their book read by a person on notice"),
    "outside_book_reveals": N_("Contacts of customers outside their book revealed"),
    "crafted_file": N_("Upload that made the drawing of its pages misbehave"),
}
# Rules about the customer directory: with auto_suspend, a high-severity one also suspends the person's
# access to customer records (not only their loans).
DIRECTORY_RULES = frozenset({"directory_sweep", "outside_book", "outside_book_reveals"})


@dataclass
class Finding:
    """What a rule found: the alert to raise, or to add to if one exists for the window."""

    rule: str
    severity: Severity
    window_key: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    # The summary's sentence id and values (vault/core/alert_wording.py): how it is shown in the
    # reader's language. The English `summary` stays the record.
    params: dict[str, Any] | None = None


def merge_evidence(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Lists are united (first seen first, capped); other values take the latest."""
    out = dict(old)
    for key, value in new.items():
        if isinstance(value, list):
            merged = list(out.get(key) or [])
            for item in value:
                if item not in merged and len(merged) < MAX_EVIDENCE_ITEMS:
                    merged.append(item)
            out[key] = merged
        else:
            out[key] = value
    return out


# Asked for every finding (a busy evening adds to one alert many times): built once.
_EXISTING = (
    select(Alert).where(Alert.user_id == bindparam("user"), Alert.rule == bindparam("rule"),
                        Alert.window_key == bindparam("window"))
    .with_for_update().execution_options(populate_existing=True)
)


# In Core, on the table (the ORM's bulk UPDATE costs several times the statement's own Python); a loaded
# copy of the alert is expired instead.
_ALERTS = Alert.__table__


_NUL_ESCAPE = "\\u0000"  # how JSON text writes a NUL character, which PostgreSQL's jsonb refuses


# The common case in one statement: a finding that adds to its window's alert without raising its severity
# (a bulk reader's every view) counts itself, locks the row, takes the finding's single values (counts,
# thresholds) into the evidence and reads the evidence back, in one UPDATE per severity (the alert's
# severity at or above the finding's). The evidence is written again only when the finding adds to its
# lists, which are capped: a busy window's evidence soon stops growing, while its counts change with
# every finding (a volume spike's "value" is the day's views).
def _with_values(dialect: str) -> ColumnElement[str]:
    """The stored evidence with the finding's single values ("values", a JSON object) put in, by the
    database. Its JSON is written in the database's own form: the evidence is compared parsed."""
    stored = func.coalesce(func.nullif(_ALERTS.c.evidence_json, ""), "{}")
    values = bindparam("values", type_=Text)
    if dialect == "postgresql":
        # jsonb refuses the escape of a NUL character, which JSON text may hold: such evidence is left
        # as it is here, and the general merge below writes it.
        merged = cast(cast(stored, JSONB).op("||")(cast(values, JSONB)), Text)
        return case((func.strpos(stored, literal(_NUL_ESCAPE)) > 0, stored), else_=merged)
    return func.json_patch(stored, values)


_COUNTED = {
    (dialect, severity): (
        update(_ALERTS)
        .where(_ALERTS.c.user_id == bindparam("of_user"), _ALERTS.c.rule == bindparam("of_rule"),
               _ALERTS.c.window_key == bindparam("of_window"),
               _ALERTS.c.severity.in_([str(kept) for kept, rank in SEVERITY_RANK.items()
                                       if rank >= SEVERITY_RANK[severity]]))
        .values(occurrences=_ALERTS.c.occurrences + 1, last_seen_at=bindparam("seen"),
                summary=bindparam("new_summary"), summary_params=bindparam("new_params"),
                evidence_json=_with_values(dialect))
        .returning(_ALERTS.c.id, _ALERTS.c.evidence_json)
    )
    for dialect in ("postgresql", "sqlite")
    for severity in SEVERITY_RANK
}
_EVIDENCE = update(_ALERTS).where(_ALERTS.c.id == bindparam("alert")).values(evidence_json=bindparam("evidence"))


def _existing(session: Session, user_id: int, finding: Finding) -> Alert | None:
    return session.scalar(_EXISTING, {"user": user_id, "rule": finding.rule, "window": finding.window_key})


def raise_alert(rt: Runtime, session: Session, user: User, finding: Finding, *, now: datetime | None = None) -> int:
    """Raise (or add to) the alert for `finding`, in the caller's transaction; returns the alert's id."""
    now = now or utcnow()
    # Single values that are not null (SQLite's merge would take a null for "remove the key").
    values = {key: value for key, value in finding.evidence.items() if not isinstance(value, list | dict)
              and value is not None}
    counted = session.execute(_COUNTED[rt.db.dialect, finding.severity], {
        "of_user": user.id, "of_rule": finding.rule, "of_window": finding.window_key, "seen": now,
        "new_summary": finding.summary, "new_params": params_text(finding.params),
        "values": evidence_text(values)}).first()
    if counted is not None:
        stored = evidence_of(counted.evidence_json)
        evidence = merge_evidence(stored, finding.evidence)
        if evidence != stored:
            session.execute(_EVIDENCE, {"alert": counted.id, "evidence": evidence_text(evidence)})
        loaded = session.identity_map.get(identity_key(Alert, counted.id))
        if loaded is not None:
            session.expire(loaded)  # read again when next used, not trusted as it was
        return counted.id
    # No alert yet, or one the finding escalates (or one another request created since): the general way.
    alert = _existing(session, user.id, finding)
    if alert is None:
        try:
            # A savepoint, so that losing a race for the same window (PostgreSQL: another request
            # inserted it first) costs this insert only, not the caller's transaction.
            with session.begin_nested():
                alert = Alert(user_id=user.id, rule=finding.rule, window_key=finding.window_key,
                              severity=finding.severity, status=AlertStatus.OPEN, summary=finding.summary,
                              occurrences=1, created_at=now, last_seen_at=now)
                alert.evidence = merge_evidence({}, finding.evidence)
                alert.params = finding.params
                session.add(alert)
        except IntegrityError:
            alert = _existing(session, user.id, finding)
            if alert is None:
                raise
        else:
            rt.audit.record(session, action=AuditAction.ALERT_RAISE, actor=None, ctx=SYSTEM_CTX,
                            subject_user_id=user.id,
                            detail={"alert_id": alert.id, "rule": alert.rule, "severity": str(alert.severity),
                                    "window": alert.window_key})
            _announce(rt, session, alert, user, "alert.raised")
            _after_high(rt, session, alert, user, None)
            return alert.id
    previous = Severity(alert.severity)
    alert.evidence = merge_evidence(alert.evidence, finding.evidence)
    alert.occurrences += 1
    alert.last_seen_at = now
    if SEVERITY_RANK[finding.severity] > SEVERITY_RANK[previous]:
        alert.severity = finding.severity
        # A resolved alert stays resolved for its window (someone looked and decided; the next window
        # raises anew): its severity still changes, so that is recorded, but nobody is told again.
        resolved = alert.status == AlertStatus.RESOLVED
        rt.audit.record(session, action=AuditAction.ALERT_ESCALATE, actor=None, ctx=SYSTEM_CTX,
                        subject_user_id=user.id,
                        detail={"alert_id": alert.id, "rule": alert.rule, "severity": str(alert.severity),
                                "previous": str(previous), **({"resolved": True} if resolved else {})})
        if not resolved:
            _announce(rt, session, alert, user, "alert.escalated")
            _after_high(rt, session, alert, user, previous)
    alert.summary = finding.summary
    alert.params = finding.params
    session.flush()
    return alert.id


def payload(alert: Alert, user: User, event: str) -> dict[str, Any]:
    return {
        "event": event,
        "alert_id": alert.id,
        "rule": alert.rule,
        "title": RULE_TITLES.get(alert.rule, alert.rule),
        "severity": str(alert.severity),
        "status": str(alert.status),
        "summary": alert.summary,
        "user": {"id": user.id, "username": user.username, "status": str(user.status)},
        "window": alert.window_key,
        "created_at": alert.created_at.isoformat(),
    }


def _announce(rt: Runtime, session: Session, alert: Alert, user: User, event: str) -> None:
    events.emit("alert.announced", session=session, rt=rt, alert=alert, user=user, announcement=event)
    url = rt.settings.webhook_url
    if not url:
        return
    cfg = rt.settings.alerts
    webhook.send_after_commit(session, webhook.Message(
        url=url, payload=payload(alert, user, event), attempts=cfg.webhook_attempts,
        backoff=cfg.webhook_backoff_seconds, timeout=cfg.webhook_timeout_seconds,
    ))


def _after_high(rt: Runtime, session: Session, alert: Alert, user: User, previous: Severity | None) -> None:
    if alert.severity != Severity.HIGH or previous == Severity.HIGH:
        return
    if not rt.settings.alerts.auto_suspend:
        return
    suspended = suspend_loans(rt, session, user, alert=alert)
    # All content access stops too (files needing no loan included) until the alert is resolved.
    alert.evidence = merge_evidence(alert.evidence, {"suspended_loans": suspended, "access_suspended": True})
    rt.audit.record(session, action=AuditAction.ACCESS_SUSPEND, actor=None, ctx=SYSTEM_CTX, subject_user_id=user.id,
                    detail={"alert_id": alert.id, "rule": alert.rule, "suspended_loans": suspended})
    if alert.rule in DIRECTORY_RULES and user.customers_suspended_at is None:
        user.customers_suspended_at = utcnow()
        rt.audit.record(session, action=AuditAction.CUSTOMER_ACCESS_SUSPEND, actor=None, ctx=SYSTEM_CTX,
                        subject_user_id=user.id, detail={"alert_id": alert.id, "rule": alert.rule})
        events.emit("decider.lost", session=session, rt=rt, user=user, roles=user.role_set)
        alert.evidence = merge_evidence(alert.evidence, {"customer_access_suspended": True})


def suspend_loans(rt: Runtime, session: Session, user: User, *, alert: Alert) -> list[int]:
    """Revoke the person's approved and active loans, each audited, naming the alert."""
    loans = session.scalars(
        select(Loan).where(Loan.borrower_id == user.id, Loan.status.in_([LoanStatus.APPROVED, LoanStatus.ACTIVE]))
        .order_by(Loan.id)
    ).all()
    revoked = []
    for loan in loans:
        if revoke_by_system(rt, session, loan, reason=SUSPEND_REASON, ctx=SYSTEM_CTX,
                            detail={"alert_id": alert.id, "rule": alert.rule}):
            revoked.append(loan.id)
    return revoked
