"""The upload pipeline on both databases: what is stored, what is recorded, and that a refused or failed
upload leaves no object and no row behind."""

from __future__ import annotations

import hashlib
import io
import json
import tracemalloc
from datetime import timedelta

import pytest
from sqlalchemy import delete, event, select

from crypto import DecryptionError, ciphertext_size
from storage import StorageUnavailable
from tests.documents.conftest import (
    CTX,
    PNG_HEAD,
    FailingStore,
    Trickle,
    events,
    pdf_bytes,
    read_object,
    row_counts,
    stored_keys,
    text_bytes,
    zip_bytes,
)
from tests.rendering.inputs import pdf_bytes as pages_pdf
from tests.support.write_lock import WatchedRenderer
from vault import policy
from vault.core.errors import NotFound, ServiceError
from vault.db import unit_of_work
from vault.models import Customer, CustomerCoOwner, Document, DocumentVersion
from vault.rendering import PageRenderer
from vault.services import departures, documents, renditions

THREE_PAGES = pages_pdf(3)


def _version(rt, document_id, number=1):
    with rt.db.session() as session:
        return session.scalar(select(DocumentVersion).where(DocumentVersion.document_id == document_id,
                                                            DocumentVersion.number == number))


def test_upload_stores_ciphertext_and_records_one_event(rt, company):
    data = text_bytes(2_500_000, marker=b"SECRET-TERMS-ACME-0042")  # three encryption segments
    document_id = company.upload("cora", data=data, name="../terms 2024.txt", title="  Terms 2024 ",
                                 grade=3, custodian="kate", stream=Trickle(data))
    with rt.db.session() as session:
        document = session.get(Document, document_id)
        assert (document.title, document.grade, document.customer_id) == ("Terms 2024", 3, company.customer_id)
        assert document.compiler.username == "cora"
        assert document.custodian.username == "kate"
        [version] = document.versions
        assert version.number == 1
        assert version.size == len(data)
        assert version.sha256 == hashlib.sha256(data).hexdigest()
        assert version.content_type == "text/plain"
        assert version.original_name == "terms 2024.txt"
        assert version.key_id == rt.keyring.active_key_id
        assert version.uploaded_by.username == "cora"
        assert version.object_key.startswith(f"documents/{document_id}/1-")
        version_id, key = version.id, version.object_key

    assert stored_keys(rt) == [key]
    stored = read_object(rt, key)
    assert len(stored) == ciphertext_size(len(data))
    assert b"SECRET-TERMS-ACME-0042" not in stored
    assert b"order 4711" not in stored

    [event] = events(rt, "document:upload")
    assert (event.actor_name, event.outcome) == ("cora", "allowed")
    assert (event.customer_id, event.document_id, event.version_id) == (company.customer_id, document_id, version_id)
    assert event.client_addr == "192.0.2.10"
    detail = json.loads(event.detail)
    assert detail["size"] == len(data)
    assert detail["sha256"] == hashlib.sha256(data).hexdigest()
    assert detail["content_type"] == "text/plain"
    assert detail["name"] == "terms 2024.txt"


def test_plaintext_chunks_round_trip(rt, company):
    data = text_bytes(2_200_000)
    document_id = company.upload(data=data, name="log.txt")
    version = _version(rt, document_id)
    with documents.plaintext_chunks(rt, version, documents.ReadGrant.for_check(version)) as chunks:
        parts = list(chunks)
    assert len(parts) == 3  # streamed a segment at a time, never as one piece
    assert b"".join(parts) == data


def test_plaintext_chunks_fails_before_the_first_byte_when_tampered(rt, company):
    document_id = company.upload(data=text_bytes(300_000), name="log.txt")
    version = _version(rt, document_id)
    path = rt.store.root / version.object_key
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0x01  # one bit inside the first segment
    path.write_bytes(bytes(raw))
    with pytest.raises(DecryptionError):
        documents.plaintext_chunks(rt, version, documents.ReadGrant.for_check(version))


def test_plaintext_chunks_is_bound_to_its_document_and_version(rt, company):
    """An object copied over another version's key does not decrypt as that version."""
    first = _version(rt, company.upload(data=pdf_bytes(b"first"), name="a.pdf"))
    second = _version(rt, company.upload(data=pdf_bytes(b"second"), name="b.pdf"))
    (rt.store.root / second.object_key).write_bytes((rt.store.root / first.object_key).read_bytes())
    with pytest.raises(DecryptionError):
        documents.plaintext_chunks(rt, second, documents.ReadGrant.for_check(second))


