"""The auditor's desk: the log filtered and paged, timelines, charts, verification and downloads.

Only auditors read the log (the policy's AUDIT_* actions); administrators manage accounts and must not
be able to read the trail of what they did. Paging is keyset on the sequence number, so the hundredth
page costs what the first does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, abort, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session
from wtforms import IntegerField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import NumberRange, Optional

from vault.audit import charts
from vault.audit.export import load_manifest
from vault.audit.filters import AuditFilter, FilterError, parse
from vault.audit.names import NameResolver, suggestions
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
SEQ_LIMIT = 2**63 - 1
FILTER_KEYS = ("since", "until", "user", "actor", "customer", "document", "loan", "action", "outcome", "place")
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


@dataclass
class Page:
    events: list[AuditEvent]
    newer: int | None  # `after` value of the newer page, if there is one
    older: int | None  # `before` value of the older page, if there is one


def _parse(session: Session, args: dict[str, str]) -> AuditFilter:
    """The filters of the form; people, customers and documents may be given by name."""
    names = NameResolver(session)
    return parse(args, names.user, resolve_customer=names.customer, resolve_document=names.document)


def _filter_args() -> dict[str, str]:
    return {key: request.values.get(key, "", type=str)[:200] for key in FILTER_KEYS
            if request.values.get(key, "").strip()}


def _seq_bound(name: str) -> int | None:
    """A keyset bound from the query string, held to the range of the sequence column (a larger number
    is past every record; the databases refuse it rather than compare)."""
    value = request.args.get(name, type=int)
    return None if value is None else max(-SEQ_LIMIT, min(value, SEQ_LIMIT))


def _page(session: Session, filters: AuditFilter) -> Page:
    """Newest first; `before`/`after` are the keyset bounds (exclusive) in sequence numbers."""
    before, after = _seq_bound("before"), _seq_bound("after")
    query = select(AuditEvent).where(*filters.conditions())
    if after is not None:
        found = list(session.scalars(query.where(AuditEvent.seq > after).order_by(AuditEvent.seq)
                                     .limit(PAGE_SIZE + 1)))
        more_newer = len(found) > PAGE_SIZE
        events = list(reversed(found[:PAGE_SIZE]))
        newer = events[0].seq if more_newer and events else None
        older = events[-1].seq if events else None
        if older is not None and session.scalar(select(AuditEvent.seq).where(
                *filters.conditions(), AuditEvent.seq < older).limit(1)) is None:
            older = None
        return Page(events, newer, older)
    if before is not None:
        query = query.where(AuditEvent.seq < before)
    found = list(session.scalars(query.order_by(AuditEvent.seq.desc()).limit(PAGE_SIZE + 1)))
    events = found[:PAGE_SIZE]
    older = events[-1].seq if len(found) > PAGE_SIZE else None
    newer = events[0].seq if before is not None and events else None
    return Page(events, newer, older)


def _names(session: Session, events: list[AuditEvent]) -> dict[str, dict[int, str]]:
    """Current names of the targets on the page, for readable links (the record keeps the ids)."""
    customers = {e.customer_id for e in events if e.customer_id}
    documents = {e.document_id for e in events if e.document_id}
    users = {e.subject_user_id for e in events if e.subject_user_id} | {e.actor_id for e in events if e.actor_id}
    return {
        "customer": dict(session.execute(select(Customer.id, Customer.name).where(Customer.id.in_(customers))).all())
        if customers else {},
        "document": dict(session.execute(select(Document.id, Document.title).where(Document.id.in_(documents))).all())
        if documents else {},
        "user": dict(session.execute(select(User.id, User.display_name).where(User.id.in_(users))).all())
        if users else {},
    }


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
    page = Page([], None, None)
    per_day = per_user = strip = None
    if filters is not None:
        page = _page(session, filters)
        per_day = charts.views_per_day(session, filters)
        per_user = charts.views_per_user(session, filters)
        if strip_of is not None:
            strip = charts.person_strip(session, strip_of, filters)
    html = render_template(
        template, page=page, names=_names(session, page.events), args=args, error=error,
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
        filters = _parse(db_session(), args)
    except FilterError as exc:
        return _desk("audit/index.html", None, args, exc)
    return _desk("audit/index.html", filters, args)


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
        filters = _parse(session, args)
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
        filters = _parse(db_session(), args)
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
