"""A manager sees the customers of everyone below the person, so one administrator alone cannot name one:
the manager is in place only when a second administrator approves, never the one who named, nor the person,
nor the manager named. Taking a manager away narrows a reach and happens at once. Pages and API alike."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from tests.api.conftest import assert_error, events
from tests.conftest import login
from tests.security.helpers import post_form
from tests.support.locks import at_once, interleaved, meanwhile
from vault.core.context import AccessContext
from vault.core.errors import NotFound
from vault.models import RequestStatus, Role, RoleRequest, utcnow
from vault.services import accounts, departures, managers, quota, todo


def _manager_of(rt, username: str) -> str | None:
    with rt.db.session() as session:
        boss = accounts.get_user(session, username).manager
        return boss.username if boss else None


def _user_id(rt, username: str) -> int:
    with rt.db.session() as session:
        return accounts.get_user(session, username).id


def test_one_administrator_alone_cannot_open_a_team_to_an_accomplice(app, api, rt, users):
    """The finding replayed on the pages: an administrator names an accomplice as a salesperson's manager.
    Before, the accomplice saw the salesperson's customers at once; now nothing changes until a second
    administrator approves, and the one who named cannot approve it."""
    users.make("adm2", Role.ADMIN)
    users.make("mal", Role.BORROWER)
    customer = api.customer("Nordlicht Handel", owner="bob", shared=False)
    assert api.get(f"/api/v1/customers/{customer}", "mal").status_code == 404
    first, second = app.test_client(), app.test_client()
    login(first, "adm")
    login(second, "adm2")
    bob_page = f"/admin/users/{_user_id(rt, 'bob')}"
    named = post_form(first, bob_page, f"{bob_page}/manager", manager=str(_user_id(rt, "mal")))
    assert named.status_code == 302
    assert _manager_of(rt, "bob") is None
    assert api.get(f"/api/v1/customers/{customer}", "mal").status_code == 404
    [pending] = api.get("/api/v1/manager-requests", "adm2").get_json()["manager_requests"]
    assert (pending["user"]["username"], pending["manager"]["username"]) == ("bob", "mal")
    assert "Mal (mal)" in second.get(bob_page).get_data(as_text=True)  # shown waiting on the person's page
    assert "<td>mal</td>" in second.get("/admin/role-requests").get_data(as_text=True)
    # Waiting on the second administrator's home page and menu, not on the first one's (who may not decide).
    home = second.get("/").get_data(as_text=True)
    assert 'id="todo-grants"' in home and "Mal as the manager of Bob, named by Adm" in home
    assert 'href="/admin/role-requests">Role requests</a><span class="badge nav-count">1' in home
    assert 'id="todo-grants"' not in first.get("/").get_data(as_text=True)

    refused = post_form(first, "/admin/role-requests", f"/admin/manager-requests/{pending['id']}/approve")
    assert refused.status_code == 403
    assert [e.reason_code for e in events(rt, "manager:approve", "denied")] == ["separation_of_duties"]
    assert _manager_of(rt, "bob") is None

    approved = post_form(second, "/admin/role-requests", f"/admin/manager-requests/{pending['id']}/approve")
    assert approved.status_code == 302
    assert _manager_of(rt, "bob") == "mal"
    assert api.get(f"/api/v1/customers/{customer}", "mal").status_code == 200
    assert [e.actor_name for e in events(rt, "manager:request")] == ["adm"]
    assert [e.actor_name for e in events(rt, "manager:approve")] == ["adm2"]
    [moved] = events(rt, "user:manager")
    assert moved.actor_name == "adm2"
    assert json.loads(moved.detail) == {"from": None, "to": _user_id(rt, "mal"), "request_id": pending["id"]}


def test_who_may_decide_a_manager_and_what_stays_at_once(api, rt, users):
    users.make("adm2", Role.ADMIN)
    users.make("adm3", Role.ADMIN)
    asked = api.post("/api/v1/users/bob/manager", "adm", json={"manager": "adm2"})
    assert asked.status_code == 202, asked.get_json()
    again = api.post("/api/v1/users/bob/manager", "adm", json={"manager": "adm2"})
    assert again.status_code == 202 and again.get_json()["id"] == asked.get_json()["id"]
    approve = f"/api/v1/manager-requests/{asked.get_json()['id']}/approve"
    assert_error(api.post(approve, "adm"), 403, "separation_of_duties")  # the one who named
    assert_error(api.post(approve, "adm2"), 403, "separation_of_duties")  # the manager named
    assert_error(api.post(approve, "aud"), 403, "not_permitted")  # auditors decide roles of their own only
    assert_error(api.post(approve, "bob"), 403, "not_permitted")
    assert api.post(approve, "adm3").get_json()["status"] == "approved"
    assert _manager_of(rt, "bob") == "adm2"
    assert_error(api.post(approve, "adm3"), 404, "not_found")  # decided: no longer waiting

    # Refused: nothing changes. Taken away: at once, by one administrator.
    other = api.post("/api/v1/users/bob/manager", "adm", json={"manager": "bea"}).get_json()
    refused = api.post(f"/api/v1/manager-requests/{other['id']}/refuse", "adm3").get_json()
    assert refused["status"] == "refused" and _manager_of(rt, "bob") == "adm2"
    removed = api.post("/api/v1/users/bob/manager", "adm", json={"manager": None})
    assert removed.status_code == 200 and removed.get_json()["manager"] is None
    assert [e.actor_name for e in events(rt, "manager:refuse")] == ["adm3"]


def test_an_approval_checks_the_line_again_and_a_leaving_admin_decides_nothing(api, rt, users):
    users.make("adm2", Role.ADMIN)
    users.make("adm3", Role.ADMIN)
    loop = api.post("/api/v1/users/bob/manager", "adm", json={"manager": "bea"}).get_json()
    gone = api.post("/api/v1/users/ann/manager", "adm", json={"manager": "kim"}).get_json()
    with rt.db.session() as session:  # since named: bea now reports to bob (the operator, at once)
        managers.set_manager(rt, session, accounts.get_user(session, "bea"), accounts.get_user(session, "bob"),
                             actor=None)
        accounts.disable_user(rt, session, accounts.get_user(session, "kim"), None, AccessContext.cli(),
                              reason="Left the company")
        departures.start_departure(rt, session, None, accounts.get_user(session, "adm3"),
                                   last_day=departures.today(rt.settings) + timedelta(days=20), successor=None,
                                   ctx=AccessContext.cli())
    assert_error(api.post(f"/api/v1/manager-requests/{loop['id']}/approve", "adm2"), 400, "manager_cycle")
    assert_error(api.post(f"/api/v1/manager-requests/{gone['id']}/approve", "adm2"), 400, "manager_disabled")
    assert (_manager_of(rt, "bob"), _manager_of(rt, "ann")) == (None, None)
    assert_error(api.post(f"/api/v1/manager-requests/{loop['id']}/refuse", "adm3"), 403, "decider_departing")
    assert [r["id"] for r in api.get("/api/v1/manager-requests", "adm2").get_json()["manager_requests"]] == [
        loop["id"], gone["id"]]


def test_the_requests_waiting_for_an_administrator_cost_the_same_few_statements_however_many(api, rt, users):
    """The to-do and the menu ask for them on every page: a fixed number of statements, none per request."""
    users.make("adm2", Role.ADMIN)

    def counted() -> tuple[int, int]:
        with rt.db.session() as session:
            statements: list[str] = []
            engine = session.get_bind()
            listener = lambda *args: statements.append(args[2])  # noqa: E731
            event.listen(engine, "before_cursor_execute", listener)
            try:
                waiting = todo.counts_for(rt, session, accounts.get_user(session, "adm2"))["grants"]
            finally:
                event.remove(engine, "before_cursor_execute", listener)
        return waiting, len(statements)

    for person, manager in (("bob", "bea"), ("bea", "kim")):
        api.post(f"/api/v1/users/{person}/manager", "adm", json={"manager": manager})
    api.post("/api/v1/users/bob/roles", "adm", json={"role": "custodian"})
    few = counted()
    for person, manager in (("kim", "carl"), ("carl", "ann"), ("ann", "aud")):
        api.post(f"/api/v1/users/{person}/manager", "adm", json={"manager": manager})
    api.post("/api/v1/users/bea/roles", "adm", json={"role": "custodian"})
    many = counted()
    assert (few[0], many[0]) == (3, 7)
    assert many[1] == few[1], (few, many)


def test_no_manager_is_named_at_or_below_a_person_on_notice(api, rt, users):
    """Bea gave notice; two administrators who are not leaving name her, or Bob who reports to her, as the
    manager of Tia, whose customers she would then see in her last days. The request waiting from before the
    notice is refused at approval and a new one at once (403 `manager_departing`, each refusal recorded);
    refusing the old one stays open."""
    users.make("adm2", Role.ADMIN)
    users.make("tia", Role.BORROWER)
    with rt.db.session() as session:
        managers.set_manager(rt, session, accounts.get_user(session, "bob"), accounts.get_user(session, "bea"),
                             actor=None)
    customer = api.customer("Tia's Key Account", owner="tia", shared=False)
    early = api.post("/api/v1/users/tia/manager", "adm", json={"manager": "bob"}).get_json()
    with rt.db.session() as session:
        departures.start_departure(rt, session, None, accounts.get_user(session, "bea"),
                                   last_day=departures.today(rt.settings) + timedelta(days=20), successor=None,
                                   ctx=AccessContext.cli())
    assert_error(api.post(f"/api/v1/manager-requests/{early['id']}/approve", "adm2"), 403, "manager_departing")
    for manager in ("bea", "bob"):
        assert_error(api.post("/api/v1/users/tia/manager", "adm", json={"manager": manager}), 403,
                     "manager_departing")
    assert _manager_of(rt, "tia") is None
    assert api.get(f"/api/v1/customers/{customer}", "bea").status_code == 404
    assert [e.reason_code for e in events(rt, "manager:approve", "denied")] == ["manager_departing"]
    assert [e.subject_user_id for e in events(rt, "user:manage", "denied")] == [_user_id(rt, "tia")] * 2
    # Still on the second administrator's list, to be refused.
    listed = api.get("/api/v1/manager-requests", "adm2").get_json()["manager_requests"]
    assert [r["id"] for r in listed] == [early["id"]]
    assert api.post(f"/api/v1/manager-requests/{early['id']}/refuse", "adm2").get_json()["status"] == "refused"


@pytest.mark.parametrize("db_backend", ["postgresql"])
@pytest.mark.parametrize("kind", ["role", "manager"])
def test_a_request_refused_while_another_administrator_approves_it_stays_refused(rt, users, cast, db_backend,
                                                                                  kind):
    """adm2 refused a request while adm3 approved it. The approval read the request waiting, waited for the
    refusal's write, then approved it all the same: the role given (or the manager put in place) that a
    second person had just refused. The decision now reads the request locked: adm3's is not found, as for
    any request decided already, and the refusal stands."""
    for name in ("adm2", "adm3"):
        users.make(name, Role.ADMIN)
    users.make("mal", Role.BORROWER)
    find, decide = {"role": (accounts.get_role_request, accounts.decide_role_request),
                    "manager": (managers.get_manager_request, managers.decide_manager_request)}[kind]
    with rt.db.session() as session:
        adm, bob = accounts.get_user(session, "adm"), accounts.get_user(session, "bob")
        if kind == "role":
            asked = accounts.assign_role(rt, session, bob, Role.CUSTODIAN, actor=adm, ctx=AccessContext())
        else:
            asked = managers.set_manager(rt, session, bob, accounts.get_user(session, "mal"), actor=adm,
                                         ctx=AccessContext())
        assert asked is not None
        request_id = asked.id
    outcome: list[object] = []

    def approve() -> None:
        with rt.db.session() as session:
            try:
                decide(rt, session, find(session, request_id), approve=True,
                       actor=accounts.get_user(session, "adm3"), ctx=AccessContext())
                outcome.append("approved")
            except NotFound:
                outcome.append("not_found")

    meanwhile(rt, lambda session: decide(rt, session, find(session, request_id), approve=False,
                                         actor=accounts.get_user(session, "adm2"), ctx=AccessContext()), approve)
    assert outcome == ["not_found"]
    with rt.db.session() as session:
        bob = accounts.get_user(session, "bob")
        assert Role.CUSTODIAN not in bob.role_set and bob.manager_id is None
    assert events(rt, f"{kind}:approve") == [] and len(events(rt, f"{kind}:refuse")) == 1


@pytest.mark.parametrize("db_backend", ["postgresql"])
@pytest.mark.parametrize("by", ["approvals", "operator"])
def test_two_managers_named_over_each_other_at_once_make_no_loop(rt, users, cast, db_backend, by):
    """Mal named Bob's manager and Bob named Mal's, put in place at the same moment (two administrators
    approving two requests, or the operator's command line twice). Each checked the chain above the
    manager it named before the other's change had committed, found no loop, and both went in: Bob above
    Mal above Bob, a chain that names no one at its top. Changes of the chain now take their turn: the
    second reads the first's change and is refused `manager_cycle`."""
    for name in ("adm2", "adm3"):
        users.make(name, Role.ADMIN)
    users.make("mal", Role.BORROWER)
    pairs = (("bob", "mal"), ("mal", "bob"))
    asked: list[int] = []
    if by == "approvals":
        with rt.db.session() as session:
            adm = accounts.get_user(session, "adm")
            for person, manager in pairs:
                request = managers.set_manager(rt, session, accounts.get_user(session, person),
                                               accounts.get_user(session, manager), actor=adm, ctx=AccessContext())
                assert request is not None
                asked.append(request.id)

    def put(session: Any, number: int) -> None:
        if by == "approvals":
            managers.decide_manager_request(rt, session, managers.get_manager_request(session, asked[number]),
                                            approve=True, actor=accounts.get_user(session, f"adm{number + 2}"),
                                            ctx=AccessContext())
        else:
            person, manager = pairs[number]
            managers.set_manager(rt, session, accounts.get_user(session, person),
                                 accounts.get_user(session, manager), actor=None)

    assert at_once(rt, lambda session: put(session, 0), lambda session: put(session, 1)) == ["manager_cycle"]
    assert (_manager_of(rt, "bob"), _manager_of(rt, "mal")) == ("mal", None)


@pytest.mark.parametrize("db_backend", ["postgresql"])
@pytest.mark.parametrize("step", ["asked", "approved"])
def test_two_conflicting_roles_at_once_do_not_both_stand(rt, users, cast, db_backend, step):
    """An auditor may not also approve (`role_conflict`). Asked for the same person by two administrators at
    once, each request read the person's roles and waiting requests before the other's had committed,
    and both were made; approved at once, by an auditor and an administrator, each read the person's roles
    before the other's grant, and Mal became auditor and approver: watching his own approvals. The person
    is now read locked for a role asked or given: the second is refused `role_conflict`."""
    users.make("adm2", Role.ADMIN)
    users.make("adm3", Role.ADMIN)
    users.make("mal", Role.BORROWER)
    roles = (Role.AUDITOR, Role.APPROVER)
    asked: list[int] = []
    if step == "approved":  # two requests that stand together (made before their conflict was caught at once)
        with rt.db.session() as session:
            mal, adm = accounts.get_user(session, "mal"), accounts.get_user(session, "adm")
            for role in roles:
                request = RoleRequest(user_id=mal.id, role=str(role), status=RequestStatus.PENDING,
                                      requested_by_id=adm.id, requested_at=utcnow())
                session.add(request)
                session.flush()
                asked.append(request.id)

    def give(session: Any, number: int) -> None:
        if step == "asked":
            accounts.assign_role(rt, session, accounts.get_user(session, "mal"), roles[number],
                                 actor=accounts.get_user(session, ("adm2", "adm3")[number]), ctx=AccessContext())
        else:
            accounts.decide_role_request(rt, session, accounts.get_role_request(session, asked[number]), approve=True,
                                         actor=accounts.get_user(session, ("aud", "adm2")[number]), ctx=AccessContext())

    assert at_once(rt, lambda session: give(session, 0), lambda session: give(session, 1)) == ["role_conflict"]
    with rt.db.session() as session:
        mal = accounts.get_user(session, "mal")
        waiting = {Role(r.role) for r in accounts.pending_role_requests(session, mal)}
        if step == "asked":
            assert waiting == {Role.AUDITOR} and mal.role_set == {Role.BORROWER}
        else:
            assert mal.role_set == {Role.BORROWER, Role.AUDITOR}


@pytest.mark.parametrize("db_backend", ["postgresql"])
@pytest.mark.parametrize("settings_overrides", [{"audit_shards": 1}])
def test_a_manager_approved_while_a_notice_is_recorded_waits_instead_of_deadlocking(rt, users, cast, db_backend,
                                                                                     settings_overrides):
    """adm3 approved Mal as Bob's manager while Bob's notice was being recorded (Bob's row locked, the
    notice's record not yet written). The approval wrote its record (which holds the head of its chain until
    the commit), then waited for Bob's row to change his manager; the notice's record waited for that head,
    and the database ended one of them. The approval now locks Bob's row before it records anything."""
    for name in ("adm2", "adm3"):
        users.make(name, Role.ADMIN)
    users.make("mal", Role.BORROWER)
    users.make("sue", Role.BORROWER)
    with rt.db.session() as session:
        asked = managers.set_manager(rt, session, accounts.get_user(session, "bob"), accounts.get_user(session, "mal"),
                                     actor=accounts.get_user(session, "adm"), ctx=AccessContext())
        assert asked is not None
        request_id = asked.id
    outcome: list[object] = []

    def approve() -> None:
        try:
            with rt.db.session() as session:
                managers.decide_manager_request(rt, session, managers.get_manager_request(session, request_id),
                                                approve=True, actor=accounts.get_user(session, "adm3"),
                                                ctx=AccessContext())
            outcome.append("approved")
        except Exception as exc:
            outcome.append(getattr(getattr(exc, "decision", None), "code", None) or exc)

    interleaved(rt, lambda session: quota.hold_notice(session, accounts.get_user(session, "bob"), recording=True),
                approve,
                lambda session, bob: departures.start_departure(
                    rt, session, accounts.get_user(session, "adm2"), bob,
                    last_day=departures.today(rt.settings) + timedelta(days=20),
                    successor=accounts.get_user(session, "sue"), ctx=AccessContext()))
    assert outcome == ["approved"]
    assert _manager_of(rt, "bob") == "mal"
