"""Rotation of account managers through the API, on both databases: the plan proposes swaps within a team
once the tenure is over (an injected clock), never to someone on notice or to the deciding manager; an
approval moves the customer, ends the old owner's loans and requests on its files, and gives the new
owner a contact to confirm; refusals leave everything as it was."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.api.conftest import assert_error, events
from tests.support.factories import reach_main_contact
from tests.support.locks import interleaved, meanwhile
from vault.core import events as domain_events
from vault.core.context import AccessContext
from vault.core.errors import NotFound
from vault.models import Customer, Loan, LoanStatus, ProposalStatus, Role, RotationProposal, User
from vault.policy import Denied
from vault.services import accounts, departures, loans, managers, rotation
from vault.services import customers as customers_service


def _team(rt: Any, users: Any) -> None:
    """mia manages bob, bea, bill and dan (all account managers); dan is on notice."""
    for name in ("mia", "bill", "dan"):
        users.make(name, Role.BORROWER)
    with rt.db.session() as session:
        mia = accounts.get_user(session, "mia")
        for name in ("bob", "bea", "bill", "dan"):
            managers.set_manager(rt, session, accounts.get_user(session, name), mia, actor=None)
        session.commit()


def _later(api: Any, clock: Any, days: int) -> None:
    """Move time on; bearer tokens expire, so the callers take new ones."""
    clock.advance(timedelta(days=days))
    api.tokens.clear()


def _owner(rt: Any, customer_id: int) -> str:
    with rt.db.session() as session:
        return session.get(Customer, customer_id).owner.username


@pytest.fixture
def scene(api: Any, rt: Any, users: Any, clock: Any) -> dict[str, int]:
    """Two key customers of bob held for 13 months, each with a grade-1 and a grade-2 file; bob holds an
    active loan of one grade-2 file and an undecided request for the other. bea and bill got a key
    customer each just now; dan, on notice, has none (without the rule he would be everyone's pick)."""
    _team(rt, users)
    acme = api.customer("Acme", owner="bob", shared=False)
    brill = api.customer("Brill", owner="bob", shared=False)
    plain, secret = api.upload(acme, grade=1), api.upload(acme, grade=2, title="Prices")
    other = api.upload(brill, grade=2, title="Terms")
    _later(api, clock, 400)
    api.customer("Cedar", owner="bea", shared=False)
    api.customer("Delta", owner="bill", shared=False)
    with rt.db.session() as session:
        dan = accounts.get_user(session, "dan")
        departures.start_departure(rt, session, None, dan, last_day=departures.today(rt.settings) + timedelta(days=20),
                                   successor=None, ctx=AccessContext.cli())
        session.commit()
    loan = api.approved_loan(secret, "bob")
    request = api.loan(other, "bob")
    return {"acme": acme, "brill": brill, "plain": plain, "secret": secret, "other": other, "loan": loan,
            "request": request}


def test_the_plan_proposes_balanced_swaps_and_an_approval_moves_the_customer(api, rt, cast, scene):
    # Before: bob opens the grade-1 file of Acme; bea, outside it, does not see it.
    assert api.open_view(scene["plain"], "bob").status_code == 201
    assert api.open_view(scene["plain"], "bea").status_code == 404
    proposed = api.post("/api/v1/rotations/propose", "mia")
    assert proposed.status_code == 200, proposed.get_json()
    made = {p["customer"]["name"]: p for p in proposed.get_json()["proposed"]}
    assert set(made) == {"Acme", "Brill"}  # Cedar and Delta are not due; dan has none
    # Balanced: one each to bea and bill, none to dan (on notice) or mia (the manager), never to bob.
    assert sorted(p["new_owner"]["username"] for p in made.values()) == ["bea", "bill"]
    assert all(p["current_owner"]["username"] == "bob" for p in made.values())
    # Idempotent: a second run proposes nothing more.
    assert api.post("/api/v1/rotations/propose", "mia").get_json()["proposed"] == []
    listed = api.get("/api/v1/rotations", "mia").get_json()
    assert listed["total"] == 2 and {p["id"] for p in listed["proposals"]} == {p["id"] for p in made.values()}
    assert len(events(rt, "rotation:propose")) == 2

    heard: list[dict[str, Any]] = []

    def listener(**kwargs: Any) -> None:
        heard.append(kwargs)

    domain_events.listen("customer.owner_changed")(listener)
    try:
        acme = made["Acme"]
        approved = api.post(f"/api/v1/rotations/{acme['id']}/approve", "mia", json={"reason": "Yearly rotation"})
    finally:
        domain_events._listeners["customer.owner_changed"].remove(listener)
    assert approved.status_code == 200, approved.get_json()
    receiver = acme["new_owner"]["username"]
    assert approved.get_json()["status"] == "approved" and _owner(rt, scene["acme"]) == receiver
    assert [(h["cause"], h["new_owner"].username, h["previous_owner_id"]) for h in heard] == [
        ("rotation", receiver, cast["bob"].id)]
    # The old owner's loan on Acme's file ended; his request on Brill's file (not rotated yet) stands.
    with rt.db.session() as session:
        loan = session.get(Loan, scene["loan"])
        assert loan.status == LoanStatus.REVOKED and "rotated" in loan.close_reason
        assert session.get(Loan, scene["request"]).status == LoanStatus.REQUESTED
    # bob can no longer open Acme's files; the new owner can.
    assert api.open_view(scene["secret"], "bob").status_code in (403, 404)
    assert api.open_view(scene["plain"], "bob").status_code == 404
    assert api.open_view(scene["plain"], receiver).status_code == 201
    [record] = events(rt, "rotation:approve")
    detail = json.loads(record.detail)
    assert record.customer_id == scene["acme"] and record.actor_name == "mia"
    assert detail["loans_ended"] == [scene["loan"]] and detail["edited"] is False
    [owner] = events(rt, "customer:owner")
    assert json.loads(owner.detail)["cause"] == "rotation" and owner.customer_id == scene["acme"]
    # Decided once only.
    assert_error(api.post(f"/api/v1/rotations/{acme['id']}/approve", "mia"), 409, "already_decided")
    assert_error(api.post(f"/api/v1/rotations/{acme['id']}/skip", "mia", json={"reason": "Changed my mind"}),
                 409, "already_decided")

    # Brill: the manager names the other member instead; bob's request on its file is closed with a reason.
    brill = made["Brill"]
    other = "bea" if brill["new_owner"]["username"] == "bill" else "bill"
    edited = api.post(f"/api/v1/rotations/{brill['id']}/approve", "mia", json={"to": other})
    assert edited.status_code == 200, edited.get_json()
    assert edited.get_json()["new_owner"]["username"] == other and _owner(rt, scene["brill"]) == other
    with rt.db.session() as session:
        request = session.get(Loan, scene["request"])
        assert request.status == LoanStatus.REVOKED and request.close_reason
    assert json.loads(events(rt, "rotation:approve")[-1].detail)["edited"] is True
    assert api.get("/api/v1/rotations", "mia").get_json()["total"] == 0


def test_rotation_refusals_change_nothing(api, rt, cast, scene):
    made = api.post("/api/v1/rotations/propose", "mia").get_json()["proposed"]
    acme = next(p for p in made if p["customer"]["name"] == "Acme")
    path = f"/api/v1/rotations/{acme['id']}"
    receiver = acme["new_owner"]["username"]
    # Not the owner's manager: the proposal is not there for them (bea and bill are team members; bob the owner).
    for person in ("bea", "bill", "bob", "carl"):
        assert_error(api.post(path + "/approve", person), 404, "not_found")
        assert api.get("/api/v1/rotations", person).get_json()["total"] == 0
    # Roles that never decide.
    assert_error(api.post(path + "/approve", "adm"), 403, "not_permitted")
    assert_error(api.get("/api/v1/rotations", "aud"), 403, "not_permitted")
    # The manager may not give the customer to themselves, to someone on notice, or outside the team.
    assert_error(api.post(path + "/approve", "mia", json={"to": "mia"}), 403, "own_gain")
    assert_error(api.post(path + "/approve", "mia", json={"to": "dan"}), 400, "invalid_owner")
    assert_error(api.post(path + "/approve", "mia", json={"to": "bob"}), 400, "invalid_owner")
    assert_error(api.post(path + "/approve", "mia", json={"to": "carl"}), 400, "not_in_team")
    assert_error(api.post(path + "/approve", "mia", json={"to": "nobody"}), 422, "invalid_request")
    # A skip needs a reason.
    assert_error(api.post(path + "/skip", "mia", json={"reason": ""}), 422, "invalid_request")
    assert_error(api.post(path + "/skip", "mia", json={"reason": "no"}), 400, "reason_required")
    assert_error(api.post(path + "/skip", "mia", json={}), 422, "invalid_request")
    assert_error(api.post("/api/v1/rotations/999999/approve", "mia"), 404, "not_found")
    assert _owner(rt, scene["acme"]) == "bob"
    assert events(rt, "rotation:approve") == [] and events(rt, "rotation:skip") == []
    with rt.db.session() as session:
        assert session.get(Loan, scene["loan"]).status == LoanStatus.ACTIVE
    assert len(events(rt, "rotation:decide", outcome="denied")) >= 1
    # An approver decides too, but never a swap that gives them the customer (ann is no account manager here).
    skipped = api.post(path + "/skip", "ann", json={"reason": "Bob closes the tender first"})
    assert skipped.status_code == 200, skipped.get_json()
    assert skipped.get_json()["status"] == "skipped" and _owner(rt, scene["acme"]) == "bob"
    [record] = events(rt, "rotation:skip")
    assert record.customer_id == scene["acme"] and record.reason_text == "Bob closes the tender first"
    # A skipped customer is not proposed again within the interval.
    again = api.post("/api/v1/rotations/propose", "mia").get_json()["proposed"]
    assert "Acme" not in {p["customer"]["name"] for p in again}
    assert receiver in ("bea", "bill")


def test_the_new_owner_confirms_contact_only_after_logging_it(api, rt, cast, scene):
    made = api.post("/api/v1/rotations/propose", "mia").get_json()["proposed"]
    acme = next(p for p in made if p["customer"]["name"] == "Acme")
    assert api.post(f"/api/v1/rotations/{acme['id']}/approve", "mia").status_code == 200
    receiver = acme["new_owner"]["username"]
    with rt.db.session() as session:
        new_owner = accounts.get_user(session, receiver)
        [task] = rotation.tasks_for(session, new_owner)
        assert task.customer_id == scene["acme"]
        assert rotation.tasks_for(session, accounts.get_user(session, "bob")) == []
        with pytest.raises(Denied) as refused:
            rotation.confirm_contact(rt, session, new_owner, task, ctx=AccessContext.cli())
        assert refused.value.decision.code == "contact_not_logged"
        with pytest.raises(NotFound):
            rotation.get_task(session, accounts.get_user(session, "bob"), task.id)
        session.rollback()
    reach_main_contact(rt, scene["acme"], receiver)
    with rt.db.session() as session:
        new_owner = accounts.get_user(session, receiver)
        task = rotation.get_task(session, new_owner, acme["id"])
        rotation.confirm_contact(rt, session, new_owner, task, note="Met the buyer", ctx=AccessContext.cli())
        session.commit()
        assert rotation.tasks_for(session, new_owner) == []
        with pytest.raises(Denied) as again:
            rotation.confirm_contact(rt, session, new_owner, task, ctx=AccessContext.cli())
        assert again.value.decision.code == "already_confirmed"
    [record] = events(rt, "rotation:confirm")
    assert record.customer_id == scene["acme"] and record.actor_name == receiver


def test_tenure_counts_from_the_last_change_of_owner(api, rt, cast, users, clock):
    _team(rt, users)
    acme = api.customer("Acme", owner="bob", shared=False)
    _later(api, clock, 300)  # 10 months: not yet due (key customers rotate every 12)
    assert api.post("/api/v1/rotations/propose", "mia").get_json()["proposed"] == []
    with rt.db.session() as session:  # handed to bea by her manager: tenure starts again
        customer = session.get(Customer, acme)
        mia = accounts.get_user(session, "mia")
        customers_service.set_owner(rt, session, mia, customer, accounts.get_user(session, "bea"),
                                    ctx=AccessContext.cli())
        session.commit()
    _later(api, clock, 100)  # 13 months since creation, 3 since the handover
    assert api.post("/api/v1/rotations/propose", "mia").get_json()["proposed"] == []
    _later(api, clock, 300)
    [proposal] = api.post("/api/v1/rotations/propose", "mia").get_json()["proposed"]
    assert proposal["current_owner"]["username"] == "bea" and proposal["new_owner"]["username"] != "bea"
    # The owner changed another way before anyone decided: the next run voids the proposal.
    with rt.db.session() as session:
        customer = session.get(Customer, acme)
        customers_service.set_owner(rt, session, accounts.get_user(session, "mia"), customer,
                                    accounts.get_user(session, "bob"), ctx=AccessContext.cli())
        session.commit()
    assert_error(api.post(f"/api/v1/rotations/{proposal['id']}/approve", "mia"), 409, "owner_changed")
    api.post("/api/v1/rotations/propose", "mia")
    with rt.db.session() as session:
        assert session.get(RotationProposal, proposal["id"]).status == ProposalStatus.VOID
        assert session.scalar(select(User.id).where(User.username == "bob")) is not None


def test_a_leaver_s_customer_goes_with_the_handover_not_the_rotation(api, rt, cast, users, clock):
    _team(rt, users)
    acme = api.customer("Acme", owner="bob", shared=False)
    _later(api, clock, 400)
    [proposal] = api.post("/api/v1/rotations/propose", "mia").get_json()["proposed"]
    with rt.db.session() as session:  # bob gives notice; nobody is named successor yet
        departures.start_departure(rt, session, None, accounts.get_user(session, "bob"),
                                   last_day=departures.today(rt.settings) + timedelta(days=20), successor=None,
                                   ctx=AccessContext.cli())
        session.commit()
    assert_error(api.post(f"/api/v1/rotations/{proposal['id']}/approve", "mia"), 409, "owner_departing")
    assert _owner(rt, acme) == "bob"
    assert api.post("/api/v1/rotations/propose", "mia").get_json()["proposed"] == []
    with rt.db.session() as session:
        assert session.get(RotationProposal, proposal["id"]).status == ProposalStatus.VOID
    [void] = events(rt, "rotation:void")
    assert void.reason_text == "owner_departing" and void.customer_id == acme


def test_the_plan_spreads_a_team_s_due_customers_evenly(rt, users, clock):
    """Six customers of two owners fall due in a team of four: every book ends within one customer of the
    others, nobody receives their own customer, and the manager above never receives one."""
    team = {name: users.make(name, Role.BORROWER).id for name in ("lea", "max", "ned", "ola")}
    boss = users.make("pam", Role.APPROVER)
    clock.advance(timedelta(days=-800))
    with rt.db.session() as session:
        pam = session.get(User, boss.id)
        for user_id in team.values():
            managers.set_manager(rt, session, session.get(User, user_id), pam, actor=None)
        for index in range(6):
            session.add(Customer(name=f"Due {index}", segment="key", owner_id=team["lea" if index < 4 else "max"],
                                 created_by_id=team["lea"]))
        session.commit()
    clock.reset()
    with rt.db.session() as session:
        made = rotation.propose(rt, session, None, ctx=AccessContext.cli())
        moves = [(p.from_user_id, p.to_user_id) for p in made]
        session.commit()
    assert len(moves) == 6 and all(src != dst for src, dst in moves)
    assert boss.id not in {dst for _src, dst in moves}
    books = {user_id: 0 for user_id in team.values()}
    books[team["lea"]], books[team["max"]] = 4, 2
    for src, dst in moves:
        books[src] -= 1
        books[dst] += 1
    assert sorted(books.values()) == [1, 1, 2, 2], books  # 6 customers over 4 people
    # The two owners swap too: each receives some of the other's customers.
    assert {(team["max"], team["lea"]), (team["lea"], team["max"])} <= set(moves)


def test_two_runs_at_once_make_one_proposal_per_customer(rt, users, clock, db_backend):
    """The unique index on open proposals holds when two runs propose together (PostgreSQL: the second
    waits for the first's commit, then skips the customer; SQLite runs them one after the other)."""
    team = {name: users.make(name, Role.BORROWER).id for name in ("lea", "max", "ned")}
    boss = users.make("pam", Role.APPROVER)
    clock.advance(timedelta(days=-800))
    with rt.db.session() as session:
        for user_id in team.values():
            managers.set_manager(rt, session, session.get(User, user_id), session.get(User, boss.id), actor=None)
        for index in range(4):
            session.add(Customer(name=f"Due {index}", segment="key", owner_id=team["lea"], created_by_id=team["lea"]))
        session.commit()
    clock.reset()
    started, made = threading.Barrier(2), []

    def run() -> None:
        with rt.db.session() as session:
            started.wait(timeout=10)
            made.append(len(rotation.propose(rt, session, None, ctx=AccessContext.cli())))
            time.sleep(0.2)
            session.commit()

    if db_backend == "sqlite":  # one writer at a time: the second run follows the first
        started = threading.Barrier(1)
        run()
        run()
    else:
        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    with rt.db.session() as session:
        rows = session.scalars(select(RotationProposal.customer_id).where(
            RotationProposal.status == ProposalStatus.OPEN)).all()
    assert sorted(made) == [0, 4] and len(rows) == len(set(rows)) == 4


@pytest.mark.parametrize("db_backend", ["postgresql"])
def test_a_skip_waiting_for_an_approval_finds_the_proposal_decided(api, rt, cast, scene, db_backend):
    """mia approved a proposal in one tab and skipped it in another. The skip waited for the approval's
    write to the proposal, then wrote over it with what it had read before the wait (still open): the
    proposal said "skipped" while its customer had moved. The decision now locks the proposal and reads it
    again: the skip is refused as decided already, and the proposal stays approved."""
    acme = next(p for p in api.post("/api/v1/rotations/propose", "mia").get_json()["proposed"]
                if p["customer"]["name"] == "Acme")
    outcome: list[object] = []

    def skip() -> None:
        with rt.db.session() as session:
            mia = accounts.get_user(session, "mia")
            proposal = rotation.get_for_decision(session, mia, acme["id"])
            assert proposal.is_open  # read before the wait, as the page and the API read it
            try:
                rotation.skip(rt, session, mia, proposal, reason="Keep it with bob", ctx=AccessContext())
                outcome.append("skipped")
            except Exception as exc:
                outcome.append(getattr(exc, "code", exc))

    def approve(session: Any) -> None:
        mia = accounts.get_user(session, "mia")
        rotation.approve(rt, session, mia, rotation.get_for_decision(session, mia, acme["id"]), ctx=AccessContext())

    meanwhile(rt, approve, skip)
    assert outcome == ["already_decided"]
    with rt.db.session() as session:
        assert session.get(RotationProposal, acme["id"]).status == ProposalStatus.APPROVED
    assert _owner(rt, scene["acme"]) == acme["new_owner"]["username"]


@pytest.mark.parametrize("db_backend", ["postgresql"])
def test_a_confirmation_sent_twice_at_once_is_recorded_once(api, rt, cast, scene, db_backend):
    """The new owner's confirmation sent twice (a double click, two tabs): each read the task unconfirmed
    and both were recorded. The task is now read locked: the second is refused as confirmed already."""
    made = api.post("/api/v1/rotations/propose", "mia").get_json()["proposed"]
    acme = next(p for p in made if p["customer"]["name"] == "Acme")
    assert api.post(f"/api/v1/rotations/{acme['id']}/approve", "mia").status_code == 200
    receiver = acme["new_owner"]["username"]
    reach_main_contact(rt, scene["acme"], receiver)
    outcome: list[object] = []

    def confirm(session: Any, note: str) -> None:
        new_owner = accounts.get_user(session, receiver)
        rotation.confirm_contact(rt, session, new_owner, rotation.get_task(session, new_owner, acme["id"]),
                                 note=note, ctx=AccessContext.cli())

    def again() -> None:
        with rt.db.session() as session:
            try:
                confirm(session, "Met the buyer (sent again)")
                outcome.append("confirmed")
            except Denied as exc:
                outcome.append(exc.decision.code)

    meanwhile(rt, lambda session: confirm(session, "Met the buyer"), again)
    assert outcome == ["already_confirmed"]
    assert [e.reason_text for e in events(rt, "rotation:confirm")] == ["Met the buyer"]


@pytest.mark.parametrize("db_backend", ["postgresql"])
@pytest.mark.parametrize("settings_overrides", [{"audit_shards": 1}])
def test_an_approval_meeting_a_return_of_the_old_owners_loan_waits_instead_of_deadlocking(
        api, rt, cast, scene, db_backend, settings_overrides):
    """Bob was returning his loan of Acme's file (the loan locked, his record not yet written) when mia
    approved Acme's rotation. The approval moved the customer, writing its record (which holds the head of
    its chain until the commit), then waited for the loan to end it; Bob's record waited for that head,
    and the database ended one of them (a 503). The decision now locks the old owner's open loans on the
    customer's files with the proposal, before any record: it waits for the return, and ends nothing."""
    acme = next(p for p in api.post("/api/v1/rotations/propose", "mia").get_json()["proposed"]
                if p["customer"]["name"] == "Acme")
    answers: list[Any] = []
    interleaved(rt, lambda session: loans.lock_loan(session, session.get(Loan, scene["loan"])),
                lambda: answers.append(api.post(f"/api/v1/rotations/{acme['id']}/approve", "mia")),
                lambda session, loan: loans.return_loan(rt, session, accounts.get_user(session, "bob"), loan,
                                                        ctx=AccessContext()))
    assert answers[0].status_code == 200, answers[0].get_data()[:300]
    with rt.db.session() as session:
        assert session.get(Loan, scene["loan"]).status == LoanStatus.RETURNED
    assert json.loads(events(rt, "rotation:approve")[0].detail)["loans_ended"] == []