def test_a_read_grant_opens_only_the_version_it_was_issued_for(rt, company):
    """Plaintext needs a grant, and a grant for one version is refused for another, before any byte."""
    first = _version(rt, company.upload(data=pdf_bytes(b"first"), name="a.pdf"))
    second = _version(rt, company.upload(data=pdf_bytes(b"second"), name="b.pdf"))
    with pytest.raises(documents.GrantMismatch):
        documents.plaintext_chunks(rt, second, documents.ReadGrant.for_check(first))
    grant = documents.ReadGrant.for_view(view_id=7, version_id=second.id)
    with documents.plaintext_chunks(rt, second, grant) as chunks:
        assert b"second" in b"".join(chunks)


def test_the_compiler_adds_versions_and_nobody_else(rt, company):
    document_id = company.upload("cora", data=pdf_bytes(b"v1"))
    with rt.db.session() as session:
        document = session.get(Document, document_id)
        version = documents.add_version(rt, session, company.user(session, "cora"), document,
                                        stream=io.BytesIO(pdf_bytes(b"v2")), filename="dossier v2.pdf",
                                        content_type="text/html", ctx=CTX)
        assert version.number == 2
        assert [v.number for v in document.versions] == [1, 2]
        assert version.content_type == "application/pdf"  # sniffed, not the declared text/html
    [event] = events(rt, "document:version")
    assert (event.actor_name, event.document_id, event.version_id) == ("cora", document_id, version.id)
    second = _version(rt, document_id, 2)
    with documents.plaintext_chunks(rt, second, documents.ReadGrant.for_check(second)) as chunks:
        assert b"".join(chunks) == pdf_bytes(b"v2")

    before = sorted(stored_keys(rt))
    for intruder in ("carl", "bob", "kate", "april"):
        with pytest.raises(policy.Denied) as refused, rt.db.session() as session:
            documents.add_version(rt, session, company.user(session, intruder), session.get(Document, document_id),
                                  stream=io.BytesIO(pdf_bytes()), filename="x.pdf", content_type=None, ctx=CTX)
        expected = "not_compiler" if intruder == "carl" else "not_permitted"
        assert refused.value.decision.code == expected
        assert refused.value.audit["document_id"] == document_id
    assert sorted(stored_keys(rt)) == before
    assert row_counts(rt) == (1, 2)
    assert len(events(rt, "document:version")) == 1


POLICY_REFUSALS = [
    ("bob", 2, None, "not_permitted"),
    ("kate", 2, None, "not_permitted"),
    ("april", 2, None, "not_permitted"),
    ("adam", 2, None, "not_permitted"),
    ("audrey", 2, None, "not_permitted"),
    ("cora", 0, None, "invalid_grade"),
    ("cora", 4, None, "invalid_grade"),
    ("cora", True, None, "invalid_grade"),
    ("cora", "2", None, "invalid_grade"),
    ("cora", 2, "cora", "separation_of_duties"),
]


def test_policy_refusals_store_nothing(rt, company):
    for who, grade, custodian, code in POLICY_REFUSALS:
        with pytest.raises(policy.Denied) as refused:
            company.upload(who, grade=grade, custodian=custodian)
        assert refused.value.decision.code == code, (who, grade, custodian)
        assert refused.value.audit == {"customer_id": company.customer_id}
    assert stored_keys(rt) == []
    assert row_counts(rt) == (0, 0)
    assert events(rt, "document:upload") == []


RULE_REFUSALS = [
    (PNG_HEAD + b"\x00" * 5000, "dossier.pdf", "file_type_mismatch"),
    (zip_bytes(), "customers.docx", "file_type_not_allowed"),
    (zip_bytes(), "customers.zip", "file_type_not_allowed"),
    (b"MZ\x90\x00\x03\x00\x00\x00", "setup.exe", "file_type_not_allowed"),
    (b"", "empty.pdf", "empty_file"),
]


def test_rule_refusals_store_nothing(rt, company):
    for data, name, code in RULE_REFUSALS:
        with pytest.raises(ServiceError) as refused:
            company.upload(data=data, name=name)
        assert refused.value.code == code, name
    assert stored_keys(rt) == []
    assert row_counts(rt) == (0, 0)


