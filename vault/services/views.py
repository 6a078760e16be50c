"""Views: opening a document (one unit of quota, one single-use content URL) and delivering its bytes.

Opening is one transaction: policy check, the atomic spend of a unit, the view row and its audit
record commit together or not at all. Delivery is three: a claim that turns the view from reserved to
delivering (so a replayed URL gets nothing), committed by the request's unit of work *before* a byte is
read, because on SQLite any open transaction holds the database's write lock and a download may take
minutes; then the stream, outside any transaction; then a short unit of work recording how it ended.

A view that never delivered a byte gives its unit back (expired URL, storage down, undecryptable
start), each refund with its own audit record; a stream that breaks midway stays spent ("partial"),
since some content did leave.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import re
import secrets
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, BinaryIO
from urllib.parse import quote

from flask_babel import lazy_gettext as _l
from PIL import Image
from sqlalchemy import ColumnElement, Integer, Select, and_, bindparam, exists, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from crypto import CryptoError
from storage import ObjectNotFound, StorageError
from vault import policy
from vault.audit.log import ClaimedHead, claim_head, claimed_columns
from vault.core.actions import Action
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.core.errors import Conflict, NotFound, ServiceError
from vault.db import unit_of_work
from vault.db.rows import completed, insert_row, persistent
from vault.marking import (
    MarkingError,
    StampText,
    embed,
    stamp_page,
    view_overlay,
    write_stamped_pages_pdf,
    write_stamped_pdf,
)
from vault.models import (
    Alert,
    AlertStatus,
    Departure,
    Document,
    DocumentVersion,
    DocumentView,
    Loan,
    LoanStatus,
    Severity,
    User,
    VersionPage,
    ViewStatus,
    utcnow,
)
from vault.policy import views as rules
from vault.runtime import Runtime
from vault.services import loans, quota, renditions, view_alerts, viewer
from vault.services.documents import (
    PlaintextStream,
    ReadGrant,
    StoredVersion,
    open_stored,
    plaintext_chunks,
    version_context,
)
from vault.services.marking_key import marking_secret
from vault.services.viewer import access_suspended

log = logging.getLogger(__name__)


@dataclass
class OpenedView:
    view: DocumentView
    secret: str  # goes into the content URL; only its hash is stored
    remaining: int
    expires_at: datetime
    ahead: ReadAhead | None = None  # the bytes being read while the opening commits (`read_ahead`)


# Threads that read a view's bytes while its opening commits: at most this many reads ahead at once per
# process (more wait their turn; each holds one storage connection and one segment).
READ_AHEAD_THREADS = 8
_readers: ThreadPoolExecutor | None = None
_readers_made = threading.Lock()


def _reader_pool() -> ThreadPoolExecutor:
    global _readers
    with _readers_made:
        if _readers is None:  # made on first use: in the server's worker, after it forked
            _readers = ThreadPoolExecutor(max_workers=READ_AHEAD_THREADS, thread_name_prefix="vault-read-ahead")
        return _readers


class ReadAhead:
    """A view's bytes, opened (object GET, data key unwrapped, first segment authenticated) in another
    thread while the opening's spend, view row, audit record and commit run in the request's.

    Nothing leaves before the commit: the stream is handed over by `take`, which the delivery calls
    only on a committed claim; a refused or failed opening `discard`s it, and it is closed unread.
    Failures surface in `take`, where the delivery refunds the view as for a read of its own.

    ``whole``: the bytes are read to the end into a file (`take_file`), for a copy that is stamped
    before it leaves: a PDF's stamping needs all of it, and the object's transfer and decryption then
    overlap the opening's transaction too.
    """

    def __init__(self, rt: Runtime, version: DocumentVersion, *, whole: bool = False) -> None:
        stored = StoredVersion.of(version)  # copied here: the row belongs to this thread's session
        self.whole = whole
        grant = ReadGrant.for_opening(version.id)
        if whole:
            self._future: Future[Any] = _reader_pool().submit(_plaintext_file, rt, stored, grant, version.size)
        else:
            self._future = _reader_pool().submit(open_stored, rt, stored, grant)

    def take(self) -> PlaintextStream:
        if self.whole:
            raise TypeError("this read ahead is a whole file: take_file()")
        return self._future.result()

    def take_file(self) -> BinaryIO:
        if not self.whole:
            raise TypeError("this read ahead is a stream: take()")
        return self._future.result()

    def discard(self) -> None:
        self._future.add_done_callback(_close_unread)


def _plaintext_file(rt: Runtime, stored: StoredVersion, grant: ReadGrant, size: int) -> BinaryIO:
    """The whole plaintext of a version in a file at its start: memory up to COPY_IN_MEMORY, else a
    temporary file (the caller closes it)."""
    out = _scratch(size)
    try:
        with open_stored(rt, stored, grant) as chunks:
            for chunk in chunks:
                out.write(chunk)
        out.seek(0)
        return out
    except BaseException:
        out.close()
        raise


def _close_unread(future: Future[PlaintextStream]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()


class ContentUnavailable(ServiceError):
    """The content could not be read before its first byte; the view's unit was given back."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(code, message)
        self.status = status


