"""Documents through the API: multipart upload, metadata, new versions, and their refusals."""

from __future__ import annotations

import io

import pytest

from tests.api.conftest import PDF, assert_error, events
from tests.rendering.inputs import pdf_bytes
from tests.support.write_lock import WatchedRenderer
from vault.models import Document, Role
from vault.rendering import PageRenderer
from vault.services import renditions

TWO_PAGES = pdf_bytes(2)


@pytest.fixture
def settings_overrides():
    # A small upload limit, so the size refusals are cheap to provoke.
    return {"max_upload_mb": 1}


def _form(content=PDF, filename="report.pdf", **fields):
    return {"data": {"file": (io.BytesIO(content), filename), **fields}, "content_type": "multipart/form-data"}


def test_upload_then_read_metadata_and_add_a_version(api, rt, cast):
    customer_id = api.customer()
    response = api.post(f"/api/v1/customers/{customer_id}/documents", "carl",
                        **_form(title="Annual report", grade="2", custodian="kim"))
    assert response.status_code == 201
    created = response.get_json()
    assert created["version"] == 1
    document_id = created["id"]
    uploads = events(rt, "document:upload")
    assert [(e.actor_name, e.document_id, e.customer_id) for e in uploads] == [("carl", document_id, customer_id)]

    body = api.get(f"/api/v1/documents/{document_id}", "bob").get_json()
    assert (body["title"], body["grade"], body["customer_id"]) == ("Annual report", 2, customer_id)
    assert body["compiler"]["username"] == "carl"
    assert body["custodian"]["username"] == "kim"
    assert [(v["number"], v["size"], v["filename"], v["content_type"]) for v in body["versions"]] == [
        (1, len(PDF), "report.pdf", "application/pdf")]
    assert body["remaining_views"] == 3  # grade 2: three views per person

    newer = PDF + b"% second edition\n"
    response = api.post(f"/api/v1/documents/{document_id}/versions", "carl", **_form(newer, "report-v2.pdf"))
    assert response.status_code == 201
    assert response.get_json() == {"id": document_id, "version": 2}
    body = api.get(f"/api/v1/documents/{document_id}", "carl").get_json()
    assert [v["number"] for v in body["versions"]] == [1, 2]
    assert body["latest_version"] == 2
    assert [e.version_id for e in events(rt, "document:version")] == [body["versions"][1]["id"]]


def test_only_compilers_upload_and_only_the_documents_compiler_adds_versions(api, users, rt):
    users.make("cleo", Role.COMPILER)
    customer_id = api.customer()
    assert_error(api.post(f"/api/v1/customers/{customer_id}/documents", "bob", **_form(title="T", grade="1")),
                 403, "not_permitted")
    document_id = api.upload(customer_id)
    assert_error(api.post(f"/api/v1/documents/{document_id}/versions", "cleo", **_form()), 403, "not_compiler")
    assert_error(api.post(f"/api/v1/documents/{document_id}/versions", "bob", **_form()), 403, "not_permitted")
    assert events(rt, "document:version", "allowed") == []
    assert [e.reason_code for e in events(rt, "document:version", "denied")] == ["not_compiler", "not_permitted"]


def test_the_compiler_cannot_be_the_custodian_of_their_own_file(api, users, rt):
    users.make("cuco", Role.COMPILER, Role.CUSTODIAN)
    customer_id = api.customer()
    response = api.post(f"/api/v1/customers/{customer_id}/documents", "cuco",
                        **_form(title="T", grade="3", custodian="cuco"))
    assert_error(response, 403, "separation_of_duties")
    assert [(e.actor_name, e.reason_code, e.customer_id) for e in events(rt, "document:upload", "denied")] == [
        ("cuco", "separation_of_duties", customer_id)]
    assert events(rt, "document:upload") == []
    # Naming someone who is not a custodian is bad input, not a refusal.
    assert_error(api.post(f"/api/v1/customers/{customer_id}/documents", "carl",
                          **_form(title="T", grade="3", custodian="bob")), 400, "invalid_custodian")