@pytest.mark.parametrize("settings_overrides", [{"max_upload_mb": 1}])
def test_too_large_is_refused_while_streaming(rt, company, settings_overrides):
    limit = 1024 * 1024
    company.upload(data=text_bytes(limit), name="exactly.txt")  # the limit itself is allowed
    assert row_counts(rt) == (1, 1)
    with pytest.raises(ServiceError) as refused:
        # 3 MiB through a stream that does not tell its size: only counting can catch it.
        company.upload(data=text_bytes(3 * limit), name="big.txt", stream=Trickle(text_bytes(3 * limit)))
    assert refused.value.code == "file_too_large"
    assert "1 MiB" in refused.value.message
    assert len(stored_keys(rt)) == 1
    assert row_counts(rt) == (1, 1)


def test_storage_failure_midway_leaves_nothing(rt, company):
    real = rt.store
    rt.store = FailingStore(real, fail_after=300_000)
    try:
        with pytest.raises(StorageUnavailable):
            company.upload(data=text_bytes(2_000_000), name="big.txt")
        assert len(rt.store.partial_keys) == 1  # the fault did write a partial object...
    finally:
        rt.store = real
    assert stored_keys(rt) == []  # ...which the upload removed
    assert row_counts(rt) == (0, 0)
    assert events(rt, "document:upload") == []


class _FailingPageStore:
    """The real store, except that writing page 3 of any version fails after page 1 and 2 were written
    (pages are written several at once): the fault a store that drops mid-upload gives, on demand."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def put(self, key, stream, length=None, **options):
        if key.endswith(renditions.PAGES_SUFFIX + "3"):
            raise StorageUnavailable("the connection to the storage dropped")
        return self.inner.put(key, stream, length, **options)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_page_the_store_refuses_leaves_nothing(rt, company):
    previous = renditions.set_renderer(PageRenderer())
    real, rt.store = rt.store, _FailingPageStore(rt.store)
    try:
        with pytest.raises(StorageUnavailable):
            company.upload(data=pages_pdf(6), name="plan.pdf")
    finally:
        rt.store, _ = real, renditions.set_renderer(previous)
    assert stored_keys(rt) == []  # the version's object and the pages written before and beside page 3
    assert row_counts(rt) == (0, 0)
    assert events(rt, "document:upload") == []


def test_database_failure_after_the_put_leaves_nothing(rt, company, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(rt.audit, "record", broken)
    with pytest.raises(RuntimeError, match="went away"):
        company.upload(data=pdf_bytes())
    monkeypatch.undo()
    assert stored_keys(rt) == []
    assert row_counts(rt) == (0, 0)


def test_a_later_failure_in_the_same_transaction_removes_the_object(rt, company):
    """The upload succeeded, but the caller's unit of work failed afterwards: its object goes too."""
    with pytest.raises(RuntimeError, match="later step"), rt.db.session() as session:
        customer = session.get(Customer, company.customer_id)
        documents.upload_document(rt, session, company.user(session, "cora"), customer, title="Dossier", grade=1,
                                  stream=io.BytesIO(pdf_bytes()), filename="a.pdf", content_type=None, ctx=CTX)
        assert len(stored_keys(rt)) == 1
        raise RuntimeError("a later step failed")
    assert stored_keys(rt) == []
    assert row_counts(rt) == (0, 0)


def test_a_committed_upload_keeps_its_object(rt, company):
    document_id = company.upload(data=pdf_bytes())
    with rt.db.session() as session:  # a later, unrelated transaction that rolls back
        session.get(Document, document_id)
        session.rollback()
    assert len(stored_keys(rt)) == 1


def test_bad_titles_and_custodians_are_refused(rt, company, users):
    for title in ("", "   ", "x" * 201, "tab\there"):
        with pytest.raises(ServiceError) as refused:
            company.upload(title=title)
        assert refused.value.code == "invalid_title"
    with pytest.raises(ServiceError) as refused:
        company.upload(custodian="bob")  # a borrower, not a custodian
    assert refused.value.code == "invalid_custodian"
    # A custodian on notice is neither offered nor accepted: they would release nothing of the new file.
    with rt.db.session() as session:
        departures.start_departure(rt, session, None, company.user(session, "kate"),
                                   last_day=departures.today(rt.settings) + timedelta(days=20), successor=None,
                                   ctx=CTX)
    with rt.db.session() as session:
        assert "kate" not in {u.username for u in documents.custodian_choices(session, company.user(session, "cora"))}
    with pytest.raises(ServiceError) as refused:
        company.upload(custodian="kate")
    assert refused.value.code == "invalid_custodian"
    assert stored_keys(rt) == []
    assert row_counts(rt) == (0, 0)


