"""Per-request plumbing: the unit of work, the access context, refusals and their audit records.

The order is fixed for every request (as in indico's request handler): CSRF → guard (authentication
and the role gate) → maintenance when due (its own unit of work) → load objects → policy → work → one
commit, or rollback. The request's unit of work commits here, when the handler has returned a
successful answer (status below 400), and nowhere else; an error answer or an exception rolls it back.
A refusal rolls back whatever the request had done (unless the service settled something the refusal
depends on, `Denied(keep_work=True)`), then records the refusal in the same unit, so refusals are
audited even though the act is not. A streaming answer's bytes leave after this commit.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, current_app, g, jsonify, render_template, request
from flask.globals import request_ctx
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import InterfaceError, OperationalError, PendingRollbackError
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException, ServiceUnavailable

from vault import mail, policy
from vault.core import events
from vault.core.audit_actions import AuditAction, audit_action
from vault.core.context import AccessContext
from vault.core.errors import NotFound
from vault.db import unit_of_work
from vault.runtime import Runtime
from vault.services import maintenance
from vault.web import refusals
from vault.web.places import named_place

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# HTTP errors in the reader's words: (title, explanation) by status. werkzeug's own texts are English;
# a handler's own description (abort(404, description=...)) is kept as given.
HTTP_TEXTS: dict[int, tuple[Any, Any]] = {
    400: (_l("Bad request"), _l("The request could not be understood. Go back and try again.")),
    403: (_l("Forbidden"), _l("You may not do this.")),
    404: (_l("Not found"), _l("There is nothing at this address. Check the link, or start again from the menu.")),
    405: (_l("Method not allowed"), _l("This address does not answer this kind of request.")),
    409: (_l("Conflict"), _l("Someone else changed this at the same time. Reload the page and try again.")),
    410: (_l("Gone"), _l("This is no longer available.")),
    413: (_l("Too large"), _l("What you sent is larger than vault accepts.")),
    415: (_l("Unsupported media type"), _l("vault cannot read this kind of content.")),
    422: (_l("Unprocessable content"), _l("The request was understood but its content is not valid.")),
    429: (_l("Too many requests"), _l("Too many requests in a short time; wait a little and try again.")),
    500: (_l("Internal error"), _l("Something went wrong on our side. Try again in a moment.")),
    503: (_l("Service unavailable"), _l("vault cannot answer just now. Try again in a moment.")),
}
MAINTENANCE_SECONDS = 60.0
MAINTENANCE_KEY = "vault.maintenance.next_run"


def runtime() -> Runtime:
    return current_app.extensions["vault"]


def db_session() -> Session:
    """The request's session, opened on first use and closed (rolled back if uncommitted) at teardown."""
    if "db_session" not in g:
        g.db_session = runtime().db.sessions()
    return g.db_session


def keep_work() -> None:
    """What the request has done so far stands even if its answer is an error or a refusal (a failed
    sign-in counted, an expired session recorded): the pipeline commits it instead of rolling back."""
    g.vault_keep_work = True


def commit_so_far() -> None:
    """Commit the request's work now; the rest of the request runs in a new transaction. For the few
    handlers that must: an export recorded before its snapshot opens, a verification that must not
    hold SQLite's write lock while it reads the whole chain."""
    unit_of_work.commit(db_session())


def access_context() -> AccessContext:
    if "access_context" not in g:
        address = request.remote_addr
        g.access_context = AccessContext(
            client_addr=address,
            named_place=named_place(address, runtime().settings.trusted_places),
            user_agent=(request.user_agent.string or "")[:400],
            request_id=g.get("request_id"),
        )
    return g.access_context


def wants_json() -> bool:
    return request.blueprint == "api" or request.path.startswith("/api/")