class _Unstampable(Exception):
    """A PDF with no pages of its own that qpdf cannot read either: no stamped copy of it can be made.
    Nothing is damaged (it was stored so at upload), so this is the file's state, not a failed read."""


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def quota_limit(rt: Runtime, session: Session, user: User, document: Document) -> int:
    """How many views `user` may spend on `document` in all (override or grade, plus extensions)."""
    return quota.limit_for(rt.settings, session, user.id, document)


def remaining_views(session: Session, user: User, document: Document) -> int:
    """Views `user` has left on `document` (never negative, even after a custodian lowered the quota)."""
    limit = quota.limit_for(quota.settings_of(session), session, user.id, document)
    return max(0, limit - quota.used(session, user.id, document.id))


def _targets(document: Document, loan: Loan | None = None) -> dict[str, int | None]:
    out: dict[str, int | None] = {"document_id": document.id, "customer_id": document.customer_id}
    if loan is not None:
        out["loan_id"] = loan.id
    return out


def _opened_on_notice(session: Session, user: User) -> int:
    """Views of files needing no loan (grade 1) the person opened in the last 24 hours since the notice."""
    since = utcnow() - timedelta(days=1)
    notice = session.scalar(select(Departure.started_at).where(Departure.user_id == user.id))
    if notice is not None:
        since = max(since, notice)
    return session.scalar(select(func.count()).select_from(DocumentView).where(
        DocumentView.user_id == user.id, DocumentView.loan_id.is_(None), DocumentView.opened_at >= since)) or 0


@dataclass(frozen=True)
class Opening:
    """What opening a view reads about the document before it decides, read by `opening_of` at once."""

    document: Document
    version: DocumentVersion | None  # the latest
    held: list[Loan]  # every loan and extension the actor has (had) of the document
    maybe_suspended: bool  # the actor has an unresolved high alert (which may suspend their access)


@functools.cache
def _opening_statement(visible: ColumnElement[bool]) -> Select[tuple[Document, DocumentVersion, Loan, bool]]:
    """`opening_of`'s statement, built once per visibility condition (one per combination of roles)."""
    latest = (select(func.max(DocumentVersion.number)).where(DocumentVersion.document_id == Document.id)
              .correlate(Document).scalar_subquery())
    actor = bindparam("actor", type_=Integer)
    alerting = exists().where(Alert.user_id == actor, Alert.severity == Severity.HIGH,
                              Alert.status != AlertStatus.RESOLVED)
    return (
        select(Document, DocumentVersion, Loan, alerting.label("alerting"))
        .outerjoin(DocumentVersion, and_(DocumentVersion.document_id == Document.id, DocumentVersion.number == latest))
        .outerjoin(Loan, and_(Loan.document_id == Document.id, Loan.borrower_id == actor))
        .where(Document.id == bindparam("document", type_=Integer), visible)
        .order_by(Loan.id)
    )


def opening_of(session: Session, actor: User, document_id: int) -> Opening:
    """The document the actor may see, its latest version, the actor's loans of it and whether an alert
    may have suspended them, in one statement (a view is opened on the hot path of every reading).

    Raises:
        NotFound: no such document, or one the actor may not see (the same rule as `get_document`).
    """
    rows = session.execute(_opening_statement(policy.visible_documents_by_parameter(actor)),
                           {"document": document_id, "actor": actor.id, **policy.visibility_values(actor)}).all()
    if not rows:
        raise NotFound("document", document_id=document_id)
    document, version, _loan, alerting_now = rows[0]
    return Opening(document=document, version=version, held=[row[2] for row in rows if row[2] is not None],
                   maybe_suspended=bool(alerting_now))


def open_content(
    rt: Runtime, session: Session, actor: User, document_id: int, *, reason: str, place: str,
    ctx: AccessContext, category: str | None = None,
) -> Claim:
    """Open a view and claim its delivery at once, for a client that takes the bytes in the same request.

    The same decision as opening a download (`open_view` with `download=True`): policy, the spend, the
    view (inserted already delivering, so no content URL exists to replay) and its audit record, in the
    caller's unit of work, which commits before `open_delivery` reads a byte. The trusted-place rule is
    judged once, on this request's address, which is also where the bytes go. What leaves is what the
    two-step flow's download gives for the grade: the original where `download_original` is set, else
    the stamped copy.

    Raises:
        NotFound: no such document or not visible to the actor.
        policy.Denied, Conflict: as `open_view`.
    """
    known = opening_of(session, actor, document_id)
    document = known.document
    original = rt.settings.grade(document.grade).download_original
    # The original's stream, or a PDF's whole bytes for its stamped copy, read while the opening commits;
    # only a PDF that fits in memory, since a refused opening would read a large one to its end for nothing.
    pdf = (known.version is not None and known.version.content_type == "application/pdf"
           and known.version.size <= COPY_IN_MEMORY)
    read_ahead = "stream" if original else "whole" if pdf else None
    opened = open_view(rt, session, actor, document, reason=reason, place=place, download=True, ctx=ctx,
                       category=category, known=known, claimed=True, read_ahead=read_ahead)
    view = opened.view
    stamp = None if original else viewer.stamp_text(view, actor, document.grade)
    audit = {"document_id": document.id, "customer_id": document.customer_id, "version_id": view.version_id,
             "loan_id": view.loan_id}
    return Claim(view_id=view.id, actor=actor, version=view.version, download=True, audit=audit,
                 ctx=ctx.declaring((place or "").strip()), original=original, stamp=stamp, ahead=opened.ahead)


