"""Alerts for security tools and HR systems: list the early warnings, acknowledge and resolve them.

The same desk as the pages (`vault.alerts.desk`): auditors and approvers, never about themselves; every
acknowledgement and resolution is audited there.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import jsonify
from sqlalchemy.orm import Session

from vault.alerts import desk
from vault.alerts.raising import RULE_TITLES
from vault.api import serializers
from vault.api.blueprint import ID, bp
from vault.api.errors import invalid
from vault.api.inputs import Field, JsonBody, Query, parse_query
from vault.api.spec import operation
from vault.core.actions import Action
from vault.models import Alert, Severity, User
from vault.web import auth
from vault.web.guard import permission
from vault.web.pipeline import access_context, db_session, runtime

LIST_QUERY = (
    Query("status", "string", "`active` (open or acknowledged, the default), `open`, `acknowledged`, `resolved` "
          "or `all`.", choices=desk.STATUS_FILTERS),
    Query("severity", "string", "Only alerts of this severity.", choices=tuple(str(s) for s in Severity)),
    Query("rule", "string", "Only alerts of this rule.", choices=tuple(RULE_TITLES)),
    Query("user", "integer", "Only alerts about this person (a user id)."),
    Query("since", "string", "Only alerts seen at or after this instant (ISO 8601, e.g. 2026-12-01T00:00:00Z).",
          max_length=40),
    Query("page", "integer", "The page of results (50 a page)."),
)
RESOLVE = JsonBody(
    "AlertResolution",
    fields=(Field("note", "string", "What was found and done (kept with the alert and in the audit log).",
                  max_length=2000),),
)
NO_BODY = JsonBody("AlertAcknowledgement", fields=(), required=False, description="No body, or an empty object.")


def alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "rule": alert.rule,
        "title": RULE_TITLES.get(alert.rule, alert.rule),
        "severity": str(alert.severity),
        "status": str(alert.status),
        "user": serializers.user_ref(alert.user),
        "summary": alert.summary,
        "evidence": json.loads(alert.evidence_json or "{}"),
        "occurrences": alert.occurrences,
        "created_at": serializers.timestamp(alert.created_at),
        "last_seen_at": serializers.timestamp(alert.last_seen_at),
        "acknowledged_by": serializers.user_ref(alert.acknowledged_by),
        "acknowledged_at": serializers.timestamp(alert.acknowledged_at),
        "resolved_by": serializers.user_ref(alert.resolved_by),
        "resolved_at": serializers.timestamp(alert.resolved_at),
        "resolution_note": alert.resolution_note,
    }


def _since(text: str | None) -> datetime | None:
    """The instant in UTC. One whose offset carries it past the calendar's ends (year 1 at +01:00) has
    no UTC form: Python raises OverflowError for it, which is bad input like any other."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise invalid({"since": "must be an ISO 8601 date or instant"}) from None


@bp.get("/alerts")
@permission(Action.ALERT_READ)
@operation("Early-warning alerts", tag="alerts", response="AlertList", query=LIST_QUERY,
           description="For auditors and approvers; alerts about the caller are never listed. `open_counts`: "
                       "the open alerts by severity the desk shows above its list, whatever the filters "
                       "(those about the caller left out). 403 `alerts_departing` (recorded): the caller is on "
                       "notice, and nobody on notice reads or settles alerts, which name people and customers.")
def list_alerts() -> Any:
    params = parse_query(LIST_QUERY)
    session, actor = db_session(), auth.current()
    found = desk.list_alerts(session, actor, status=params["status"] or "active", severity=params["severity"],
                             rule=params["rule"], user_id=params["user"], since=_since(params["since"]),
                             page=params["page"] or 1)
    return jsonify(alerts=[alert_json(a) for a in found.alerts], total=found.total, page=found.page,
                   pages=found.pages, open_counts=open_counts(session, actor))


def open_counts(session: Session, actor: User) -> dict[str, int]:
    """The desk's open counts with every severity present (0 when none), so a client need not guess keys."""
    counts = desk.count_open(session, actor)
    return {str(severity): counts.get(str(severity), 0) for severity in Severity}


