"""Approvers and custodians on notice, on both databases: a leaver who decides over others' access could,
on the way out, approve, release, hand a release to a custodian of their choosing or raise a quota for an
accomplice, and reads every queue (each open request names a customer and a file). On notice they do
none of it (`decider_departing`, recorded), see only the loans that are theirs or that they acted on, are
mailed no request, and a file's custodian on notice no longer holds up its releases. A withdrawn notice
gives everything back."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.api.conftest import assert_error, events
from tests.api.test_loan_need_to_know import TWO_APPROVERS
from tests.conftest import login
from tests.mail.conftest import give_email
from vault import policy
from vault.core.context import AccessContext
from vault.models import Departure, Role
from vault.models.mail import MailOutbox
from vault.services import accounts, departures, loans, todo

TEXT = b"Visit notes, prices and contacts.\n"
WHY = "Kim is away until the end of the month"
CODE = "decider_departing"


def give_notice(rt: Any, username: str) -> int:
    with rt.db.session() as session:
        return departures.start_departure(rt, session, None, accounts.get_user(session, username),
                                          last_day=departures.today(rt.settings) + timedelta(days=20),
                                          successor=None, ctx=AccessContext.cli()).id


def _withdraw(rt: Any, departure_id: int) -> None:
    with rt.db.session() as session:
        departures.withdraw(rt, session, None, session.get(Departure, departure_id),
                            reason="Stays after all: a counter-offer", ctx=AccessContext.cli())


def _counts(rt: Any, username: str) -> tuple[int, int]:
    with rt.db.session() as session:
        counts = todo.counts_for(rt, session, accounts.get_user(session, username))
        return counts["decisions"], counts["releases"]


def _ids(answer: Any) -> list[int]:
    assert answer.status_code == 200, answer.get_json()
    return [loan["id"] for loan in answer.get_json()["loans"]]


def _refusals(rt: Any, action: str) -> list[tuple[str, str]]:
    return [(e.actor_name, e.reason_code) for e in events(rt, action, "denied")]


@pytest.fixture
def desk(api: Any, users: Any, rt: Any) -> dict[str, int]:
    """Bob's customer Acme (nobody else works it) with two grade-2 files needing two approvals each and a
    grade-3 file Kim keeps. Ann has approved one request half-way, leaves another undecided, and approved
    a grade-3 loan now waiting for Kim's release. Abe and Kit are the approver and custodian who stay."""
    users.make("abe", Role.APPROVER)
    users.make("kit", Role.CUSTODIAN)
    with rt.db.session() as session:
        ids = {name: accounts.get_user(session, name).id for name in ("ann", "abe", "kim", "kit")}
    for name, user_id in ids.items():
        give_email(rt, user_id, f"{name}@example.com")
    scene = {"customer": api.customer("Acme Freight", owner="bob", shared=False)}
    scene["plan"] = api.upload(scene["customer"], title="Account plan", content=TEXT, filename="plan.txt")
    scene["prices"] = api.upload(scene["customer"], title="Price list", content=TEXT, filename="prices.txt")
    scene["minutes"] = api.upload(scene["customer"], grade=3, title="Board minutes", content=TEXT,
                                  filename="minutes.txt", custodian="kim")
    scene["half"] = api.approved_loan(scene["plan"], "bob")  # one approval of two: still waiting
    scene["waiting"] = api.loan(scene["prices"], "bob")
    scene["release"] = api.approved_loan(scene["minutes"], "bob")
    assert api.get(f"/api/v1/loans/{scene['half']}", "bob").get_json()["status"] == "requested"
    assert api.get(f"/api/v1/loans/{scene['release']}", "bob").get_json()["status"] == "approved"
    return scene