def test_document_metadata_is_seen_by_those_who_work_the_customer_only(rt, company):
    document_id = company.upload()
    with rt.db.session() as session:  # the scene's approver and custodian do not work this customer
        for who in ("kate", "april"):
            session.execute(delete(CustomerCoOwner).where(CustomerCoOwner.user_id == company.user(session, who).id))
    with rt.db.session() as session:
        customer = session.get(Customer, company.customer_id)
        # Need to know: an approver or custodian with nothing of this customer in their queue sees nothing.
        for who in ("kate", "april"):
            actor = company.user(session, who)
            with pytest.raises(NotFound):
                documents.get_document(session, actor, document_id)
    kept = company.upload(custodian="kate")  # keeping one of its files opens the customer to the custodian
    with rt.db.session() as session:
        customer = session.get(Customer, company.customer_id)
        for who in ("cora", "bob", "kate"):
            actor = company.user(session, who)
            assert documents.get_document(session, actor, document_id).id == document_id
            assert documents.get_customer(session, actor, company.customer_id).name == "Acme Corp"
            assert {d.id for d in documents.customer_documents(session, actor, customer)} == {document_id, kept}
        for who in ("adam", "audrey", "april"):
            actor = company.user(session, who)
            with pytest.raises(NotFound):
                documents.get_document(session, actor, document_id)
            with pytest.raises(NotFound):
                documents.get_customer(session, actor, company.customer_id)
        with pytest.raises(NotFound):
            documents.get_document(session, company.user(session, "bob"), document_id + 1000)


class Generated(io.RawIOBase):
    """`size` bytes of text made on demand: an upload larger than anything the test holds in memory."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.remaining = size
        self.line = b"2024-03-01,SO-4711,Control unit C7,2,1890.00,3780.00\n"

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = min(self.remaining, 256 * 1024 if size is None or size < 0 else size)
        self.remaining -= size
        return (self.line * (size // len(self.line) + 1))[:size]


def test_memory_stays_flat_in_the_size_of_the_upload(rt, company):
    size = 48 * 1024 * 1024
    tracemalloc.start()
    try:
        document_id = company.upload(name="orders.csv", stream=Generated(size))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes for a {size}-byte upload"
    version = _version(rt, document_id)
    assert version.size == size
    total = 0
    with documents.plaintext_chunks(rt, version, documents.ReadGrant.for_check(version)) as chunks:
        for chunk in chunks:
            total += len(chunk)
    assert total == size


def test_pages_are_drawn_before_the_upload_writes_anything(rt, company):
    """Drawing the pages is most of an upload's time: drawn inside the upload's transaction, on SQLite every
    other writer (every view, every sign-in) waited on the write lock for the whole rendition. The caller
    lets its transaction go (`let_go`) once the upload is allowed; the upload writes nothing before its
    pages are drawn."""
    writes: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            writes.append(statement)

    watcher = WatchedRenderer(renditions.set_renderer(PageRenderer()), rt, writes)
    renditions.set_renderer(watcher)
    event.listen(rt.db.engine, "before_cursor_execute", record)
    try:
        document_id = company.upload("cora", data=THREE_PAGES, name="plan.pdf", let_go=unit_of_work.commit)
        first = len(writes)
        with rt.db.session() as session:
            document = session.get(Document, document_id)
            documents.add_version(rt, session, company.user(session, "cora"), document,
                                  stream=io.BytesIO(THREE_PAGES), filename="plan v2.pdf", content_type=None,
                                  ctx=CTX, let_go=lambda: unit_of_work.commit(session))
    finally:
        event.remove(rt.db.engine, "before_cursor_execute", record)
        renditions.set_renderer(watcher.inner)
    # Before drawing and before each of the 3 pages: nothing written yet by this upload, no lock held.
    assert first > 0
    assert watcher.seen == [(0, True)] * 4 + [(first, True)] * 4
    assert _version(rt, document_id, 1).page_count == _version(rt, document_id, 2).page_count == 3
