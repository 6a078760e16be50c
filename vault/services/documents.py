"""Documents: uploading encrypted versions, policy-scoped look-ups, and the decrypted stream of a version.

An upload streams from the request through the upload rules (`uploads.ValidatingReader`), through the
encryption (`crypto.stream.EncryptingReader`, under a fresh data key per version) into the object store:
the file is never held whole in memory, and the store only ever sees ciphertext. The object is written
before its row, so the failure to care about is "object written, row not": every path that abandons the
upload deletes the object (at once when this module sees the exception, and again when the caller's
transaction rolls back or ends without a commit). `vault fsck` finds what a crash leaves behind anyway.

Reading content is not offered here to people: `plaintext_chunks` is the building block of the view
service, which owns loans, quotas and the audit of every opening, and it takes the `ReadGrant` that
service issues for a view policy allowed and the caller committed, so no path reaches plaintext without
one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from flask_babel import lazy_gettext as _l
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, SessionTransaction

from crypto import EncryptingReader, associated_data, decrypt_stream, new_data_key
from storage import ObjectStore
from vault import policy
from vault.core import events
from vault.core.actions import Action
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.core.errors import NotFound, ServiceError
from vault.models import Customer, Document, DocumentVersion, Role, RoleAssignment, User
from vault.rendering.errors import DrawingMisbehaved
from vault.runtime import Runtime
from vault.services import customers as customers_service
from vault.services import key_use, renditions
from vault.services.objects import discard_object
from vault.services.uploads import ValidatingReader, kind_for, sanitize_filename

log = logging.getLogger(__name__)

OBJECT_PREFIX = "documents/"
MAX_TITLE = 200
_PENDING = "vault_pending_objects"
_COPY_CHUNK = 1024 * 1024


def object_key(document_id: int, number: int) -> str:
    """Where a version's ciphertext lives; the random part keeps a retried upload from overwriting."""
    return f"{OBJECT_PREFIX}{document_id}/{number}-{uuid.uuid4().hex}"


def version_context(version: DocumentVersion) -> bytes:
    """The bytes both the ciphertext and the wrapped data key are bound to (document id and number)."""
    return associated_data(version.document_id, version.number)


# -- look-ups ------------------------------------------------------------------------------------------


def upload_choices(session: Session, actor: User) -> list[Customer]:
    """The customers a file may be added to (`policy.worked_customers`, the upload's own rule), by name: what
    the upload form offers. Not every customer the person sees: one reached by a look-up would only be
    refused (`not_working_customer`), and the form would name it for nothing."""
    return list(session.scalars(select(Customer).where(policy.worked_customers(actor))
                                .order_by(Customer.name_key, Customer.id)))


def record_upload_listing(rt: Runtime, session: Session, actor: User, customers: list[Customer], *,
                          ctx: AccessContext) -> None:
    """Record that the upload form named these customers (`customer:list`, listing "upload"), as the customer
    list, the search and the start page record the customers they name, and count them as a list does
    ("list"): the form shows their names as the list does, so the departure report names them "listed" and
    a leaver's reach outside their book is noticed. A form naming nobody records nothing."""
    if customers:
        ids = [c.id for c in customers]
        rt.audit.record(session, action=AuditAction.CUSTOMER_LIST, actor=actor, ctx=ctx,
                        detail={"listing": "upload", "ids": ids})
        customers_service.record_access(rt, session, actor, ids, "list")


def get_customer(session: Session, actor: User, customer_id: int) -> Customer:
    """The customer, if the actor may see it; otherwise NotFound, so ids cannot be probed."""
    customer = session.get(Customer, customer_id)
    if customer is None or not policy.authorize(actor, Action.CUSTOMER_READ, customer):
        raise NotFound("customer", customer_id=customer_id)
    return customer


def get_document(session: Session, actor: User, document_id: int) -> Document:
    """The document's metadata, if the actor may see it; otherwise NotFound (404, not 403)."""
    document = session.get(Document, document_id)
    if document is None or not policy.authorize(actor, Action.DOCUMENT_READ, document):
        raise NotFound("document", document_id=document_id)
    return document


def read_document(rt: Runtime, session: Session, actor: User, document_id: int, *, shown: str,
                  ctx: AccessContext, again: bool = False) -> Document:
    """`get_document`, recorded: a document's page and its JSON name the file, its customer and its
    versions, so reading them is a `document:read` (`shown` says where) under the file and its customer
    (`again`: as `record_read`).

    Raises:
        NotFound: as `get_document`.
    """
    document = get_document(session, actor, document_id)
    record_read(rt, session, actor, document, shown=shown, ctx=ctx, again=again)
    return document


