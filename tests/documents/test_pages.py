"""Customer and document pages: lists, search, creation, uploads, refusals in plain words, escaping."""

from __future__ import annotations

import html
import io
import json
import re
from dataclasses import replace

import pytest
from sqlalchemy import select

from tests.conftest import login
from tests.documents.conftest import (
    PNG_HEAD,
    FailingStore,
    events,
    pdf_bytes,
    row_counts,
    stored_keys,
    text_bytes,
    zip_bytes,
)
from tests.rendering.inputs import pdf_bytes as pages_pdf
from tests.support.write_lock import WatchedRenderer
from vault.config.policy_file import DEFAULT_GRADES
from vault.models import Customer, Document
from vault.rendering import PageRenderer
from vault.services import renditions


def _upload(client, token, customer_id, *, data=None, name="dossier.pdf", title="Dossier", grade="2", custodian="0"):
    return client.post("/documents/new", data={
        "csrf_token": token, "customer": str(customer_id), "title": title, "grade": grade, "custodian": custodian,
        "file": (io.BytesIO(data if data is not None else pdf_bytes()), name),
    }, content_type="multipart/form-data")


def test_customer_list_search_and_create(client, rt, company):
    token = login(client, "cora")
    page = client.get("/customers/").get_data(as_text=True)
    assert "Acme Corp" in page
    assert 'href="/customers/new"' in page
    assert 'href="/customers/"' in client.get("/").get_data(as_text=True)  # the top-bar link

    form = client.get("/customers/new").get_data(as_text=True)
    assert 'name="csrf_token"' in form
    response = client.post("/customers/new", data={"csrf_token": token, "name": "  Blue   Fjord Seafood AS ",
                                                   "segment": "vip", "owner": "", "notes": "Bergen"})
    # The owner list is required by the form: shown again with the error, nothing created.
    assert response.status_code == 400
    with rt.db.session() as session:
        cora_id = company.user(session, "cora").id
    response = client.post("/customers/new", data={"csrf_token": token, "name": "  Blue   Fjord Seafood AS ",
                                                   "segment": "vip", "owner": str(cora_id), "notes": "Bergen"})
    assert response.status_code == 302
    with rt.db.session() as session:
        customer = session.scalar(select(Customer).where(Customer.name == "Blue Fjord Seafood AS"))
        assert (customer.segment, customer.owner_id, customer.created_by_id) == ("vip", cora_id, cora_id)
    assert response.headers["Location"] == f"/customers/{customer.id}"
    created = events(rt, "customer:create")
    assert [(e.actor_name, e.customer_id) for e in created][-1] == ("cora", customer.id)

    duplicate = client.post("/customers/new", data={"csrf_token": token, "name": "blue fjord seafood as",
                                                    "segment": "key", "owner": str(cora_id)})
    assert duplicate.status_code == 409
    assert "A customer named blue fjord seafood as already exists." in duplicate.get_data(as_text=True)

    found = client.get("/customers/?q=fjord").get_data(as_text=True)
    assert "Blue Fjord Seafood AS" in found and "Acme Corp" not in found
    nothing = client.get("/customers/?q=%25").get_data(as_text=True)  # a literal %, not a wildcard
    assert "No customer name contains" in nothing


def test_customer_pages_are_refused_to_admins_and_auditors(client, rt, company):
    for who in ("adam", "audrey"):
        login(client, who)
        for path in ("/customers/", f"/customers/{company.customer_id}", f"/documents/{company.upload()}"):
            response = client.get(path)
            assert response.status_code == 403, (who, path)
            assert "Your roles do not allow this." in response.get_data(as_text=True)
        client.post("/logout", data={"csrf_token": login(client, who)})
    refusals = events(rt, "customer:read", "denied")
    assert {e.actor_name for e in refusals} == {"adam", "audrey"}


