"""The audit log over the JSON API: paged reading, a streamed export and a verification, for auditor tokens only.

Kept apart from the rest of the API (its own blueprint under /api/v1/audit) because it is the audit
log's own surface; the request pipeline treats it as API by its path (bearer tokens only, JSON errors).
`OPENAPI_PATHS` describes the routes for the OpenAPI document, which merges it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from vault.api import serializers
from vault.audit import browse
from vault.audit.export import FORMATS, load_manifest
from vault.audit.filters import FILTER_KEYS, FilterError
from vault.core.actions import Action
from vault.core.errors import ServiceError
from vault.services import audit as service
from vault.services import tracing
from vault.web import auth
from vault.web.exports import stream_export
from vault.web.guard import permission
from vault.web.pipeline import access_context, commit_so_far, db_session, keep_work, runtime

bp = Blueprint("api_audit", __name__, url_prefix="/api/v1/audit")
CSRF_EXEMPT = True

EXPORT_PARAMS = (*FILTER_KEYS, "format")
EVENTS_PARAMS = (*FILTER_KEYS, "before", "after", "limit")
DEFAULT_PAGE_SIZE = 50  # as the desk's page


def _invalid(fields: dict[str, str]) -> Any:
    return jsonify(error="The request is not valid.", code="invalid_request", fields=fields), 422


@bp.route("", methods=["GET"])
@permission(Action.AUDIT_EXPORT)
def export() -> Any:
    unknown = sorted(set(request.args) - set(EXPORT_PARAMS))
    if unknown:
        return _invalid({name: "unknown parameter" for name in unknown})
    fmt = request.args.get("format", "jsonl")
    if fmt not in FORMATS:
        return _invalid({"format": f"must be one of {', '.join(FORMATS)}"})
    try:
        filters = service.filters_for(runtime(), db_session(), actor=auth.current(), ctx=access_context(),
                                      args={key: request.args.get(key) for key in FILTER_KEYS},
                                      act=Action.AUDIT_EXPORT)
    except FilterError as exc:
        keep_work()  # the refused filter's record stands
        return _invalid({exc.field: exc.message})
    return stream_export(filters, fmt, manifest_endpoint="api_audit.manifest")


def _whole(name: str, low: int, high: int, problems: dict[str, str]) -> int | None:
    """A whole-number query parameter within [low, high], or None when not given (problems noted)."""
    raw = request.args.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19) or not low <= int(raw) <= high:
        problems[name] = f"must be a whole number from {low} to {high}"
        return None
    return int(raw)


@bp.route("/events", methods=["GET"])
@permission(Action.AUDIT_READ)
def events() -> Any:
    """The log a page at a time, newest first, with the desk's filters and keyset paging: what the desk
    shows, for scripts. Read under the desk's permission and recorded ("audit:read") as the desk's reading is."""
    problems = {name: "unknown parameter" for name in sorted(set(request.args) - set(EVENTS_PARAMS))}
    limit = _whole("limit", 1, browse.MAX_PAGE_SIZE, problems)
    before = _whole("before", 0, browse.SEQ_LIMIT, problems)
    after = _whole("after", 0, browse.SEQ_LIMIT, problems)
    if before is not None and after is not None:
        problems["after"] = "give before or after, not both"
    if problems:
        return _invalid(problems)
    session = db_session()
    try:
        filters = service.filters_for(runtime(), session, actor=auth.current(), ctx=access_context(),
                                      args={key: request.args.get(key) for key in FILTER_KEYS})
    except FilterError as exc:
        keep_work()  # the refused filter's record stands
        return _invalid({exc.field: exc.message})
    size = limit or DEFAULT_PAGE_SIZE
    page = service.read_page(runtime(), session, actor=auth.current(), ctx=access_context(), filters=filters,
                             size=size, before=before, after=after)
    names = browse.names(session, page.events)
    previous = browse.previous_macs(session, page.events)
    return jsonify(events=[serializers.audit_event(e, names, previous[e.seq]) for e in page.events],
                   newer=page.newer, older=page.older, limit=size)


@bp.route("/verify", methods=["GET"])
@permission(Action.AUDIT_VERIFY)
def verify() -> Any:
    raw = request.args.get("from", "1")
    if set(request.args) - {"from"}:
        return _invalid({name: "unknown parameter" for name in sorted(set(request.args) - {"from"})})
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 2**63 - 1:
        return _invalid({"from": "must be a sequence number of 1 or more"})
    session = db_session()
    commit_so_far()  # hold no lock while the chain is read (SQLite would stall every writer)
    report = service.verify(runtime(), session, actor=auth.current(), ctx=access_context(), from_seq=int(raw))
    return jsonify(report.as_dict())


@bp.route("/exports/<int(max=9223372036854775807):event_seq>/manifest", methods=["GET"])
@permission(Action.AUDIT_EXPORT)
def manifest(event_seq: int) -> Any:
    data = load_manifest(runtime().store, event_seq)
    if data is None:
        return jsonify(error="No manifest for this export (it may not have finished).", code="not_found"), 404
    return Response(data, mimetype="application/json")


_ERROR = {"$ref": "#/components/schemas/Error"}
_FILTER_PARAMS: list[dict[str, Any]] = [
    {"name": "since", "in": "query", "schema": {"type": "string"},
     "description": "From this date (2026-01-31) or date-time (UTC unless an offset is given)."},
    {"name": "until", "in": "query", "schema": {"type": "string"},
     "description": "Up to this date (the whole day) or date-time."},
    {"name": "actor", "in": "query", "schema": {"type": "string"},
     "description": "Who acted: a user id, or a name as recorded (unknown login names too)."},
    {"name": "user", "in": "query", "schema": {"type": "string"},
     "description": "Events by or about this user (name or id)."},
    {"name": "customer", "in": "query", "schema": {"type": "string"},
     "description": "Events about this customer (id, or its name ignoring case and accents)."},
    {"name": "document", "in": "query", "schema": {"type": "string"},
     "description": "Events about this document (id, or its title, looked up within `customer` if given)."},
    {"name": "loan", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
     "description": "Events about this loan (id)."},
    {"name": "action", "in": "query", "schema": {"type": "string"},
     "description": "An action name (loan:approve) or a prefix ending in * (loan:*)."},
    {"name": "outcome", "in": "query", "schema": {"type": "string", "enum": ["allowed", "denied", "failed"]}},
    {"name": "place", "in": "query", "schema": {"type": "string"},
     "description": "Named place (trusted network) or declared place."},
]
_EXPORT_PARAMS = [*_FILTER_PARAMS, {"name": "format", "in": "query",
                                    "schema": {"type": "string", "enum": list(FORMATS), "default": "jsonl"}}]
_PAGE_PARAMS: list[dict[str, Any]] = [
    {"name": "before", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": browse.SEQ_LIMIT},
     "description": "Records older than this sequence number (the `older` of the page before)."},
    {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": browse.SEQ_LIMIT},
     "description": "Records newer than this sequence number (the `newer` of the page before); not with `before`."},
    {"name": "limit", "in": "query",
     "schema": {"type": "integer", "minimum": 1, "maximum": browse.MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE},
     "description": "How many records a page holds at most."},
]
_ERRORS = {
    "401": {"description": "No valid bearer token.", "content": {"application/json": {"schema": _ERROR}}},
    "403": {"description": "Not an auditor.", "content": {"application/json": {"schema": _ERROR}}},
    "422": {"description": "A parameter is unknown or malformed; `fields` says which.",
            "content": {"application/json": {"schema": _ERROR}}},
}
# The routes that show records (and so name customers) are refused to anyone on notice; verifying the chain,
# which names none, is not.
_READ_ERRORS = {**_ERRORS, "403": {
    "description": "Not an auditor (`not_permitted`), or on notice (`reader_departing`, recorded): the log names "
                   "customers, and nobody on notice reads it.",
    "content": {"application/json": {"schema": _ERROR}}}}


@bp.route("/trace", methods=["POST"])
@permission(Action.AUDIT_READ)
def trace() -> Any:
    """Which view a leaked copy (multipart `file`: PNG, JPEG, WebP or PDF) came from; the trace is recorded."""
    if request.mimetype != "multipart/form-data":
        return jsonify(error="Send the file as multipart/form-data.", code="unsupported_media_type"), 415
    upload = request.files.get("file")
    if upload is None:
        return _invalid({"file": "required"})
    try:
        traced = tracing.trace_file(runtime(), db_session(), upload.read(tracing.MAX_TRACE_BYTES + 1),
                                    actor=auth.current(), ctx=access_context(), name=upload.filename or "")
    except ServiceError as exc:
        keep_work()  # the failed trace's record stands
        return jsonify(error=exc.message, code=exc.code), 400
    return jsonify(traced.as_dict())


OPENAPI_PATHS: dict[str, Any] = {
    "/api/v1/audit": {"get": {
        "tags": ["audit"], "operationId": "exportAudit", "summary": "Export the audit log (streamed)",
        "description": ("Streams the matching records in sequence order, each with its `mac` and `prev_mac`. "
                        "The export is itself recorded before the first byte; its signed manifest (row count, "
                        "first and last seq, SHA-256, covering checkpoint) is served afterwards at the URL in "
                        "the `X-Vault-Export-Manifest` header. A filter refused with a 422 is recorded too "
                        "(`audit:export`, failed, `invalid_filter`)."),
        "parameters": _EXPORT_PARAMS,
        "responses": {
            "200": {"description": "The records.",
                    "headers": {"X-Vault-Export-Manifest": {"schema": {"type": "string"},
                                                            "description": "Where the manifest will be."}},
                    "content": {"application/x-ndjson": {"schema": {"type": "string"}},
                                "text/csv": {"schema": {"type": "string"}}}},
            **_READ_ERRORS,
        },
    }},
    "/api/v1/audit/events": {"get": {
        "tags": ["audit"], "operationId": "auditEvents", "summary": "Read the audit log a page at a time",
        "description": ("The records matching the filters, newest first, as the audit desk shows them: each with "
                        "its chained fields, `mac` and `prev_mac` (so each can be checked with the audit key) "
                        "and today's names of the actor, customer, document and person it mentions. Keyset "
                        "paging: pass `older` as `before` for the next older page, `newer` as `after` for the "
                        "newer one. The desk's timeline of one user, customer, document or loan "
                        "(`/audit/trail/{kind}/{id}`) is the filter of that name: `?user=`, `?customer=`, "
                        "`?document=`, `?loan=`. As on the desk, every page read is itself recorded "
                        "(`audit:read`, with the filters, the bounds and how many records were shown; never "
                        "among the records it reports), and so is a refused one (`audit:read`, denied) and a filter "
                        "refused with a 422 (`audit:read`, failed, `invalid_filter`, with what was given)."),
        "parameters": [*_FILTER_PARAMS, *_PAGE_PARAMS],
        "responses": {
            "200": {"description": "A page of records.", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/AuditEventPage"}}}},
            **_READ_ERRORS,
        },
    }},
    "/api/v1/audit/verify": {"get": {
        "tags": ["audit"], "operationId": "verifyAudit", "summary": "Verify the chain and its checkpoints",
        "description": "Recomputes every MAC of every chain and checks the signed checkpoints; the check is "
                       "itself recorded. Damage is named by record number, chain (shard) and place in it.",
        "parameters": [{"name": "from", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1},
                        "description": "Start here, trusting the MAC of the record before."}],
        "responses": {
            "200": {"description": "The result (ok false names the first damage).", "content": {"application/json": {
                "schema": {"type": "object", "required": ["ok", "checked", "first_bad_seq", "kind"], "properties": {
                    "ok": {"type": "boolean"}, "from_seq": {"type": "integer"}, "checked": {"type": "integer"},
                    "last_seq": {"type": "integer"}, "head_seq": {"type": ["integer", "null"]},
                    "checkpoints": {"type": "integer"}, "first_bad_seq": {"type": ["integer", "null"]},
                    "kind": {"type": ["string", "null"], "enum": ["modified", "deleted", "inserted", "reordered",
                                                                   "truncated", "checkpoint", None]},
                    "message": {"type": ["string", "null"]},
                    "first_bad_shard": {"type": ["integer", "null"]},
                    "first_bad_shard_seq": {"type": ["integer", "null"]},
                    "damage": {"type": "array", "items": {"type": "object", "properties": {
                        "seq": {"type": "integer"}, "kind": {"type": "string"}, "message": {"type": "string"},
                        "shard": {"type": "integer"}, "shard_seq": {"type": "integer"}}}},
                    "seconds": {"type": "number"}}}}}},
            **_ERRORS,
        },
    }},
    "/api/v1/audit/trace": {"post": {
        "tags": ["audit"], "operationId": "traceLeak", "summary": "Trace a leaked copy to the view it came from",
        "description": ("Reads the invisible mark of a page image (PNG, JPEG, WebP) or the view id of a stamped "
                        "PDF, and answers the view: person, time, place, reason, document, customer. "
                        "`found` is false when the file carries no mark. Every trace is recorded (audit:trace)."),
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["file"], "properties": {"file": {"type": "string", "format": "binary"}}}}}},
        "responses": {
            "200": {"description": "The result.", "content": {"application/json": {"schema": {
                "type": "object", "required": ["found"], "properties": {
                    "found": {"type": "boolean"}, "view_id": {"type": "integer"}, "method": {"type": "string"},
                    "page": {"type": ["integer", "null"]}, "person": {"type": "object"},
                    "opened_at": {"type": "string", "format": "date-time"}, "place": {"type": ["string", "null"]},
                    "reason": {"type": "string"}, "document": {"type": "object"}, "customer": {"type": "object"}}}}}},
            "400": {"description": "The file cannot be read as an image or a PDF.",
                    "content": {"application/json": {"schema": _ERROR}}},
            "413": {"description": "The file is larger than the server accepts.",
                    "content": {"application/json": {"schema": _ERROR}}},
            "415": {"description": "The body is not multipart/form-data.",
                    "content": {"application/json": {"schema": _ERROR}}},
            **_READ_ERRORS,
        },
    }},
    "/api/v1/audit/exports/{event_seq}/manifest": {"get": {
        "tags": ["audit"], "operationId": "auditExportManifest", "summary": "The signed manifest of an export",
        "parameters": [{"name": "event_seq", "in": "path", "required": True, "schema": {"type": "integer"},
                        "description": "The sequence number of the export's own audit record."}],
        "responses": {
            "200": {"description": "The manifest.", "content": {"application/json": {"schema": {"type": "object"}}}},
            "404": {"description": "No such export, or it did not finish.",
                    "content": {"application/json": {"schema": _ERROR}}},
            **{k: v for k, v in _READ_ERRORS.items() if k != "422"},
        },
    }},
}
