"""The start page (the person's to-do list) and the load balancer's health check."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template
from sqlalchemy import text

from vault.core.actions import Action
from vault.models import utcnow
from vault.services import todo
from vault.web import auth
from vault.web.guard import permission
from vault.web.pipeline import access_context, db_session, runtime

bp = Blueprint("home", __name__)


@bp.route("/")
@permission(Action.ACCOUNT_SELF)
def index():
    """What waits for the person, first; the areas of the menu after."""
    user = auth.current()
    # Recorded: the other people's loans and the customers the list names (`todo.read_todo`).
    waiting = todo.read_todo(runtime(), db_session(), user, ctx=access_context())
    return render_template("index.html", user=user, todo=waiting, now=utcnow())


@bp.route("/healthz")
@permission(Action.PUBLIC)
def healthz():
    """Database and object store reachable; says which part failed, never why in detail."""
    checks: dict[str, str] = {}
    try:
        db_session().execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "unreachable"
    try:
        runtime().store.check()
        checks["storage"] = "ok"
    except Exception:
        checks["storage"] = "unreachable"
    healthy = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if healthy else "unhealthy", **checks), 200 if healthy else 503