def refusal_response(decision: policy.Decision, status: int = 403, action: object = None) -> Any:
    """The refusal's answer: JSON for the API, else the refusal page, whose hint fits the act refused (`action`,
    else the route's)."""
    if wants_json():
        return jsonify(error=str(decision.message), code=decision.code), status
    action = action or g.get("vault_denied_action") or g.get("vault_action")
    return render_template("refused.html", decision=decision, title=refusals.title_for(decision.code),
                           hint=refusals.hint_for(decision.code, action),
                           steps=refusals.next_steps(decision.code, g.get("vault_user"), request.view_args)), status


def record_refusal(exc: policy.Denied) -> None:
    """Roll back the request's work and record the refusal in a transaction of its own.

    "access.denied" listeners (early warning) run in that transaction, once per refusal, so what they
    write commits with the refusal's record and is not lost with the rolled-back act.
    """
    session = db_session()
    if not (unit_of_work.kept_on_refusal(session) or exc.keep_work or g.get("vault_keep_work")):
        session.rollback()
    user = g.get("vault_user")
    # The action refused; a route without a policy mark has none, and is recorded as such with its endpoint.
    action = audit_action(g.get("vault_denied_action") or g.get("vault_action") or AuditAction.ROUTE_UNMARKED)
    detail = {"path": request.path, "method": request.method}
    if action == AuditAction.ROUTE_UNMARKED:
        detail["endpoint"] = request.endpoint or ""
    ctx = access_context()
    runtime().audit.record(
        session,
        action=action,
        actor=user,
        ctx=ctx,
        outcome="denied",
        reason_code=exc.decision.code,
        detail=detail,
        **exc.audit,
    )
    events.emit("access.denied", session=session, rt=runtime(), user=user, action=action, code=exc.decision.code,
                ctx=ctx)
    unit_of_work.commit(session)


def not_found_response(exc: NotFound) -> Any:
    """A missing or hidden object: the same audited `not_found` refusal for pages and API, so probing
    ids through either is recorded (and counted by the early warning)."""
    return _refuse(policy.Denied(policy.deny("not_found"), **{k: v for k, v in exc.audit.items() if v is not None}))


def _refuse(exc: policy.Denied) -> Any:
    # Fail closed: if even the refusal cannot be recorded, the answer is still a refusal.
    try:
        record_refusal(exc)
    except Exception:
        current_app.logger.exception("could not record a refusal")
    status = 404 if exc.decision.code == "not_found" else 403
    return refusal_response(exc.decision, status, exc.action)


DATABASE_UNAVAILABLE = _l("The database cannot be reached or cannot write right now (restarting, or out of disk "
                           "space); nothing was changed. Try again in a moment.")


def database_unavailable_response(exc: BaseException) -> Any:
    """The database went away or refused a write (a restart, a failover, a full disk): the request's
    work is rolled back at teardown, so the truthful answer is "nothing happened, try again" (503),
    not a server error. Refusals and audit records are not lost: none was committed."""
    current_app.logger.error("database unavailable: %s", getattr(exc, "orig", None) or exc)
    try:
        if wants_json():
            response = jsonify(error=str(DATABASE_UNAVAILABLE), code="database_unavailable")
        else:
            response = current_app.make_response(render_template(
                "error.html", error=translated_http_error(ServiceUnavailable(str(DATABASE_UNAVAILABLE)))))
    except Exception:
        # Translating or drawing the page may itself need the database (a template reading the person's
        # row); an error escaping this handler would reach the server as a bare 500.
        current_app.logger.exception("the database-unavailable page could not be drawn; a plain one is sent")
        response = _plain_database_unavailable()
    response.status_code = 503
    response.headers["Retry-After"] = "5"
    return response


def _plain_database_unavailable() -> Any:
    """The 503 without translation or template: nothing in it can need the database."""
    message = "The database cannot be reached right now; nothing was changed. Try again in a moment."
    if wants_json():
        return current_app.response_class(json.dumps({"error": message, "code": "database_unavailable"}) + "\n",
                                          mimetype="application/json")
    return current_app.response_class(f"<!doctype html><title>Service unavailable</title><h1>Service unavailable"
                                      f"</h1><p>{message}</p>\n", mimetype="text/html")
