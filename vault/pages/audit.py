"""The auditor's desk: the log filtered and paged, timelines, charts, verification and downloads.

Only auditors read the log (the policy's AUDIT_* actions); administrators manage accounts and must not
be able to read the trail of what they did; an auditor on notice reads it no more (`policy.audit_log`).
Paging is keyset on the sequence number, so the hundredth
page costs what the first does.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, abort, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session
from wtforms import IntegerField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import NumberRange, Optional

from vault.audit import browse, charts
from vault.audit.export import load_manifest
from vault.audit.filters import FILTER_KEYS, AuditFilter, FilterError
from vault.audit.names import suggestions
from vault.core.actions import Action
from vault.core.audit_actions import AuditAction
from vault.core.errors import ServiceError
from vault.models import AuditEvent, Customer, Document, Loan, User
from vault.pages.forms.text import SafeForm
from vault.services import audit as service
from vault.services import tracing
from vault.web import auth, navigation
from vault.web.exports import stream_export
from vault.web.guard import permission
from vault.web.pipeline import access_context, commit_so_far, db_session, keep_work, runtime

bp = Blueprint("audit", __name__, url_prefix="/audit")
navigation.add("audit.index", Action.AUDIT_READ, "Audit log")

PAGE_SIZE = 50
TRAIL_KINDS = {"user": "user", "customer": "customer", "document": "document", "loan": "loan"}


def _action_groups() -> list[tuple[str, list[str]]]:
    """The action picker's groups: every event the log can hold, grouped by its subject (the part
    before ":"), each group led by its "all of them" pattern ("loan:*")."""
    groups: dict[str, list[str]] = {}
    for action in AuditAction:
        if action != AuditAction.PUBLIC and ":" in action:
            groups.setdefault(str(action).split(":")[0], []).append(str(action))
    return [(subject, [f"{subject}:*", *sorted(names)]) for subject, names in sorted(groups.items())]


ACTION_GROUPS = _action_groups()
KNOWN_ACTIONS = [name for _subject, names in ACTION_GROUPS for name in names]


class VerifyForm(SafeForm):
    from_seq = IntegerField(_l("From sequence number"), validators=[Optional(), NumberRange(min=1)])


class ExportForm(SafeForm):
    format = SelectField(_l("Format"), choices=[SelectChoice("csv", "CSV"), SelectChoice("jsonl", _l("JSON Lines"))],
                         default="csv")


def _filter_args() -> dict[str, str]:
    """The filters given, as typed: a value too long is refused by the filter's reading, never cut here."""
    return {key: request.values.get(key, "", type=str) for key in FILTER_KEYS
            if request.values.get(key, "").strip()}


def _page(session: Session, filters: AuditFilter) -> browse.Page:
    """Newest first; `before`/`after` are the keyset bounds (exclusive) in sequence numbers."""
    return service.read_page(runtime(), session, actor=auth.current(), ctx=access_context(), filters=filters,
                             size=PAGE_SIZE, before=request.args.get("before", type=int),
                             after=request.args.get("after", type=int))


def _pretty(detail: str | None) -> str:
    """An event's JSON detail laid out for reading (folded away on the page until asked for)."""
    if not detail or detail == "{}":
        return ""
    try:
        return json.dumps(json.loads(detail), indent=2, ensure_ascii=False, sort_keys=True)
    except ValueError:
        return detail


def _desk(template: str, filters: AuditFilter | None, args: dict[str, str], error: FilterError | None = None,
          strip_of: int | None = None, **context: Any) -> Any:
    session = db_session()
    page = browse.Page([], None, None)
    per_day = per_user = strip = None
    if filters is not None:
        page = _page(session, filters)
        per_day = charts.views_per_day(session, filters)
        per_user = charts.views_per_user(session, filters)
        if strip_of is not None:
            strip = charts.person_strip(session, strip_of, filters)
    html = render_template(
        template, page=page, names=browse.names(session, page.events), args=args, error=error,
        per_day=per_day, per_user=per_user, strip=strip, action_groups=ACTION_GROUPS,
        suggestions=suggestions(session), pretty=_pretty, verify_form=VerifyForm(),
        person_id=filters.user_id if filters is not None else None,
        export_form=ExportForm(), recent_exports=_recent_exports(session), **context)
    return html, 400 if error else 200


