"""Renditions at upload: every accepted type yields stored, encrypted pages; refusals leave nothing."""

from __future__ import annotations

import io
import json
from typing import Any

import pypdf
import pytest
from PIL import Image
from sqlalchemy import func, select

from crypto import DecryptionError
from tests.conftest import login
from tests.documents.conftest import Company
from tests.rendering.inputs import (
    docx_bytes,
    image_bomb_pdf,
    image_bytes,
    pdf_bytes,
    png_header_only,
    pptx_bytes,
    slow_field,
    xlsx_bytes,
)
from tests.support.planted import Planted
from vault.models import (
    PREVIEW_NONE,
    PREVIEW_READY,
    Alert,
    AuditEvent,
    Document,
    DocumentVersion,
    Severity,
    User,
    VersionPage,
)
from vault.models.alerts import evidence_of
from vault.rendering import IsolatedRenderer, Limits, isolated
from vault.rendering.office import soffice_path
from vault.services import integrity, renditions
from vault.services.documents import version_context
from vault.services.renditions import read_page

TEXT = "Customer notes\n\nПродажи · 販売 · sales: prices for the spring.\n" * 20
MARKDOWN = "# Acme\n\n* one\n* **two**\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
CSV = "name,city,amount\nAcme,Oslo,12\nBeta,Köln,7\n"


def _samples() -> dict[str, bytes]:
    tall = Image.new("RGB", (620, 2200), (250, 250, 250))
    return {
        "contract.pdf": pdf_bytes(3),
        "scan.png": image_bytes(tall, "PNG"),  # tall: split into pages
        "photo.jpg": image_bytes(Image.new("RGB", (800, 600), (30, 120, 200)), "JPEG", quality=90),
        "notes.txt": TEXT.encode(),
        "plan.md": MARKDOWN.encode(),
        "prices.csv": CSV.encode(),
    }


def _version(rt, document_id: int) -> DocumentVersion:
    with rt.db.session() as session:
        version = session.get(Document, document_id).versions[0]
        list(version.pages)
        session.expunge_all()
        return version


def _check_pages(rt, version: DocumentVersion) -> int:
    """Every page object decrypts under the version's key to a lossless page image 1240 px wide."""
    assert version.preview == PREVIEW_READY and version.page_count == len(version.pages) >= 1
    dek = rt.keyring.unwrap(version.key_id, version.wrapped_dek, version_context(version))
    for page in version.pages:
        data = read_page(rt, dek, version.document_id, version.number, page.object_key, page.number)
        with Image.open(io.BytesIO(data)) as image:
            assert image.format in ("PNG", "WEBP") and image.width == page.width == 1240
        # Bound to its page number: read as another page, it does not authenticate.
        with pytest.raises(DecryptionError):
            read_page(rt, dek, version.document_id, version.number, page.object_key, page.number + 1)
    return version.page_count


def test_every_plain_type_yields_pages_at_upload(rt, company: Company):
    counts = {}
    for name, data in _samples().items():
        document_id = company.upload(data=data, name=name)
        counts[name] = _check_pages(rt, _version(rt, document_id))
    assert counts["contract.pdf"] == 3
    assert counts["scan.png"] == 2  # 2200 px at 620 wide is 4400 at 1240: more than one A4 page
    assert all(count >= 1 for count in counts.values())


@pytest.mark.skipif(soffice_path() is None, reason="LibreOffice is not installed")
def test_office_documents_yield_pages_at_upload(rt, company: Company, db_backend):
    if db_backend != "sqlite":
        pytest.skip("the conversion is the same on both databases; one run is enough")
    for name, data in (("offer.docx", docx_bytes()), ("figures.xlsx", xlsx_bytes()), ("deck.pptx", pptx_bytes())):
        assert _check_pages(rt, _version(rt, company.upload(data=data, name=name))) >= 1


def test_a_file_without_preview_is_kept_and_marked(rt, company: Company):
    broken = b"%PDF-1.7\n% not really a PDF\n%%EOF\n"
    version = _version(rt, company.upload(data=broken, name="broken.pdf"))
    assert (version.preview, version.page_count, version.pages) == (PREVIEW_NONE, 0, [])
    assert version.preview_reason