@pytest.mark.parametrize("settings_overrides", [TWO_APPROVERS])
def test_a_person_on_notice_approves_releases_designates_and_widens_nothing(api, app, rt, desk):
    """Refused `decider_departing` wherever they still see the loan or the file, recorded; a loan they no
    longer see is the audited 404 of any unseen loan; after the notice is withdrawn all is as before."""
    assert api.get(f"/api/v1/loans/{desk['waiting']}", "ann").status_code == 200
    departed = {name: give_notice(rt, name) for name in ("ann", "kim")}

    # Ann: the request she approved half-way, the grade-3 loan she approved; the others are unseen.
    assert_error(api.post(f"/api/v1/loans/{desk['half']}/approve", "ann", json={"comment": "ok"}), 403, CODE)
    context = api.get(f"/api/v1/loans/{desk['half']}/context", "ann").get_json()
    assert context["acts"]["approve"]["open"] is False and context["acts"]["approve"]["code"] == CODE
    assert_error(api.post(f"/api/v1/loans/{desk['release']}/designate", "ann",
                          json={"custodian": "kit", "reason": WHY}), 403, CODE)
    assert_error(api.post(f"/api/v1/loans/{desk['waiting']}/approve", "ann", json={"comment": "ok"}), 404,
                 "not_found")
    batch = api.post("/api/v1/loans/approve", "ann", json={"loan_ids": [desk["waiting"]], "comment": "ok"})
    assert [r["code"] for r in batch.get_json()["refused"]] == ["not_found"]
    # A customer found by name is seen for a day: its files' quotas are still not the leaver's to raise.
    assert api.get("/api/v1/customers/lookup?q=Acme", "ann").status_code == 200
    assert_error(api.post(f"/api/v1/documents/{desk['plan']}/quota", "ann", json={"views": 40, "person": "bea"}),
                 403, CODE)
    # Kim: the release waiting for her is no longer hers to see; the policy refuses it anyway.
    assert_error(api.post(f"/api/v1/loans/{desk['release']}/release", "kim"), 404, "not_found")
    assert api.get("/api/v1/customers/lookup?q=Acme", "kim").status_code == 200
    assert_error(api.post(f"/api/v1/documents/{desk['minutes']}/quota", "kim", json={"views": 9, "person": "bea"}),
                 403, CODE)
    with rt.db.session() as session:
        kim = accounts.get_user(session, "kim")
        with pytest.raises(policy.Denied) as refused:
            loans.release(rt, session, kim, session.get(loans.Loan, desk["release"]), ctx=AccessContext.cli())
    assert refused.value.decision.code == CODE

    # The page says the same, and records it.
    browser = app.test_client()
    token = login(browser, "ann")
    approve = browser.post(f"/loans/{desk['half']}/approve", data={"csrf_token": token, "comment": "ok"})
    assert approve.status_code == 403 and CODE in approve.get_data(as_text=True)
    assert browser.get(f"/loans/{desk['waiting']}").status_code == 404

    assert _refusals(rt, "loan:approve") == [("ann", CODE), ("ann", "not_found"), ("ann", "not_found"),
                                             ("ann", CODE)]
    assert _refusals(rt, "loan:designate") == [("ann", CODE)]
    assert _refusals(rt, "quota:override") == [("ann", CODE), ("kim", CODE)]
    assert _refusals(rt, "loan:release") == [("kim", "not_found")]
    assert events(rt, "loan:designate") == [] and events(rt, "quota:override") == []
    assert len(events(rt, "loan:approve")) == 2 and events(rt, "loan:release") == []

    # Withdrawn, the notice leaves nothing behind: they decide, release and set quotas again.
    for departure_id in departed.values():
        _withdraw(rt, departure_id)
    approved = api.post(f"/api/v1/loans/{desk['waiting']}/approve", "ann", json={"comment": "ok"})
    assert approved.status_code == 200, approved.get_json()
    assert api.post(f"/api/v1/documents/{desk['minutes']}/quota", "kim",
                    json={"views": 9, "person": "bea"}).status_code == 200
    designated = api.post(f"/api/v1/loans/{desk['release']}/designate", "ann", json={"custodian": "kit",
                                                                                      "reason": WHY})
    assert designated.status_code == 200, designated.get_json()
    released = api.post(f"/api/v1/loans/{desk['release']}/release", "kim")
    assert released.status_code == 200 and released.get_json()["status"] == "active"


