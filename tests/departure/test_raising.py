"""Adding to an alert: a finding that does not raise the severity is one locked read and one UPDATE.

A bulk reader sets off the same rules on every view, so adding to the window's alert is on the view's
path; it must still merge the evidence, count the occurrence, take the latest summary, leave no stale
copy of the alert in the session, and hand escalations to the full path (audit record, announcement).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import event, func, select

from vault.alerts.raising import MAX_EVIDENCE_ITEMS, Finding, raise_alert
from vault.models import Alert, AlertStatus, AuditEvent, MailOutbox, Severity


def _finding(severity: Severity, summary: str, views: list[int], places: list[str] | None = None) -> Finding:
    return Finding("outside_hours", severity, "2026-03-02T20", summary, {"views": views, "places": places or []},
                   params={"id": "outside_hours", "count": len(views)})


def test_adding_to_an_alert_merges_counts_and_takes_the_latest_summary(rt, company) -> None:
    with rt.db.session() as session:
        sam = company.user(session, "sam")
        first = raise_alert(rt, session, sam, _finding(Severity.LOW, "1 view after hours", [1], ["Home"]))
        loaded = session.get(Alert, first)  # an earlier copy in the same session
        assert loaded is not None and loaded.occurrences == 1
        statements: list[str] = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(rt.db.engine, "before_cursor_execute", listener)
        try:
            again = raise_alert(rt, session, sam, _finding(Severity.LOW, "2 views after hours", [2, 1], ["Café"]))
        finally:
            event.remove(rt.db.engine, "before_cursor_execute", listener)
        assert again == first
        assert len(statements) == 2, statements  # the locked read and the UPDATE, nothing loaded or flushed
        # The session's copy is not left as it was: it is read again when next used.
        assert (loaded.occurrences, loaded.summary) == (2, "2 views after hours")
        assert loaded.evidence == {"views": [1, 2], "places": ["Home", "Café"]}
        assert loaded.params == {"id": "outside_hours", "count": 2}
    with rt.db.session() as session:
        alert = session.get(Alert, first)
        assert (alert.severity, alert.occurrences) == (Severity.LOW, 2)
        assert alert.last_seen_at >= alert.created_at


def test_evidence_stays_capped_when_added_to(rt, company) -> None:
    with rt.db.session() as session:
        sam = company.user(session, "sam")
        alert_id = raise_alert(rt, session, sam, _finding(Severity.LOW, "many", list(range(MAX_EVIDENCE_ITEMS))))
        raise_alert(rt, session, sam, _finding(Severity.LOW, "more", list(range(MAX_EVIDENCE_ITEMS, 150))))
    with rt.db.session() as session:
        assert session.get(Alert, alert_id).evidence["views"] == list(range(MAX_EVIDENCE_ITEMS))


def test_a_higher_severity_takes_the_full_path_and_is_recorded(rt, company) -> None:
    def escalations() -> int:
        with rt.db.session() as session:
            return session.scalar(select(func.count()).select_from(AuditEvent)
                                  .where(AuditEvent.action == "alert:escalate"))

    with rt.db.session() as session:
        sam = company.user(session, "sam")
        alert_id = raise_alert(rt, session, sam, _finding(Severity.LOW, "a view after hours", [1]))
        raise_alert(rt, session, sam, _finding(Severity.LOW, "another", [2]))
    assert escalations() == 0
    with rt.db.session() as session:
        assert raise_alert(rt, session, company.user(session, "sam"),
                           _finding(Severity.MEDIUM, "ten views after hours", [3])) == alert_id
    assert escalations() == 1
    with rt.db.session() as session:
        alert: Any = session.get(Alert, alert_id)
        assert (alert.severity, alert.occurrences, alert.summary) == (Severity.MEDIUM, 3, "ten views after hours")
        assert alert.evidence["views"] == [1, 2, 3]
    with rt.db.session() as session:  # a lower finding later adds without lowering the severity
        raise_alert(rt, session, company.user(session, "sam"), _finding(Severity.LOW, "one more", [4]))
    with rt.db.session() as session:
        alert = session.get(Alert, alert_id)
        assert (alert.severity, alert.occurrences) == (Severity.MEDIUM, 4)


def test_a_resolved_alert_escalated_by_a_new_finding_records_it_and_tells_nobody(rt, company) -> None:
    """Its severity changed with no record: someone reading the log could not tell why it stood higher."""
    with rt.db.session() as session:
        alert_id = raise_alert(rt, session, company.user(session, "sam"), _finding(Severity.LOW, "after hours", [1]))
    with rt.db.session() as session:
        session.get(Alert, alert_id).status = AlertStatus.RESOLVED
    with rt.db.session() as session:
        raise_alert(rt, session, company.user(session, "sam"), _finding(Severity.HIGH, "many after hours", [2]))
    with rt.db.session() as session:
        alert = session.get(Alert, alert_id)
        assert (alert.status, alert.severity) == (AlertStatus.RESOLVED, Severity.HIGH)
        [record] = session.scalars(select(AuditEvent).where(AuditEvent.action == "alert:escalate"))
        assert json.loads(record.detail) == {"alert_id": alert_id, "rule": "outside_hours", "severity": "high",
                                             "previous": "low", "resolved": True}
        assert session.scalars(select(MailOutbox)).all() == []  # nobody is told again
