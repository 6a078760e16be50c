"""The alerts page: what the early warning found, its evidence with links into the audit trail, and
acknowledging and resolving (auditors and approvers; nobody sees or settles an alert about themselves, and
nobody on notice any alert: `policy.departures`, `alerts_departing`)."""

from __future__ import annotations

from datetime import date, time
from typing import Any

from babel.dates import format_time
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import select

from vault import policy
from vault.alerts import RULE_TITLES, desk
from vault.core.actions import Action
from vault.core.alert_wording import PLACE_KINDS
from vault.core.errors import NotFound, ServiceError
from vault.models import Alert, Customer, Document, DocumentVersion
from vault.pages.forms import ConfirmForm
from vault.pages.forms.departures import ResolveForm
from vault.pages.refusals import record_form_refusal
from vault.web import auth, locale, navigation
from vault.web.guard import permission
from vault.web.pipeline import access_context, db_session, keep_work, not_found_response, runtime

bp = Blueprint("alerts", __name__, url_prefix="/alerts")
navigation.add("alerts.index", Action.ALERT_READ, "Alerts")


bp.register_error_handler(NotFound, not_found_response)


@bp.errorhandler(ServiceError)
def _service_error(exc: ServiceError) -> Any:
    return render_template("departures/problem.html", message=exc.message, code=exc.code), exc.status


@bp.app_template_filter("rule_title")
def _rule_title(rule: str) -> str:
    return _(RULE_TITLES.get(rule, rule))




@bp.app_template_filter("local_moment")
def _local_moment(text: str) -> str:
    """A day ("2026-12-07"), an hour ("2026-12-07T10") or a minute ("2026-12-07T22:15") of the working
    hours' zone, as the rules key and record them, in the reader's language; anything else as it is."""
    day_part, _sep, time_part = str(text).partition("T")
    try:
        shown = locale.day(date.fromisoformat(day_part))
        if not time_part:
            return shown
        moment = time.fromisoformat(time_part if ":" in time_part else f"{time_part}:00")
    except ValueError:
        return str(text)
    # Already local: formatted as a time of day, not moved to the reader's zone.
    return f"{shown} {format_time(moment, 'short', locale=get_locale())}"


@bp.app_template_filter("evidence_value")
def _evidence_value(value: object, key: str) -> str:
    """One item of an alert's evidence list in the reader's language: a place's kind, a local time."""
    text = str(value)
    if key == "places":
        kind, _sep, place = text.partition(": ")
        return f"{_(PLACE_KINDS[kind])}: {place}" if kind in PLACE_KINDS else text
    if key == "times":
        return _local_moment(text)
    return text


def _alert(alert_id: int) -> Alert:
    try:
        return desk.get_alert(db_session(), auth.current(), alert_id)
    except NotFound:
        raise policy.Denied(policy.deny("not_found")) from None


@bp.route("/")
@permission(Action.ALERT_READ)
def index() -> Any:
    session, actor = db_session(), auth.current()
    status = request.args.get("status", "active", type=str)
    severity = request.args.get("severity", "", type=str) or None
    rule = request.args.get("rule", "", type=str) or None
    user_id = request.args.get("user", type=int)
    found = desk.list_alerts(session, actor, status=status, severity=severity, rule=rule, user_id=user_id,
                             page=request.args.get("page", 1, type=int))
    return render_template("alerts/index.html", found=found, status=status, severity=severity or "",
                           rule=rule or "", user_id=user_id, statuses=desk.STATUS_FILTERS, rules=RULE_TITLES,
                           open_counts=desk.count_open(session, actor))


