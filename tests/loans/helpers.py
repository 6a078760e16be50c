"""Helpers of the loan and view tests: documents stored for real (encrypted into the runtime's object
store with the same binding as uploads), signed-in browsers, audit look-ups and fault-injecting stores.

Documents are made here rather than through the upload pages so these tests exercise loans and views
alone; the encryption and the object store are the real ones.
"""

from __future__ import annotations

import io
import re
from typing import Any

from sqlalchemy import func, select, update

from storage import StorageUnavailable
from tests.conftest import login
from tests.support.factories import TEXT, add_version, make_customer, make_document  # noqa: F401 (shared)
from vault.models import (
    AuditEvent,
    DocumentVersion,
    DocumentView,
    Loan,
    QuotaUsage,
    User,
    UserStatus,
)
from vault.runtime import Runtime

REASON = "Prepare the Tuesday visit to the customer"
PLACE = "Head office, third floor"


class Browser:
    """A signed-in test client that adds the session's CSRF token to every POST."""

    def __init__(self, app: Any, username: str, **environ: Any) -> None:
        self.client = app.test_client()
        if environ:
            self.client.environ_base.update(environ)
        self.username = username
        self.token = login(self.client, username)

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, **kwargs)

    def post(self, url: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return self.client.post(url, data={"csrf_token": self.token, **(data or {})}, **kwargs)

    # the acts of the pages, with plausible defaults

    def request_loan(self, document_id: int, *, reason: str = REASON, category: str = "visit_preparation",
                     place: str = PLACE, days: Any = 5) -> Any:
        return self.post(f"/documents/{document_id}/loans/new",
                         {"reason": reason, "category": category, "place": place, "days": days})

    def request_extension(self, document_id: int, *, extra_views: Any = 2, reason: str = REASON,
                          category: str = "visit_preparation", place: str = PLACE) -> Any:
        return self.post(f"/documents/{document_id}/extension",
                         {"reason": reason, "category": category, "place": place, "extra_views": extra_views})

    def decide(self, loan_id: int, verb: str, **data: Any) -> Any:
        """POST a decision; release and revoke tick their confirmation box unless `confirm=None`."""
        if verb in ("release", "revoke"):
            data.setdefault("confirm", "y")
        return self.post(f"/loans/{loan_id}/{verb}", {k: v for k, v in data.items() if v is not None})

    def open_view(self, document_id: int, *, reason: str = REASON, place: str = PLACE, download: bool = False,
                  category: str | None = None) -> Any:
        data = {"reason": reason, "place": place}
        if category:
            data["category"] = category
        if download:
            data["download"] = "y"
        return self.post(f"/documents/{document_id}/view", data)

    def download_link(self, document_id: int, **kwargs: Any) -> str:
        """Open a download view and return its single-use content URL (from the page it redirects to)."""
        opened = self.open_view(document_id, download=True, **kwargs)
        assert opened.status_code == 303, opened.get_data(as_text=True)[:2000]
        return content_url(self.get(opened.headers["Location"]))

    def read(self, document_id: int, **kwargs: Any) -> tuple[Any, bytes]:
        """Open a view and fetch its content URL; returns (content response, body)."""
        opened = self.open_view(document_id, **kwargs)
        assert opened.status_code == 303, opened.get_data(as_text=True)[:2000]
        page = self.get(opened.headers["Location"])
        assert page.status_code == 200, page.get_data(as_text=True)[:2000]
        if not kwargs.get("download"):
            response = self.get(page_url(page, 1))  # the viewer: a stamped page image
            return response, response.get_data()
        response = self.get(content_url(page))
        return response, response.get_data()


_PAGE = re.compile(r'data-src="([^"]+)"')


def page_url(response: Any, number: int) -> str:
    """The URL of page ``number`` on a viewer page."""
    urls = _PAGE.findall(response.get_data(as_text=True))
    assert urls, "no page images on the viewer"
    first = urls[0].replace("&amp;", "&")
    return first.rsplit("/", 1)[0] + f"/{number}"


_LINK = re.compile(r'id="content-link" href="([^"]+)"')


def content_url(response: Any) -> str:
    match = _LINK.search(response.get_data(as_text=True))
    assert match, "no content link on the page"
    return match.group(1)


class Audit:
    """Audit rows appended after a mark, so each act's records can be counted exactly."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.seq = self._head()

    def _head(self) -> int:
        with self.rt.db.session() as session:
            return session.scalar(select(func.coalesce(func.max(AuditEvent.seq), 0))) or 0

    def mark(self) -> Audit:
        self.seq = self._head()
        return self

    def since(self, action: str | None = None, outcome: str | None = None) -> list[AuditEvent]:
        with self.rt.db.session() as session:
            query = select(AuditEvent).where(AuditEvent.seq > self.seq).order_by(AuditEvent.seq)
            if action is not None:
                query = query.where(AuditEvent.action == action)
            if outcome is not None:
                query = query.where(AuditEvent.outcome == outcome)
            return list(session.scalars(query))

    def one_success(self, action: str, actor: str, **targets: Any) -> AuditEvent:
        events = self.since(action)
        assert [(e.outcome, e.actor_name) for e in events] == [("allowed", actor)], events
        for name, value in targets.items():
            assert getattr(events[0], name) == value, (name, getattr(events[0], name), value)
        return events[0]

    def one_refusal(self, action: str, code: str, actor: str, **targets: Any) -> AuditEvent:
        assert self.since(action, "allowed") == [], "a refused act left a success record"
        denied = self.since(outcome="denied")
        assert [(e.action, e.reason_code, e.actor_name) for e in denied] == [(action, code, actor)], [
            (e.action, e.reason_code, e.actor_name) for e in denied]
        for name, value in targets.items():
            assert getattr(denied[0], name) == value, (name, getattr(denied[0], name), value)
        return denied[0]


def loan_rows(rt: Runtime, **where: Any) -> list[Loan]:
    with rt.db.session() as session:
        query = select(Loan).order_by(Loan.id)
        for name, value in where.items():
            query = query.where(getattr(Loan, name) == value)
        return list(session.scalars(query))


def one_loan(rt: Runtime, **where: Any) -> Loan:
    rows = loan_rows(rt, **where)
    assert len(rows) == 1, rows
    return rows[0]


def view_rows(rt: Runtime) -> list[DocumentView]:
    with rt.db.session() as session:
        return list(session.scalars(select(DocumentView).order_by(DocumentView.id)))


def used(rt: Runtime, user_id: int, document_id: int) -> int:
    with rt.db.session() as session:
        return session.scalar(select(QuotaUsage.used).where(
            QuotaUsage.user_id == user_id, QuotaUsage.document_id == document_id)) or 0


def set_rows(rt: Runtime, model: Any, where: Any, **values: Any) -> None:
    """Move a row in time or state directly (a loan's due time, a content URL's expiry...)."""
    with rt.db.session() as session:
        session.execute(update(model).where(where).values(**values))


def set_status(rt: Runtime, user_id: int, status: UserStatus) -> None:
    set_rows(rt, User, User.id == user_id, status=status)


class FaultyStore:
    """The real store, with a fault the real ones cannot produce on demand.

    `open_fails`: opening raises StorageUnavailable (storage down). `fail_after`: the object opens and
    reads normally, then the connection drops after that many bytes.
    """

    def __init__(self, inner: Any, *, open_fails: bool = False, fail_after: int | None = None) -> None:
        self.inner = inner
        self.open_fails = open_fails
        self.fail_after = fail_after

    def open(self, key: str) -> Any:
        if self.open_fails:
            raise StorageUnavailable("the storage cannot be reached")
        source = self.inner.open(key)
        return source if self.fail_after is None else _Dropping(source, self.fail_after)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _Dropping(io.RawIOBase):
    def __init__(self, source: Any, limit: int) -> None:
        super().__init__()
        self.source = source
        self.left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.left <= 0:
            raise StorageUnavailable("the connection to the storage dropped")
        view = memoryview(buffer)[: self.left]
        data = self.source.read(len(view))
        view[: len(data)] = data
        self.left -= len(data)
        return len(data)

    def close(self) -> None:
        self.source.close()
        super().close()


def tamper(rt: Runtime, document_id: int, offset: int) -> None:
    """Flip one byte of the stored ciphertext of the document's latest version (in the real store)."""
    with rt.db.session() as session:
        version = session.scalars(select(DocumentVersion).where(DocumentVersion.document_id == document_id)
                                  .order_by(DocumentVersion.number.desc())).first()
        key = version.object_key
    with rt.store.open(key) as source:
        data = bytearray(source.read())
    data[offset] ^= 0x01
    rt.store.put(key, io.BytesIO(bytes(data)), length=len(data))
