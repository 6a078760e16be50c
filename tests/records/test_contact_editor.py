"""The record's editor for contacts, terms and notes on the customer page: one labelled group of fields per
contact, one row per term and the notes' box, shown only after a reveal (or when there is nothing to hide),
and a save that replaces them with what the form says, keeps them when they were not shown, and puts a
refused value beside its input with nothing saved.

Each test submits the form the way a browser does: every input of the edit form as the page rendered it
(values, checked boxes, selected options), changed only where a person would type."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import login
from tests.support.factories import make_customer
from vault.core.context import AccessContext
from vault.models import AuditEvent, Role, Segment
from vault.services import records

PHONE = "+49 170 5550196"
EMAIL = "jana@nordlicht.example"
NOTES = "Prefers a call before any visit"
REVEAL = {"rv-reason": "Renewal call next week", "rv-place": "Office"}


class _EditForm(HTMLParser):
    """The fields of `#record-edit`'s form as a browser would send them, and the ids of its labels."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.label_for: set[str] = set()
        self.ids: set[str] = set()
        self._inside = False
        self._textarea: str | None = None
        self._select: str | None = None
        self._first_option: tuple[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "section" and a.get("id") == "record-edit":
            self._inside = True
        if not self._inside:
            return
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "label" and a.get("for"):
            self.label_for.add(a["for"])
        name = a.get("name")
        if tag == "input" and name:
            if a.get("type") == "checkbox":
                if "checked" in a:
                    self.fields[name] = a.get("value", "y")
            else:
                self.fields[name] = a.get("value", "")
        elif tag == "textarea" and name:
            self._textarea = name
            self.fields[name] = ""
        elif tag == "select" and name:
            self._select, self._first_option = name, None
        elif tag == "option" and self._select:
            if self._first_option is None:
                self._first_option = (self._select, a.get("value", ""))
                self.fields[self._select] = a.get("value", "")
            if "selected" in a:
                self.fields[self._select] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._inside = False
        elif tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            # A browser reads CR LF as LF and drops the one line feed that follows <textarea>.
            data = data.replace("\r\n", "\n")
            self.fields[self._textarea] += data.removeprefix("\n") if not self.fields[self._textarea] else data


def edit_form(html: str) -> _EditForm:
    parser = _EditForm()
    parser.feed(html)
    return parser


@pytest.fixture
def scene(rt: Any, users: Any) -> dict[str, int]:
    bob = users.make("bob", Role.BORROWER)
    with rt.db.session() as session:
        customer = make_customer(session, owner_id=bob.id, name="Nordlicht Handel", segment=Segment.VIP)
        records.edit(rt, session, None, customer, {
            "city": "Hamburg", "contacts": [{"name": "Jana Novak", "role": "Buyer", "phones": [PHONE],
                                            "emails": [EMAIL], "messaging": {"telegram": "@jnovak"},
                                            "birthday": "1980-05-17", "preferences": "Mornings only"}],
            "terms": {"payment": "30 days net"}, "notes": NOTES}, ctx=AccessContext.cli())
        blank = make_customer(session, owner_id=bob.id, name="Neuland GmbH", segment=Segment.ORDINARY)
        session.commit()
        return {"customer": customer.id, "blank": blank.id}


def _stored(rt: Any, customer_id: int) -> dict[str, Any]:
    with rt.db.session() as session:
        record = records.record_of(session, customer_id)
        return {**records.snapshot(rt, record), "version": record.version if record else 0}


def _revealed(client: Any, token: str, customer_id: int) -> _EditForm:
    shown = client.post(f"/customers/{customer_id}/reveal", data={"csrf_token": token, **REVEAL})
    assert shown.status_code == 200
    return edit_form(shown.get_data(as_text=True))


def _save(client: Any, customer_id: int, fields: dict[str, str], **headers: str) -> Any:
    return client.post(f"/customers/{customer_id}/record", data=fields, headers=headers)


def test_masked_contacts_and_terms_show_no_rows_and_a_save_keeps_them(client, rt, scene):
    login(client, "bob")
    cid = scene["customer"]
    page = client.get(f"/customers/{cid}").get_data(as_text=True)
    form = edit_form(page)
    assert not any(name.startswith(("rec-contacts-", "rec-terms-")) for name in form.fields)
    assert form.fields["rec-contacts_edited"] == "" and form.fields["rec-terms_edited"] == ""
    assert "Reveal the contacts to change them." in page and "Reveal the terms to change them." in page
    assert "Jana" not in page[page.index('id="record-edit"'):]
    before = _stored(rt, cid)
    saved = _save(client, cid, {**form.fields, "rec-city": "Lübeck"})
    assert saved.status_code == 302
    after = _stored(rt, cid)
    assert after["facts"]["city"] == "Lübeck" and after["version"] == before["version"] + 1
    assert (after["contacts"], after["terms"]) == (before["contacts"], before["terms"])
    # Rows sent without the marker (a form that never showed them) are not an edit of the lists either.
    crafted = _save(client, cid, {**form.fields, "rec-contacts-0-name": "Someone Else", "rec-contacts-0-remove": "y",
                                  "rec-terms-0-name": "payment", "rec-terms-0-value": "cash"})
    assert crafted.status_code == 302
    assert (_stored(rt, cid)["contacts"], _stored(rt, cid)["terms"]) == (before["contacts"], before["terms"])


def test_a_reveal_fills_the_groups_and_an_edit_changes_and_adds(client, rt, scene):
    token = login(client, "bob")
    cid = scene["customer"]
    form = _revealed(client, token, cid)
    fields = form.fields
    assert fields["rec-contacts_edited"] == "1" and fields["rec-terms_edited"] == "1"
    assert (fields["rec-contacts-0-name"], fields["rec-contacts-0-role"]) == ("Jana Novak", "Buyer")
    assert (fields["rec-contacts-0-phones"], fields["rec-contacts-0-emails"]) == (PHONE, EMAIL)
    assert (fields["rec-contacts-0-messaging"], fields["rec-contacts-0-birthday"]) == ("telegram:@jnovak", "1980-05-17")
    assert fields["rec-contacts-0-preferences"] == "Mornings only" and fields["rec-contacts-0-language"] == ""
    assert "rec-contacts-0-main" not in fields and "rec-contacts-0-remove" not in fields
    # Two blank contacts and three blank terms to add to, every input with its label.
    assert fields["rec-contacts-2-name"] == "" and "rec-contacts-3-name" not in fields
    assert (fields["rec-terms-0-name"], fields["rec-terms-0-value"]) == ("payment", "30 days net")
    assert fields["rec-terms-3-name"] == "" and "rec-terms-4-name" not in fields
    inputs = {name for name in fields if re.match(r"rec-(contacts|terms)-\d+-", name)}
    assert inputs <= form.label_for and inputs <= form.ids
    fields.update({"rec-contacts-0-role": "Head of purchasing", "rec-contacts-0-phones": f"{PHONE}, +49 40 5550100",
                   "rec-contacts-1-name": "Li Wei", "rec-contacts-1-emails": "li.wei@nordlicht.example",
                   "rec-contacts-1-messaging": "wechat:liwei, telegram:@liwei", "rec-contacts-1-language": "zh_Hans",
                   "rec-contacts-1-main": "y", "rec-terms-1-name": "discount", "rec-terms-1-value": "7%"})
    saved = _save(client, cid, fields)
    assert saved.status_code == 302
    stored = _stored(rt, cid)
    assert stored["contacts"] == [
        {"name": "Jana Novak", "role": "Head of purchasing", "phones": [PHONE, "+49 40 5550100"], "emails": [EMAIL],
         "messaging": {"telegram": "@jnovak"}, "birthday": "1980-05-17", "preferences": "Mornings only"},
        {"name": "Li Wei", "role": "", "phones": [], "emails": ["li.wei@nordlicht.example"],
         "messaging": {"wechat": "liwei", "telegram": "@liwei"}, "birthday": "", "preferences": "",
         "language": "zh_Hans", "main": True}]
    assert stored["terms"] == {"payment": "30 days net", "discount": "7%"}
    # After the next reveal the new contact's language and main mark come back as they were chosen.
    again = _revealed(client, token, cid).fields
    assert again["rec-contacts-1-language"] == "zh_Hans" and again["rec-contacts-1-main"] == "y"


def test_rows_marked_for_removal_are_dropped_and_all_of_them_empties_the_lists(client, rt, scene):
    token = login(client, "bob")
    cid = scene["customer"]
    fields = _revealed(client, token, cid).fields
    fields.update({"rec-contacts-1-name": "Li Wei", "rec-contacts-0-remove": "y"})
    assert _save(client, cid, fields).status_code == 302
    assert [c["name"] for c in _stored(rt, cid)["contacts"]] == ["Li Wei"]
    assert _stored(rt, cid)["terms"] == {"payment": "30 days net"}

    fields = _revealed(client, token, cid).fields
    fields.update({"rec-contacts-0-remove": "y", "rec-terms-0-remove": "y"})
    before = _stored(rt, cid)["version"]
    assert _save(client, cid, fields).status_code == 302
    stored = _stored(rt, cid)
    assert (stored["contacts"], stored["terms"], stored["version"]) == ([], {}, before + 1)
    with rt.db.session() as session:
        edit = session.scalars(select(AuditEvent).where(AuditEvent.action == "customer:edit")
                               .order_by(AuditEvent.seq.desc())).first()
    assert edit is not None and edit.actor_name == "bob"


def test_a_customer_without_contacts_or_terms_gets_blank_rows_without_a_reveal(client, rt, scene):
    """Nothing is masked when there is nothing: the first contacts need no reveal (none is spent)."""
    login(client, "bob")
    cid = scene["blank"]
    page = client.get(f"/customers/{cid}").get_data(as_text=True)
    fields = edit_form(page).fields
    assert fields["rec-contacts_edited"] == "1" and fields["rec-contacts-0-name"] == ""
    assert fields["rec-terms_edited"] == "1" and fields["rec-terms-0-name"] == ""
    fields.update({"rec-contacts-0-name": "Max Neu", "rec-contacts-0-phones": "+49 30 5550123",
                   "rec-terms-0-name": "payment", "rec-terms-0-value": "14 days"})
    assert _save(client, cid, fields).status_code == 302
    stored = _stored(rt, cid)
    assert [c["name"] for c in stored["contacts"]] == ["Max Neu"] and stored["terms"] == {"payment": "14 days"}
    with rt.db.session() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "customer:reveal")) == 0
    # Now there is something to hide: the next page shows no rows until a reveal.
    assert "rec-contacts-0-name" not in edit_form(client.get(f"/customers/{cid}").get_data(as_text=True)).fields