def _typed(*, reason: str, place: str, download: bool, category: str | None) -> dict[str, Any]:
    """An opening as typed, as the policy's input rules read it: the decision (`open_view`) and the list of
    every slip (`open_problems`) must judge the very same values."""
    return {"reason": (reason or "").strip(), "place": (place or "").strip(), "download": bool(download),
            "category": category}


def open_problems(rt: Runtime, actor: User, document: Document, *, reason: str, place: str, download: bool,
                  category: str | None = None) -> dict[str, policy.Decision]:
    """Every input rule (`policy.views.open_input_problems`) an opening as typed breaks, by field.

    `open_view` refuses with the first of them only (one reason code, one refusal record, no view spent); a
    page asks for them all so the person sees every slip in one answer. This decides nothing, spends nothing
    and records nothing; a slip never counts against anyone (`policy.SLIPS`).
    """
    return rules.open_input_problems(actor, rt.settings.grade(document.grade),
                                     _typed(reason=reason, place=place, download=download, category=category))


def open_view(
    rt: Runtime,
    session: Session,
    actor: User,
    document: Document,
    *,
    reason: str,
    place: str,
    download: bool,
    ctx: AccessContext,
    category: str | None = None,
    known: Opening | None = None,
    claimed: bool = False,
    read_ahead: str | None = None,
) -> OpenedView:
    """Spend one view of `document` and hand out a single-use content URL secret.

    The actor's loans past due are settled first, and their stale reservations when the spend finds
    no unit left (a reservation that expired unused gives its unit back); both are kept even if the
    opening is then refused. The caller's unit of work commits the opening; the early-warning rules
    run after that commit (`view_alerts`).

    `known`: what `opening_of` read in one statement (else it is read here); `claimed`: the bytes are
    delivered in this same request, so the view is inserted already claimed (delivering) and its
    content URL secret is never handed out. `read_ahead` ("stream", or "whole" for a copy stamped before it
    leaves): once policy has allowed, the bytes start to be read in another thread (`ReadAhead`) while the
    rest of the opening runs; the caller hands them out after its commit, and any failure from here on
    discards them.

    Raises:
        policy.Denied: `no_active_loan`, `loan_expired`, `separation_of_duties`, `place_not_trusted`,
            `download_not_allowed`, a bad reason or place, `quota_exhausted`, or the role gate.
        Conflict: the document has no version yet.
    """
    action = Action.DOCUMENT_DOWNLOAD if download else Action.DOCUMENT_VIEW
    typed = _typed(reason=reason, place=place, download=download, category=category)
    reason, place = typed["reason"], typed["place"]
    ctx = ctx.declaring(place)
    # The person's loans of the document, read once: due ones are settled, then the active one, the
    # latest one and the approved extensions (extra views) all come from this list.
    held = known.held if known is not None else loans.loans_of(session, actor, document)
    loans.settle(rt, session, user=actor, document=document, held=held, ctx=ctx, stale=False)
    rule = rt.settings.grade(document.grade)
    loan = loans.active_among(held)
    latest = loans.latest_among(held) if loan is None else None
    audit = _targets(document, loan)
    notice: dict[str, int] = {}
    if rules.on_notice_without_loan(actor, rule):
        notice = {"notice_cap": rt.settings.departure.notice_grade1_daily_cap,
                  "notice_opened_today": _opened_on_notice(session, actor)}
    if known is None:
        suspended = access_suspended(session, actor)
    else:
        suspended = known.maybe_suspended and access_suspended(session, actor)
    policy.require(
        actor, action, document, rule=rule, loan=loan, suspended=suspended, **notice,
        loan_expired=latest is not None and latest.status == LoanStatus.EXPIRED,
        named_place=ctx.named_place, audit=audit, **typed,
    )
    version = known.version if known is not None else document.latest
    if version is None:
        raise Conflict("no_content", policy.message_for("no_content"))
    if not version.has_preview:
        # Reading happens in the viewer, which needs pages; a download needs them for its stamped copy,
        # unless the grade lets the original leave (or the file is a PDF, which is stamped as it is).
        if not download:
            raise policy.Denied(policy.deny("no_preview"), **audit)
        if not rule.download_original and version.content_type != "application/pdf":
            raise policy.Denied(policy.deny("no_stamped_copy"), **audit)
    ahead = ReadAhead(rt, version, whole=read_ahead == "whole") if read_ahead else None
    try:
        return _spend_and_record(rt, session, actor, document, version, action=action, held=held, loan=loan,
                                 audit=audit, reason=reason, place=place, download=download, ctx=ctx,
                                 category=category, claimed=claimed, ahead=ahead)
    except BaseException:
        if ahead is not None:
            ahead.discard()
        raise