def _page(alert: Alert, resolve_form: ResolveForm | None = None, decision: policy.Decision | None = None) -> str:
    session, actor = db_session(), auth.current()
    evidence = alert.evidence
    documents = {d.id: d for d in session.scalars(select(Document).where(
        Document.id.in_(evidence.get("documents", []))))}
    customers = {c.id: c for c in session.scalars(select(Customer).where(
        Customer.id.in_(evidence.get("customers", []))))}
    versions = list(session.scalars(select(DocumentVersion).where(
        DocumentVersion.id.in_(evidence.get("versions", []))).order_by(DocumentVersion.id)))
    audit_url = url_for("audit.index") if "audit.index" in current_app.view_functions else None
    return render_template(
        "alerts/show.html", alert=alert, evidence=evidence, documents=documents, customers=customers,
        versions=versions, audit_url=audit_url, ack_form=ConfirmForm(formdata=None),
        resolve_form=resolve_form or ResolveForm(formdata=None), decision=decision,
        may_manage=bool(policy.authorize(actor, Action.ALERT_MANAGE, alert, step="acknowledge")),
        may_resolve=bool(policy.authorize(actor, Action.ALERT_MANAGE, alert, step="resolve", note="x" * 20)),
        may_lift=bool(policy.authorize(actor, Action.ALERT_MANAGE, alert, step="lift")),
        lift_form=ConfirmForm(formdata=None),
    )


@bp.route("/<int:alert_id>")
@permission(Action.ALERT_READ)
def show(alert_id: int) -> Any:
    try:
        alert = desk.read_alert(runtime(), db_session(), auth.current(), alert_id, shown="page", ctx=access_context())
    except NotFound:
        raise policy.Denied(policy.deny("not_found")) from None
    return _page(alert)


@bp.route("/<int:alert_id>/acknowledge", methods=["POST"])
@permission(Action.ALERT_MANAGE)
def acknowledge(alert_id: int) -> Any:
    session, actor = db_session(), auth.current()
    alert = _alert(alert_id)
    if not ConfirmForm().validate_on_submit():
        raise ServiceError("invalid_form", _("The form has expired; try again."))
    desk.acknowledge(runtime(), session, actor, alert, ctx=access_context())
    flash(_("Alert acknowledged."), "success")
    return redirect(url_for("alerts.show", alert_id=alert.id))


@bp.route("/<int:alert_id>/resolve", methods=["POST"])
@permission(Action.ALERT_MANAGE)
def resolve(alert_id: int) -> Any:
    session, actor = db_session(), auth.current()
    alert = _alert(alert_id)
    form = ResolveForm()
    if not form.validate_on_submit():
        # The form's own checks failed (a note too long): nothing decided; the alert again, as typed.
        return _shown_again(alert_id, form, 400)
    try:
        desk.resolve(runtime(), session, actor, alert, note=form.note.data or "", ctx=access_context())
    except policy.Denied as exc:
        if not policy.is_slip(exc.decision.code):  # a note that says nothing: the form again, beside it
            raise
        record_form_refusal(exc)
        return _shown_again(alert_id, form, 403, exc.decision)
    flash(_("Alert resolved."), "success")
    return redirect(url_for("alerts.show", alert_id=alert.id))


def _shown_again(alert_id: int, form: ResolveForm, status: int, decision: policy.Decision | None = None) -> Any:
    """The alert again after its resolution was refused for what was typed, the note as typed and the reason
    beside it. Its evidence names customers and files once more: that read is recorded (marked `again`) and
    kept though the answer is an error (the request has written nothing else by then: a refusal rolled back
    the act and committed its record). Should the record fail, the request fails: no read without it."""
    keep_work()
    alert = desk.read_alert(runtime(), db_session(), auth.current(), alert_id, shown="page", ctx=access_context(),
                            again=True)
    return _page(alert, form, decision), status


@bp.route("/<int:alert_id>/lift", methods=["POST"])
@permission(Action.ALERT_MANAGE)
def lift(alert_id: int) -> Any:
    """An approver gives back the customer access a directory alert suspended."""
    session, actor = db_session(), auth.current()
    alert = _alert(alert_id)
    if not ConfirmForm().validate_on_submit():
        raise ServiceError("invalid_form", _("The form has expired; try again."))
    person = desk.lift_suspension(runtime(), session, actor, alert, ctx=access_context())
    flash(_("%(name)s can read customer records again.", name=person.display_name), "success")
    return redirect(url_for("alerts.show", alert_id=alert.id))