def _reads(rt: Any, customer_id: int) -> int:
    with rt.db.session() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "customer:read", AuditEvent.customer_id == customer_id))


def test_a_bad_value_is_shown_beside_its_field_with_the_typed_values_and_nothing_saved(client, rt, scene):
    token = login(client, "bob")
    cid = scene["customer"]
    fields = _revealed(client, token, cid).fields
    fields.update({"rec-contacts-0-role": "Changed role", "rec-contacts-1-name": "Li Wei",
                   "rec-contacts-1-emails": "nonsense", "rec-contacts-2-name": "Olga Smirnova",
                   "rec-contacts-2-phones": "abc", "rec-terms-1-name": "discount", "rec-terms-1-value": "7%"})
    before, reads = _stored(rt, cid), _reads(rt, cid)
    bad = _save(client, cid, fields, **{"Accept-Language": "ru"})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 400
    assert _stored(rt, cid) == before  # nothing of the edit was saved
    assert _reads(rt, cid) == reads + 1  # the page shown again is a read, recorded as today
    # Each refusal stands under its own input, in the reader's language, not as the API's path.
    second = html[html.index('name="rec-contacts-1-emails"'):html.index('name="rec-contacts-1-messaging"')]
    assert "E-mail: это не адрес электронной почты" in second
    third = html[html.index('name="rec-contacts-2-phones"'):html.index('name="rec-contacts-2-emails"')]
    assert "Телефоны: &#39;abc&#39; — это не номер телефона" in third
    assert "contacts[1]" not in html and "contacts[2]" not in html
    focused = re.findall(r"<input[^>]*autofocus[^>]*>", html)
    assert len(focused) == 1 and 'name="rec-contacts-1-emails"' in focused[0], "the first refused input has no focus"
    assert 'aria-invalid="true"' in focused[0] and 'aria-describedby="rec-contacts-1-emails-error"' in focused[0]
    # What was typed is kept, so the person corrects one value instead of typing the rest again.
    again = edit_form(html).fields
    assert (again["rec-contacts-0-role"], again["rec-contacts-1-name"]) == ("Changed role", "Li Wei")
    assert (again["rec-contacts-1-emails"], again["rec-contacts-2-phones"]) == ("nonsense", "abc")
    assert (again["rec-terms-1-name"], again["rec-contacts_edited"]) == ("discount", "1")
    # Corrected, the same form saves.
    again.update({"rec-contacts-1-emails": "li.wei@nordlicht.example", "rec-contacts-2-phones": "+7 495 5550101"})
    assert _save(client, cid, again).status_code == 302
    assert [c["name"] for c in _stored(rt, cid)["contacts"]] == ["Jana Novak", "Li Wei", "Olga Smirnova"]


