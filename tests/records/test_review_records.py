"""Review of the customer record: reads shown in an error answer are still recorded, text the databases
cannot hold is refused, and a diff masks every contact value whatever its messaging service is called."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import login
from tests.support.factories import make_customer
from vault.core.context import AccessContext
from vault.core.errors import ServiceError
from vault.models import AuditEvent, Customer, CustomerAccess, Role, Segment
from vault.services import masking, records

PHONE = "+49 170 5550196"


@pytest.fixture
def owned(rt: Any, users: Any) -> int:
    bob = users.make("bob", Role.BORROWER)
    with rt.db.session() as session:
        customer = make_customer(session, owner_id=bob.id, name="Nordlicht Handel", segment=Segment.KEY)
        records.edit(rt, session, None, customer, {
            "city": "Hamburg", "contacts": [{"name": "Jana Novak", "phones": [PHONE]}]}, ctx=AccessContext.cli())
        session.commit()
        return customer.id


def _reads(rt: Any, customer_id: int) -> tuple[int, int]:
    """(`customer:read` audit records, read accesses counted for the early warning) of the customer."""
    with rt.db.session() as session:
        audited = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "customer:read", AuditEvent.customer_id == customer_id))
        counted = session.scalar(select(func.count()).select_from(CustomerAccess).where(
            CustomerAccess.customer_id == customer_id, CustomerAccess.kind == "read"))
        return audited, counted


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_a_customer_page_answered_with_a_form_error_still_records_the_read(client, rt, owned):
    """The reveal, edit and log forms answer a bad form with the whole customer page (status 400): that
    page is a read of the customer like any other, recorded and counted, not rolled back with the error."""
    token = login(client, "bob")
    posts = [("reveal", {"rv-reason": "x" * 501, "rv-place": "Office"}),  # refused by the form
             ("record", {"rec-status": "bankrupt"}),  # refused by the form
             ("record", {"rec-contacts_edited": "1", "rec-contacts-0-name": "X",
                         "rec-contacts-0-emails": "nonsense"}),  # refused by the service
             ("log", {"log-channel": "visit"})]  # no date, contact or topic
    for path, form in posts:
        before = _reads(rt, owned)
        answer = client.post(f"/customers/{owned}/{path}", data={"csrf_token": token, **form})
        assert answer.status_code == 400, (path, form)
        page = answer.get_data(as_text=True)
        assert "Nordlicht Handel" in page and "Hamburg" in page and "5550196" not in page
        assert _reads(rt, owned) == (before[0] + 1, before[1] + 1), (path, form)
    # Nothing else of a refused form stands: no version, no log entry, no reveal spent.
    with rt.db.session() as session:
        assert records.record_of(session, owned).version == 1
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action.in_(["customer:reveal", "customer:log", "customer:edit"]),
            AuditEvent.actor_id.isnot(None))) == 0


def test_record_text_the_databases_cannot_hold_is_refused():
    """An unpaired surrogate (JSON can carry one, `"\\ud800"`) in any field is bad input, not a crash."""
    for values in ({"city": "Ham\ud800burg"}, {"notes": "x\udfff"}, {"terms": {"pay\ud800": "30"}},
                   {"terms": {"payment": "3\ud800"}}, {"contacts": [{"name": "Jana\ud800"}]},
                   {"contacts": [{"name": "Jana", "messaging": {"tele\ud800": "@j"}}]},
                   {"contacts": [{"name": "Jana", "preferences": "mornings\ud800"}]}):
        with pytest.raises(ServiceError) as refused:
            records.clean_changes(values)
        assert refused.value.code == "invalid_record", values
    assert records.clean_changes({"city": "München 😀"}) == {"city": "München 😀"}


def test_a_diff_masks_a_messaging_id_whatever_its_service_is_called():
    """Messaging services are named by the person typing them: one called "role", "name" or "phones" is
    still a messaging ID in the history's diff (first character only), never shown as a job title is."""
    before = {"facts": dict.fromkeys(records.FACTS, ""), "contacts": [], "terms": {}, "notes": ""}
    handles = {"role": "jana.novak.77", "name": "Jana Novak", "phones": "+49 170 5550196", "emails": "jana@x.example"}
    after = {**before, "contacts": [{"name": "Jana Novak", "role": "Buyer", "phones": [], "emails": [],
                                     "messaging": handles, "birthday": "", "preferences": ""}]}
    changes = {c.field: c.after for c in records.diff(before, after)}
    assert changes["contacts[0].role"] == "Buyer"
    for service, handle in handles.items():
        assert changes[f"contacts[0].messaging.{service}"] == handle[0] + "•••", service


def test_a_masked_phone_number_always_hides_most_of_its_digits():
    """Enough to recognise a number, never enough to dial it: a short number (an extension, a number
    typed without its area code) keeps fewer of its digits, or none, so at least five stay hidden."""


    assert masking.mask_phone("+49 170 5550196") == "+49 ••• ••• 96"  # the usual form, unchanged
    assert masking.mask_phone("030 1234567") == "03 ••• ••• 67"
    for number in ("4711", "+49 4711", "1234 56", "+1234 5678", "+7 12 34 56", "12345678"):
        shown = masking.mask_phone(number)
        digits = sum(ch.isdigit() for ch in number)
        assert digits - sum(ch.isdigit() for ch in shown) >= 5 or not any(ch.isdigit() for ch in shown), (
            number, shown)


def test_text_in_another_line_ending_is_the_same_text_not_a_new_version(rt, owned):
    """A browser sends a text box's lines with CRLF, a script with LF: notes, preferences and log texts are
    kept with one line ending, so saving from the page the notes a script wrote is no change (the owner
    confirming the record), not a version on every save."""
    notes = "Prefers a call before any visit.\nBuys in spring."
    with rt.db.session() as session:
        customer = session.get(Customer, owned)
        assert records.edit(rt, session, None, customer, {
            "notes": notes, "contacts": [{"name": "Jana", "preferences": "Mornings.\nNo calls on Friday."}]},
            ctx=AccessContext.cli()) is not None
        version = records.record_of(session, customer.id).version
        for line_end in ("\r\n", "\r"):
            assert records.edit(rt, session, None, customer, {
                "notes": notes.replace("\n", line_end),
                "contacts": [{"name": "Jana", "preferences": "Mornings." + line_end + "No calls on Friday."}]},
                ctx=AccessContext.cli()) is None, repr(line_end)
        assert records.record_of(session, customer.id).version == version
    assert records.clean_changes({"notes": "a\r\nb\rc"}) == {"notes": "a\nb\nc"}
