"""Per-request plumbing: the database session, the access context, refusals and their audit records.

The order is fixed for every request (as in indico's request handler): guard → load objects → policy →
work → one commit, or rollback. A refusal rolls back whatever the request had done, then records the
refusal in a transaction of its own, so refusals are audited even though the act is not.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from flask import Flask, current_app, g, jsonify, render_template, request
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from .. import hooks, mail, policy
from ..context import AccessContext
from ..runtime import Runtime
from .places import named_place

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def runtime() -> Runtime:
    return current_app.extensions["vault"]


def db_session() -> Session:
    """The request's session, opened on first use and closed (rolled back if uncommitted) at teardown."""
    if "db_session" not in g:
        g.db_session = runtime().db.sessions()
    return g.db_session


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


def refusal_response(decision: policy.Decision, status: int = 403) -> Any:
    if wants_json():
        return jsonify(error=decision.message, code=decision.code), status
    return render_template("refused.html", decision=decision), status


def record_refusal(exc: policy.Denied) -> None:
    """Roll back the request's work and record the refusal in a transaction of its own.

    "access.denied" listeners (early warning) run in that transaction, once per refusal, so what they
    write commits with the refusal's record and is not lost with the rolled-back act.
    """
    session = db_session()
    session.rollback()
    user = g.get("vault_user")
    action = str(g.get("vault_denied_action") or g.get("vault_action") or request.endpoint or "request")
    ctx = access_context()
    runtime().audit.record(
        session,
        action=action,
        actor=user,
        ctx=ctx,
        outcome="denied",
        reason_code=exc.decision.code,
        detail={"path": request.path, "method": request.method},
        **exc.audit,
    )
    hooks.emit("access.denied", session=session, rt=runtime(), user=user, action=action, code=exc.decision.code,
               ctx=ctx)
    session.commit()


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

    @app.errorhandler(policy.Denied)
    def _denied(exc: policy.Denied) -> Any:
        # Fail closed: if even the refusal cannot be recorded, the answer is still a refusal.
        try:
            record_refusal(exc)
        except Exception:
            current_app.logger.exception("could not record a refusal")
        status = 404 if exc.decision.code == "not_found" else 403
        return refusal_response(exc.decision, status)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        if wants_json():
            code = (exc.name or "error").lower().replace(" ", "_")
            return jsonify(error=exc.description, code=code), exc.code
        return render_template("error.html", error=exc), exc.code

    @app.after_request
    def _headers(response: Any) -> Any:
        response.headers.setdefault("X-Request-ID", g.get("request_id", ""))
        return response
