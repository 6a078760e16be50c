"""Signed-in sessions: cookie flags, idle and absolute timeouts, and the steps before a session is whole.

The session cookie is signed by Flask and carries only ids, timestamps and the step reached; what
makes it invalid lives in the database: `User.session_epoch` (bumped by "log out everywhere", a
password change, a second-factor reset or disabling the account) is compared on every request, so a
copied cookie dies with the others; and each session has its own row (`WebSession`, found by the
SHA-256 of a random id the cookie carries) that signing out ends, so a cookie copied before "sign out"
is dead after it while the person's other sessions live on.

After the password a session may still owe steps, in this order: the authenticator code (people who
have one), enrolling one (roles that require it and have none), accepting the current confidentiality
agreement. Until they are done, only the page of the step owed (and signing out) opens; every other
page sends the person to it.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from flask import Flask, has_request_context, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

from vault.core.clock import clock
from vault.models import User, WebSession, utcnow
from vault.services import agreement, totp
from vault.web.pipeline import db_session, runtime, wants_json

# The step owed → the page that settles it.
STEP_PAGES = {
    "second_factor": "auth.second_factor",
    "enrol": "account.second_factor",
    "agreement": "auth.agreement",
}
ALWAYS_OPEN = frozenset({"auth.logout"})
# Activity is written back at most this often, so not every response has to re-send the cookie.
TOUCH_SECONDS = 60

# Second-factor state of a session: the code is still owed, was given, or the person has none.
PENDING, VERIFIED, NONE = "pending", "verified", "none"


def now() -> int:
    return int(clock.timestamp())


class _SessionInterface(SecureCookieSessionInterface):
    """Marks the cookie Secure when the site is configured for https or the request came over TLS, and
    keeps the cookie's signing serializer while the keys it signs with are the same."""

    def __init__(self) -> None:
        self._signing: tuple[Any, URLSafeTimedSerializer] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        # Flask makes the serializer anew at every request, an API call's too (which has no cookie to
        # read); it holds nothing but the keys and settings, so one serves every request signed with them.
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        kept = self._signing
        if kept is not None and kept[0] == keys:
            return kept[1]
        serializer = super().get_signing_serializer(app)
        if serializer is not None:
            self._signing = (keys, serializer)
        return serializer

    def save_session(self, app: Flask, session: Any, response: Any) -> None:
        # The API never reads the cookie (bearer tokens only, `vault.web.auth`), so its answers neither set
        # one nor say they vary with one. Flask-Login's after-request hook reads the session of every request,
        # which Flask would otherwise take for an answer that depends on the cookie (`Vary: Cookie`).
        if wants_json():
            return
        super().save_session(app, session, response)

    def get_cookie_secure(self, app: Flask) -> bool:
        configured = bool(app.config.get("SESSION_COOKIE_SECURE"))
        return configured or (has_request_context() and request.is_secure)


def install(app: Flask) -> None:
    app.session_interface = _SessionInterface()
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    if not app.config.get("SESSION_COOKIE_SAMESITE"):
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"


def _sid_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8", "surrogatepass")).hexdigest()


def start(user: User, second_factor: str) -> None:
    """Fill a fresh session (the caller has cleared it) for `user` just past the password, and record it
    on the server (committed with the request's unit of work)."""
    sid = secrets.token_urlsafe(32)
    db_session().add(WebSession(id=_sid_hash(sid), user_id=user.id, created_at=utcnow()))
    session["sid"] = sid
    moment = now()
    session["epoch"] = user.session_epoch
    session["iat"] = moment
    session["seen"] = moment
    session["mfa"] = second_factor


def cookie_session_id() -> str | None:
    """The server-side id (`WebSession.id`) of the session the cookie names, or None when it names none."""
    sid = session.get("sid")
    if not isinstance(sid, str) or not sid:
        return None
    return _sid_hash(sid)


def live(user: User, row: WebSession | None) -> bool:
    """``row`` (the `WebSession` the cookie names, read with the person) is a session of ``user`` that the
    server has not ended."""
    return row is not None and row.id == cookie_session_id() and row.user_id == user.id and row.ended_at is None


def end() -> None:
    """End this session on the server: a copy of its cookie is refused from now on."""
    sid = session.get("sid")
    if isinstance(sid, str) and sid:
        row = db_session().get(WebSession, _sid_hash(sid))
        if row is not None and row.ended_at is None:
            row.ended_at = utcnow()


def renew_epoch(user: User) -> None:
    """Keep this session alive after the person ended all their others (password change, log out elsewhere)."""
    session["epoch"] = user.session_epoch


def expired() -> str | None:
    """"idle" or "absolute" when the session has outlived its limits, else None."""
    settings = runtime().settings
    issued, seen = session.get("iat"), session.get("seen")
    if not isinstance(issued, int) or not isinstance(seen, int):
        return "absolute"
    moment = now()
    if moment - issued >= settings.session_absolute_hours * 3600:
        return "absolute"
    if moment - seen >= settings.session_idle_minutes * 60:
        return "idle"
    return None


def touch() -> None:
    moment = now()
    if moment - int(session.get("seen", 0)) >= TOUCH_SECONDS:
        session["seen"] = moment


def step_owed(user: User) -> str | None:
    """The first step this session still owes, or None when it is whole."""
    second_factor = session.get("mfa")
    if second_factor == PENDING:
        return "second_factor"
    if second_factor != VERIFIED and totp.required(user):
        return "enrol"
    version = runtime().settings.agreement_version
    if session.get("agreed") != version:
        if not agreement.accepted(db_session(), user, version):
            return "agreement"
        session["agreed"] = version
    return None


def open_during(step: str) -> frozenset[str]:
    return ALWAYS_OPEN | {STEP_PAGES[step]}


def second_factor_done() -> None:
    session["mfa"] = VERIFIED


def agreed(version: str) -> None:
    session["agreed"] = version


def remember_next(target: str) -> None:
    session["next"] = target


def continue_url(user: User) -> str:
    """Where to go once a step is done: the next step owed, else the page first asked for."""
    step = step_owed(user)
    if step:
        return url_for(STEP_PAGES[step])
    return str(session.pop("next", None) or url_for("home.index"))