def record_read(rt: Runtime, session: Session, actor: User, document: Document, *, shown: str, ctx: AccessContext,
                again: bool = False) -> None:
    """Record that `document` (its title and customer) is shown to `actor` (`document:read`, `shown` says
    where), for a document already looked up through `get_document`. `again`: a form shown once more with its
    input errors names the file a second time, and that showing is a read of its own (the first one's record
    says nothing of the second), told apart so a reader of the log sees a retry, not a second visit."""
    detail: dict[str, object] = {"shown": shown}
    if again:
        detail["again"] = True
    rt.audit.record(session, action=AuditAction.DOCUMENT_READ, actor=actor, ctx=ctx, customer_id=document.customer_id,
                    document_id=document.id, detail=detail)


def customer_documents(session: Session, actor: User, customer: Customer) -> list[Document]:
    """The customer's documents the actor may see, newest first."""
    return list(session.scalars(
        select(Document).where(Document.customer_id == customer.id, policy.visible_documents(actor))
        .order_by(Document.created_at.desc(), Document.id.desc())
    ))


def custodian_choices(session: Session, actor: User) -> list[User]:
    """People who may be named custodian of a file the actor compiles (never the actor): those who could
    release its loans today (`policy.custodian_acts`), so nobody on notice or suspended."""
    users = session.scalars(
        select(User).join(RoleAssignment, RoleAssignment.user_id == User.id)
        .where(RoleAssignment.role == Role.CUSTODIAN, User.id != actor.id).order_by(User.display_name)
    )
    return [u for u in users if policy.custodian_acts(u)]


# -- uploads -------------------------------------------------------------------------------------------


def clean_title(title: str | None) -> str:
    text = unicodedata.normalize("NFC", title or "").strip()
    if not text:
        raise ServiceError("invalid_title", _l("A file needs a title."))
    if len(text) > MAX_TITLE:
        raise ServiceError("invalid_title", _l("A title has at most %(MAX_TITLE)s characters.", MAX_TITLE=MAX_TITLE))
    if any(unicodedata.category(ch) in {"Cc", "Cf"} for ch in text):
        raise ServiceError("invalid_title", _l("A title cannot contain control characters."))
    return text


def upload_document(
    rt: Runtime,
    session: Session,
    actor: User,
    customer: Customer,
    *,
    title: str,
    grade: int,
    stream: BinaryIO,
    filename: str | None,
    content_type: str | None,
    ctx: AccessContext,
    custodian: User | None = None,
    let_go: Callable[[], None] | None = None,
) -> Document:
    """Create a document for `customer` with its first version, encrypted into the object store.

    `content_type` (what the client declared) is ignored: the type recorded is the one the content
    sniffs as. The caller commits; if it rolls back instead, the stored object is deleted.

    `let_go`: ends the caller's transaction, which has only read so far (the request pipeline's
    `commit_so_far`), once the upload is allowed and before its long part: reading the file and
    drawing its pages (see `_receive`). The decision stands as taken, as it would on PostgreSQL, where
    a transaction sees what was committed when each statement began.

    Raises:
        policy.Denied: the actor may not upload (role), the grade is not 1-3, or the custodian is the
            actor (separation of duties).
        ServiceError: bad title or custodian, or the file broke an upload rule (see `uploads`).
        storage.StorageError: the object store failed; nothing is left behind.
    """
    policy.require(actor, Action.DOCUMENT_UPLOAD, customer, grade=grade, custodian=custodian,
                   audit={"customer_id": customer.id})
    title = clean_title(title)
    kind_for(sanitize_filename(filename))  # a refused extension is refused before anything is written
    if custodian is not None and not policy.custodian_acts(custodian):
        raise ServiceError("invalid_custodian", _l("The custodian must be an active person with the custodian role "
                                                   "who is not leaving."))
    if let_go is not None:
        let_go()
    with _receive(rt, stream, filename) as received:
        # The database is written from here on (on SQLite, its one write lock is held until the commit).
        document = Document(customer_id=customer.id, title=title, grade=grade, compiler_id=actor.id,
                            custodian_id=custodian.id if custodian else None)
        session.add(document)
        session.flush()  # the id is part of the object key and of the encryption context
        _store_version(rt, session, actor, document, 1, received, action=AuditAction.DOCUMENT_UPLOAD, ctx=ctx)
    session.expire(document, ["versions"])
    return document


