"""The customer page shown again after a refused form (the record edit, the contact log entry, the reveal):
its read is recorded marked `again`, it shows everything the page's normal visit shows, and a refusal on it is
recorded where every form refusal is."""

from __future__ import annotations

import html
import json
import re
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import login
from tests.records.scenes import nordlicht
from vault.core.context import AccessContext
from vault.models import AuditEvent, Customer
from vault.services import accounts, records


@pytest.fixture
def scene(rt: Any, users: Any) -> dict[str, int]:
    """Hana manages Bob, who owns the customer, and co-owns it herself: on its page she may edit the record,
    log a contact, reveal, and decide who works it (the owner and co-owner forms)."""
    return nordlicht(rt, users, {"city": "Hamburg", "contacts": [{"name": "Jana Novak",
                                                                "phones": ["+49 170 5550196"]}]},
                     hana_co_owns=True)


def _future() -> str:
    return date.today().replace(year=date.today().year + 1).isoformat()


# (path, the form as typed, status, the refusal recorded or None): for each form, the form's own check and
# what the service or the policy refuses.
CASES = [
    pytest.param("record", {"rec-status": "bankrupt"}, 400, None, id="record-form"),
    pytest.param("record", {"rec-city": "Lübeck", "rec-contacts_edited": "1", "rec-contacts-0-name": "X",
                            "rec-contacts-0-emails": "nonsense"}, 400, None, id="record-service"),
    pytest.param("log", {"log-happened_on": date.today().isoformat(), "log-channel": "visit",
                         "log-contact": "Jana Novak"}, 400, None, id="log-form"),
    pytest.param("log", {"log-happened_on": _future(), "log-channel": "visit", "log-contact": "Jana Novak",
                         "log-topic": "Frame contract"}, 400, None, id="log-service"),
    pytest.param("reveal", {"rv-reason": "x" * 501, "rv-place": "Office"}, 400, None, id="reveal-form"),
    pytest.param("reveal", {"rv-place": "Office"}, 403, "customer:reveal", id="reveal-policy"),
]


def _request_records(rt: Any, request_id: str) -> list[tuple[str, str, str | None, dict]]:
    with rt.db.session() as session:
        return [(e.action, e.outcome, e.reason_code, json.loads(e.detail or "{}")) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.request_id == request_id).order_by(AuditEvent.seq))]


def _assignment_forms(page: str, customer_id: int) -> list[bool]:
    return [f'action="/customers/{customer_id}/{tail}"' in page for tail in ("owner", "co-owners")]


@pytest.mark.parametrize(("path", "typed", "status", "refused"), CASES)
def test_a_customer_page_shown_again_records_its_read_marked_again(client, rt, scene, path, typed, status, refused):
    """Before, the page shown again after the edit, the contact log or the reveal was refused recorded its read
    unmarked (a retry read like a second visit; the pool's release already marked it). Now the read is recorded
    once, marked `again`, beside the refusal's record when the policy refused, and nothing else of the act
    stands."""
    cid = scene["customer"]
    token = login(client, "hana")
    answer = client.post(f"/customers/{cid}/{path}", data={"csrf_token": token, **typed})
    assert answer.status_code == status
    page = answer.get_data(as_text=True)
    assert "Nordlicht Handel" in page and f'action="/customers/{cid}/{path}"' in page
    found = _request_records(rt, answer.headers["X-Request-ID"])
    assert [r for r in found if r[1] == "allowed"] == [("customer:read", "allowed", None, {"again": True})]
    denied = [(action, code is not None) for action, outcome, code, _ in found if outcome == "denied"]
    assert denied == ([(refused, True)] if refused else [])


@pytest.mark.parametrize(("path", "typed", "status", "refused"), CASES)
def test_a_customer_page_shown_again_shows_what_its_visit_shows(client, rt, scene, path, typed, status, refused):
    """Before, the page shown again left out the owner and co-owner forms a manager sees on the page's visit
    (two lists of what the page holds, one of them short). Now both are built by the same function."""
    cid = scene["customer"]
    token = login(client, "hana")
    visit = client.get(f"/customers/{cid}").get_data(as_text=True)
    assert _assignment_forms(visit, cid) == [True, True]  # what the page's visit shows her
    answer = client.post(f"/customers/{cid}/{path}", data={"csrf_token": token, **typed})
    assert answer.status_code == status
    assert _assignment_forms(answer.get_data(as_text=True), cid) == [True, True]


def test_a_reveal_refused_for_its_reason_is_recorded_where_every_form_refusal_is(
        client, rt, scene, monkeypatch, caplog):
    """The reveal recorded its slip through `record_refusal` directly, so a failure of that record answered
    500 and lost what was typed, where every other form shows itself again and logs the failure for the
    operator (`vault.pages.refusals.record_form_refusal`): the reveal was refused and nothing spent either
    way. Now a fault in that one place reaches the reveal too; the page's read, marked `again`, still stands."""
    def broken(exc: Any) -> None:
        raise RuntimeError("the audit log cannot be reached")

    monkeypatch.setattr("vault.pages.refusals.record_refusal", broken)
    cid = scene["customer"]
    token = login(client, "hana")
    answer = client.post(f"/customers/{cid}/reveal",
                         data={"csrf_token": token, "rv-reason": "Contract renewal", "rv-place": "Office"})
    assert answer.status_code == 403
    page = answer.get_data(as_text=True)
    assert "Contract renewal</textarea>" in page and "a category name is not a reason" in page
    assert "could not record a refusal" in caplog.text
    assert _request_records(rt, answer.headers["X-Request-ID"]) == [
        ("customer:read", "allowed", None, {"again": True})]


def test_a_record_saved_over_a_change_made_since_it_was_opened_is_shown_again_not_saved(client, rt, scene):
    """Hana opened the customer's page; Bob then changed the city; Hana saved her form, filled from the
    record before Bob's change. Before, her save wrote over his unseen. Now the form carries the version it
    was filled from: her save is refused (409) and her form comes back as typed, with who changed the
    record and its version now, Bob's city kept; saving that form again is made over his change knowingly."""
    cid = scene["customer"]
    token = login(client, "hana")
    page = client.get(f"/customers/{cid}").get_data(as_text=True)
    assert re.search(r'name="rec-version" type="hidden" value="1"', page), "the form carries its version"
    with rt.db.session() as session:
        records.edit(rt, session, accounts.get_user(session, "bob"), session.get(Customer, cid), {"city": "Kiel"},
                     ctx=AccessContext.cli())
    form = {"csrf_token": token, "rec-city": "Lübeck", "rec-industry": "Shipping", "rec-version": "1"}
    refused = client.post(f"/customers/{cid}/record", data=form)
    assert refused.status_code == 409
    shown = html.unescape(refused.get_data(as_text=True))
    assert "The record was changed since you opened it (now version 2, by Bob" in shown
    assert 'value="Lübeck"' in shown and 'value="Shipping"' in shown
    assert re.search(r'name="rec-version" type="hidden" value="2"', shown)
    found = _request_records(rt, refused.headers["X-Request-ID"])
    assert [(action, outcome) for action, outcome, _code, _detail in found] == [("customer:read", "allowed")]
    with rt.db.session() as session:
        record = records.record_of(session, cid)
        assert (record.version, record.city, record.industry) == (2, "Kiel", "")
    assert client.post(f"/customers/{cid}/record", data={**form, "rec-version": "2"}).status_code == 302
    with rt.db.session() as session:
        record = records.record_of(session, cid)
        assert (record.version, record.city, record.industry) == (3, "Lübeck", "Shipping")