# PostgreSQL: the spend, the new view's row and the claim of its audit record's chain head in one
# statement: the spend a data-modifying CTE whose row the INSERT selects from, the claim a CTE that runs only
# if the spend did (`claim_head`). No unit left (or no counter row yet): no row selected, nothing written.
_VIEW_COLUMNS = [column for column in DocumentView.__table__.columns if not column.primary_key]
_SPENT = quota.SPEND.cte("spent")
_HEAD_AFTER_SPEND = claim_head(after=_SPENT)
_SPEND_AND_INSERT = (
    insert(DocumentView.__table__)
    .from_select([column.name for column in _VIEW_COLUMNS],
                 select(*[bindparam(f"v_{column.name}", type_=column.type) for column in _VIEW_COLUMNS])
                 .select_from(_SPENT))
    .returning(DocumentView.__table__.c.id, select(_SPENT.c.used).scalar_subquery(),
               select(_SPENT.c.view_quota).scalar_subquery(), *claimed_columns(_HEAD_AFTER_SPEND))
    .add_cte(_SPENT)
    .add_cte(_HEAD_AFTER_SPEND)
)


@dataclass(frozen=True)
class _Spent:
    """What the one-statement spend wrote and claimed."""

    view: DocumentView
    used: int
    limit: int
    head: ClaimedHead | None  # the head of the view's audit record's chain, claimed in the same statement


def _spend_and_insert(rt: Runtime, session: Session, actor: User, document: Document, extensions: tuple[int, int],
                      fields: dict[str, object]) -> _Spent | None:
    """On PostgreSQL, spend a unit, insert the view and claim its record's chain head in one round trip
    (the common case: the counter row exists and has a unit left), or return None, having written
    nothing, for the general path (first opening, stale reservations, refusal) to settle. SQLite, whose
    statements cost no round trip, always takes the general path."""
    if rt.db.dialect != "postgresql":
        return None
    parameters = quota.spend_parameters(rt.settings, actor, document, extensions)
    row = completed(DocumentView.__table__, fields)
    shard = rt.audit.shard_of(session, actor)
    found = session.execute(_SPEND_AND_INSERT, {**parameters, **{f"v_{name}": value for name, value in row.items()},
                                                "shard_id": shard}).one_or_none()
    if found is None:
        return None
    view_id, used, person, *claimed = found
    return _Spent(persistent(session, DocumentView, {**row, "id": view_id}), used,
                  quota.limit_after(parameters, person), ClaimedHead.of(session, shard, claimed))


def _spend_and_record(
    rt: Runtime, session: Session, actor: User, document: Document, version: DocumentVersion, *, action: Action,
    held: list[Loan], loan: Loan | None, audit: dict[str, int | None], reason: str, place: str, download: bool,
    ctx: AccessContext, category: str | None, claimed: bool, ahead: ReadAhead | None,
) -> OpenedView:
    """The second half of `open_view`, once policy has allowed: the spend, the view row, its record."""
    extensions = quota.extension_views(session, actor, held)
    now = utcnow()
    secret = secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=rt.settings.content_url_seconds)
    fields = {
        "document_id": document.id, "version_id": version.id, "user_id": actor.id,
        "loan_id": loan.id if loan else None, "download": bool(download), "reason": reason,
        "declared_place": place, "client_addr": ctx.client_addr or "", "named_place": ctx.named_place,
        "user_agent": (ctx.user_agent or "")[:400], "status": ViewStatus.DELIVERING if claimed else ViewStatus.RESERVED,
        "started_at": now if claimed else None, "token_hash": hash_secret(secret), "opened_at": now,
        "expires_at": expires_at,
    }
    opened = _spend_and_insert(rt, session, actor, document, extensions, fields)
    head = None
    if opened is not None:
        view, used, limit, head = opened.view, opened.used, opened.limit, opened.head
    else:
        spent = quota.spend(rt.settings, session, actor, document, extensions)
        if spent is None and quota.refund_stale(rt, session, user_id=actor.id, actor=actor, ctx=ctx):
            # Units held by reservations that expired unused came back: settled, and kept whatever follows.
            unit_of_work.keep_on_refusal(session)
            spent = quota.spend(rt.settings, session, actor, document, extensions)
        if spent is None:
            limit = quota.full_limit(rt.settings, document, quota.person_quota(session, actor.id, document.id),
                                     holder=actor, extensions=extensions)
            raise policy.Denied(rules.quota_exhausted(limit), **audit)
        used, limit = spent
        # Inserted by a Core statement, not flushed: this runs on every reading of a file (`db.rows`).
        view = insert_row(session, DocumentView, **fields)
    # Known already, so nothing is loaded again.
    for name, value in (("document", document), ("user", actor), ("version", version)):
        set_committed_value(view, name, value)
    remaining = limit - used
    view_alerts.defer(session, rt, view, exhausted=remaining == 0)
    # Last, right before the caller commits: appending to the audit chain locks its head row until
    # the commit, and every other opening waits on that lock, so nothing else may run while it is held.
    rt.audit.record(
        session, action=str(action), actor=actor, ctx=ctx, version_id=version.id, reason_text=reason,
        detail={"view_id": view.id, "remaining": remaining, "limit": limit, "grade": document.grade,
                "version": version.number, **({"category": category} if category else {})},
        head=head, **audit,
    )
    return OpenedView(view=view, secret=secret, remaining=remaining, expires_at=expires_at, ahead=ahead)


