"""Wires the request pipeline, authentication, the route guard and template helpers into an app."""

from __future__ import annotations

from typing import Any

from flask import Flask, g

from vault import policy
from vault.core.actions import Action
from vault.web import auth, guard, headers, navigation, pipeline


def install(app: Flask) -> None:
    pipeline.install(app)
    auth.install(app)
    headers.install(app)

    @app.before_request
    def _guard() -> Any:
        return guard.check_request(auth.authenticate, auth.unauthenticated)

    @app.before_request
    def _maintenance() -> None:
        if g.get("vault_user") is not None:
            pipeline.run_due_maintenance()

    @app.context_processor
    def _helpers() -> dict[str, Any]:
        def can(action: str) -> bool:
            user = g.get("vault_user")
            return bool(user is not None and policy.authorize(user, Action(action)))

        links = [link for link in navigation.NAV if link.endpoint in app.view_functions]
        return {"can": can, "me": g.get("vault_user"), "nav_links": links}
