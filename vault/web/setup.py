"""Wires the request pipeline, authentication, the route guard and template helpers into an app."""

from __future__ import annotations

from typing import Any

from flask import Flask, g

from vault import policy
from vault.core import grades
from vault.core.actions import Action
from vault.policy import grades as policy_grades
from vault.services import todo
from vault.web import auth, file_types, guard, headers, labels, navigation, pipeline


def install(app: Flask) -> None:
    # First installed, last run (Flask runs after-request hooks in reverse): the security headers go on
    # the response that actually leaves, also when the pipeline replaces it after a failed commit.
    headers.install(app)
    pipeline.install(app)
    auth.install(app)

    @app.before_request
    def _guard() -> Any:
        return guard.check_request(auth.authenticate, auth.unauthenticated)

    @app.before_request
    def _maintenance() -> None:
        if g.get("vault_user") is not None:
            pipeline.run_due_maintenance()

    app.add_template_filter(file_types.label, "file_type")
    app.add_template_filter(labels.label, "label")
    app.add_template_filter(labels.labels, "labels")
    app.add_template_filter(labels.field_path, "field_path")
    app.add_template_filter(labels.alert_summary, "alert_summary")
    app.add_template_global(Action, "Action")
    app.add_template_global(grades.grade_label, "grade_label")
    app.add_template_global(grades.grade_title, "grade_title")
    app.add_template_global(policy_grades.reading_needs, "reading_needs")

    @app.context_processor
    def _helpers() -> dict[str, Any]:
        def can(action: Action) -> bool:
            """Whether the signed-in person's roles allow `action`, named by its member (`Action.LOAN_APPROVE`):
            a code written as a string would fail only when its branch of the page is drawn."""
            if not isinstance(action, Action):
                raise TypeError(f"can() takes an Action member, not {action!r}")
            user = g.get("vault_user")
            return bool(user is not None and policy.authorize(user, action))

        def nav_badges() -> dict[str, int]:
            """Counts beside the menu links, computed once per page and only when the menu is drawn."""
            user = g.get("vault_user")
            if user is None:
                return {}
            if "vault_nav_badges" not in g:
                try:
                    counts = todo.counts_for(pipeline.runtime(), pipeline.db_session(), user)
                    g.vault_nav_badges = navigation.badges(counts)
                except Exception:
                    # The menu must not turn an error page (a database gone away) into a crash of its own.
                    app.logger.exception("could not count the to-do badges")
                    g.vault_nav_badges = {}
            return g.vault_nav_badges

        me = g.get("vault_user")
        links = [link for link in navigation.NAV if link.endpoint in app.view_functions
                 and (link.shown is None or me is None or link.shown(me))]
        return {"can": can, "me": me, "nav_links": links, "nav_badges": nav_badges}