@pytest.mark.parametrize("settings_overrides", [TWO_APPROVERS])
def test_a_person_on_notice_sees_no_queue_and_no_longer_holds_up_releases(api, app, rt, desk):
    """Queues, counts, the to-do page, the leavers' list and the customers a queue opens: only what is
    theirs or what they acted on. New requests are mailed to the approvers who stay, releases to the
    custodians who stay, and any of those releases a file whose own custodian is on notice."""
    assert _counts(rt, "ann") == (1, 0) and _counts(rt, "kim") == (0, 1)
    assert api.get(f"/api/v1/customers/{desk['customer']}", "kim").status_code == 200  # she keeps a file of it
    departed = {name: give_notice(rt, name) for name in ("ann", "kim")}

    assert _counts(rt, "ann") == (0, 0) and _counts(rt, "kim") == (0, 0)
    # The request Ann approved half-way stays in her sight (she acted on it), closed with the reason.
    assert _ids(api.get("/api/v1/loans?queue=approvals", "ann")) == [desk["half"]]
    assert sorted(_ids(api.get("/api/v1/loans", "ann"))) == sorted([desk["half"], desk["release"]])
    assert _ids(api.get("/api/v1/loans?queue=custody", "kim")) == []
    assert _ids(api.get("/api/v1/loans", "kim")) == []
    for who in ("ann", "kim"):
        assert api.get(f"/api/v1/loans/{desk['waiting']}", who).status_code == 404
        assert api.get(f"/api/v1/customers/{desk['customer']}", who).status_code == 404, who
        assert api.get("/api/v1/customers", who).get_json()["customers"] == [], who
    for who, page in (("ann", "/loans/approvals"), ("kim", "/loans/custody"), ("ann", "/"), ("kim", "/")):
        browser = app.test_client()
        login(browser, who)
        html = browser.get(page).get_data(as_text=True)
        assert "Price list" not in html and "Board minutes" not in html, (who, page)
        if page == "/loans/approvals":
            assert "Account plan" in html and "People on notice no longer approve" in html
    # Those who stay see all of it; Kit may release the file Kim keeps.
    assert _counts(rt, "abe") == (2, 0) and _counts(rt, "kit") == (0, 1)

    # A new request is mailed to Abe, not Ann; Abe's approval of a grade-3 loan to Kit, not Kim.
    # Nor is a new file given to Kim to keep: she would release nothing of it.
    refused = api.post(f"/api/v1/customers/{desk['customer']}/documents", "carl", data={
        "file": (io.BytesIO(TEXT), "stamp.txt"), "title": "Stamp register", "grade": "3", "custodian": "kim"},
        content_type="multipart/form-data")
    assert_error(refused, 400, "invalid_custodian")
    stamp = api.upload(desk["customer"], grade=3, title="Stamp register", content=TEXT, filename="stamp.txt")
    late = api.approved_loan(stamp, "bob", approver="abe")
    with rt.db.session() as session:
        mailed = {(row.kind, row.recipient) for row in session.scalars(
            select(MailOutbox).where(MailOutbox.kind.in_(("loan_requested", "release_needed"))))
            if row.dedupe_key.split(":")[1] == str(late)}
    assert mailed == {("loan_requested", "abe@example.com"), ("release_needed", "kit@example.com")}
    # Kim keeps the minutes but cannot act: Kit releases them and the new file, with no designation needed.
    assert _ids(api.get("/api/v1/loans?queue=custody", "kit")) == [desk["release"], late]
    released = api.post(f"/api/v1/loans/{late}/release", "kit")
    assert released.status_code == 200, released.get_json()

    for departure_id in departed.values():
        _withdraw(rt, departure_id)
    assert _counts(rt, "ann") == (1, 0) and _counts(rt, "kim") == (0, 1)
    assert _ids(api.get("/api/v1/loans?queue=custody", "kim")) == [desk["release"]]
    assert api.get(f"/api/v1/customers/{desk['customer']}", "kim").status_code == 200
    # Back at work, Kim is the file's custodian again: Kit releases only when designated.
    assert_error(api.post(f"/api/v1/loans/{desk['release']}/release", "kit"), 403, "not_the_custodian")
