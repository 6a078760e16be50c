"""Opening views and fetching content through the pages: quota, place, download, the single-use
content URL, and every refund (expired URL, storage down, tampered ciphertext) or partial delivery.

Units spent must always equal the views that delivered content.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from storage import StorageUnavailable
from tests.loans.helpers import (
    PLACE,
    REASON,
    TEXT,
    FaultyStore,
    loan_rows,
    one_loan,
    set_rows,
    tamper,
    used,
    view_rows,
)
from vault.core import events as domain_events
from vault.core.context import AccessContext
from vault.models import DocumentView, LoanKind, LoanStatus, ViewStatus, utcnow
from vault.services import maintenance

TRUSTED = {"trusted_places": "Head office=10.1.0.0/16;Branch=192.168.5.0/24"}
# These tests are about the single-use content URL and its refunds, so the originals may leave at grades
# 1 and 2 here; stamped copies are tested in tests/viewer.
ORIGINALS = {"policy": {"grades": {"1": {"download_original": True}, "2": {"download_original": True}}}}


@pytest.fixture
def settings_overrides():
    return dict(ORIGINALS)
INSIDE = {"REMOTE_ADDR": "10.1.2.3"}
OUTSIDE = {"REMOTE_ADDR": "192.0.2.7"}


def _active_loan(world, rt, doc, borrower="ann", days=5):
    world.browser(borrower).request_loan(doc, days=days)
    loan = loan_rows(rt, document_id=doc, kind=LoanKind.LOAN)[-1]
    world.browser("paula").decide(loan.id, "approve")
    if loan.release_required:
        world.browser("cora").decide(loan.id, "release")
    return one_loan(rt, id=loan.id)


@pytest.fixture
def heard(monkeypatch):
    """Record the domain events the view service emits."""
    events: list[tuple[str, dict]] = []
    for name in ("view.opened", "quota.exhausted", "access.denied"):
        def listener(_name=name, **kwargs):
            events.append((_name, kwargs))
        monkeypatch.setitem(domain_events._listeners, name, [*domain_events._listeners[name], listener])
    return events


def test_the_quota_ends_with_a_plain_refusal_and_an_extension_adds_views(world, rt, heard):
    doc = world.document(2)
    _active_loan(world, rt, doc)
    ann = world.browser("ann")
    audit = world.audit.mark()
    assert ann.request_extension(doc).status_code == 403  # views are left: no extension yet
    audit.one_refusal("loan:request", "quota_not_exhausted", "ann")

    for left in (2, 1, 0):
        response, _body = ann.read(doc)
        assert response.status_code == 200
        assert f"Views left: {left} of 3" in ann.get(f"/documents/{doc}/reading").get_data(as_text=True)
    assert [name for name, _kw in heard].count("view.opened") == 3
    assert [kw["document"].id for name, kw in heard if name == "quota.exhausted"] == [doc]

    audit.mark()
    heard.clear()
    refused = ann.open_view(doc)
    assert refused.status_code == 403
    page = refused.get_data(as_text=True)
    assert "You have used your 3 views of this document." in page
    assert f"/documents/{doc}/extension" in page
    audit.one_refusal("document:view", "quota_exhausted", "ann", document_id=doc)
    assert [(name, kw["code"]) for name, kw in heard] == [("access.denied", "quota_exhausted")]
    assert (used(rt, world.ids["ann"], doc), len(view_rows(rt))) == (3, 3)

    assert "Ask for more views" in ann.get(f"/documents/{doc}/reading").get_data(as_text=True)
    assert ann.get(f"/documents/{doc}/extension").status_code == 200
    audit.mark()
    assert ann.request_extension(doc, extra_views=2).status_code == 302
    extension = one_loan(rt, document_id=doc, kind=LoanKind.EXTENSION)
    assert (extension.extra_views, extension.status) == (2, LoanStatus.REQUESTED)
    audit.one_success("loan:request", "ann", loan_id=extension.id)
    assert world.browser("abby").decide(extension.id, "approve").status_code == 302
    assert one_loan(rt, id=extension.id).status == LoanStatus.APPROVED
    assert "Views left: 2 of 5" in ann.get(f"/documents/{doc}/reading").get_data(as_text=True)
    response, _body = ann.read(doc)
    assert response.status_code == 200
    assert used(rt, world.ids["ann"], doc) == 4


def test_a_custodian_overrides_the_quota_of_one_person(world, rt):
    doc = world.document(1)
    cora, ann, bob = world.browser("cora"), world.browser("ann"), world.browser("bob")
    audit = world.audit.mark()
    assert cora.post(f"/documents/{doc}/quota", {"views": "-1", "person": "ann"}).status_code == 403
    audit.one_refusal("quota:override", "quota_invalid", "cora", document_id=doc)
    audit.mark()
    assert cora.post(f"/documents/{doc}/quota", {"views": "1", "person": "ann"}).status_code == 302
    event = audit.one_success("quota:override", "cora", document_id=doc)
    assert '"previous":null' in event.detail and '"views":1' in event.detail and '"person":"ann"' in event.detail
    assert event.subject_user_id == world.ids["ann"]
    assert "View quota overrides" in cora.get("/loans/custody").get_data(as_text=True)
    assert ann.read(doc)[0].status_code == 200
    refused = ann.open_view(doc)
    assert "You have used your only view of this document." in refused.get_data(as_text=True)
    # The override is ann's alone: bob keeps the grade's ten.
    assert "Views left: 10 of 10" in bob.get(f"/documents/{doc}/reading").get_data(as_text=True)
    assert cora.post(f"/documents/{doc}/quota", {"views": "", "person": "ann"}).status_code == 302  # the grade's 10
    assert "Views left: 9 of 10" in ann.get(f"/documents/{doc}/reading").get_data(as_text=True)
    assert ann.post(f"/documents/{doc}/quota", {"views": "99", "person": "ann"}).status_code == 403  # not borrowers


def test_only_an_approver_changes_a_documents_quota_for_everyone(world, rt):
    doc = world.document(1)
    cora, paula, bob = world.browser("cora"), world.browser("paula"), world.browser("bob")
    audit = world.audit.mark()
    assert cora.post(f"/documents/{doc}/quota", {"views": "3"}).status_code == 403
    audit.one_refusal("quota:override", "quota_document_wide", "cora", document_id=doc)
    audit.mark()
    assert paula.post(f"/documents/{doc}/quota", {"views": "3"}).status_code == 302
    audit.one_success("quota:override", "paula", document_id=doc)
    assert "Views left: 3 of 3" in bob.get(f"/documents/{doc}/reading").get_data(as_text=True)


@pytest.mark.parametrize("settings_overrides", [{**TRUSTED, **ORIGINALS}])
def test_confidential_files_open_only_from_a_trusted_place(world, rt, settings_overrides):
    doc = world.document(3)
    _active_loan(world, rt, doc)
    outside = world.browser("ann", **OUTSIDE)
    assert "you are not in one" in outside.get(f"/documents/{doc}/reading").get_data(as_text=True)
    audit = world.audit.mark()
    refused = outside.open_view(doc)
    assert refused.status_code == 403
    assert "open only from a trusted place" in refused.get_data(as_text=True)
    event = audit.one_refusal("document:view", "place_not_trusted", "ann", document_id=doc)
    assert (event.client_addr, event.named_place, event.declared_place) == ("192.0.2.7", None, PLACE)
    assert view_rows(rt) == [] and used(rt, world.ids["ann"], doc) == 0

    inside = world.browser("ann", **INSIDE, HTTP_USER_AGENT="Browser/1.0 (test)")
    audit.mark()
    response, body = inside.read(doc)
    assert response.status_code == 200 and body
    [view] = view_rows(rt)
    assert (view.client_addr, view.named_place, view.declared_place, view.user_agent, view.reason) == (
        "10.1.2.3", "Head office", PLACE, "Browser/1.0 (test)", REASON)
    event = audit.one_success("document:view", "ann", document_id=doc)
    assert (event.client_addr, event.named_place, event.declared_place, event.user_agent) == (
        "10.1.2.3", "Head office", PLACE, "Browser/1.0 (test)")


@pytest.mark.parametrize("settings_overrides", [{**TRUSTED, **ORIGINALS}])
def test_download_only_where_the_grade_allows(world, rt, settings_overrides):
    grade3 = world.document(3)
    _active_loan(world, rt, grade3)
    ann = world.browser("ann", **INSIDE)
    assert 'name="download"' not in ann.get(f"/documents/{grade3}/reading").get_data(as_text=True)
    audit = world.audit.mark()
    refused = ann.open_view(grade3, download=True)
    assert refused.status_code == 403
    assert "may be read but not downloaded" in refused.get_data(as_text=True)
    audit.one_refusal("document:download", "download_not_allowed", "ann", document_id=grade3)

    grade2 = world.document(2, name="Angebot Müller \"final\".txt")
    _active_loan(world, rt, grade2)
    audit.mark()
    response, body = ann.read(grade2, download=True)
    assert response.status_code == 200 and body
    assert response.headers["Content-Disposition"] == (
        "attachment; filename=\"Angebot Muller final.txt\"; filename*=UTF-8''Angebot%20M%C3%BCller%20final.txt")
    audit.one_success("document:download", "ann", document_id=grade2)
    assert audit.since("document:view") == []


def test_the_content_response_is_inline_uncached_and_sandboxed(world, rt):
    doc = world.document(1)
    ann = world.browser("ann")
    assert ann.get(f"/documents/{doc}/view").status_code == 405  # opening is never a GET
    url = ann.download_link(doc)
    assert ann.client.head(url).status_code == 405  # a HEAD would spend the single use
    response = ann.get(url)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.headers["Content-Disposition"].startswith('attachment; filename="notes.txt"')
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"].startswith("sandbox;")
    assert int(response.headers["Content-Length"]) == len(response.get_data())


def test_a_content_url_works_once(world, rt):
    doc = world.document(1)
    ann = world.browser("ann")
    url = ann.download_link(doc)
    first = ann.get(url)
    assert (first.status_code, first.get_data()) == (200, TEXT)
    audit = world.audit.mark()
    replay = ann.get(url)
    assert replay.status_code == 403
    assert "already been used" in replay.get_data(as_text=True)
    audit.one_refusal("content:open", "content_url_used", "ann", document_id=doc)
    assert used(rt, world.ids["ann"], doc) == 1
    assert [v.status for v in view_rows(rt)] == [ViewStatus.DELIVERED]
    assert ann.get(url.replace("/content/", "/content/x")).status_code == 404


def test_a_content_url_is_for_its_owner_only(world, rt):
    doc = world.document(1)
    ann, bob = world.browser("ann"), world.browser("bob")
    url = ann.download_link(doc)
    audit = world.audit.mark()
    assert bob.get(url).status_code == 404
    audit.one_refusal("content:open", "not_found", "bob", document_id=doc, subject_user_id=world.ids["ann"])
    assert audit.since("content:delivered") == []
    assert ann.get(url).get_data() == TEXT  # the owner's link is untouched


def test_an_expired_content_url_gives_the_view_back(world, rt):
    doc = world.document(1)
    ann = world.browser("ann")
    url = ann.download_link(doc)
    set_rows(rt, DocumentView, DocumentView.id == view_rows(rt)[0].id, expires_at=utcnow() - timedelta(seconds=1))
    audit = world.audit.mark()
    late = ann.get(url)
    assert late.status_code == 403
    assert "expired before it was used" in late.get_data(as_text=True)
    [refund] = audit.since("view:refund")
    assert (refund.actor_name, refund.document_id, '"cause":"expired_unused"' in refund.detail) == ("ann", doc, True)
    assert [(e.action, e.reason_code) for e in audit.since(outcome="denied")] == [
        ("content:open", "content_url_expired")]
    assert view_rows(rt)[0].status == ViewStatus.REFUNDED
    assert used(rt, world.ids["ann"], doc) == 0


def test_opening_another_view_refunds_a_stale_one_when_no_unit_is_left(world, rt):
    doc = world.document(1, view_quota=1)
    ann = world.browser("ann")
    ann.open_view(doc)
    set_rows(rt, DocumentView, DocumentView.status == ViewStatus.RESERVED, expires_at=utcnow() - timedelta(seconds=1))
    audit = world.audit.mark()
    response, _body = ann.read(doc)
    assert response.status_code == 200
    assert len(audit.since("view:refund")) == 1
    assert [v.status for v in view_rows(rt)] == [ViewStatus.REFUNDED, ViewStatus.DELIVERING]  # the viewer is open
    assert used(rt, world.ids["ann"], doc) == 1


def test_a_stale_reservation_is_left_to_the_sweep_while_units_remain(world, rt):
    """Settling stale reservations costs statements on every opening; it is done only when it matters."""
    doc = world.document(1)
    ann = world.browser("ann")
    ann.open_view(doc)
    set_rows(rt, DocumentView, DocumentView.status == ViewStatus.RESERVED, expires_at=utcnow() - timedelta(seconds=1))
    audit = world.audit.mark()
    response, _body = ann.read(doc)
    assert response.status_code == 200
    assert audit.since("view:refund") == []
    assert used(rt, world.ids["ann"], doc) == 2
    with rt.db.session() as session:
        assert maintenance.run(rt, session, ctx=AccessContext.cli()).views_refunded == 1
    assert used(rt, world.ids["ann"], doc) == 1


def test_storage_down_gives_the_view_back(world, rt):
    doc = world.document(1)
    ann = world.browser("ann")
    url = ann.download_link(doc)
    real = rt.store
    rt.store = FaultyStore(real, open_fails=True)
    audit = world.audit.mark()
    try:
        response = ann.get(url)
    finally:
        rt.store = real
    assert response.status_code == 503
    assert "file store cannot be reached" in response.get_data(as_text=True)
    assert "Customer file" not in response.get_data(as_text=True)
    [refund] = audit.since("view:refund")
    assert '"cause":"storage_unavailable"' in refund.detail
    assert audit.since("content:delivered") == []
    assert view_rows(rt)[0].status == ViewStatus.REFUNDED
    assert used(rt, world.ids["ann"], doc) == 0


def test_tampered_ciphertext_gives_the_view_back(world, rt):
    doc = world.document(1)
    tamper(rt, doc, offset=100)  # inside the first segment: nothing can be authenticated
    ann = world.browser("ann")
    url = ann.download_link(doc)
    audit = world.audit.mark()
    response = ann.get(url)
    assert response.status_code == 500
    assert "cannot be read" in response.get_data(as_text=True)
    [refund] = audit.since("view:refund")
    assert '"cause":"content_unreadable"' in refund.detail
    assert (view_rows(rt)[0].status, used(rt, world.ids["ann"], doc)) == (ViewStatus.REFUNDED, 0)


BIG = bytes(range(256)) * 10_000  # 2.5 MB: three segments of ciphertext
FIRST_SEGMENT = (1 << 20) - 56  # plaintext bytes in the first segment


def test_a_stream_broken_midway_stays_spent(world, rt):
    doc = world.document(1, content=BIG, name="big.bin", content_type="application/octet-stream")
    ann = world.browser("ann")
    url = ann.download_link(doc)
    real = rt.store
    rt.store = FaultyStore(real, fail_after=1_500_000)
    audit = world.audit.mark()
    try:
        response = ann.get(url)
        assert response.status_code == 200  # the headers went out with the first segment
        with pytest.raises(StorageUnavailable):
            response.get_data()
    finally:
        rt.store = real
    [view] = view_rows(rt)
    assert (view.status, view.bytes_sent) == (ViewStatus.PARTIAL, FIRST_SEGMENT)
    [partial] = audit.since("content:partial")
    assert partial.outcome == "failed" and f'"bytes":{FIRST_SEGMENT}' in partial.detail
    assert audit.since("view:refund") == [] and audit.since("content:delivered") == []
    assert used(rt, world.ids["ann"], doc) == 1


def test_tampering_after_the_first_segment_is_a_partial_delivery(world, rt):
    doc = world.document(1, content=BIG, name="big.bin", content_type="application/octet-stream")
    tamper(rt, doc, offset=(1 << 20) + 5000)
    ann = world.browser("ann")
    url = ann.download_link(doc)
    response = ann.get(url)
    assert response.status_code == 200
    with pytest.raises(Exception, match="authenticated"):
        response.get_data()
    [view] = view_rows(rt)
    assert (view.status, view.bytes_sent, used(rt, world.ids["ann"], doc)) == (
        ViewStatus.PARTIAL, FIRST_SEGMENT, 1)


def test_a_large_file_is_delivered_whole(world, rt):
    doc = world.document(1, content=BIG, name="big.bin", content_type="application/octet-stream")
    response, body = world.browser("ann").read(doc, download=True)
    assert response.status_code == 200 and body == BIG
    [view] = view_rows(rt)
    assert (view.status, view.bytes_sent) == (ViewStatus.DELIVERED, len(BIG))


def test_a_refused_view_keeps_the_reason_and_place_typed(world, rt):
    """A refusal of the input shows the form again with what was typed; nothing is spent."""
    doc = world.document(1)
    ann = world.browser("ann")
    refused = ann.open_view(doc, reason="Because", place="Lyon branch, room 4")
    assert refused.status_code == 403
    page = refused.get_data(as_text=True)
    assert "Reason code: reason_too_short" in page
    assert "Because</textarea>" in page and 'value="Lyon branch, room 4"' in page
    assert view_rows(rt) == [] and used(rt, world.ids["ann"], doc) == 0
    no_place = ann.open_view(doc, reason="Preparing the visit on Monday", place="  ")
    assert "Preparing the visit on Monday</textarea>" in no_place.get_data(as_text=True)