def add_version(
    rt: Runtime,
    session: Session,
    actor: User,
    document: Document,
    *,
    stream: BinaryIO,
    filename: str | None,
    content_type: str | None,
    ctx: AccessContext,
    let_go: Callable[[], None] | None = None,
) -> DocumentVersion:
    """Add a new version of `document`; only its compiler may. Same guarantees (and `let_go`) as
    `upload_document`.

    Raises:
        policy.Denied: `not_compiler` when the actor did not compile the document.
    """
    policy.require(actor, Action.DOCUMENT_VERSION, document,
                   audit={"document_id": document.id, "customer_id": document.customer_id})
    if let_go is not None:
        let_go()
    with _receive(rt, stream, filename) as received:
        # Numbers come from the database, under the row lock of the document, so two concurrent new
        # versions cannot take the same number (the unique constraint would refuse the second anyway).
        session.execute(select(Document.id).where(Document.id == document.id).with_for_update())
        number = (session.scalar(
            select(func.max(DocumentVersion.number)).where(DocumentVersion.document_id == document.id)) or 0) + 1
        version = _store_version(rt, session, actor, document, number, received,
                                 action=AuditAction.DOCUMENT_VERSION, ctx=ctx)
    session.expire(document, ["versions"])
    return version


@dataclass(frozen=True)
class _Received:
    """An upload read through its rules into a private temporary file, its pages drawn: nothing written yet."""

    plaintext: BinaryIO
    name: str
    content_type: str
    drawing: renditions.Drawing


@contextlib.contextmanager
def _receive(rt: Runtime, stream: BinaryIO, filename: str | None) -> Iterator[_Received]:
    """Read the upload through the upload rules and draw its pages, before the database is written.

    Both take most of an upload's time, and the version's row (whose id the encryption is bound to) is
    written in the caller's transaction: on SQLite, from its first write until its commit, that
    transaction holds the one write lock every other writer waits for. So the bytes are read (and
    refused, if they break a rule) and the pages drawn first; the transaction then only encrypts and
    writes. The plaintext waits in an unlinked private temporary file, as the pages do in theirs.

    Raises:
        ServiceError: the file broke an upload rule (see `uploads`).
        renditions.RenditionRefusedError: the viewer refuses the file.
    """
    name = sanitize_filename(filename)
    checked = ValidatingReader(stream, name, rt.settings.max_upload_bytes)  # refuses a bad extension now
    with tempfile.TemporaryFile(prefix="vault-upload-") as plaintext:
        shutil.copyfileobj(checked, plaintext, _COPY_CHUNK)
        plaintext.seek(0)  # also writes out what the file object still buffered
        # The renderer may close the file it is given (an image's decoder does): it gets a descriptor of its own.
        with os.fdopen(os.dup(plaintext.fileno()), "rb") as source:
            drawing = renditions.draw(source, checked.content_type, name)
        with drawing:
            plaintext.seek(0)
            yield _Received(plaintext=plaintext, name=name, content_type=checked.content_type, drawing=drawing)


def _store_version(
    rt: Runtime,
    session: Session,
    actor: User,
    document: Document,
    number: int,
    received: _Received,
    *,
    action: AuditAction,
    ctx: AccessContext,
) -> DocumentVersion:
    context = associated_data(document.id, number)
    dek = new_data_key()
    key_id, wrapped = rt.keyring.wrap_current(dek, context)
    key = object_key(document.id, number)
    reader = EncryptingReader(dek, context, received.plaintext)
    written = [key]

    def track(page_key: str) -> None:
        written.append(page_key)
        _track(session, rt.store, page_key)

    _track(session, rt.store, key)
    try:
        rt.store.put(key, reader, length=None)
        # The master key may have been rotated and dropped while the file streamed: see `key_use`.
        key_id, wrapped = key_use.settle(rt, session, key_id, wrapped, dek, context)
        version = DocumentVersion(
            document_id=document.id, number=number, object_key=key, size=reader.plaintext_bytes,
            sha256=reader.sha256, wrapped_dek=wrapped, key_id=key_id, content_type=received.content_type,
            original_name=received.name, uploaded_by_id=actor.id,
        )
        session.add(version)
        session.flush()
        renditions.store_drawing(rt, session, version, received.drawing, dek, track)
        rt.audit.record(
            session, action=action, actor=actor, ctx=ctx, customer_id=document.customer_id,
            document_id=document.id, version_id=version.id,
            detail={"size": version.size, "sha256": version.sha256, "content_type": version.content_type,
                    "name": received.name, "number": number, "grade": document.grade,
                    "preview": version.preview, "pages": version.page_count,
                    **({"no_preview": received.drawing.code} if received.drawing.code else {})},
        )
        if received.drawing.code == DrawingMisbehaved.code:
            # The file may have been built to take over the drawing: the person who sent it is looked at.
            events.emit("upload.drawing_misbehaved", session=session, rt=rt, user=actor, document=document,
                        version=version)
    except BaseException:
        for written_key in written:
            _untrack(session, written_key)
            discard_object(rt.store, written_key)
        raise
    return version