# -- delivery ------------------------------------------------------------------------------------------


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._ ()-]+")


def content_disposition(kind: str, filename: str | None) -> str:
    """`inline` or `attachment` with an ASCII `filename` for old clients and the exact name (RFC 5987)."""
    name = "".join(ch for ch in (filename or "") if unicodedata.category(ch)[0] != "C" and ch not in "/\\\"")
    name = name.strip().strip(".") or "document"
    fallback = _UNSAFE_NAME.sub("_", unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode())
    fallback = fallback.strip(" _") or "document"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


@dataclass
class Delivery:
    """The bytes of one claimed view, ready to stream; iterate `chunks()` once, to the end or close it."""

    view_id: int
    filename: str
    content_type: str
    size: int
    disposition: str  # the whole Content-Disposition header value
    download: bool
    _content: _Content = field(repr=False)

    def chunks(self) -> _Content:
        return self._content


class _Content:
    """The decrypted stream of a delivery, recording how it ended in a transaction of its own.

    A class rather than a generator: a WSGI server closes the iterable when the client goes away, and
    a generator closed before its first step runs none of its code, which would leave the view
    "delivering" forever. `close()` always settles it.
    """

    def __init__(self, stream: PlaintextStream, size: int, finish: Callable[[str, int, str | None], None]) -> None:
        self._stream = stream
        self._size = size
        self._finish = finish
        self._sent = 0
        self._ended = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._ended:
            raise StopIteration
        try:
            chunk = next(self._stream)
        except StopIteration:
            self._end("delivered", None)
            raise
        except Exception as exc:
            # The server aborts the response (its Content-Length is not met); the view stays spent.
            self._end("partial", type(exc).__name__)
            raise
        self._sent += len(chunk)
        return chunk

    def close(self) -> None:
        if not self._ended:
            # Not run to the end: the client left. Nothing handed out at all means nothing was seen.
            self._end("partial" if self._sent else "refund", "client_gone")

    def _end(self, outcome: str, cause: str | None) -> None:
        self._ended = True
        self._stream.close()
        try:
            self._finish(outcome, self._sent, cause)
        except Exception:
            log.exception("could not record the end of a content delivery (%s, %d bytes)", outcome, self._sent)


def _claim(session: Session, view: DocumentView) -> bool:
    return session.execute(_DELIVERY_STARTS, {"view": view.id, "at": utcnow()}).rowcount == 1


@dataclass(frozen=True)
class Claim:
    """A view turned from reserved to delivering: what `open_delivery` needs once the claim is committed."""

    view_id: int
    actor: User
    version: DocumentVersion
    download: bool
    audit: dict[str, int | None]
    ctx: AccessContext
    original: bool = True  # the original bytes may leave (the grade's download_original)
    stamp: StampText | None = None  # else: the facts stamped on the copy that leaves
    ahead: ReadAhead | None = None  # the original's bytes, read while the claim committed

    @property
    def grant(self) -> ReadGrant:
        """The read grant of this claim: made only here, from a view policy allowed and the caller claimed."""
        return ReadGrant.for_view(self.view_id, self.version.id)