def test_a_term_needs_a_name_and_a_name_once(client, rt, scene):
    token = login(client, "bob")
    cid = scene["customer"]
    fields = _revealed(client, token, cid).fields
    fields.update({"rec-terms-1-value": "7%", "rec-terms-2-name": "payment", "rec-terms-2-value": "cash"})
    before = _stored(rt, cid)
    bad = _save(client, cid, fields)
    html = bad.get_data(as_text=True)
    assert bad.status_code == 400 and _stored(rt, cid) == before
    assert "A term needs a name." in html[html.index('name="rec-terms-1-name"'):html.index('name="rec-terms-1-value"')]
    assert "This term is already given above." in html[
        html.index('name="rec-terms-2-name"'):html.index('name="rec-terms-2-value"')]
    # A value the service refuses (too long) stands under that term's value.
    fields.update({"rec-terms-1-name": "discount", "rec-terms-2-name": "rebate", "rec-terms-2-value": "x" * 201})
    bad = _save(client, cid, fields)
    html = bad.get_data(as_text=True)
    assert bad.status_code == 400 and _stored(rt, cid) == before
    assert "Value: has at most 200 characters" in html[html.index('name="rec-terms-2-value"'):]


def test_masked_notes_show_no_box_and_a_save_keeps_them_whatever_is_sent(client, rt, scene):
    """Notes follow the contacts' rule: a form that did not show them carries no edit of them, so text sent
    under their name without the marker (a crafted form, or one typed blind) changes nothing."""
    login(client, "bob")
    cid = scene["customer"]
    page = client.get(f"/customers/{cid}").get_data(as_text=True)
    form = edit_form(page)
    assert "rec-notes" not in form.fields and form.fields["rec-notes_edited"] == ""
    assert "Reveal the notes to change them." in page
    assert NOTES not in page
    saved = _save(client, cid, {**form.fields, "rec-city": "Lübeck", "rec-notes": "Overwritten blind"})
    assert saved.status_code == 302
    assert _stored(rt, cid)["notes"] == NOTES and _stored(rt, cid)["facts"]["city"] == "Lübeck"
    # An empty box sent without the marker is no clearing either.
    assert _save(client, cid, {**form.fields, "rec-notes": ""}).status_code == 302
    assert _stored(rt, cid)["notes"] == NOTES


