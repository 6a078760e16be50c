"""Every state-changing route (POST, PUT, PATCH, DELETE; pages and API), called by someone without its
permission: refused, and not one success record in the audit log.

The routes are found by walking the URL map, and the test fails when one has no entry in `CALLS`, so a
new route cannot ship untried. The caller is chosen from the policy's role gate: the first person of
the scene whose roles do not grant the route's action. Routes every signed-in person may use (their own
account) are called by someone not signed in; the few public ones are listed, with why, in `PUBLIC`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from tests.badinput.scene import CAST, Scene
from tests.conftest import csrf_from, login
from vault.core.actions import Action
from vault.core.audit_actions import AuditAction
from vault.models import AuditEvent, Role
from vault.policy.core import ROLE_RULES
from vault.web.guard import coverage

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
# Public acts: signing in is how a person gets a permission at all; its refusals are tested in tests/security.
# Setting one's first password through a one-time link: the link itself is the credential (its refusals
# are tested in tests/security/test_two_person_rule.py).
# Answering the letter about a customer's new account manager: the customer's contact has no account, and the
# signed single-use link is the credential (its refusals are tested in tests/letters/test_link.py).
PUBLIC = {("auth.login", "POST"), ("auth.set_password", "POST"), ("letters.confirm", "POST")}
WARNINGS = (AuditAction.ALERT_RAISE, AuditAction.ALERT_ESCALATE)


def calls(scene: Scene) -> dict[tuple[str, str], dict[str, Any]]:
    """How to call each state-changing route: its path values (the body is never reached when the role
    gate refuses, so the same empty form or JSON body serves every route)."""
    s = scene
    user, alert, departure = {"user_id": s.ids["ann"]}, {"alert_id": s.alert_ann_open}, {"departure_id": s.departure}
    doc, loan, requested = {"document_id": s.doc2}, {"loan_id": s.loan_active}, {"loan_id": s.loan_requested}
    return {
        ("account.logout_everywhere", "POST"): {},
        ("account.password", "POST"): {},
        ("account.recovery_codes", "POST"): {},
        ("account.second_factor", "POST"): {},
        ("account.second_factor_remove", "POST"): {},
        ("account.token_create", "POST"): {},
        ("account.notifications", "POST"): {},
        ("account.language_choice", "POST"): {},
        ("audit.trace", "POST"): {},
        ("api_audit.trace", "POST"): {},
        ("viewer.heartbeat", "POST"): {"view_id": 1},
        ("account.token_revoke", "POST"): {"token_id": 1},
        ("admin.password_link", "POST"): user,
        ("letters.revoke", "POST"): {"letter_id": s.letter},
        ("api.start_departure", "POST"): {},
        ("api.complete_departure", "POST"): departure,
        ("api.withdraw_departure", "POST"): departure,
        ("api.update_departure", "POST"): departure,
        ("api.reassign_item", "POST"): {"departure_id": s.departure, "item_id": s.item},
        ("api.override_departure", "POST"): departure,
        ("api.confirm_handover", "POST"): {"item_id": s.item},
        ("api.designate_custodian", "POST"): requested,
        ("departures.withdraw", "POST"): departure,
        ("admin.role_decide", "POST"): {"request_id": 1, "verdict": "approve"},
        ("admin.manager_decide", "POST"): {"request_id": 1, "verdict": "approve"},
        ("admin.disable", "POST"): user,
        ("admin.enable", "POST"): user,
        ("admin.role_add", "POST"): user,
        ("admin.manager", "POST"): user,
        ("alerts.lift", "POST"): alert,
        ("api.acknowledge_alert", "POST"): alert,
        ("api.resolve_alert", "POST"): alert,
        ("api.lift_suspension", "POST"): alert,
        ("api.change_owner", "POST"): {"customer_id": s.customer},
        ("api.add_co_owner", "POST"): {"customer_id": s.customer},
        ("api.remove_co_owner", "POST"): {"customer_id": s.customer},
        ("api.claim", "POST"): {"customer_id": s.customer},
        ("pool.claim", "POST"): {"customer_id": s.customer},
        ("pool.assign", "POST"): {"customer_id": s.customer},
        ("pool.release", "POST"): {"customer_id": s.customer},
        ("api.assign", "POST"): {"customer_id": s.customer},
        ("api.release", "POST"): {"customer_id": s.customer},
        ("customers.change_owner", "POST"): {"customer_id": s.customer},
        ("customers.add_co_owner", "POST"): {"customer_id": s.customer},
        ("customers.remove_co_owner", "POST"): {"customer_id": s.customer},
        ("api.reveal", "POST"): {"customer_id": s.customer},
        ("api.edit", "PATCH"): {"customer_id": s.customer},
        ("api.add_log", "POST"): {"customer_id": s.customer},
        ("records.reveal", "POST"): {"customer_id": s.customer},
        ("records.edit", "POST"): {"customer_id": s.customer},
        ("records.add_log", "POST"): {"customer_id": s.customer},
        ("admin.role_remove", "POST"): user,
        ("admin.second_factor_reset", "POST"): user,
        ("admin.users", "POST"): {},
        ("alerts.acknowledge", "POST"): alert,
        ("alerts.resolve", "POST"): alert,
        ("api.add_version", "POST"): doc,
        ("api.approve_loan", "POST"): requested,
        ("api.create_customer", "POST"): {},
        ("api.open_view", "POST"): doc,
        ("api.open_content", "POST"): doc,
        ("api.reject_loan", "POST"): requested,
        ("api.release_loan", "POST"): {"loan_id": s.loan_release},
        ("api.request_loan", "POST"): {},
        ("api.return_loan", "POST"): loan,
        ("api.revoke_loan", "POST"): loan,
        ("api.withdraw_loan", "POST"): requested,
        ("api.upload_document", "POST"): {"customer_id": s.customer},
        ("audit.export", "POST"): {},
        ("audit.verify", "POST"): {},
        ("auth.agreement", "POST"): {},
        ("auth.logout", "POST"): {},
        ("auth.second_factor", "POST"): {},
        ("customers.new", "POST"): {},
        ("departures.complete", "POST"): departure,
        ("departures.confirm", "POST"): {"item_id": s.item},
        ("departures.new", "POST"): {},
        ("departures.override", "POST"): departure,
        ("departures.reassign", "POST"): {"departure_id": s.departure, "item_id": s.item},
        ("departures.revoke_leaver_loan", "POST"): loan,
        ("departures.update", "POST"): departure,
        ("documents.add_version", "POST"): doc,
        ("documents.new", "POST"): {},
        ("loans.approve", "POST"): requested,
        ("loans.open_view", "POST"): doc,
        ("loans.quota_override", "POST"): doc,
        ("loans.reject", "POST"): requested,
        ("loans.release", "POST"): {"loan_id": s.loan_release},
        ("loans.request_extension", "POST"): doc,
        ("loans.request_loan", "POST"): doc,
        ("loans.return_loan", "POST"): loan,
        ("loans.revoke", "POST"): loan,
        ("loans.withdraw", "POST"): requested,
        ("loans.approve_batch", "POST"): {},
        ("rotation.propose", "POST"): {},
        ("rotation.approve", "POST"): {"proposal_id": s.rotation_open},
        ("rotation.skip", "POST"): {"proposal_id": s.rotation_open},
        ("rotation.confirm", "POST"): {"proposal_id": s.rotation_task},
        ("api.propose_rotations", "POST"): {},
        ("api.approve_rotation", "POST"): {"proposal_id": s.rotation_open},
        ("api.skip_rotation", "POST"): {"proposal_id": s.rotation_open},
        ("api.accept_agreement", "POST"): {},
        ("api.create_user", "POST"): {},
        ("api.set_manager", "POST"): {"username": "ann"},
        ("api.change_email", "POST"): {"username": "ann"},
        ("api.add_role", "POST"): {"username": "ann"},
        ("api.remove_role", "POST"): {"username": "ann"},
        ("api.disable_user", "POST"): {"username": "ann"},
        ("api.enable_user", "POST"): {"username": "ann"},
        ("api.new_password_link", "POST"): {"username": "ann"},
        ("api.reset_second_factor", "POST"): {"username": "ann"},
        ("api.approve_role_request", "POST"): {"request_id": 1},
        ("api.refuse_role_request", "POST"): {"request_id": 1},
        ("api.approve_manager_request", "POST"): {"request_id": 1},
        ("api.refuse_manager_request", "POST"): {"request_id": 1},
        ("api.approve_loans", "POST"): {},
        ("api.set_quota", "POST"): doc,
        ("api.confirm_rotation", "POST"): {"proposal_id": s.rotation_task},
        ("api.revoke_letter", "POST"): {"letter_id": s.letter},
        ("api.revoke_my_token", "POST"): {"token_id": 1},
        ("api.log_out_everywhere", "POST"): {},
    }


def _state_changing_routes(app: Any) -> set[tuple[str, str]]:
    return {(rule.endpoint, method) for rule in app.url_map.iter_rules() if rule.endpoint != "static"
            for method in rule.methods & STATE_CHANGING}


def _without(action: Action) -> str | None:
    """The first person of the scene whose roles do not grant `action`; None if everyone's do."""
    granted = ROLE_RULES[action]
    assert granted is not None, f"{action} is public"
    return next((name for name, roles in CAST.items() if not set(roles) & granted), None)