def claim_delivery(rt: Runtime, session: Session, actor: User, secret: str, ctx: AccessContext) -> Claim:
    """Claim the view behind a content URL secret, in the caller's unit of work.

    The caller commits the claim before calling `open_delivery` (on SQLite an open transaction holds
    the write lock, and a download may take minutes), so a replayed URL gets nothing.

    Raises:
        NotFound: no view has this secret.
        policy.Denied: `not_found` (another person's URL, audited), `content_url_used` (replayed),
            `content_url_expired` (refunded), `loan_expired` / `no_active_loan` (the loan ended since),
            `place_not_trusted` (the grade needs a trusted place and the fetch comes from elsewhere; refunded).
    """
    # The view, its document's customer (for the audit records) and its version, in one query.
    found = session.execute(
        select(DocumentView, Document.customer_id, Document.grade, DocumentVersion)
        .join(Document, Document.id == DocumentView.document_id)
        .join(DocumentVersion, DocumentVersion.id == DocumentView.version_id)
        .where(DocumentView.token_hash == hash_secret(secret))
    ).first()
    if found is None:
        raise NotFound("content link")
    view, customer_id, grade, version = found
    audit = {"document_id": view.document_id, "customer_id": customer_id, "version_id": view.version_id,
             "loan_id": view.loan_id}
    if view.user_id != actor.id:
        raise policy.Denied(policy.deny("not_found"), subject_user_id=view.user_id, **audit)
    if view.status != ViewStatus.RESERVED:
        raise policy.Denied(policy.deny("content_url_used"), **audit)
    if view.expires_at <= utcnow():
        quota.refund(rt, session, view, cause="expired_unused", actor=actor, ctx=ctx)
        raise policy.Denied(policy.deny("content_url_expired"), keep_work=True, **audit)
    if view.loan_id is not None:
        loans.check_view_loan(rt, session, actor, view, audit, ctx)
    place = rules.delivery_place(rt.settings.grade(grade), ctx.named_place)
    if not place:
        # Opened from the office, fetched from elsewhere: the bytes go nowhere the grade forbids.
        quota.refund(rt, session, view, cause=place.code, actor=actor, ctx=ctx)
        raise policy.Denied(place, keep_work=True, **audit)
    if not _claim(session, view):
        raise policy.Denied(policy.deny("content_url_used"), **audit)
    original = rt.settings.grade(grade).download_original
    stamp = None if original else viewer.stamp_text(view, actor, grade)
    return Claim(view_id=view.id, actor=actor, version=version, download=view.download, audit=audit, ctx=ctx,
                 original=original, stamp=stamp)


def drop(claim: Claim) -> None:
    """Forget a claim whose commit failed: its bytes read ahead are closed unread."""
    if claim.ahead is not None:
        claim.ahead.discard()


def open_delivery(rt: Runtime, claim: Claim, then: Callable[[Session], None] | None = None) -> Delivery:
    """Open the decrypted stream of a committed claim, outside any transaction.

    The first segment is decrypted before this returns, so every failure known before the first byte
    refunds the view (in a unit of work of its own) and raises, with nothing sent. `then` runs once the
    delivery has ended, however it ended, in the short unit that records the end (the early-warning
    rules of a view opened in the same request: they wait for the last byte, not the client, and share
    the end's transaction rather than paying for one of their own; see `_record_end`).

    Raises:
        ContentUnavailable: storage down (503) or content not decryptable (500); refunded.
    """
    view_id, version, download = claim.view_id, claim.version, claim.download

    def finish(outcome: str, sent: int, cause: str | None) -> None:
        _record_end(rt, view_id, claim.actor, claim.audit, outcome, sent, cause, claim.ctx, then=then)

    try:
        if claim.original:
            stream: PlaintextStream | _CopyChunks = (claim.ahead.take() if claim.ahead is not None
                                                     else plaintext_chunks(rt, version, claim.grant))
        else:
            copy = stamped_copy(rt, version, claim.stamp, claim.grant, claim.ahead)
            stream = _CopyChunks(copy)
    except _Unstampable:
        finish("refund", 0, "no_stamped_copy")
        raise ContentUnavailable("no_stamped_copy", policy.message_for("no_stamped_copy"), 403) from None
    except (ObjectNotFound, CryptoError) as exc:
        log.error("view %d: the content of version %d cannot be read: %s", view_id, version.id, exc)
        finish("refund", 0, "content_unreadable")
        raise ContentUnavailable("content_unreadable", _l("The file cannot be read; the view was given back. "
                                 "The custodians have to restore it."), 500) from None
    except StorageError as exc:
        log.error("view %d: storage unavailable: %s", view_id, exc)
        finish("refund", 0, "storage_unavailable")
        raise ContentUnavailable("storage_unavailable", _l("The file store cannot be reached; the view was given "
                                 "back. Try again later."), 503) from None
    except Exception:
        finish("refund", 0, "error")
        raise
    kind = "attachment" if download else "inline"
    if not claim.original:
        return Delivery(
            view_id=view_id, filename=copy.filename, content_type=copy.media_type, size=copy.size,
            disposition=content_disposition(kind, copy.filename), download=download,
            _content=_Content(stream, copy.size, finish),
        )
    return Delivery(
        view_id=view_id, filename=version.original_name, content_type=version.content_type or
        "application/octet-stream", size=version.size, disposition=content_disposition(kind, version.original_name),
        download=download, _content=_Content(stream, version.size, finish),
    )