def _recent_exports(session: Session) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == str(Action.AUDIT_EXPORT))
                                .order_by(AuditEvent.seq.desc()).limit(5)))


@bp.route("/")
@permission(Action.AUDIT_READ)
def index() -> Any:
    args = _filter_args()
    try:
        filters = _filters(args)
    except FilterError as exc:
        return _desk("audit/index.html", None, args, exc)
    return _desk("audit/index.html", filters, args)


def _filters(args: dict[str, str], act: Action = Action.AUDIT_READ) -> AuditFilter:
    """The desk's filters; a refused one is recorded (see `service.filters_for`) and its record kept."""
    try:
        return service.filters_for(runtime(), db_session(), actor=auth.current(), ctx=access_context(), args=args,
                                   act=act)
    except FilterError:
        keep_work()
        raise


@bp.route("/trail/<kind>/<int(max=2147483647):ident>")
@permission(Action.AUDIT_READ)
def trail(kind: str, ident: int) -> Any:
    """The timeline of one user, customer, document or loan (linked from their pages)."""
    if kind not in TRAIL_KINDS:
        abort(404)
    session = db_session()
    subject = session.get({"user": User, "customer": Customer, "document": Document, "loan": Loan}[kind], ident)
    own = {key: value for key, value in _filter_args().items() if key != kind}
    args = {**own, kind: str(ident)}
    context = {"kind": kind, "ident": ident, "subject": subject, "own": own}
    try:
        filters = _filters(args)
    except FilterError as exc:
        return _desk("audit/trail.html", None, args, exc, **context)
    return _desk("audit/trail.html", filters, args, strip_of=ident if kind == "user" else None, **context)


@bp.route("/verify", methods=["POST"])
@permission(Action.AUDIT_VERIFY)
def verify() -> Any:
    form = VerifyForm()
    if not form.validate_on_submit():
        return render_template("audit/verify.html", report=None, form=form), 400
    session = db_session()
    commit_so_far()  # hold no lock while the chain is read (SQLite would stall every writer)
    report = service.verify(runtime(), session, actor=auth.current(), ctx=access_context(),
                            from_seq=form.from_seq.data or 1)
    return render_template("audit/verify.html", report=report, form=form)


@bp.route("/trace", methods=["GET", "POST"])
@permission(Action.AUDIT_READ)
def trace() -> Any:
    """Trace a leaked copy: upload it, see the view it came from (the trace is recorded)."""
    if request.method == "GET":
        return render_template("audit/trace.html", traced=None)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return render_template("audit/trace.html", traced=None, error="Choose a file to trace."), 400
    try:
        traced = tracing.trace_file(runtime(), db_session(), upload.read(tracing.MAX_TRACE_BYTES + 1),
                                    actor=auth.current(), ctx=access_context(), name=upload.filename)
    except ServiceError as exc:
        keep_work()
        return render_template("audit/trace.html", traced=None, error=exc.message), 400
    return render_template("audit/trace.html", traced=traced.as_dict())


@bp.route("/export", methods=["POST"])
@permission(Action.AUDIT_EXPORT)
def export() -> Any:
    """Download the filtered log; recorded before the first byte, manifest kept in the object store."""
    form = ExportForm()
    args = _filter_args()
    if not form.validate_on_submit():
        abort(400)
    try:
        filters = _filters(args, Action.AUDIT_EXPORT)
    except FilterError as exc:
        return _desk("audit/index.html", None, args, exc)
    return stream_export(filters, form.format.data, manifest_endpoint="audit.manifest")


@bp.route("/exports/<int(max=9223372036854775807):event_seq>/manifest")
@permission(Action.AUDIT_EXPORT)
def manifest(event_seq: int) -> Any:
    data = load_manifest(runtime().store, event_seq)
    if data is None:
        abort(404, description=_("No manifest for this export (it may not have finished)."))
    response = Response(data, mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="audit-{event_seq}.manifest.json"'
    return response
