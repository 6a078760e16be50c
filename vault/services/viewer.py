"""The secure viewer: a view's window, its page images (stamped and marked per delivery), heartbeats.

A view opened for reading (not a download) is *claimed* when its viewer page is first shown (or at
once, for an API client): its status turns from reserved to delivering and its window opens for
``VAULT_VIEW_WINDOW_MINUTES``. An opened view whose viewer never loads is refunded as any unused
reservation is (the content URL deadline, ``VAULT_CONTENT_URL_SECONDS``). Reloading the viewer within
the window shows it again and spends nothing.

Page images come from URLs carrying a signed token (view id, person, end of the window; HMAC with the
application's secret key through itsdangerous). Serving a page costs one database statement (the view,
its person, document, version, page and loan in one read) and writes nothing: no audit record per page.
What the person did with the view (seconds open, pages seen) arrives by heartbeat, and the view's one
closing record ("view:close") is written when the viewer says it is closing or, for views whose window
passed without that, by the maintenance sweep.

Every delivered page is the stored lossless page with the visible stamp (`vault.marking.stamp_page`)
and the invisible view-id mark (`vault.marking.embed`) drawn on it, encoded as JPEG q85: about 7 ms to
encode against about 55 ms for WebP q80 method 0, and the mark survives it (it survives q75). A page
stored in greyscale (text pages) is delivered in greyscale, stamped and marked in place (see
`render_stamped`): about 8 ms a page on an idle core. What depends only on the view (the stamp's masks,
the mark's page-sized delta) is built once per view and kept in a small cache of the process; stamped
images themselves are never cached or stored.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from flask_babel import pgettext
from itsdangerous import BadSignature, URLSafeSerializer
from PIL import Image
from sqlalchemy import bindparam, exists, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from crypto import associated_data
from vault import policy
from vault.core import grades
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.core.errors import NotFound
from vault.marking import StampText, embed, embed_grey, stamp_grey_in_place, stamp_page
from vault.models import (
    Alert,
    AlertStatus,
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
from vault.policy import views as view_rules
from vault.runtime import Runtime
from vault.services import loans, quota
from vault.services.marking_key import marking_secret
from vault.services.renditions import read_page

PAGE_MEDIA_TYPE = "image/jpeg"
JPEG_QUALITY = 85
HEARTBEAT_SECONDS = 15
_MAX_HEARTBEAT_GAP = 2 * HEARTBEAT_SECONDS  # seconds credited for one heartbeat at most
_TOKEN_SALT = "vault/view-page/v1"  # noqa: S105 - a domain label, not a secret
OPEN_STATUSES = (ViewStatus.DELIVERING, ViewStatus.DELIVERED)


def grade_label(grade: int) -> str:
    """The banner and stamp text for a grade, in the reader's language, naming the grade the file really
    has (`vault.core.grades`); the stamp's facts (the name, the time in UTC and the view id) read the same
    in every language."""
    return grades.grade_label(grade)


# -- the page URL token ----------------------------------------------------------------------------------


def _serializer(rt: Runtime) -> URLSafeSerializer:
    return URLSafeSerializer(rt.settings.secret_key, salt=_TOKEN_SALT)


def page_token(rt: Runtime, view: DocumentView) -> str:
    """The token bound to the view, its person and the end of its window."""
    assert view.window_ends_at is not None
    return str(_serializer(rt).dumps([view.id, view.user_id, int(view.window_ends_at.timestamp())]))


@dataclass(frozen=True)
class PageClaim:
    view_id: int
    user_id: int
    expires: datetime


def read_token(rt: Runtime, token: str) -> PageClaim | None:
    """The claim a token makes, or None if it was not made by this deployment."""
    try:
        raw = _serializer(rt).loads(token)
        view_id, user_id, expires = (int(value) for value in raw)
    except (BadSignature, TypeError, ValueError):
        return None
    return PageClaim(view_id, user_id, datetime.fromtimestamp(expires, UTC))


# -- opening the viewer ----------------------------------------------------------------------------------


class ViewFacts(Protocol):
    """What the stamp and a refusal's record read of a view: its row, or the columns of it that a page fetch
    selects (`_PAGE_TO_DRAW`)."""

    id: int
    document_id: int
    version_id: int
    loan_id: int | None
    started_at: datetime | None
    opened_at: datetime
    named_place: str | None
    declared_place: str | None
    client_addr: str | None


def _audit_of(view: ViewFacts, customer_id: int | None) -> dict[str, int | None]:
    return {"document_id": view.document_id, "customer_id": customer_id, "version_id": view.version_id,
            "loan_id": view.loan_id}


def get_view(session: Session, actor: User, view_id: int) -> DocumentView:
    """The actor's own view; anybody else's (or none) is NotFound."""
    view = session.get(DocumentView, view_id)
    if view is None or view.user_id != actor.id:
        raise NotFound("view", subject_user_id=view.user_id if view is not None else None)
    return view


# Claiming a reading view opens its window: a Core statement on the table, built once (nothing in the
# session needs the ORM's bulk UPDATE, which rebuilds the statement on every call).
_VIEWS = DocumentView.__table__
_WINDOW_OPENS = (
    update(_VIEWS).where(_VIEWS.c.id == bindparam("view"), _VIEWS.c.status == ViewStatus.RESERVED)
    .values(status=ViewStatus.DELIVERING, started_at=bindparam("now"), last_seen_at=bindparam("now"),
            window_ends_at=bindparam("ends"))
)


def start_window(rt: Runtime, session: Session, actor: User, view: DocumentView, ctx: AccessContext) -> bool:
    """Claim a reading view and open its window; True when it is open (now or from an earlier claim).

    A reserved view past its claim deadline is refunded (as an unused content URL is); a view whose loan
    ended since is refused. Reloads within the window change nothing.

    Raises:
        policy.Denied: `content_url_expired` (refunded), `no_active_loan`, `loan_expired`.
    """
    document = view.document
    audit = _audit_of(view, document.customer_id)
    now = utcnow()
    if view.status == ViewStatus.RESERVED:
        if view.expires_at <= now:
            quota.refund(rt, session, view, cause="expired_unused", actor=actor, ctx=ctx)
            raise policy.Denied(policy.deny("content_url_expired"), keep_work=True, **audit)
        if view.loan_id is not None:
            loans.check_view_loan(rt, session, actor, view, audit, ctx)
        ends = now + timedelta(minutes=rt.settings.view_window_minutes)
        claimed = session.execute(_WINDOW_OPENS, {"view": view.id, "now": now, "ends": ends}).rowcount == 1
        if not claimed:
            session.expire(view)  # changed under us: read again when next used
            return False
        # What the row holds now is known: set as loaded, not read back.
        for name, value in (("status", ViewStatus.DELIVERING), ("started_at", now), ("last_seen_at", now),
                            ("window_ends_at", ends)):
            set_committed_value(view, name, value)
        return True
    return view.status in OPEN_STATUSES and view.window_ends_at is not None and view.window_ends_at > now


# -- one page --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StampedPage:
    data: bytes
    media_type: str


@dataclass(frozen=True)
class PageToDraw:
    """A page fetch that policy allowed, with every fact drawing it needs: no database row, so it can be
    drawn after the request's transaction has ended (see `allow_page`)."""

    key_id: str
    wrapped_dek: bytes
    document_id: int
    version_number: int
    object_key: str
    page_number: int
    stamp: StampText