class _CopyChunks:
    """A stamped copy, already made, read from its file a chunk at a time (what `_Content` reads); the
    file is closed, and a temporary one removed, when the delivery ends however it ends."""

    CHUNK = 256 * 1024

    def __init__(self, copy: StampedCopy) -> None:
        self._file: BinaryIO | None = copy.file

    def __next__(self) -> bytes:
        chunk = self._file.read(self.CHUNK) if self._file is not None else b""
        if not chunk:
            self.close()
            raise StopIteration
        return chunk

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()


COPY_IN_MEMORY = 8 * 1024 * 1024
"""A stamped copy expected to be up to this size is made in memory; a larger one in a temporary file."""
_PAGE_IN_COPY = 512 * 1024  # what a stamped JPEG page may weigh in a copy, for the estimate above


def _scratch(expected: int) -> BinaryIO:
    """A file for ``expected`` bytes made on the way out: memory up to COPY_IN_MEMORY, else a temporary
    file, removed when closed."""
    if expected <= COPY_IN_MEMORY:
        return io.BytesIO()
    return tempfile.TemporaryFile(prefix="vault-copy-")


@dataclass(frozen=True)
class StampedCopy:
    """A stamped copy, made in full before its first byte leaves (so a page that cannot be read refunds
    the view), in memory or a temporary file (`_scratch`), read from its start and closed with the
    delivery."""

    file: BinaryIO
    size: int
    media_type: str
    filename: str


def stamped_copy(rt: Runtime, version: DocumentVersion, text: StampText | None, grant: ReadGrant,
                 ahead: ReadAhead | None = None) -> StampedCopy:
    """The copy of a version that leaves on a download: stamped and marked with the view's facts.

    A PDF keeps its own pages (the stamp and the mark drawn over each, the view id in the metadata and
    an invisible text line); an image becomes its stamped, marked page(s) (one page: a PNG; more: a PDF);
    any other type becomes the stamped PDF of its rendition, its pages the JPEGs the viewer would show,
    drawn one at a time. Never stored; memory does not grow with the file (see COPY_IN_MEMORY).

    Raises:
        crypto.CryptoError, storage.StorageError: the content or a page cannot be read.
    """
    assert text is not None
    secret = marking_secret(rt.settings)
    stem = version.original_name.rsplit(".", 1)[0] or "document"
    if version.content_type == "application/pdf":
        out = _scratch(version.size)
        try:
            stamped = _write_pdf_copy(rt, version, text, grant, secret, out, ahead)
        except BaseException:
            out.close()
            raise
        if stamped:
            return _made(out, "application/pdf", f"{stem}.pdf")
        out.close()  # not stampable as a PDF: the copy is made of its rendition's pages
    elif ahead is not None:
        ahead.discard()  # read ahead for a PDF only; never left open
    out = _scratch(version.page_count * _PAGE_IN_COPY)
    try:
        media_type, extension = _write_rendition_copy(rt, version, text, secret, out)
        return _made(out, media_type, f"{stem}.{extension}")
    except BaseException:
        out.close()
        raise


def _made(out: BinaryIO, media_type: str, filename: str) -> StampedCopy:
    size = out.tell()
    out.seek(0)
    return StampedCopy(out, size, media_type, filename)


def _write_pdf_copy(rt: Runtime, version: DocumentVersion, text: StampText, grant: ReadGrant, secret: bytes,
                    out: BinaryIO, ahead: ReadAhead | None) -> bool:
    """Write a PDF's stamped copy to ``out``; False when the PDF cannot be stamped but has pages to
    make the copy of instead.

    Raises:
        crypto.CryptoError: it cannot be stamped and has no pages either.
    """
    # The view's part of the overlay is made while the read ahead is still bringing the PDF in.
    overlay = view_overlay(text, secret)
    opened = ahead.take_file() if ahead is not None else _plaintext_file(rt, StoredVersion.of(version), grant,
                                                                          version.size)
    with opened as source:
        try:
            write_stamped_pdf(source, text, secret, out, overlay)
            return True
        except MarkingError:
            if not version.has_preview:
                raise _Unstampable from None
            return False


def _write_rendition_copy(rt: Runtime, version: DocumentVersion, text: StampText, secret: bytes,
                          out: BinaryIO) -> tuple[str, str]:
    """Write the stamped copy of a version's rendition to ``out``: one image as a PNG, else a PDF of the
    viewer's JPEG pages. Returns its media type and file extension."""
    dek = rt.keyring.unwrap_current(version.key_id, version.wrapped_dek, version_context(version))

    def stored(page: tuple[str, int]) -> bytes:
        return renditions.read_page(rt, dek, version.document_id, version.number, *page)

    pages = _stored_pages(rt, version.id)
    if version.content_type.startswith("image/") and len(pages) == 1:
        with Image.open(io.BytesIO(stored(pages[0]))) as image:
            image.load()
            marked = embed(stamp_page(viewer.padded(image), text), text.view_id, secret)
        marked.save(out, format="PNG", compress_level=3)
        return "image/png", "png"
    write_stamped_pages_pdf((viewer.render_stamped(stored(page), text, secret) for page in pages), text, secret,
                            out)
    return "application/pdf", "pdf"