@bp.get(f"/alerts/<{ID}:alert_id>")
@permission(Action.ALERT_READ)
@operation("One alert", tag="alerts", response="Alert",
           description="Recorded as `alert:read`, with the customers and files its evidence names. 403 "
                       "`alerts_departing` (recorded) to anyone on notice.")
def show_alert(alert_id: int) -> Any:
    return jsonify(alert_json(desk.read_alert(runtime(), db_session(), auth.current(), alert_id, shown="json",
                                              ctx=access_context())))


@bp.post(f"/alerts/<{ID}:alert_id>/acknowledge")
@permission(Action.ALERT_MANAGE)
@operation("Take an alert: someone is looking into it", tag="alerts", response="Alert", body=NO_BODY,
           description="403 `alert_resolved`, `alert_acknowledged`; `alerts_departing` (recorded) to anyone on "
                       "notice.")
def acknowledge_alert(alert_id: int) -> Any:
    NO_BODY.parse()
    session, actor = db_session(), auth.current()
    alert = desk.acknowledge(runtime(), session, actor, desk.get_alert(session, actor, alert_id),
                             ctx=access_context())
    return jsonify(alert_json(alert))


@bp.post(f"/alerts/<{ID}:alert_id>/resolve")
@permission(Action.ALERT_MANAGE)
@operation("Close an alert with what was found", tag="alerts", response="Alert", body=RESOLVE,
           description="403 `alert_resolved`, `note_required`; `alerts_departing` (recorded) to anyone on notice.")
def resolve_alert(alert_id: int) -> Any:
    values = RESOLVE.parse()
    session, actor = db_session(), auth.current()
    alert = desk.resolve(runtime(), session, actor, desk.get_alert(session, actor, alert_id), note=values["note"],
                         ctx=access_context())
    return jsonify(alert_json(alert))


@bp.post(f"/alerts/<{ID}:alert_id>/lift-suspension")
@permission(Action.ALERT_MANAGE)
@operation("Lift the suspension of customer access an alert caused (approvers)", tag="alerts", response="Alert",
           body=NO_BODY, description="403 `not_permitted` (not an approver), `not_suspended`; `alerts_departing` "
                                     "(recorded) to anyone on notice.")
def lift_suspension(alert_id: int) -> Any:
    NO_BODY.parse()
    session, actor = db_session(), auth.current()
    alert = desk.get_alert(session, actor, alert_id)
    desk.lift_suspension(runtime(), session, actor, alert, ctx=access_context())
    return jsonify(alert_json(alert))


_ALERT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "id": {"type": "integer", "minimum": 1}, "rule": {"type": "string"}, "title": {"type": "string"},
        "severity": {"type": "string", "enum": ["low", "medium", "high"]},
        "status": {"type": "string", "enum": ["open", "acknowledged", "resolved"]},
        "user": {"$ref": "#/components/schemas/UserRef"}, "summary": {"type": "string"},
        "evidence": {"type": "object"}, "occurrences": {"type": "integer", "minimum": 1},
        "created_at": {"type": "string", "format": "date-time"},
        "last_seen_at": {"type": "string", "format": "date-time"},
        "acknowledged_by": {"oneOf": [{"$ref": "#/components/schemas/UserRef"}, {"type": "null"}]},
        "acknowledged_at": {"type": ["string", "null"], "format": "date-time"},
        "resolved_by": {"oneOf": [{"$ref": "#/components/schemas/UserRef"}, {"type": "null"}]},
        "resolved_at": {"type": ["string", "null"], "format": "date-time"},
        "resolution_note": {"type": ["string", "null"]},
    },
    "required": ["id", "rule", "severity", "status", "user", "summary", "created_at"],
}
serializers.SCHEMAS["Alert"] = _ALERT
serializers.SCHEMAS["AlertList"] = {
    "type": "object", "additionalProperties": False,
    "properties": {"alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}},
                   "total": {"type": "integer", "minimum": 0}, "page": {"type": "integer", "minimum": 1},
                   "pages": {"type": "integer", "minimum": 1},
                   "open_counts": {
                       "type": "object", "additionalProperties": False,
                       "description": "Open alerts by severity, as the desk counts them (never about the caller).",
                       "properties": {str(s): {"type": "integer", "minimum": 0} for s in Severity},
                       "required": [str(s) for s in Severity]}},
    "required": ["alerts", "total", "page", "pages", "open_counts"],
}