# Objects written in a transaction that has not committed yet. If the transaction ends any other way
# (rollback, a failed commit, a session closed without commit), the objects are deleted: a row that
# never committed must not leave a ciphertext behind.
def _track(session: Session, store: ObjectStore, key: str) -> None:
    session.info.setdefault(_PENDING, []).append((store, key))


def _untrack(session: Session, key: str) -> None:
    pending = session.info.get(_PENDING, [])
    session.info[_PENDING] = [(s, k) for s, k in pending if k != key]


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    session.info.pop(_PENDING, None)


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None or transaction.nested:
        return
    for store, key in session.info.pop(_PENDING, []):
        discard_object(store, key)


# -- content -------------------------------------------------------------------------------------------


class PlaintextStream:
    """Decrypted, authenticated segments of one version; close it to release the storage connection.

    Built by `plaintext_chunks`, which has already authenticated the first segment, so a caller that
    got this object knows the content is readable before it sends a byte to anybody.
    """

    def __init__(self, source: BinaryIO, chunks: Iterator[bytes], first: bytes | None) -> None:
        self._source = source
        self._chunks = chunks
        self._first = first

    def __iter__(self) -> PlaintextStream:
        return self

    def __next__(self) -> bytes:
        if self._first is not None:
            chunk, self._first = self._first, None
            return chunk
        try:
            return next(self._chunks)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._first = None
        close = getattr(self._chunks, "close", None)
        with contextlib.suppress(Exception):
            if close is not None:
                close()
        with contextlib.suppress(Exception):
            self._source.close()

    def __enter__(self) -> PlaintextStream:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()


@dataclass(frozen=True)
class ReadGrant:
    """The permission to have one version's plaintext, and why.

    Issued by the view service for a view it opened after policy allowed it and the caller committed the
    claim (`for_view`); for the read-ahead of a view being opened once policy has allowed it, whose
    bytes wait in the server until the opening commits and are dropped if it does not (`for_opening`);
    or for an operator's check of the store against the database (`for_check`: `vault fsck`, the
    demo's set-up, tests). `plaintext_chunks` refuses a grant for another version, so a
    grant cannot be stretched to a file it was not given for.
    """

    version_id: int
    purpose: str
    view_id: int | None = None

    @classmethod
    def for_view(cls, view_id: int, version_id: int) -> ReadGrant:
        return cls(version_id=version_id, purpose="view", view_id=view_id)

    @classmethod
    def for_opening(cls, version_id: int) -> ReadGrant:
        return cls(version_id=version_id, purpose="opening")

    @classmethod
    def for_check(cls, version: DocumentVersion) -> ReadGrant:
        return cls(version_id=version.id, purpose="check")


class GrantMismatch(ServiceError):
    """A read grant presented for a version it was not issued for: a programming error, refused."""

    status = 500


def plaintext_chunks(rt: Runtime, version: DocumentVersion, grant: ReadGrant) -> PlaintextStream:
    """Open a version's object and decrypt it segment by segment (constant memory), under `grant`.

    The data key is unwrapped and the first segment authenticated before this returns, so every
    failure that can be known before the first byte (missing object, wrong key, tampered start) is
    raised here, with nothing yielded.

    Raises:
        crypto.DecryptionError: the wrapped key or the ciphertext does not authenticate.
        crypto.KeyringError: the key that wrapped the data key is not in the keyring.
        storage.ObjectNotFound, storage.StorageError: the object cannot be read.
        GrantMismatch: the grant is for another version.
    """
    return open_stored(rt, StoredVersion.of(version), grant)


@dataclass(frozen=True)
class StoredVersion:
    """What reading a version's bytes needs, copied from its row: a thread other than the one that owns
    the row's session can read with it (see the views service's read-ahead)."""

    version_id: int
    object_key: str
    key_id: str
    wrapped_dek: bytes
    context: bytes

    @classmethod
    def of(cls, version: DocumentVersion) -> StoredVersion:
        return cls(version.id, version.object_key, version.key_id, version.wrapped_dek, version_context(version))


def open_stored(rt: Runtime, stored: StoredVersion, grant: ReadGrant) -> PlaintextStream:
    """`plaintext_chunks` on a copied row (same checks, same errors)."""
    if grant.version_id != stored.version_id:
        raise GrantMismatch("grant_mismatch", "This read grant is not for that version.")
    dek = rt.keyring.unwrap_current(stored.key_id, stored.wrapped_dek, stored.context)
    source = rt.store.open(stored.object_key)
    try:
        chunks = decrypt_stream(dek, stored.context, source)
        first = next(chunks, b"")
    except BaseException:
        with contextlib.suppress(Exception):
            source.close()
        raise
    return PlaintextStream(source, chunks, first)