def test_borrower_sees_the_list_but_cannot_create(client, rt, company):
    token = login(client, "bob")
    assert "Acme Corp" in client.get("/customers/").get_data(as_text=True)
    assert 'href="/customers/new"' not in client.get("/customers/").get_data(as_text=True)
    response = client.post("/customers/new", data={"csrf_token": token, "name": "Sneaky Ltd", "segment": "vip"})
    assert response.status_code == 403
    [refusal] = events(rt, "customer:create", "denied")
    assert (refusal.actor_name, refusal.reason_code) == ("bob", "not_permitted")
    with rt.db.session() as session:
        assert session.scalar(select(Customer).where(Customer.name == "Sneaky Ltd")) is None


def test_upload_through_the_form(client, rt, company):
    token = login(client, "cora")
    form = client.get(f"/documents/new?customer={company.customer_id}").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in form
    assert f'<option selected value="{company.customer_id}">' in form
    assert "Kate (kate)" in form  # custodians offered; the compiler is not
    assert "Cora (cora)" not in form
    # The form lets the request's transaction go before the file is read and drawn (on SQLite it holds the
    # write lock every other writer waits for).
    watcher = WatchedRenderer(renditions.set_renderer(PageRenderer()), rt, [])
    renditions.set_renderer(watcher)
    try:
        response = _upload(client, token, company.customer_id, title="Terms & conditions", grade="3")
    finally:
        renditions.set_renderer(watcher.inner)
    assert response.status_code == 302
    assert watcher.seen and all(free for _writes, free in watcher.seen)
    with rt.db.session() as session:
        document = session.scalar(select(Document))
        assert (document.title, document.grade, document.compiler.username) == ("Terms & conditions", 3, "cora")
    assert response.headers["Location"] == f"/documents/{document.id}"
    page = client.get(f"/documents/{document.id}").get_data(as_text=True)
    assert "Terms &amp; conditions" in page
    assert "dossier.pdf" in page and "application/pdf" in page
    assert "Upload a new version" in page
    assert len(events(rt, "document:upload")) == 1

    customer_page = client.get(f"/customers/{company.customer_id}").get_data(as_text=True)
    assert "Terms &amp; conditions" in customer_page
    assert 'class="grade grade-3"' in customer_page
    assert "% customer dossier" not in customer_page  # metadata only, never content

    renditions.set_renderer(watcher)
    try:
        response = client.post(f"/documents/{document.id}/versions", data={
            "csrf_token": token, "file": (io.BytesIO(pages_pdf(2)), "dossier-v2.pdf")},
            content_type="multipart/form-data")
    finally:
        renditions.set_renderer(watcher.inner)
    assert response.status_code == 302
    assert len(watcher.seen) > 3 and all(free for _writes, free in watcher.seen)
    assert "dossier-v2.pdf" in client.get(f"/documents/{document.id}").get_data(as_text=True)
    assert row_counts(rt) == (1, 2)


def test_upload_errors_are_shown_in_plain_words_and_store_nothing(client, rt, company):
    token = login(client, "cora")
    cases = [
        (PNG_HEAD + b"\x00" * 100, "dossier.pdf",
         "The file name says .pdf (PDF document) but the content is a PNG image."),
        (zip_bytes(), "export.zip", "“.zip” files are not accepted."),
        (zip_bytes(), "offer.docx", "The file is a zip archive; archives are not accepted"),
        (b"", "empty.pdf", "The file is empty."),
    ]
    for data, name, message in cases:
        response = _upload(client, token, company.customer_id, data=data, name=name)
        assert response.status_code == 400, name
        assert message in response.get_data(as_text=True), name
    missing = client.post("/documents/new", data={"csrf_token": token, "customer": str(company.customer_id),
                                                  "title": "", "grade": "2", "custodian": "0"},
                          content_type="multipart/form-data")
    assert missing.status_code == 400
    assert "Choose a file to upload." in missing.get_data(as_text=True)
    bad_grade = _upload(client, token, company.customer_id, grade="7")
    assert bad_grade.status_code == 400
    assert "Not a valid choice" in bad_grade.get_data(as_text=True)
    assert stored_keys(rt) == []
    assert row_counts(rt) == (0, 0)


def test_upload_without_csrf_token_is_refused(client, rt, company):
    login(client, "cora")
    response = _upload(client, "", company.customer_id)
    assert response.status_code == 400
    assert row_counts(rt) == (0, 0)