def test_upload_input_errors(api, rt):
    customer_id = api.customer()
    url = f"/api/v1/customers/{customer_id}/documents"
    body = assert_error(api.post(url, "carl", data={"title": "T", "grade": "2"}, content_type="multipart/form-data"),
                        422, "invalid_request")
    assert body["fields"] == {"file": "is required (a file part with a file name)"}
    body = assert_error(api.post(url, "carl", **_form(title="T", grade="4")), 422, "invalid_request")
    assert body["fields"] == {"grade": "must be at most 3"}
    body = assert_error(api.post(url, "carl", **_form(title="T", grade="two", extra="1")), 422, "invalid_request")
    assert body["fields"] == {"grade": "must be a whole number", "extra": "is not a known field"}
    body = assert_error(api.post(url, "carl", **_form(grade="1")), 422, "invalid_request")
    assert body["fields"] == {"title": "is required"}
    body = assert_error(api.post(url, "carl", **_form(title="T", grade="1", custodian="nobody")), 422,
                        "invalid_request")
    assert body["fields"] == {"custodian": "is not a known user name"}
    assert_error(api.post(url, "carl", json={"title": "T", "grade": 1}), 415, "multipart_required")
    # The content decides the type: a PDF name on a PNG, and an archive, are refused.
    assert_error(api.post(url, "carl", **_form(b"\x89PNG\r\n\x1a\n" + b"\0" * 100, title="T", grade="1")),
                 400, "file_type_mismatch")
    assert_error(api.post(url, "carl", **_form(b"PK\x05\x06" + b"\0" * 20, "a.zip", title="T", grade="1")),
                 400, "file_type_not_allowed")
    assert_error(api.post(url, "carl", **_form(b"", title="T", grade="1")), 400, "empty_file")
    assert_error(api.post("/api/v1/customers/999/documents", "carl", **_form(title="T", grade="1")),
                 404, "not_found")
    assert events(rt, "document:upload") == []


def test_uploads_over_the_limit_are_413_and_leave_nothing(api, rt):
    customer_id = api.customer()
    url = f"/api/v1/customers/{customer_id}/documents"
    # Just over the 1 MiB file limit: refused while streaming, by the upload rules.
    over = PDF + b"x" * (1024 * 1024)
    assert_error(api.post(url, "carl", **_form(over, title="T", grade="1")), 413, "file_too_large")
    # A body far over the request limit: refused before it is read.
    huge = PDF + b"x" * (3 * 1024 * 1024)
    assert_error(api.post(url, "carl", **_form(huge, title="T", grade="1")), 413, "too_large")
    assert events(rt, "document:upload") == []
    assert list(rt.store.list("documents/")) == []


def test_a_multipart_part_without_a_usable_name_is_an_unknown_field(api):
    customer_id = api.customer()
    boundary = "b0undary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="\\"\r\n\r\nnull\r\n--{boundary}--\r\n').encode()
    response = api.post(f"/api/v1/customers/{customer_id}/documents", "carl", data=body,
                        content_type=f"multipart/form-data; boundary={boundary}")
    body = assert_error(response, 422, "invalid_request")
    assert body["fields"]["(unnamed part)"] == "is not a known field"


def test_documents_are_404_when_missing_or_not_an_int(api):
    assert_error(api.get("/api/v1/documents/12345", "bob"), 404, "not_found")
    assert_error(api.get("/api/v1/documents/1.5", "bob"), 404, "not_found")
    assert_error(api.post("/api/v1/documents/12345/versions", "carl", **_form()), 404, "not_found")


def test_an_upload_reads_and_draws_outside_any_transaction(api, rt):
    """The API's upload and new version let their request's transaction go once allowed: on SQLite a
    transaction holds the write lock, and the body's arrival and the drawing of its pages would make every
    other writer wait for them."""
    watcher = WatchedRenderer(renditions.set_renderer(PageRenderer()), rt, [])
    renditions.set_renderer(watcher)
    try:
        customer_id = api.customer()
        document_id = api.upload(customer_id, content=TWO_PAGES)
        response = api.post(f"/api/v1/documents/{document_id}/versions", "carl", **_form(TWO_PAGES, "v2.pdf"))
        assert response.status_code == 201
    finally:
        renditions.set_renderer(watcher.inner)
    assert [free for _writes, free in watcher.seen] == [True] * 6  # before drawing, and before each page
    with rt.db.session() as session:
        assert [(v.number, v.page_count) for v in session.get(Document, document_id).versions] == [(1, 2), (2, 2)]