def _stored_pages(rt: Runtime, version_id: int) -> list[tuple[str, int]]:
    """The object key and number of each stored page of a version, in order, read in a unit of its own:
    a copy is made after the view's claim committed, and a PDF's needs no pages at all."""
    with rt.db.session() as reading:
        return [(key, number) for key, number in reading.execute(
            select(VersionPage.object_key, VersionPage.number).where(VersionPage.version_id == version_id)
            .order_by(VersionPage.number))]


# The hot updates of a view's row are Core statements on the table, built once: the ORM's bulk UPDATE
# costs several times the statement's own Python, and nothing in the session needs to learn of them.
_VIEWS = DocumentView.__table__
_DELIVERY_ENDED = (
    update(_VIEWS)
    .where(_VIEWS.c.id == bindparam("view"), _VIEWS.c.status == ViewStatus.DELIVERING)
    .values(status=bindparam("status"), bytes_sent=bindparam("sent"), completed_at=bindparam("at"))
)
_DELIVERY_STARTS = (
    update(_VIEWS)
    .where(_VIEWS.c.id == bindparam("view"), _VIEWS.c.status == ViewStatus.RESERVED)
    .values(status=ViewStatus.DELIVERING, started_at=bindparam("at"))
)
# PostgreSQL: the end and the claim of its record's chain head in one round trip (`claim_head`).
_ENDED = _DELIVERY_ENDED.returning(_VIEWS.c.id).cte("ended")
_HEAD_AT_END = claim_head()
_DELIVERY_ENDED_AND_HEAD = select(*claimed_columns(_HEAD_AT_END)).add_cte(_ENDED).add_cte(_HEAD_AT_END)
_END_ACTIONS = {"delivered": AuditAction.CONTENT_DELIVERED, "partial": AuditAction.CONTENT_PARTIAL}


def _record_end(rt: Runtime, view_id: int, actor: User, audit: dict[str, int | None], outcome: str, sent: int,
                cause: str | None, ctx: AccessContext, then: Callable[[Session], None] | None = None) -> None:
    """Record how a delivery ended, in a short transaction of its own, with `then`'s work in it.

    `actor` (detached from the request's closed session, its columns loaded) and `audit` (the view's
    targets) were read when the view was claimed and do not change, so they are not read again.

    `then` (the view's early-warning rules) runs first, so that the end's audit append, which holds the
    chain head's lock until the commit, comes last, as every append does. It must not cost the end its
    record: if it fails, the unit rolls back and the end is recorded alone; what `then` left undone is
    the maintenance sweep's (the rules' views stay marked unevaluated).
    """
    if then is not None:
        try:
            with rt.db.session() as session:
                then(session)
                _write_end(rt, session, view_id, actor, audit, outcome, sent, cause, ctx)
            return
        except Exception:
            log.exception("view %d: its end and what follows it could not commit together; the end is "
                          "recorded alone", view_id)
    with rt.db.session() as session:
        _write_end(rt, session, view_id, actor, audit, outcome, sent, cause, ctx)


def _write_end(rt: Runtime, session: Session, view_id: int, actor: User, audit: dict[str, int | None],
               outcome: str, sent: int, cause: str | None, ctx: AccessContext) -> None:
    """The end of a delivery, in the caller's transaction: a refund, or the view's status and its record."""
    if outcome == "refund":
        view = session.get(DocumentView, view_id)
        assert view is not None
        quota.refund(rt, session, view, cause=cause or "not_sent", actor=actor, ctx=ctx)
        return
    status = ViewStatus.DELIVERED if outcome == "delivered" else ViewStatus.PARTIAL
    ended = {"view": view_id, "status": status, "sent": sent, "at": utcnow()}
    head = None
    if rt.db.dialect == "postgresql":
        shard = rt.audit.shard_of(session, actor)
        claimed = session.execute(_DELIVERY_ENDED_AND_HEAD, {**ended, "shard_id": shard}).one()
        head = ClaimedHead.of(session, shard, claimed)
    else:
        session.execute(_DELIVERY_ENDED, ended)
    detail: dict[str, object] = {"view_id": view_id, "bytes": sent}
    if cause:
        detail["cause"] = cause
    rt.audit.record(
        session, action=_END_ACTIONS[outcome], actor=actor, ctx=ctx,
        outcome="allowed" if outcome == "delivered" else "failed", detail=detail, head=head, **audit,
    )