# Asked for every page a viewer turns to: built once, bound by parameter (building it cost about as much as
# running it), and only the columns the decision and the stamp read: loading the four rows whole as ORM
# objects was some 70 columns, each described by the driver and set on an object, for a row read once.
_PAGE_TO_DRAW = (
    select(DocumentView.id, DocumentView.user_id, DocumentView.document_id, DocumentView.version_id,
           DocumentView.loan_id, DocumentView.status, DocumentView.window_ends_at, DocumentView.started_at,
           DocumentView.opened_at, DocumentView.named_place, DocumentView.declared_place, DocumentView.client_addr,
           Document.customer_id, Document.grade, DocumentVersion.key_id, DocumentVersion.wrapped_dek,
           DocumentVersion.number.label("version_number"), VersionPage.object_key,
           VersionPage.number.label("page_number"), Loan.status.label("loan_status"),
           exists().where(Alert.user_id == DocumentView.user_id, Alert.severity == Severity.HIGH,
                          Alert.status != AlertStatus.RESOLVED).label("alerting"))
    .join(Document, Document.id == DocumentView.document_id)
    .join(DocumentVersion, DocumentVersion.id == DocumentView.version_id)
    .outerjoin(VersionPage, (VersionPage.version_id == DocumentVersion.id) & (VersionPage.number == bindparam("page")))
    .outerjoin(Loan, Loan.id == DocumentView.loan_id)
    .where(DocumentView.id == bindparam("view"))
)


