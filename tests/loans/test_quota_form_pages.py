"""The view quota form of a document's reading panel, refused for what was typed, is shown again as typed.

Before, a quota that was no number answered the reading panel again (400) without recording that read of the
file and its customer, the typed values lost and the reason in a flash far from the field; a number out of
range (`quota_invalid`, a slip: `policy.SLIPS`) answered a bare refusal page. Now both answer the panel again:
400 for the form's own check, 403 with the policy's code for the slip (recorded as a refusal), the person and
the number as typed, the message beside the number, and the read of the file recorded again, marked `again`,
kept though the answer is an error.
"""

from __future__ import annotations

import html
import json
import re

import pytest
from sqlalchemy import select

from vault.models import Document, QuotaUsage

NOT_A_NUMBER = "Enter a whole number of views, or nothing."
OUT_OF_RANGE = "A view quota is a whole number from 0 to"


def _quota_form(page: str, doc: int) -> str:
    match = re.search(rf'<form[^>]*action="/documents/{doc}/quota".*?</form>', page, re.S)
    assert match, "no quota form"
    return html.unescape(match.group(0))


def _no_override(rt) -> None:
    with rt.db.session() as session:
        assert [d.view_quota for d in session.scalars(select(Document))] == [None]
        assert session.scalars(select(QuotaUsage).where(QuotaUsage.view_quota.is_not(None))).all() == []


@pytest.mark.parametrize(("views", "status", "refused", "message"), [
    ("-1", 403, [("quota:override", "quota_invalid", "cora")], OUT_OF_RANGE),  # the policy's slip
    ("many", 400, [], NOT_A_NUMBER),  # the form's own check, after the policy found who asks may set it
])
def test_a_quota_refused_for_what_was_typed_shows_the_panel_again_as_typed(world, rt, views, status, refused,
                                                                         message):
    doc = world.document(1)
    cora = world.browser("cora")
    audit = world.audit.mark()
    response = cora.post(f"/documents/{doc}/quota", {"views": views, "person": "ann"})
    assert response.status_code == status
    form = _quota_form(response.get_data(as_text=True), doc)
    # What was typed stays typed, and the reason stands beside the number (after it, before the button).
    assert re.search(r'<input id="quota-person"[^>]*value="ann"', form)
    assert re.search(rf'<input id="quota-views"[^>]*value="{views}"', form)
    assert message in form.split('id="quota-views"')[1].split("<button")[0]
    denied = audit.since(outcome="denied")
    assert [(e.action, e.reason_code, e.actor_name) for e in denied] == refused
    assert audit.since("quota:override", "allowed") == []
    _no_override(rt)
    # The panel names the file and its customer again: that read is recorded, marked, and kept with the error.
    [read] = audit.since("document:read")
    assert (read.outcome, read.actor_name, read.document_id) == ("allowed", "cora", doc)
    assert read.request_id == response.headers["X-Request-ID"]
    assert json.loads(read.detail) == {"shown": "reading", "again": True}


def test_a_quota_refused_for_who_is_still_a_refusal_page(world, rt):
    """Not a slip (only an approver sets everyone's quota): nothing to correct in the number, so the refusal
    stands on its own, and no panel is shown again."""
    doc = world.document(1)
    cora = world.browser("cora")
    audit = world.audit.mark()
    response = cora.post(f"/documents/{doc}/quota", {"views": "3"})
    assert response.status_code == 403 and "quota_document_wide" in response.get_data(as_text=True)
    audit.one_refusal("quota:override", "quota_document_wide", "cora", document_id=doc)
    assert audit.since("document:read") == []
    _no_override(rt)


def test_a_corrected_quota_goes_through(world, rt):
    doc = world.document(1)
    cora = world.browser("cora")
    assert cora.post(f"/documents/{doc}/quota", {"views": "-1", "person": "ann"}).status_code == 403
    audit = world.audit.mark()
    assert cora.post(f"/documents/{doc}/quota", {"views": "2", "person": "ann"}).status_code == 302
    audit.one_success("quota:override", "cora", document_id=doc)


@pytest.mark.parametrize(("form", "code"), [
    ({"views": "many"}, "quota_document_wide"),  # a custodian for everyone
    ({"views": "many", "person": "nobody-such"}, "quota_unknown_person"),
    ({"views": "", "person": "cora"}, "quota_own_reach"),  # an empty number is "back to the default"
    ({"views": "many", "person": "cora"}, "quota_own_reach"),
])
def test_a_quota_refused_for_who_is_refused_whatever_was_typed(world, rt, form, code):
    """Who asks is decided before what was typed: a custodian who may not set everyone's quota, or their
    own, typing no number got the panel again (400) with "enter a whole number", and nothing recorded; the
    refusal for who now stands, recorded, with no panel (nothing there to correct)."""
    doc = world.document(1)
    cora = world.browser("cora")
    audit = world.audit.mark()
    response = cora.post(f"/documents/{doc}/quota", form)
    assert response.status_code == 403 and code in response.get_data(as_text=True)
    audit.one_refusal("quota:override", code, "cora", document_id=doc)
    assert audit.since("document:read") == []
    _no_override(rt)