def test_only_the_compiler_may_add_a_version_and_refusals_are_audited(client, rt, company):
    document_id = company.upload("cora")
    token = login(client, "carl")
    page = client.get(f"/documents/{document_id}").get_data(as_text=True)
    assert "Upload a new version" not in page
    response = client.post(f"/documents/{document_id}/versions", data={
        "csrf_token": token, "file": (io.BytesIO(pdf_bytes()), "mine.pdf")}, content_type="multipart/form-data")
    assert response.status_code == 403
    assert "Only the compiler of this file may add a version." in response.get_data(as_text=True)
    [refusal] = events(rt, "document:version", "denied")
    assert (refusal.actor_name, refusal.reason_code, refusal.document_id) == ("carl", "not_compiler", document_id)
    assert row_counts(rt) == (1, 1)
    assert len(stored_keys(rt)) == 1

    token = login(client, "bob")
    response = client.post("/documents/new", data={"csrf_token": token, "customer": str(company.customer_id),
                                                   "title": "x", "grade": "1"})
    assert response.status_code == 403
    assert [e.reason_code for e in events(rt, "document:upload", "denied")] == ["not_permitted"]


def test_unknown_ids_are_not_found_and_recorded(client, rt, company):
    login(client, "bob")
    assert client.get("/documents/999999").status_code == 404
    assert client.get("/customers/999999").status_code == 404
    probes = events(rt, "document:read", "denied")
    assert [(e.actor_name, e.reason_code, e.document_id) for e in probes] == [("bob", "not_found", 999999)]


def test_markup_in_names_is_shown_escaped(client, rt, company, users):
    token = login(client, "cora")
    with rt.db.session() as session:
        cora_id = company.user(session, "cora").id
    evil = "<script>alert('x')</script> Ltd"
    client.post("/customers/new", data={"csrf_token": token, "name": evil, "segment": "key", "owner": str(cora_id)})
    with rt.db.session() as session:
        customer_id = session.scalar(select(Customer.id).where(Customer.name == evil))
    response = _upload(client, token, customer_id, name="<img src=x onerror=alert(1)>.pdf",
                       title="<b>bold</b> title")
    assert response.status_code == 302
    pages = [client.get("/customers/").get_data(as_text=True),
             client.get(f"/customers/{customer_id}").get_data(as_text=True),
             client.get(response.headers["Location"]).get_data(as_text=True)]
    for page in pages:
        assert "<script>alert" not in page
        assert "<img src=x" not in page
        assert "<b>bold</b>" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Ltd" in pages[0]
    assert "&lt;img src=x onerror=alert(1)&gt;.pdf" in pages[2]
    assert "&lt;b&gt;bold&lt;/b&gt; title" in pages[1]
    [event] = events(rt, "document:upload")
    assert json.loads(event.detail)["name"] == "<img src=x onerror=alert(1)>.pdf"


@pytest.mark.parametrize("settings_overrides", [{"max_upload_mb": 1}])
def test_too_large_uploads_are_refused_in_plain_words(client, rt, company, settings_overrides):
    token = login(client, "cora")
    # Above the limit but within the request allowance: refused while streaming, by the upload rules.
    response = _upload(client, token, company.customer_id, data=text_bytes(1024 * 1024 + 10), name="big.txt")
    assert response.status_code == 400
    assert "The file is larger than the limit of 1 MiB." in response.get_data(as_text=True)
    # Far above: refused before the body is read.
    response = _upload(client, token, company.customer_id, data=text_bytes(3 * 1024 * 1024), name="huge.txt")
    assert response.status_code == 413
    assert "The file is larger than the limit of 1 MiB. Nothing was saved." in response.get_data(as_text=True)
    assert stored_keys(rt) == []
    assert row_counts(rt) == (0, 0)