def access_suspended(session: Session, user: User) -> bool:
    """Whether an unresolved high-severity alert has suspended the person's access to all content
    (`[alerts] auto_suspend`); resolving that alert lifts it."""
    alerts = session.scalars(select(Alert).where(Alert.user_id == user.id, Alert.severity == Severity.HIGH,
                                                 Alert.status != AlertStatus.RESOLVED))
    return any(alert.evidence.get("access_suspended") for alert in alerts)


def allow_page(rt: Runtime, session: Session, actor: User, token: str, number: int,
               ctx: AccessContext) -> PageToDraw:
    """Decide a fetch of page ``number`` (1-based) of the view behind ``token`` for ``actor``.

    One statement reads everything needed; nothing is written unless the fetch is refused. Drawing the
    page takes far longer than deciding, so a request ends its transaction between the two: on SQLite
    every transaction holds the database's write lock, which would otherwise queue every page of every
    viewer, and every other writer, behind each page being drawn.

    Raises:
        NotFound: a token not made here, another person's token, or no such view.
        policy.Denied: `view_window_closed` (token or window expired, view refunded or closed by its
            loan ending), `access_suspended` (since the opening) or `page_not_found` (a page past the end).
    """
    claim = read_token(rt, token)
    if claim is None:
        raise NotFound("view page")
    if claim.user_id != actor.id:
        raise NotFound("view page", subject_user_id=claim.user_id)
    view = session.execute(_PAGE_TO_DRAW, {"view": claim.view_id, "page": number}).first()
    if view is None:
        raise NotFound("view page")
    user = actor  # the view is the actor's own (checked below); they are loaded already
    audit = _audit_of(view, view.customer_id)
    if view.user_id != actor.id:
        raise NotFound("view page", **audit)
    now = utcnow()
    if (claim.expires <= now or view.status not in OPEN_STATUSES or view.window_ends_at is None
            or view.window_ends_at <= now or (view.loan_id is not None and view.loan_status != LoanStatus.ACTIVE)):
        raise policy.Denied(policy.deny("view_window_closed"), **audit)
    # A suspension stops the pages of a view already open too (the customer's records, or all content by
    # an alert): read with the page's row, and asked further only when an alert is open.
    if actor.customers_suspended_at is not None or (view.alerting and access_suspended(session, actor)):
        raise policy.Denied(policy.deny("access_suspended"), **audit)
    if view.page_number is None:
        raise policy.Denied(policy.deny("page_not_found"), **audit)
    # The grade's place rule holds for every page, not only at the opening: a page URL may travel.
    placed = view_rules.delivery_place(rt.settings.grade(view.grade), ctx.named_place)
    if not placed:
        raise policy.Denied(placed, **audit)
    return PageToDraw(view.key_id, view.wrapped_dek, view.document_id, view.version_number, view.object_key,
                      view.page_number, stamp_text(view, user, view.grade))


def draw_page(rt: Runtime, page: PageToDraw) -> StampedPage:
    """The allowed page read, decrypted, stamped and marked: storage and CPU only, no database."""
    dek = rt.keyring.unwrap_current(page.key_id, page.wrapped_dek,
                                    version_context_of(page.document_id, page.version_number))
    stored = read_page(rt, dek, page.document_id, page.version_number, page.object_key, page.page_number)
    return StampedPage(render_stamped(stored, page.stamp, marking_secret(rt.settings)), PAGE_MEDIA_TYPE)


def version_context_of(document_id: int, number: int) -> bytes:
    return associated_data(document_id, number)


def stamp_text(view: ViewFacts, user: User, grade: int) -> StampText:
    """The facts stamped on every page of a view (its opening time, in UTC)."""
    place = view.named_place or view.declared_place or view.client_addr or "-"
    opened = view.started_at or view.opened_at
    return StampText(viewer_name=user.display_name or user.username, login=user.username,
                     viewed_at=opened if opened.tzinfo else opened.replace(tzinfo=UTC), view_id=view.id,
                     place=place[:60], grade_label=grade_label(grade),
                     # Translators: on the stamped page, before the viewer's name ("viewed by Ann Lee (ann)")
                     viewed_by=pgettext("stamp", "viewed by"),
                     # Translators: on the stamped page, before the view's number ("view 0000-0000-002a")
                     view_word=pgettext("stamp", "view"))