def test_revealed_notes_are_edited_and_emptying_them_clears_them(client, rt, scene):
    """Before, an empty box meant "keep them", so notes once written could never be removed from the page."""
    token = login(client, "bob")
    cid = scene["customer"]
    fields = _revealed(client, token, cid).fields
    assert (fields["rec-notes"], fields["rec-notes_edited"]) == (NOTES, "1")
    fields["rec-notes"] = "Prefers e-mail now"
    assert _save(client, cid, fields).status_code == 302
    assert _stored(rt, cid)["notes"] == "Prefers e-mail now"

    fields = _revealed(client, token, cid).fields
    before = _stored(rt, cid)
    fields["rec-notes"] = ""
    assert _save(client, cid, fields).status_code == 302
    after = _stored(rt, cid)
    assert after["notes"] == "" and after["version"] == before["version"] + 1
    assert (after["contacts"], after["terms"]) == (before["contacts"], before["terms"])
    with rt.db.session() as session:
        edit = session.scalars(select(AuditEvent).where(AuditEvent.action == "customer:edit")
                               .order_by(AuditEvent.seq.desc())).first()
    assert edit is not None and json.loads(edit.detail)["changed"] == ["notes"]
    # Nothing left to hide: the box is offered without a reveal, empty, and its marker set.
    fields = edit_form(client.get(f"/customers/{cid}").get_data(as_text=True)).fields
    assert (fields["rec-notes"], fields["rec-notes_edited"]) == ("", "1")