def test_a_storage_failure_is_explained_and_leaves_nothing(client, rt, company):
    token = login(client, "cora")
    real = rt.store
    rt.store = FailingStore(real, fail_after=1000)
    try:
        response = _upload(client, token, company.customer_id, data=text_bytes(50_000), name="notes.txt")
    finally:
        rt.store = real
    assert response.status_code == 503
    assert "The file store cannot be reached right now; nothing was saved." in response.get_data(as_text=True)
    assert stored_keys(rt) == []
    assert row_counts(rt) == (0, 0)


@pytest.mark.parametrize("failure", ["no_file", "refused_file", "store_down"])
def test_a_failed_new_version_shows_the_page_again_and_records_that_read_as_again(client, rt, company, failure):
    """The document page drawn once more after a failed new version names the file and its customer a second
    time: that read is recorded (kept though the answer is an error) and marked `again`, so a reader of the
    log sees a retry on the page already open, not a second visit."""
    document_id = company.upload("cora")
    token = login(client, "cora")
    assert client.get(f"/documents/{document_id}").status_code == 200
    [first] = events(rt, "document:read")
    assert json.loads(first.detail) == {"shown": "page"}
    data: dict = {"csrf_token": token}
    if failure != "no_file":
        data["file"] = (io.BytesIO(zip_bytes() if failure == "refused_file" else text_bytes(50_000)),
                        "export.zip" if failure == "refused_file" else "notes.txt")
    real = rt.store
    if failure == "store_down":
        rt.store = FailingStore(real, fail_after=1000)
    try:
        response = client.post(f"/documents/{document_id}/versions", data=data, content_type="multipart/form-data")
    finally:
        rt.store = real
    assert response.status_code == (503 if failure == "store_down" else 400)
    assert "Upload a new version" in response.get_data(as_text=True)
    _first, again = events(rt, "document:read")
    assert (again.outcome, again.actor_name, again.document_id, again.customer_id) == (
        "allowed", "cora", document_id, company.customer_id)
    assert json.loads(again.detail) == {"shown": "page", "again": True}
    assert again.request_id == response.headers["X-Request-ID"]
    assert row_counts(rt) == (1, 1)
    assert events(rt, "document:version", "allowed") == []


@pytest.mark.parametrize(("language", "offered"), [
    ("en", ["Grade 1 — general (no loan; 10 views per person)",
            "Grade 2 — important (a loan with 1 approval, for at most 30 days; 3 views per person)",
            "Grade 3 — confidential (a loan with 1 approval, released by a custodian, for at most 7 days; only from a "
            "trusted place; no download; 3 views per person)"]),
    ("zh-CN", ["1 级 — 普通（无借阅；每人 10 次查看）", "2 级 — 重要（需 1 人批准的借阅，最长 30 天；每人 3 次查看）",
               "3 级 — 机密（需 1 人批准的借阅，由保管人发放，最长 7 天；仅限可信地点；不可下载；每人 3 次查看）"]),
])
def test_the_upload_form_names_the_grades_as_the_viewer_does(client, company, language, offered):
    """The form offered grade 2 as "confidential" and grade 3 as "strictly confidential", while the viewer's
    banner and the stamp call them "important" and "confidential": a compiler chose a grade under one name
    and readers met it under another (in Chinese, grade 2's name on the form was grade 3's on the viewer)."""
    login(client, "cora")
    form = client.get(f"/documents/new?customer={company.customer_id}",
                      headers={"Accept-Language": language}).get_data(as_text=True)
    grade = re.search(r'<select[^>]*id="grade"[^>]*>(.*?)</select>', form, re.S)
    assert grade is not None
    assert re.findall(r'<option (?:selected )?value="[123]">([^<]*)</option>', grade.group(1)) == offered


STRICTER = {"grades": {**DEFAULT_GRADES,
                       1: replace(DEFAULT_GRADES[1], loan_required=True, approvals=1, views=5, download=False),
                       2: replace(DEFAULT_GRADES[2], approvals=2, release_required=True, trusted_places_only=True,
                                  max_days=14, download_original=True),
                       3: replace(DEFAULT_GRADES[3], views=1)}}


