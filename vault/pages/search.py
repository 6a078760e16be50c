"""The search page: one box over the customers and files the person may see (see `services.search`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from flask_babel import gettext as _

from vault.core.actions import Action
from vault.core.errors import ServiceError
from vault.pages.forms.search import SearchForm
from vault.services import search as search_service
from vault.web import auth, navigation
from vault.web.guard import permission
from vault.web.pipeline import access_context, db_session, runtime

bp = Blueprint("search", __name__, url_prefix="/search")
navigation.add("search.index", Action.CUSTOMER_READ, "Search")


@bp.route("/")
@permission(Action.CUSTOMER_READ)
def index() -> Any:
    """An empty query shows the form; anything else is searched (and audited, like the customer list)."""
    form = SearchForm(request.args)
    result = None
    status = 200
    if (request.args.get("q") or "").strip():
        try:
            result = search_service.search(runtime(), db_session(), auth.current(), form.q.data or "",
                                           mine=bool(form.mine.data), ctx=access_context())
        except ServiceError as exc:
            form.q.errors = [_(exc.message)]
            status = 400
    return render_template("search/index.html", form=form, result=result, limit=search_service.LIMIT), status
