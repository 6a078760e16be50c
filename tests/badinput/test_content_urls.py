"""Content URLs used the wrong way: replayed, expired, by someone else, after the loan ended, or made up.

A content URL is the only way to a file's bytes. Each misuse gets a clean refusal with no byte of the
file, leaves the quota as it should be (a unit that delivered nothing goes back; one that delivered
stays spent), and the page and API answer alike (the API says 410 for "used" and "expired").
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.badinput.scene import CTX, TEXTS, Scene
from tests.conftest import login
from tests.loans.helpers import set_rows
from vault.models import Document, DocumentView, Loan, QuotaUsage, User, ViewStatus, utcnow
from vault.services import loans, views

REASON = "Reading before the customer call"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Content URLs are the download path; here the grades let the originals leave, so the bytes can be
    compared with the upload (stamped copies are tested in tests/viewer)."""
    return {"policy": {"grades": {"1": {"download_original": True}, "2": {"download_original": True}}}}


def _open(scene: Scene, who: str = "bob", document_id: int | None = None) -> str:
    with scene.rt.db.session() as session:
        user = session.get(User, scene.ids[who])
        opened = views.open_view(scene.rt, session, user, session.get(Document, document_id or scene.doc2),
                                 reason=REASON, place="Office", download=True, ctx=CTX)
        return opened.secret


def _view(scene: Scene, secret: str) -> DocumentView:
    with scene.rt.db.session() as session:
        view = session.scalar(select(DocumentView).where(DocumentView.token_hash == views.hash_secret(secret)))
        assert view is not None
        return view


def _used(scene: Scene, who: str = "bob", document_id: int | None = None) -> int:
    with scene.rt.db.session() as session:
        return session.scalar(select(QuotaUsage.used).where(
            QuotaUsage.user_id == scene.ids[who], QuotaUsage.document_id == (document_id or scene.doc2))) or 0


class Reader:
    """Fetches a content URL through the pages or the API as one person."""

    def __init__(self, app: Any, scene: Scene, who: str, api: bool) -> None:
        self.api = api
        self.client = app.test_client()
        if api:
            self.headers = {"Authorization": f"Bearer {scene.token(who)}"}
        else:
            self.headers = {}
            login(self.client, who)

    def get(self, secret: str) -> Any:
        prefix = "/api/v1/content/" if self.api else "/content/"
        return self.client.get(prefix + secret, headers=self.headers)


def _refused(response: Any, statuses: tuple[int, ...]) -> None:
    assert response.status_code in statuses, (response.status_code, response.get_data()[:300])
    assert TEXTS.content not in response.get_data()
    assert "attachment" not in response.headers.get("Content-Disposition", "")


@pytest.mark.parametrize("api", [False, True], ids=["pages", "api"])
def test_misused_content_urls_are_refused_cleanly(app: Any, scene: Scene, api: bool) -> None:
    bob, eve = Reader(app, scene, "bob", api), Reader(app, scene, "eve", api)
    gone = (410,) if api else (403,)

    # Someone else's URL: "not found", and the URL is not burnt by the attempt.
    secret = _open(scene)
    spent = _used(scene)
    _refused(eve.get(secret), (404,))
    assert _view(scene, secret).status == ViewStatus.RESERVED
    first = bob.get(secret)
    assert first.status_code == 200 and first.get_data() == TEXTS.content
    # Replayed: once only, even by its owner; the unit stays spent (content was delivered).
    _refused(bob.get(secret), gone)
    _refused(eve.get(secret), (404,))
    assert _view(scene, secret).status == ViewStatus.DELIVERED
    assert _used(scene) == spent

    # Expired before use: refused, and the unit goes back.
    secret = _open(scene)
    spent = _used(scene)
    set_rows(scene.rt, DocumentView, DocumentView.token_hash == views.hash_secret(secret),
             expires_at=utcnow() - timedelta(seconds=1))
    _refused(bob.get(secret), gone)
    assert _view(scene, secret).status == ViewStatus.REFUNDED
    assert _used(scene) == spent - 1
    _refused(bob.get(secret), gone)  # and it stays dead
    assert _used(scene) == spent - 1


@pytest.mark.parametrize("api", [False, True], ids=["pages", "api"])
def test_a_url_of_a_loan_ended_since_gives_nothing(app: Any, scene: Scene, api: bool) -> None:
    bob = Reader(app, scene, "bob", api)
    secret = _open(scene)
    assert _used(scene) == 2  # the scene's unused view and this one
    with scene.rt.db.session() as session:
        kim = session.get(User, scene.ids["kim"])
        loans.revoke(scene.rt, session, kim, session.get(Loan, scene.loan_active),
                     reason="Customer relationship under review", ctx=CTX)
    # The revocation gave back every unit reserved under the loan; its URLs are dead (the API calls a
    # refunded URL "gone", the page refuses it).
    _refused(bob.get(secret), (403, 410) if api else (403,))
    _refused(bob.get(scene.view_secret), (403, 410) if api else (403,))
    assert _view(scene, secret).status == ViewStatus.REFUNDED
    assert _used(scene) == 0


@pytest.mark.parametrize("api", [False, True], ids=["pages", "api"])
def test_made_up_secrets_are_not_found(app: Any, scene: Scene, api: bool) -> None:
    bob = Reader(app, scene, "bob", api)
    real = scene.view_secret
    for secret in ("x", real[:-1], real + "A", real.upper(), real[::-1], "%00", "..%2F..%2Fetc%2Fpasswd",
                   "' OR 1=1 --", "%E2%80%AE" + real, "A" * 200, "ünïcödé", "%25", "_"):
        _refused(bob.get(secret), (404,))
    # Longer than any secret could be: not even routed.
    _refused(bob.get("A" * 201), (404,))
    assert _view(scene, real).status == ViewStatus.RESERVED  # the real one is untouched


@pytest.mark.parametrize("api", [False, True], ids=["pages", "api"])
def test_a_head_request_does_not_spend_the_url(app: Any, scene: Scene, api: bool) -> None:
    bob = Reader(app, scene, "bob", api)
    prefix = "/api/v1/content/" if api else "/content/"
    response = bob.client.head(prefix + scene.view_secret, headers=bob.headers)
    assert response.status_code == 405
    assert _view(scene, scene.view_secret).status == ViewStatus.RESERVED
    assert bob.get(scene.view_secret).get_data() == TEXTS.content