@pytest.mark.parametrize("settings_overrides", [STRICTER])
@pytest.mark.parametrize(("language", "offered"), [
    ("en", ["Grade 1 — general (a loan with 1 approval, for at most 30 days; no download; 5 views per person)",
            "Grade 2 — important (a loan with 2 approvals, released by a custodian, for at most 14 days; only from a "
            "trusted place; the original file may be downloaded; 3 views per person)",
            "Grade 3 — confidential (a loan with 1 approval, released by a custodian, for at most 7 days; only from a "
            "trusted place; no download; 1 view per person)"]),
    ("ru", ["Гриф 1 — общий (выдача с 1 согласованием, не более 30 дн.; без скачивания; 5 просмотров на сотрудника)",
            "Гриф 2 — важный (выдача с 2 согласованиями, открывается хранителем, не более 14 дн.; только из "
            "доверенного места; можно скачать исходный файл; 3 просмотра на сотрудника)",
            "Гриф 3 — конфиденциальный (выдача с 1 согласованием, открывается хранителем, не более 7 дн.; только из "
            "доверенного места; без скачивания; 1 просмотр на сотрудника)"]),
])
def test_the_upload_form_says_what_this_deployments_grades_require(client, company, language, offered,
                                                                     settings_overrides):
    """The hints were fixed words describing the product's default table ("loan with approval"), so where the
    policy file asked a loan for grade 1, two approvals and a custodian's release for grade 2, the form told a
    compiler choosing a grade that grade 1 files are read freely and grade 2 needs one approval."""
    login(client, "cora")
    form = client.get(f"/documents/new?customer={company.customer_id}",
                      headers={"Accept-Language": language}).get_data(as_text=True)
    grade = re.search(r'<select[^>]*id="grade"[^>]*>(.*?)</select>', form, re.S)
    assert grade is not None
    assert re.findall(r'<option (?:selected )?value="[123]">([^<]*)</option>', grade.group(1)) == offered


@pytest.mark.parametrize("settings_overrides", [STRICTER])
def test_the_document_page_says_what_its_grade_requires_in_the_forms_words(client, company, settings_overrides):
    """The document page's "Reading needs" and the upload form's hint are built by one function from the loaded
    policy, so the page a compiler lands on after the upload repeats what the form promised."""
    token = login(client, "cora")
    response = _upload(client, token, company.customer_id, grade="2")
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    needs = re.search(r"<dt>Reading needs</dt>\s*<dd>([^<]*)</dd>", page)
    assert needs is not None
    assert needs.group(1) == ("a loan with 2 approvals, released by a custodian, for at most 14 days; only from a "
                              "trusted place; the original file may be downloaded")


def _custodian_hint(page: str) -> str:
    found = re.search(r'<select[^>]*id="custodian".*?</select>\s*<p class="muted hint">([^<]*)</p>', page, re.S)
    assert found is not None, "no hint under the custodian's choice"
    return html.unescape(found.group(1)).strip()


NO_RELEASE = {"grades": {**DEFAULT_GRADES, 3: replace(DEFAULT_GRADES[3], release_required=False)}}


@pytest.mark.parametrize(("settings_overrides", "language", "hint"), [
    ({}, "en", "The person who keeps the file and releases its grade 3 loans; not you."),
    (STRICTER, "en", "The person who keeps the file and releases its loans of grades 2, 3; not you."),
    (STRICTER, "ru", "Сотрудник, который хранит файл и открывает его выдачи с грифами 2, 3; не вы."),
    (NO_RELEASE, "en", "The person who keeps the file; not you. No loan of any grade waits for a custodian's "
                       "release under this policy."),
])
def test_the_upload_form_says_which_loans_the_custodian_releases_under_this_policy(
        client, company, settings_overrides, language, hint):
    """The custodian's hint said "releases grade 3 loans" whatever the policy file set: where it asked a
    custodian's release for grade 2 as well, or for no grade, the compiler choosing a custodian was told
    something untrue. It is now built from the loaded policy, as the grade choices are."""
    login(client, "cora")
    page = client.get(f"/documents/new?customer={company.customer_id}",
                      headers={"Accept-Language": language}).get_data(as_text=True)
    assert _custodian_hint(page) == hint