def _successes(scene: Scene) -> int:
    """Success records, less the early warning's: refusals in a row are meant to raise an alert."""
    with scene.rt.db.session() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.outcome == "allowed", AuditEvent.action.not_in(WARNINGS)))


def _alerts(scene: Scene) -> int:
    with scene.rt.db.session() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == AuditAction.ALERT_RAISE))


def test_every_state_changing_route_refuses_a_caller_without_its_permission(app: Any, scene: Scene) -> None:
    table = calls(scene)
    routes = _state_changing_routes(app)
    assert not routes - set(table) - PUBLIC, f"state-changing routes with no call: {sorted(routes - set(table))}"
    assert not set(table) - routes, "calls for routes that no longer exist"
    actions = coverage(app)
    browsers: dict[str, tuple[Any, str]] = {}
    alerts_before = _alerts(scene)
    failures: list[str] = []
    for (endpoint, method), values in sorted(table.items()):
        action = actions[endpoint]
        assert action is not None and action != Action.PUBLIC, f"{endpoint} is {action}: list it in PUBLIC"
        who = _without(action)
        path = app.url_map.bind("localhost").build(endpoint, values)
        api = path.startswith("/api/")
        # Signing in and making tokens are acts of their own: done before the records are counted.
        if who is None:
            client, headers, token = app.test_client(), {}, ""
            if not api:  # a real form's token, from a page anyone may load
                token = csrf_from(client.get("/login").get_data(as_text=True))
        elif api:
            client, headers, token = app.test_client(), {"Authorization": f"Bearer {scene.token(who)}"}, ""
        else:
            if who not in browsers:
                from_login = app.test_client()
                browsers[who] = (from_login, login(from_login, who))
            (client, token), headers = browsers[who], {}
        before = _successes(scene)
        if api:
            response = client.open(path, method=method, headers=headers, json={})
        else:
            response = client.open(path, method=method, data={"csrf_token": token})
        label = f"{method} {endpoint} by {who or 'nobody signed in'}"
        refused = response.status_code in (401, 403, 404) or (
            who is None and response.status_code == 302 and "/login" in response.headers.get("Location", ""))
        if not refused:
            failures.append(f"{label}: answered {response.status_code}")
        if _successes(scene) != before:
            failures.append(f"{label}: wrote a success record")
    assert not failures, "\n".join(failures)
    # The refusals are in the log, each under a name the log knows.
    with scene.rt.db.session() as session:
        names = set(session.scalars(select(AuditEvent.action).where(AuditEvent.outcome == "denied").distinct()))
    assert names and names <= {str(a) for a in AuditAction}
    # ...and so many refusals in a row did not go unnoticed.
    assert _alerts(scene) > alerts_before, "the refusals raised no alert"


def test_the_callers_lack_the_permission() -> None:
    """The chooser itself: a borrower may not approve, an auditor may not upload, nobody lacks their account."""
    assert _without(Action.LOAN_APPROVE) == "carl"
    assert Role.APPROVER not in CAST[_without(Action.LOAN_APPROVE) or ""]
    assert _without(Action.ACCOUNT_SELF) is None
