"""The viewer over the API: an opened view answers its page URL template, pages are stamped images for
the caller only, and a download is a stamped copy unless the grade lets the original leave."""

from __future__ import annotations

import io

import pytest

from tests.api.conftest import Api
from tests.rendering.inputs import pdf_bytes
from tests.viewer.test_page_cost import drawing_watched
from vault.models import Role

CONTENT = pdf_bytes(2)


@pytest.fixture
def api(app, client, users):
    for name, roles in {"carl": (Role.COMPILER,), "bob": (Role.BORROWER,), "bea": (Role.BORROWER,)}.items():
        users.make(name, *roles)
    return Api(app, client, users)


def test_an_api_view_answers_its_pages(api):
    customer = api.customer()
    document_id = api.upload(customer, grade=1, content=CONTENT, filename="plan.pdf")
    opened = api.open_view(document_id)
    assert opened.status_code == 201
    body = opened.get_json()
    assert body["pages"] == 2 and "{n}" in body["page_url"] and "content_url" not in body
    assert body["remaining"] == 9
    for number in (1, 2):
        page = api.get(body["page_url"].replace("{n}", str(number)), "bob")
        assert page.status_code == 200 and page.mimetype == "image/jpeg"
        assert page.headers["Cache-Control"] == "no-store"
        assert page.get_data() != CONTENT
    assert api.get(body["page_url"].replace("{n}", "3"), "bob").status_code == 403
    assert api.get(body["page_url"].replace("{n}", "1"), "bea").status_code == 404


def test_an_api_download_is_a_stamped_copy(api):
    customer = api.customer()
    document_id = api.upload(customer, grade=1, content=CONTENT, filename="plan.pdf")
    body = api.open_view(document_id, json={"download": True}).get_json()
    assert body["page_url"] is None and body["content_url"]
    copy = api.get(body["content_url"], "bob")
    assert copy.status_code == 200 and copy.mimetype == "application/pdf"
    assert copy.get_data() != CONTENT
    assert b"/VaultViewId" in copy.get_data() or len(copy.get_data()) > len(CONTENT)
    assert io.BytesIO(copy.get_data()).read(5) == b"%PDF-"


def test_an_api_page_is_drawn_after_its_transaction_ends(api, rt, monkeypatch):
    customer = api.customer()
    document_id = api.upload(customer, grade=1, content=CONTENT, filename="plan.pdf")
    url = api.open_view(document_id).get_json()["page_url"].replace("{n}", "2")
    with drawing_watched(rt, monkeypatch) as seen:
        assert api.get(url, "bob").status_code == 200
    assert seen == [(False, True)]