MIN_PAGE_SIZE = (256, 400)
"""A page smaller than this (a strip cut from a long image, a tiny picture) is set on white paper of at least
this size, so that the stamp's footer and at least one whole tile of the mark fit on it."""


def padded(image: Image.Image) -> Image.Image:
    """``image`` as RGB, set on white paper when it is smaller than :data:`MIN_PAGE_SIZE`."""
    rgb = image.convert("RGB")
    width, height = max(rgb.width, MIN_PAGE_SIZE[0]), max(rgb.height, MIN_PAGE_SIZE[1])
    if (width, height) == rgb.size:
        return rgb
    paper = Image.new("RGB", (width, height), "white")
    paper.paste(rgb, (0, 0))
    return paper


def render_stamped(stored: bytes, text: StampText, secret: bytes) -> bytes:
    """Stamp and mark one stored page and encode it for delivery.

    A greyscale stored page (text pages are stored so) stays greyscale: the stamp is drawn on the decoded
    page itself at the luma of its colours, the mark is added from the view's cached delta image in one
    C pass, and a one-channel JPEG is encoded. The view's masks and delta are built once per view and
    reused for its every page; per page this is a decode, three pastes, one add and the encode, several
    times faster than blending and encoding three channels. Colour pages keep the RGB path.
    """
    with Image.open(io.BytesIO(stored)) as image:
        image.load()
        if image.mode == "L" and image.width >= MIN_PAGE_SIZE[0] and image.height >= MIN_PAGE_SIZE[1]:
            stamp_grey_in_place(image, text)
            marked = embed_grey(image, text.view_id, secret)
        else:
            marked = embed(stamp_page(padded(image), text), text.view_id, secret)
    out = io.BytesIO()
    marked.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


# -- heartbeats and closing ------------------------------------------------------------------------------


def heartbeat(rt: Runtime, session: Session, actor: User, view_id: int, *, pages_seen: int, closing: bool,
              ctx: AccessContext) -> DocumentView:
    """Record time on the document: seconds since the last beat (at most 30) and the pages seen so far.

    With ``closing`` the view's closing record is written, once.

    Raises:
        NotFound: not the actor's view.
    """
    view = get_view(session, actor, view_id)
    now = utcnow()
    if view.status in OPEN_STATUSES and view.closed_at is None and view.window_ends_at is not None:
        last = view.last_seen_at or view.started_at or now
        until = min(now, view.window_ends_at)
        gained = max(0, min(_MAX_HEARTBEAT_GAP, int((until - last).total_seconds())))
        view.seconds_open = (view.seconds_open or 0) + gained
        view.last_seen_at = max(last, until)
        view.pages_seen = max(view.pages_seen or 0, min(max(0, pages_seen), view.version.page_count))
        if closing:
            close_view(rt, session, view, cause="closed", actor=actor, ctx=ctx, now=now)
    return view


def close_view(rt: Runtime, session: Session, view: DocumentView, *, cause: str, actor: User | None,
               ctx: AccessContext, now: datetime | None = None) -> bool:
    """Write the view's one closing record; False if it was closed already."""
    now = now or utcnow()
    done = session.execute(
        update(DocumentView)
        .where(DocumentView.id == view.id, DocumentView.closed_at.is_(None))
        .values(closed_at=now, status=ViewStatus.DELIVERED, completed_at=now,
                seconds_open=view.seconds_open, pages_seen=view.pages_seen)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    if done:
        rt.audit.record(
            session, action=AuditAction.VIEW_CLOSE, actor=actor, ctx=ctx, subject_user_id=view.user_id,
            **_audit_of(view, view.document.customer_id),
            detail={"view_id": view.id, "cause": cause, "seconds_open": view.seconds_open,
                    "pages_seen": view.pages_seen, "pages": view.version.page_count},
        )
    return done


def close_lapsed(rt: Runtime, session: Session, *, now: datetime | None = None, ctx: AccessContext) -> int:
    """Close every reading view whose window passed without the viewer saying goodbye (maintenance)."""
    now = now or utcnow()
    views = session.scalars(
        select(DocumentView).where(DocumentView.status == ViewStatus.DELIVERING, DocumentView.closed_at.is_(None),
                                   DocumentView.window_ends_at.is_not(None), DocumentView.window_ends_at < now)
        .order_by(DocumentView.id)
    ).all()
    return sum(close_view(rt, session, view, cause="window_passed", actor=None, ctx=ctx, now=now) for view in views)
