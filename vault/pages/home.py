"""The start page (the person's to-do list) and the load balancer's health check."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template
from sqlalchemy import text

from vault.core.actions import Action
from vault.models import utcnow
from vault.services import loans, todo
from vault.web import auth
from vault.web.guard import permission
from vault.web.pipeline import access_context, db_session, runtime

bp = Blueprint("home", __name__)


@bp.route("/")
@permission(Action.ACCOUNT_SELF)
def index():
    """What waits for the person, first; the areas of the menu after."""
    user = auth.current()
    waiting = todo.todo_for(runtime(), db_session(), user)
    # Requests and releases waiting for the person are other people's loans, each naming a file and its
    # customer: recorded as the queues that list them are.
    loans.record_listing(runtime(), db_session(), user, [*waiting.decisions, *waiting.releases], listing="home",
                         ctx=access_context())
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