@dataclass(frozen=True)
class ShownError:
    """What the error page shows of an HTTP error."""

    code: int | None
    name: str
    description: str


def translated_http_error(exc: HTTPException) -> ShownError:
    """`exc`'s name and (unless the handler gave its own) description, in the reader's language."""
    texts = HTTP_TEXTS.get(exc.code or 0)
    if texts is None:
        return ShownError(exc.code, exc.name, exc.description or "")
    own = exc.description and exc.description != type(exc).description
    return ShownError(exc.code, str(texts[0]), str(exc.description if own else texts[1]))


def install(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        header = request.headers.get("X-Request-ID", "")
        g.request_id = header if _REQUEST_ID.match(header) else uuid.uuid4().hex

    @app.teardown_request
    def _close(_exc: BaseException | None) -> None:
        session: Session | None = g.pop("db_session", None)
        if session is not None:
            mail.send_committed(runtime(), session)  # the request's committed mail, tried in the background
            session.rollback()
            session.close()

    app.register_error_handler(policy.Denied, _refuse)
    app.register_error_handler(NotFound, not_found_response)
    # PendingRollbackError: a disconnect met (and logged) inside a guarded step, seen again at the next statement.
    for lost in (OperationalError, InterfaceError, PendingRollbackError):
        app.register_error_handler(lost, database_unavailable_response)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        cause = getattr(exc, "original_exception", None)
        if isinstance(cause, OperationalError | InterfaceError | PendingRollbackError):  # the commit itself failed
            return database_unavailable_response(cause)
        code = (exc.name or "error").lower().replace(" ", "_")  # stable, from werkzeug's English name
        shown = translated_http_error(exc)
        if request_ctx.url_adapter is None:
            # No URL could be matched at all (an invalid Host, say): the page's links cannot be built,
            # so the answer is the plain error, not the page around it.
            return Response(f"{shown.name}: {shown.description}\n", exc.code, mimetype="text/plain")
        if wants_json():
            return jsonify(error=shown.description, code=code), exc.code
        return render_template("error.html", error=shown), exc.code

    @app.after_request
    def _finish(response: Any) -> Any:
        response.headers.setdefault("X-Request-ID", g.get("request_id", ""))
        session: Session | None = g.get("db_session")
        if session is not None:
            if response.status_code < 400 or g.get("vault_keep_work"):
                try:
                    unit_of_work.commit(session)  # the request's one commit
                except (OperationalError, InterfaceError, PendingRollbackError) as exc:
                    # Nothing of the request stands (a full disk may refuse only the commit itself): the
                    # answer says so, whatever the handler meant to answer.
                    session.rollback()
                    failed = database_unavailable_response(exc)
                    failed.headers["X-Request-ID"] = g.get("request_id", "")
                    return failed
            else:
                session.rollback()
        return response


def run_due_maintenance() -> None:
    """The maintenance sweep, at most once a minute per worker, after CSRF and the guard and before the
    request's own unit of work: it runs in a unit of its own, so the request's reads so far are ended
    first (on SQLite an open transaction holds the write lock the sweep needs)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    now = time.monotonic()
    if now < app.extensions.get(MAINTENANCE_KEY, 0.0):
        return
    app.extensions[MAINTENANCE_KEY] = now + MAINTENANCE_SECONDS
    session: Session | None = g.get("db_session")
    if session is not None:
        unit_of_work.commit(session)
    rt = runtime()
    try:
        with unit_of_work.unit_of_work(rt.db) as sweep_session:
            report = maintenance.run(rt, sweep_session, ctx=AccessContext.system("vault maintenance (on request)"))
        for departure_id in report.departures_offboarded:
            current_app.logger.info("last-day steps carried out for departure %d", departure_id)
        maintenance.run_due_checkpoint(rt)
    except Exception:
        # Access is already refused without it (`User.can_sign_in`, due times); retried at the next sweep.
        app.extensions[MAINTENANCE_KEY] = 0.0
        current_app.logger.exception("the maintenance sweep failed")