def _encrypted_pdf() -> bytes:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(pdf_bytes(1))))
    writer.encrypt(user_password="", owner_password="owner")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize(("name", "data", "words"), [
    ("locked.pdf", _encrypted_pdf(), "The PDF is encrypted"),
    ("bomb.png", png_header_only(40_000, 40_000), "pixels"),
    ("bomb.pdf", image_bomb_pdf(), "What page 1 of the PDF draws unpacks to more than 256 MiB"),
], ids=["encrypted_document", "image_too_large", "drawing_too_large"])
def test_refused_files_leave_no_row_and_no_object(rt, client, company: Company, name, data, words):
    token = login(client, "cora")
    response = client.post("/documents/new", data={
        "csrf_token": token, "customer": str(company.customer_id), "title": "Refused", "grade": "2",
        "custodian": "0", "file": (io.BytesIO(data), name)}, content_type="multipart/form-data")
    assert response.status_code == 400
    alerts = [line for line in response.get_data(as_text=True).splitlines() if 'role="alert"' in line]
    assert any(words in line for line in alerts), alerts
    assert list(rt.store.list("documents/")) == []
    with rt.db.session() as session:
        assert session.scalar(select(func.count()).select_from(DocumentVersion)) == 0
        assert session.scalar(select(func.count()).select_from(VersionPage)) == 0
        assert session.scalar(select(func.count()).select_from(Document)) == 0


def test_fsck_checks_page_objects(rt, company: Company):
    version = _version(rt, company.upload(data=pdf_bytes(2), name="two.pdf"))
    assert integrity.fsck(rt).ok
    page = version.pages[1]
    with rt.store.open(page.object_key) as source:
        ciphertext = bytearray(source.read())
    ciphertext[-20] ^= 1
    rt.store.put(page.object_key, io.BytesIO(bytes(ciphertext)))
    report = integrity.fsck(rt)
    assert [(p.key, p.kind) for p in report.corrupt] == [(page.object_key, "undecryptable")]
    rt.store.delete(version.pages[0].object_key)
    assert [(p.key, p.kind) for p in integrity.fsck(rt).missing] == [(version.pages[0].object_key, "missing")]



def test_a_drawing_past_its_time_keeps_the_file_without_a_preview(rt, company: Company):
    """The upload's drawing runs in a child process killed at `Limits.render_seconds`: a form field
    that PDFium draws in one call, unbounded in the server's own process, ends the drawing at its time."""
    previous = renditions.set_renderer(IsolatedRenderer(Limits(convert_timeout=0.5, render_seconds=1.0)))
    try:
        document_id = company.upload(data=slow_field(4000), name="form.pdf")
    finally:
        renditions.set_renderer(previous)
    version = _version(rt, document_id)
    assert (version.preview, version.page_count, version.pages) == (PREVIEW_NONE, 0, [])
    assert "took too long" in version.preview_reason


def test_a_drawing_that_misbehaves_keeps_the_file_and_raises_an_alert_on_its_sender(
        rt, company: Company, monkeypatch: pytest.MonkeyPatch, tmp_path: Any):
    planted = tmp_path / "planted"

    def taken_over(handed: object, media_type: str, filename: str, limits: Limits, send: Any) -> None:
        send(("pages", "pdf", 1))
        send(("page", 1, 1240, 1754, "image/png", Planted(str(planted))))

    monkeypatch.setattr(isolated, "_draw", taken_over)
    previous = renditions.set_renderer(IsolatedRenderer())
    try:
        document_id = company.upload(data=pdf_bytes(1), name="offer.pdf", title="Offer 2027")
    finally:
        renditions.set_renderer(previous)
    version = _version(rt, document_id)
    assert (version.preview, version.page_count, version.pages) == (PREVIEW_NONE, 0, [])
    assert "sent what it never sends" in version.preview_reason
    assert not planted.exists()
    with rt.db.session() as session:
        alert = session.scalar(select(Alert).where(Alert.rule == "crafted_file"))
        assert alert is not None and alert.severity == Severity.HIGH
        assert session.get(User, alert.user_id).username == "cora"
        assert evidence_of(alert.evidence_json) == {"documents": [document_id], "customers": [company.customer_id],
                                                    "versions": [version.id]}
        assert "“Offer 2027”" in alert.summary
        upload = session.scalar(select(AuditEvent).where(AuditEvent.action == "document:upload",
                                                         AuditEvent.version_id == version.id))
        assert json.loads(upload.detail)["no_preview"] == "drawing_misbehaved"
