"""Helpers for the customer and document tests: a small company, sample files and store inspection."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from storage import S3Store, StorageUnavailable
from tests.conftest import everyone_works, make_runtime
from vault.core.context import AccessContext
from vault.models import AuditEvent, Customer, Document, DocumentVersion, Role, Segment, User
from vault.rendering import Limits, PageRenderer
from vault.runtime import Runtime
from vault.services import customers, documents, renditions

CTX = AccessContext(client_addr="192.0.2.10", user_agent="pytest", request_id="test-request-0001")

PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
PDF_BODY = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n" + b"% customer dossier: Acme terms 30 days net\n" * 200


@pytest.fixture(autouse=True)
def small_text_renditions() -> Iterator[None]:
    """These tests are about storage, with text files of megabytes: a deployment limit on laid-out text
    (the real renderer, tighter) keeps them from rendering hundreds of pages (they get "no preview")."""
    previous = renditions.set_renderer(PageRenderer(Limits(max_text_bytes=64 * 1024)))
    yield
    renditions.set_renderer(previous)


@pytest.fixture
def s3_rt(tmp_path: Any, database_url: str, keyring_path: Any, seaweed: Any, s3_store: S3Store) -> Iterator[Runtime]:
    """A runtime whose store is the SeaweedFS bucket, under a key prefix of this test's own."""
    runtime = make_runtime(tmp_path / "data", database_url, keyring_path, storage="s3", s3_endpoint=seaweed.endpoint,
                           s3_access_key=seaweed.access_key, s3_secret_key=seaweed.secret_key,
                           s3_bucket=seaweed.bucket, s3_secure=False, max_upload_mb=6)
    assert isinstance(runtime.store, S3Store)
    # The same server and bucket, under a key prefix of this test's own, so listings see only its objects.
    runtime.store = s3_store
    runtime.store.ensure_ready()
    yield runtime
    runtime.close()


def pdf_bytes(marker: bytes = b"") -> bytes:
    return PDF_BODY + marker + b"\n%%EOF\n"


def text_bytes(size: int, marker: bytes = b"CONFIDENTIAL-MARKER") -> bytes:
    line = b"order 4711; Acme Corp; 12 units; " + marker + b"\n"
    return (line * (size // len(line) + 1))[:size]


def docx_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        package.writestr("word/document.xml", "<w:document/>")
    return out.getvalue()


def odt_bytes(mimetype: str = "application/vnd.oasis.opendocument.text") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as package:
        package.writestr(zipfile.ZipInfo("mimetype"), mimetype, compress_type=zipfile.ZIP_STORED)
        package.writestr("content.xml", "<office:document-content/>", compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("customers.csv", "name\nAcme\n")
    return out.getvalue()


class Trickle(io.RawIOBase):
    """A stream that hands out at most `step` bytes per read, like a slow network body, and hides its size."""

    def __init__(self, data: bytes, step: int = 65536) -> None:
        super().__init__()
        self._data = memoryview(data)
        self._pos = 0
        self._step = step

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = self._step if size is None or size < 0 else min(size, self._step)
        chunk = bytes(self._data[self._pos:self._pos + size])
        self._pos += len(chunk)
        return chunk


class FailingStore:
    """The real store, except that `put` fails midway after writing what it had read so far.

    Stands in for a backend that is not all-or-nothing (or a connection that dropped after the server
    kept part of an object): a fault the real stores cannot produce on demand.
    """

    def __init__(self, inner, fail_after: int) -> None:
        self.inner = inner
        self.fail_after = fail_after
        self.partial_keys: list[str] = []

    def put(self, key, stream, length=None, **options):
        part = stream.read(self.fail_after)
        self.inner.put(key, io.BytesIO(part))
        self.partial_keys.append(key)
        raise StorageUnavailable("the connection to the storage dropped")

    def __getattr__(self, name):
        return getattr(self.inner, name)


@dataclass
class Company:
    rt: Runtime
    customer_id: int

    def user(self, session: Any, username: str) -> User:
        return session.scalar(select(User).where(User.username == username))

    def upload(self, username: str = "cora", *, data: bytes | None = None, name: str = "dossier.pdf",
               title: str = "Dossier", grade: int = 2, custodian: str | None = None, stream: Any = None,
               let_go: Any = None) -> int:
        with self.rt.db.session() as session:
            customer = session.get(Customer, self.customer_id)
            keeper = self.user(session, custodian) if custodian else None
            document = documents.upload_document(
                self.rt, session, self.user(session, username), customer, title=title, grade=grade,
                stream=stream if stream is not None else io.BytesIO(data if data is not None else pdf_bytes()),
                filename=name, content_type="application/octet-stream", ctx=CTX, custodian=keeper,
                let_go=let_go and (lambda: let_go(session)))
            return document.id


@pytest.fixture
def company(rt: Runtime, users: Any) -> Company:
    """Two compilers, a borrower, a custodian, an approver, an admin and an auditor, and one customer."""
    users.make("cora", Role.COMPILER)
    users.make("carl", Role.COMPILER)
    users.make("bob", Role.BORROWER)
    users.make("kate", Role.CUSTODIAN)
    users.make("april", Role.APPROVER)
    users.make("adam", Role.ADMIN)
    users.make("audrey", Role.AUDITOR)
    with rt.db.session() as session:
        cora = session.scalar(select(User).where(User.username == "cora"))
        customer = customers.create_customer(rt, session, cora, name="Acme Corp", segment=Segment.KEY, ctx=CTX)
        customer_id = customer.id
    everyone_works(rt, customer_id)
    return Company(rt, customer_id)


def events(rt: Runtime, action: str, outcome: str | None = None) -> list[AuditEvent]:
    with rt.db.session() as session:
        query = select(AuditEvent).where(AuditEvent.action == action)
        if outcome is not None:
            query = query.where(AuditEvent.outcome == outcome)
        return list(session.scalars(query.order_by(AuditEvent.seq)))


def stored_keys(rt: Runtime) -> list[str]:
    return [info.key for info in rt.store.list("documents/")]


def row_counts(rt: Runtime) -> tuple[int, int]:
    with rt.db.session() as session:
        return (session.scalar(select(func.count()).select_from(Document)) or 0,
                session.scalar(select(func.count()).select_from(DocumentVersion)) or 0)


def read_object(rt: Runtime, key: str) -> bytes:
    with rt.store.open(key) as handle:
        return handle.read()


def cli_env(rt: Runtime) -> dict[str, str]:
    """Environment for running `vault ...` commands against the same database, store and keyring as `rt`."""
    settings = rt.settings
    return {
        "VAULT_DATA_DIR": str(settings.data_dir),
        "VAULT_DATABASE_URL": settings.database,
        "VAULT_KEYRING": str(settings.keyring_path),
        "VAULT_SECRET_KEY": "test-secret-key",
        "VAULT_ARGON2_TIME_COST": "1",
        "VAULT_ARGON2_MEMORY_KIB": "1024",
    }
