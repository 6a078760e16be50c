"""The rotation page as a manager and a new owner use it: the plan run from the page, an approval that
needs its confirmation box, a skip that needs a reason, the new owner's contact on the to-do home,
confirmed only once it is logged."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import csrf_from, login
from tests.departure.conftest import run_cli
from tests.support.factories import make_customer, reach_main_contact
from vault.core.context import AccessContext
from vault.models import AuditEvent, Customer, ProposalStatus, Role, RotationProposal, Segment
from vault.services import accounts, managers


def _scene(rt: Any, users: Any, clock: Any) -> dict[str, int]:
    """mia manages bob and bea; bob has held two key customers for 13 months (the clock turned back while
    they were made)."""
    ids = {name: users.make(name, Role.BORROWER).id for name in ("mia", "bob", "bea")}
    clock.advance(timedelta(days=-400))
    with rt.db.session() as session:
        mia = accounts.get_user(session, "mia")
        for name in ("bob", "bea"):
            managers.set_manager(rt, session, accounts.get_user(session, name), mia, actor=None,
                                 ctx=AccessContext.cli())
        ids["acme"] = make_customer(session, owner_id=ids["bob"], name="Acme Rotation", segment=Segment.KEY).id
        ids["brill"] = make_customer(session, owner_id=ids["bob"], name="Brill Rotation", segment=Segment.KEY).id
        session.commit()
    clock.reset()
    return ids


def _proposal(rt: Any, customer_id: int) -> RotationProposal:
    with rt.db.session() as session:
        proposal = session.scalar(select(RotationProposal).where(RotationProposal.customer_id == customer_id))
        session.expunge(proposal)
        return proposal


def test_a_manager_decides_on_the_page_and_the_new_owner_confirms(app, rt, users, clock):
    ids = _scene(rt, users, clock)
    mia = app.test_client()
    token = login(mia, "mia")
    assert "Rotation" in mia.get("/").get_data(as_text=True)
    assert mia.post("/rotation/propose", data={"csrf_token": token}).status_code == 302
    page = mia.get("/rotation/").get_data(as_text=True)
    assert "Acme Rotation" in page and "Brill Rotation" in page
    acme, brill = _proposal(rt, ids["acme"]), _proposal(rt, ids["brill"])
    assert acme.to_user_id == brill.to_user_id == ids["bea"]  # the only other member of the team
    # Without the confirmation box nothing moves.
    refused = mia.post(f"/rotation/{acme.id}/approve", data={"csrf_token": token, f"a{acme.id}-to_user": ids["bea"]})
    assert refused.status_code == 400 and "Tick the box to confirm." in refused.get_data(as_text=True)
    # A skip needs a reason.
    refused = mia.post(f"/rotation/{brill.id}/skip", data={"csrf_token": token, f"s{brill.id}-confirm": "y"})
    assert refused.status_code == 400 and "Say why the customer stays." in refused.get_data(as_text=True)
    approved = mia.post(f"/rotation/{acme.id}/approve", data={
        "csrf_token": token, f"a{acme.id}-to_user": ids["bea"], f"a{acme.id}-confirm": "y"})
    assert approved.status_code == 302
    skipped = mia.post(f"/rotation/{brill.id}/skip", data={
        "csrf_token": token, f"s{brill.id}-reason": "Bob closes the tender first", f"s{brill.id}-confirm": "y"})
    assert skipped.status_code == 302
    with rt.db.session() as session:
        assert session.get(Customer, ids["acme"]).owner_id == ids["bea"]
        assert session.get(Customer, ids["brill"]).owner_id == ids["bob"]
        assert session.get(RotationProposal, brill.id).status == ProposalStatus.SKIPPED
    assert "No proposal waits for you." in mia.get("/rotation/").get_data(as_text=True)

    bea = app.test_client()
    login(bea, "bea")
    home = bea.get("/").get_data(as_text=True)
    assert 'id="todo-rotations"' in home and "Acme Rotation" in home
    tasks = bea.get("/rotation/tasks").get_data(as_text=True)
    token = csrf_from(tasks)
    refused = bea.post(f"/rotation/tasks/{acme.id}/confirm", data={"csrf_token": token, f"c{acme.id}-note": "Met"})
    assert refused.status_code == 403 and "contact_not_logged" in refused.get_data(as_text=True)
    reach_main_contact(rt, ids["acme"], "bea")
    done = bea.post(f"/rotation/tasks/{acme.id}/confirm", data={"csrf_token": token, f"c{acme.id}-note": "Met"})
    assert done.status_code == 302
    assert 'id="todo-rotations"' not in bea.get("/").get_data(as_text=True)
    # bob, the previous owner, has nothing to confirm and no proposal to decide.
    bob = app.test_client()
    login(bob, "bob")
    assert bob.post(f"/rotation/tasks/{acme.id}/confirm", data={"csrf_token": csrf_from(
        bob.get("/").get_data(as_text=True))}).status_code == 404


def test_the_plan_runs_from_the_command_line_once(rt, users, clock, tmp_path):
    ids = _scene(rt, users, clock)
    first = run_cli(rt, tmp_path, "rotation", "propose")
    assert first.exit_code == 0, first.output
    assert "2 new proposal(s)" in first.output and "bob -> bea" in first.output
    again = run_cli(rt, tmp_path, "rotation", "propose")
    assert again.exit_code == 0 and "0 new proposal(s)" in again.output
    listed = run_cli(rt, tmp_path, "rotation", "list")
    assert "Acme Rotation" in listed.output and "2 open proposal(s)" in listed.output
    with rt.db.session() as session:
        rows = session.scalars(select(RotationProposal).order_by(RotationProposal.id)).all()
        assert [(r.customer_id, r.to_user_id, r.created_by_id) for r in rows] == [
            (ids["acme"], ids["bea"], None), (ids["brill"], ids["bea"], None)]


def _events(rt: Any, after: int, action: str | None = None) -> list[AuditEvent]:
    with rt.db.session() as session:
        query = select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq)
        if action is not None:
            query = query.where(AuditEvent.action == action)
        return list(session.scalars(query))


def _head(rt: Any) -> int:
    events = _events(rt, 0)
    return events[-1].seq if events else 0


@pytest.mark.parametrize(("note", "status", "refused"), [
    ("Met their buyer at the trade fair", 403, [("rotation:confirm", "contact_not_logged")]),  # a step first
    ("x" * 2001, 400, []),  # the form's own check (a note too long): nothing decided
])
def test_a_rotation_confirmation_refused_shows_the_tasks_again_with_the_note(app, rt, users, clock, note, status,
                                                                             refused):
    """Before, a confirmation refused because the contact was not yet logged answered a bare refusal page: the
    note was lost and the way to the contact log was not offered. Now the tasks page comes again, as the
    handover's does: the reason, the note as typed, the link to the customer's contact log; the refusal is
    recorded (it still counts), and the list's read is recorded again, marked `again`, kept with the error."""
    ids = _scene(rt, users, clock)
    mia = app.test_client()
    token = login(mia, "mia")
    assert mia.post("/rotation/propose", data={"csrf_token": token}).status_code == 302
    acme = _proposal(rt, ids["acme"])
    assert mia.post(f"/rotation/{acme.id}/approve", data={
        "csrf_token": token, f"a{acme.id}-to_user": ids["bea"], f"a{acme.id}-confirm": "y"}).status_code == 302
    bea = app.test_client()
    login(bea, "bea")
    tasks = bea.get("/rotation/tasks").get_data(as_text=True)
    # The way to the step the confirmation needs first stands beside the form from the start.
    assert f'href="/customers/{ids["acme"]}#contact-log"' in tasks
    mark = _head(rt)
    answer = bea.post(f"/rotation/tasks/{acme.id}/confirm",
                      data={"csrf_token": csrf_from(tasks), f"c{acme.id}-note": note})
    assert answer.status_code == status
    page = html.unescape(answer.get_data(as_text=True))
    assert "<h1>Customers rotated to you</h1>" in page
    form = re.search(rf'<form[^>]*action="/rotation/tasks/{acme.id}/confirm".*?</form>', page, re.S)
    assert form, "the confirmation form is not shown again"
    assert re.search(rf'<textarea[^>]*name="c{acme.id}-note"[^>]*>\r?\n?{re.escape(note)}</textarea>', form.group(0))
    assert f'href="/customers/{ids["acme"]}#contact-log"' in page
    if refused:
        assert "Log your contact with the customer's main contact first" in page
    else:
        assert "Field cannot be longer than 2000 characters." in form.group(0)
    assert [(e.action, e.reason_code) for e in _events(rt, mark) if e.outcome == "denied"] == refused
    assert [e for e in _events(rt, mark, "rotation:confirm") if e.outcome == "allowed"] == []
    with rt.db.session() as session:
        assert session.get(RotationProposal, acme.id).confirmed_at is None
    [listing] = _events(rt, mark, "customer:list")
    assert (listing.outcome, listing.actor_name, listing.request_id) == (
        "allowed", "bea", answer.headers["X-Request-ID"])
    assert json.loads(listing.detail) == {"listing": "rotation_tasks", "ids": [ids["acme"]], "again": True}