def test_a_customer_without_notes_gets_the_box_without_a_reveal(client, rt, scene):
    login(client, "bob")
    cid = scene["blank"]
    fields = edit_form(client.get(f"/customers/{cid}").get_data(as_text=True)).fields
    assert (fields["rec-notes"], fields["rec-notes_edited"]) == ("", "1")
    fields["rec-notes"] = "Met at the trade fair"
    assert _save(client, cid, fields).status_code == 302
    assert _stored(rt, cid)["notes"] == "Met at the trade fair"
    # Now there is something to hide: the next page shows no box until a reveal.
    fields = edit_form(client.get(f"/customers/{cid}").get_data(as_text=True)).fields
    assert "rec-notes" not in fields and fields["rec-notes_edited"] == ""


@pytest.mark.parametrize("typed", ["telegram:@jana, telegram:@jnovak", "telegram:@jana, Telegram:@jnovak"])
def test_one_messaging_service_twice_is_refused_beside_the_field(client, rt, scene, typed):
    """Before, the second id silently replaced the first (the services are the keys of one object)."""
    token = login(client, "bob")
    cid = scene["customer"]
    fields = _revealed(client, token, cid).fields
    fields.update({"rec-contacts-0-messaging": typed, "rec-contacts-1-name": "Li Wei",
                   "rec-contacts-1-phones": "abc"})
    before = _stored(rt, cid)
    bad = _save(client, cid, fields)
    html = bad.get_data(as_text=True)
    assert bad.status_code == 400 and _stored(rt, cid) == before
    beside = html[html.index('name="rec-contacts-0-messaging"'):html.index('name="rec-contacts-0-birthday"')]
    assert "Messaging: names the service telegram twice (one id per service)" in beside
    # The other slips of the same form are shown in the same answer, each beside its own input.
    assert "Phones: &#39;abc&#39; is not a phone number" in html[
        html.index('name="rec-contacts-1-phones"'):html.index('name="rec-contacts-1-emails"')]
    assert edit_form(html).fields["rec-contacts-0-messaging"] == typed  # kept as typed, to correct
    # In the reader's language too.
    ru = _save(client, cid, fields, **{"Accept-Language": "ru"}).get_data(as_text=True)
    beside = ru[ru.index('name="rec-contacts-0-messaging"'):ru.index('name="rec-contacts-0-birthday"')]
    assert "Мессенджеры: сервис telegram указан дважды (у сервиса один идентификатор)" in beside


def test_a_contact_row_without_a_language_is_the_company_default_and_an_unknown_one_is_refused(client, rt, scene):
    """A crafted row that leaves the language out is the blank choice ("the company's default"), a legitimate
    value the form offers; a language the product does not write letters in is refused beside the field."""
    token = login(client, "bob")
    cid = scene["customer"]
    fields = _revealed(client, token, cid).fields
    fields.update({"rec-contacts-1-name": "Li Wei", "rec-contacts-1-language": "zh_Hans"})
    del fields["rec-contacts-1-language"]
    assert _save(client, cid, fields).status_code == 302
    assert "language" not in _stored(rt, cid)["contacts"][1]

    fields = _revealed(client, token, cid).fields
    before = _stored(rt, cid)
    fields["rec-contacts-1-language"] = "xx"
    bad = _save(client, cid, fields)
    html = bad.get_data(as_text=True)
    assert bad.status_code == 400 and _stored(rt, cid) == before
    assert "Not a valid choice" in html[html.index('name="rec-contacts-1-language"'):
                                         html.index('name="rec-contacts-1-preferences"')]
