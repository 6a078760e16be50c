"""The deny-by-default route guard.

Every view names the `Action` it performs with `@permission(...)` (or `Action.PUBLIC`). Before any
view runs, the guard authenticates the caller (session for pages, bearer token for the API) and asks
the policy whether the caller's roles allow that action at all. A view with no mark is refused, and
`tests/test_route_guard.py` fails the build for it: adding a route without a policy decision breaks.
Object-level decisions (this loan, this document) are taken in the services, through the same policy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, g, request
from flask_babel import lazy_gettext as _l

from vault import policy
from vault.core.actions import Action

F = TypeVar("F", bound=Callable[..., Any])


def permission(action: Action) -> Callable[[F], F]:
    """Mark a view with the action it performs; the guard checks it before the view runs."""

    def mark(view: F) -> F:
        view.vault_action = action  # type: ignore[attr-defined]
        return view

    return mark


def coverage(app: Flask) -> dict[str, Action | None]:
    """Endpoint → action for every registered route (None marks a route the guard will refuse)."""
    table: dict[str, Action | None] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            table[rule.endpoint] = Action.PUBLIC
            continue
        view = app.view_functions.get(rule.endpoint)
        table[rule.endpoint] = getattr(view, "vault_action", None)
    return table


def action_for_request() -> Action | None:
    if request.endpoint is None:
        return None
    if request.endpoint == "static":
        return Action.PUBLIC
    view = current_app.view_functions.get(request.endpoint)
    return getattr(view, "vault_action", None)


def check_request(authenticate: Callable[[], Any], unauthenticated: Callable[[], Any]) -> Any:
    """Run the role gate for the current request; returns a response to short-circuit, or None."""
    if request.endpoint is None:
        return None  # 404/405: nothing to guard, Flask answers
    action = action_for_request()
    if action is None:
        current_app.logger.error("route %s has no policy mark: refused", request.endpoint)
        raise policy.Denied(policy.deny("not_permitted", _l("This page is not covered by the access policy.")))
    g.vault_action = action
    if action == Action.PUBLIC:
        return None
    user = authenticate()
    if user is None:
        return unauthenticated()
    policy.require(user, action)
    return None
