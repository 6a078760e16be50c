"""People on notice widen nobody's access, beyond loans too, on both databases: an approver, manager or
administrator on the way out could otherwise give an accomplice a pooled customer or someone else's, release
a colleague's customer to the pool for the accomplice to claim, lift a suspension or resolve the alert behind
it, waive another leaver's confirmations, or withdraw or prolong another leaver's notice. Each is refused
`decider_departing` and recorded (an alert, which nobody on notice reads or settles at all, is refused
`alerts_departing`: `tests/api/test_review_alerts_notice.py`); a withdrawn notice gives the decisions back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.api.conftest import assert_error, events
from tests.api.test_review_notice_deciders import CODE, WHY, give_notice
from tests.pool.scene import owner_of, pooled
from vault.alerts.raising import Finding, raise_alert
from vault.core.context import AccessContext
from vault.models import Departure, Role, Segment, Severity, utcnow
from vault.services import accounts, departures


def _refused(rt: Any, action: str) -> list[tuple[str, str]]:
    return [(e.actor_name, e.reason_code) for e in events(rt, action, "denied")]


def test_a_leaver_gives_no_customer_and_lifts_no_suspension(api: Any, rt: Any, users: Any,
                                                            cast: dict[str, Any]) -> None:
    key = pooled(rt, Segment.KEY)
    beas = api.customer("Nordlicht", owner="bea", shared=False)
    users.make("max", Role.BORROWER)  # bea's manager, who sees her customers until he gives notice
    with rt.db.session() as session:
        bea = accounts.get_user(session, "bea")
        bea.manager_id = accounts.get_user(session, "max").id
        bea.customers_suspended_at = utcnow()
        alert = raise_alert(rt, session, bea, Finding("probing", Severity.HIGH, "2026-01-01T10", "5 refused", {}))
    ann = give_notice(rt, "ann")
    give_notice(rt, "max")

    assert_error(api.post(f"/api/v1/pool/{key}/assign", "ann", json={"owner": "bob"}), 403, CODE)
    # Whom an approver may give a customer they do not work is no longer theirs to decide: not found, as for
    # anyone who may not assign it (the customer's existence is not confirmed to a leaver).
    assert_error(api.post(f"/api/v1/customers/{beas}/owner", "ann", json={"owner": "bob", "reason": WHY}),
                 404, "not_found")
    # Max manages Bea, but on notice a manager no longer sees the team's customers (their standing sight
    # narrows to their own book, `policy.visibility.sees_team`): her customer is not found for him, as for
    # anyone who does not see it. An approver on notice who reached it by a look-up is refused the decision.
    assert_error(api.post(f"/api/v1/customers/{beas}/release-to-pool", "max", json={"reason": WHY}), 404, "not_found")
    assert api.get("/api/v1/customers/lookup?q=nordlicht", "ann").status_code == 200
    assert_error(api.post(f"/api/v1/customers/{beas}/release-to-pool", "ann", json={"reason": WHY}), 403, CODE)
    assert_error(api.post(f"/api/v1/alerts/{alert}/lift-suspension", "ann", json={}), 403, "alerts_departing")
    assert_error(api.post(f"/api/v1/alerts/{alert}/resolve", "ann", json={"note": "Talked it through with Bea"}),
                 403, "alerts_departing")
    assert (owner_of(rt, key), owner_of(rt, beas)) == (None, cast["bea"].id)
    assert _refused(rt, "pool:assign") == [("ann", CODE)]
    assert _refused(rt, "pool:release") == [("max", "not_found"), ("ann", CODE)]
    assert _refused(rt, "customer:assign") == [("ann", "not_found")]
    assert _refused(rt, "alert:manage") == [("ann", "alerts_departing")] * 2  # the lift and the resolution

    with rt.db.session() as session:
        departures.withdraw(rt, session, None, session.get(Departure, ann), reason="Stays after all: a counter-offer",
                            ctx=AccessContext.cli())
    assert api.post(f"/api/v1/pool/{key}/assign", "ann", json={"owner": "bob"}).status_code == 200
    assert api.post(f"/api/v1/alerts/{alert}/lift-suspension", "ann", json={}).status_code == 200


def test_a_leaver_neither_waives_nor_withdraws_nor_prolongs_another_notice(api: Any, rt: Any) -> None:
    beas = give_notice(rt, "bea")
    give_notice(rt, "ann")
    give_notice(rt, "adm")
    assert_error(api.post(f"/api/v1/departures/{beas}/override", "ann", json={"reason": WHY}), 403, CODE)
    assert_error(api.post(f"/api/v1/departures/{beas}/withdraw", "adm", json={"reason": WHY}), 403, CODE)
    later = (departures.today(rt.settings) + timedelta(days=40)).isoformat()
    assert_error(api.post(f"/api/v1/departures/{beas}", "adm", json={"last_day": later}), 403, CODE)
    with rt.db.session() as session:
        assert session.get(Departure, beas).is_open
        assert accounts.get_user(session, "bea").last_day == departures.today(rt.settings) + timedelta(days=20)
    assert _refused(rt, "departure:override") == [("ann", CODE)]
    assert _refused(rt, "departure:manage") == [("adm", CODE)] * 2  # the withdrawal and the later last day


def test_an_administrator_on_notice_only_takes_access_away(api: Any, rt: Any, users: Any) -> None:
    """A leaving administrator could open a way in for an accomplice: name them someone's manager (they then see
    that person's customers), give a role or decide a role request, create or re-enable an account, point an
    address a password link goes to elsewhere, or make either half of an account's restoring. All refused;
    disabling someone and taking a role away, which only narrow, stay open."""
    users.make("ada", Role.ADMIN)
    asked = api.post("/api/v1/users/bea/roles", "ada", json={"role": "custodian"})
    assert asked.status_code == 202, asked.get_json()
    give_notice(rt, "adm")
    refused = {
        "/api/v1/users/bob/manager": {"manager": "bea"},
        "/api/v1/users/bob/roles": {"role": "compiler"},
        "/api/v1/users/bob/email": {"email": "bob@elsewhere.example"},
        "/api/v1/users/bob/password-link": {},
        "/api/v1/users/bob/second-factor/reset": {},
        f"/api/v1/role-requests/{asked.get_json()['id']}/approve": {},
        "/api/v1/users": {"username": "newcomer", "display_name": "New Comer"},
    }
    for path, body in refused.items():
        assert_error(api.post(path, "adm", json=body), 403, CODE)
    with rt.db.session() as session:
        bob = accounts.get_user(session, "bob")
        assert (bob.manager_id, bob.email, sorted(str(r) for r in bob.role_set)) == (None, None, ["borrower"])
        assert accounts.find_user(session, "newcomer") is None
        assert "custodian" not in {str(r) for r in accounts.get_user(session, "bea").role_set}
    # The manager, the address, the link, the second factor and the new account's link; the role; the request.
    assert _refused(rt, "user:manage") == [("adm", CODE)] * 5
    assert _refused(rt, "role:assign") == _refused(rt, "role:approve") == [("adm", CODE)]
    assert api.post("/api/v1/users/bea/disable", "adm", json={}).status_code == 200


def test_an_administrator_on_notice_hands_no_leaver_s_customer_to_anyone(api: Any, rt: Any, users: Any,
                                                                       cast: dict[str, Any]) -> None:
    """Naming a successor, reassigning a handover item or sending it to the pool gives a colleague's customer
    away: an administrator on notice could hand it to an accomplice. Starting a departure without a
    successor only takes access away, and stays open to them."""
    users.make("eve", Role.BORROWER)  # the accomplice
    acme = api.customer("Acme Freight", owner="bea", shared=False)
    last_day = (departures.today(rt.settings) + timedelta(days=20)).isoformat()
    give_notice(rt, "adm")
    assert_error(api.post("/api/v1/departures", "adm", json={"person": "bea", "last_day": last_day,
                                                              "successor": "eve"}), 403, CODE)
    started = api.post("/api/v1/departures", "adm", json={"person": "bea", "last_day": last_day})
    assert started.status_code == 201, started.get_json()
    departure = started.get_json()
    [item] = [i for i in departure["customers"] if i["customer_id"] == acme]
    path = f"/api/v1/departures/{departure['id']}"
    assert_error(api.post(path, "adm", json={"successor": "eve"}), 403, CODE)
    assert_error(api.post(f"{path}/items/{item['item_id']}/reassign", "adm", json={"to": "eve"}), 403, CODE)
    assert_error(api.post(f"{path}/items/{item['item_id']}/reassign", "adm", json={"to_pool": True}), 403, CODE)
    assert owner_of(rt, acme) == cast["bea"].id
    assert _refused(rt, "departure:manage") == [("adm", CODE)] * 4
    assert events(rt, "customer:handover", None) == []
