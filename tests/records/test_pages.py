"""The record on the customer page: masked, revealed by a form with a reason, edited into versions, the
contact log, and the history with its diffs."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest

from tests.conftest import login
from tests.records.scenes import nordlicht

pytestmark = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)

PHONE = "+49 170 5550196"


@pytest.fixture
def scene(rt: Any, users: Any) -> dict[str, int]:
    return nordlicht(rt, users, {"city": "Hamburg", "contacts": [{"name": "Jana Novak", "phones": [PHONE],
                                                                "emails": ["jana@nordlicht.example"]}],
                                 "terms": {"payment": "30 days net"}})


def _form(page: str) -> str:
    return page


def test_the_page_masks_then_a_reveal_shows(client, rt, scene):
    token = login(client, "bob")
    page = client.get(f"/customers/{scene['customer']}").get_data(as_text=True)
    assert "+49 ••• ••• 96" in page and "j•••@nordlicht.example" in page
    assert "5550196" not in page and "jana@" not in page and "30 days net" not in page
    missing = client.post(f"/customers/{scene['customer']}/reveal", data={"csrf_token": token, "rv-place": "Office"})
    # No reason is the policy's refusal (recorded, nothing spent), the page shown again with the slip.
    assert missing.status_code == 403 and "Give a reason of at least 10 characters." in missing.get_data(as_text=True)
    shown = client.post(f"/customers/{scene['customer']}/reveal",
                        data={"csrf_token": token, "rv-reason": "Renewal call", "rv-place": "Office"})
    assert shown.status_code == 200
    text = shown.get_data(as_text=True)
    assert PHONE in text and "jana@nordlicht.example" in text and "30 days net" in text


def test_edit_log_and_history(client, rt, scene):
    token = login(client, "bob")
    cid = scene["customer"]
    saved = client.post(f"/customers/{cid}/record", data={"csrf_token": token, "rec-city": "Lübeck",
                                                          "rec-industry": "Wholesale", "rec-status": "active"})
    assert saved.status_code == 302
    logged = client.post(f"/customers/{cid}/log", data={
        "csrf_token": token, "log-happened_on": date.today().isoformat(), "log-channel": "visit",
        "log-contact": "Jana Novak", "log-topic": "Frame contract"})
    assert logged.status_code == 302
    page = client.get(f"/customers/{cid}").get_data(as_text=True)
    assert "Lübeck" in page and "Frame contract" not in page and "J••• N•••" in page
    bad = client.post(f"/customers/{cid}/record", data={"csrf_token": token, "rec-status": "bankrupt"})
    assert bad.status_code == 400
    bad = client.post(f"/customers/{cid}/record", data={
        "csrf_token": token, "rec-contacts_edited": "1", "rec-contacts-0-name": "X",
        "rec-contacts-0-emails": "nonsense"})
    assert bad.status_code == 400 and "E-mails: is not an e-mail address" in bad.get_data(as_text=True)
    history = client.get(f"/customers/{cid}/history").get_data(as_text=True)
    assert "Version 2" in history and "Hamburg" in history and "Lübeck" in history


def test_history_is_the_chain_s_and_others_are_refused(client, rt, scene):
    login(client, "hana")
    assert client.get(f"/customers/{scene['customer']}/history/1").status_code == 200
    client.get("/logout")
    other = client.application.test_client()
    login(other, "bea")
    assert other.get(f"/customers/{scene['customer']}/history").status_code == 404


def test_a_refused_record_or_contact_says_why_in_the_reader_s_language_beside_its_field(client, rt, scene):
    """The refusals were English texts under the wrong field, with nothing to lead the eye down the page:
    they are now translated, shown beside the field they are about, and that field takes the focus."""
    token = login(client, "bob")
    cid = scene["customer"]
    headers = {"Accept-Language": "ru"}
    bad = client.post(f"/customers/{cid}/record", headers=headers,
                      data={"csrf_token": token, "rec-contacts_edited": "1", "rec-contacts-0-name": "Jana Novak",
                            "rec-contacts-0-phones": "abc"})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 400 and "Телефоны: &#39;abc&#39; — это не номер телефона" in html
    assert re.search(r'<input[^>]*autofocus[^>]*name="rec-contacts-0-phones"', html), "the refused field has no focus"
    future = date.today().replace(year=date.today().year + 1).isoformat()
    bad = client.post(f"/customers/{cid}/log", headers=headers, data={
        "csrf_token": token, "log-happened_on": future, "log-channel": "visit", "log-contact": "Jana Novak",
        "log-topic": "Frame contract"})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 400
    after_date = html[html.index('name="log-happened_on"'):html.index('name="log-channel"')]
    assert "Дата должна быть в пределах последнего года и не в будущем." in after_date
    assert re.search(r'<input[^>]*autofocus[^>]*name="log-happened_on"', html)
