"""Who is calling: a session cookie for pages, a bearer token for the API (never both).

The API ignores cookies on purpose: a request that carries no token cannot be a cross-site forgery
riding on a browser session, which is why the API can be exempt from CSRF tokens.

A page session counts only while it is within its timeouts, carries the person's current session
epoch, and owes no step of the sign-in (see `sessions`); the API answers only tokens of people who
have accepted the current confidentiality agreement, but for the two routes that show and accept it.
"""

from __future__ import annotations

from hashlib import sha512
from typing import Any

from flask import Flask, flash, g, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import LoginManager, current_user, login_user, logout_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from vault import policy
from vault.core.audit_actions import AuditAction
from vault.models import User, WebSession
from vault.services.accounts import api_caller
from vault.web import sessions
from vault.web.pipeline import access_context, db_session, keep_work, refusal_response, runtime, wants_json
from vault.web.redirects import safe_next

login_manager = LoginManager()
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The only API routes a token opens before its owner has accepted the current agreement: reading it and
# accepting it (the API's counterpart of the `/agreement` page). Named one by one, so a route added later
# stays closed until someone decides otherwise.
OPEN_BEFORE_AGREEMENT = frozenset({"api.agreement_text", "api.accept_agreement"})


def install(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"
    login_manager._session_identifier_generator = _session_identifier  # type: ignore[attr-defined]
    sessions.install(app)

    @login_manager.user_loader
    def _load(user_id: str) -> Any:
        """The person of a session cookie, with their roles and the session's server row, in one statement
        (every page request, page images of the viewer included, pays for it)."""
        try:
            uid = int(user_id)
        except (TypeError, ValueError):
            return None
        sid = sessions.cookie_session_id()
        if sid is None:
            return None
        found = db_session().execute(
            select(User, WebSession)
            .outerjoin(WebSession, (WebSession.id == sid) & (WebSession.user_id == User.id))
            .where(User.id == uid)
            .options(joinedload(User.roles))
        ).unique().first()
        if found is None:
            return None
        user, row = found
        if not user.can_sign_in or session.get("epoch") != user.session_epoch:
            return None
        if not sessions.live(user, row):
            return None
        return _LoginUser(user)


def _session_identifier() -> str:
    """What a session is bound to: the client's address and browser.

    flask-login's own identifier reads a raw `X-Forwarded-For`, which anybody can send; with no proxy
    configured (`VAULT_PROXY_COUNT=0`) a thief naming the victim's address there kept the session.
    `request.remote_addr` is the socket's peer, or what the configured number of proxies reported
    (`ProxyFix` rewrites it), never a header the client chose.
    """
    agent = request.headers.get("User-Agent", "")
    return sha512(f"{request.remote_addr}|{agent}".encode("utf-8", "replace")).hexdigest()


class _LoginUser:
    """Adapter so the ORM object stays a plain model and flask-login gets what it needs."""

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def __init__(self, user: User) -> None:
        self.user = user

    def get_id(self) -> str:
        return str(self.user.id)


def sign_in(user: User, second_factor: str = sessions.NONE) -> None:
    """Begin a session for `user`, who has passed the password step (`second_factor`: see `sessions`)."""
    session.clear()
    sessions.start(user, second_factor)
    login_user(_LoginUser(user))


def sign_out() -> None:
    """End the session here and on the server (the caller's unit of work records the end)."""
    sessions.end()
    keep_work()
    logout_user()
    session.clear()


def session_user() -> User | None:
    """The person behind the session cookie, whatever step their sign-in has reached."""
    if current_user.is_authenticated:
        return current_user.user
    return None


def page_user() -> User | None:
    """The person behind the session, if the session is whole and may open the page asked for."""
    user = session_user()
    if user is None:
        return None
    reason = sessions.expired()
    if reason:
        _end_expired(user, reason)
        return None
    sessions.touch()
    step = sessions.step_owed(user)
    g.vault_step = step
    if step and request.endpoint not in sessions.open_during(step):
        return None
    return user


def _end_expired(user: User, reason: str) -> None:
    db = db_session()
    runtime().audit.record(db, action=AuditAction.AUTH_SESSION_EXPIRED, actor=user, ctx=access_context(),
                           subject_user_id=user.id, detail={"reason": reason})
    keep_work()  # the record stands whatever the request's answer
    sign_out()
    g.vault_session_expired = True


def api_user() -> User | None:
    header = request.headers.get("Authorization", "")
    scheme, _sep, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    found = api_caller(db_session(), secret.strip(), runtime().settings)
    if found is None:
        return None
    token, accepted = found
    user = token.user
    if not accepted and request.endpoint not in OPEN_BEFORE_AGREEMENT:
        g.vault_user = user
        raise policy.Denied(policy.deny("agreement_required"))
    if token.scope != "write" and request.method not in SAFE_METHODS:
        # A read token lists and looks up; anything that changes state, opening a view included, needs write.
        g.vault_user = user
        raise policy.Denied(policy.deny("token_scope"))
    return user


def authenticate() -> User | None:
    """Identify the caller for the guard and remember them for audit records of the request."""
    user = api_user() if wants_json() else page_user()
    g.vault_user = user
    return user


def unauthenticated() -> Any:
    if wants_json():
        return refusal_response(policy.deny("not_authenticated", _l("A valid bearer token is required.")), 401)
    step = g.get("vault_step")
    if step and session_user() is not None:
        if request.method == "GET" and request.endpoint not in sessions.STEP_PAGES.values():
            sessions.remember_next(safe_next(_here(), url_for("home.index")))
        return redirect(url_for(sessions.STEP_PAGES[step]))
    if g.get("vault_session_expired"):
        flash(_("Your session has expired; please sign in again."), "info")
    return redirect(url_for("auth.login", next=_here()))


def _here() -> str:
    return request.full_path if request.query_string else request.path


def current() -> User:
    """The authenticated user of this request (the guard has already made sure there is one)."""
    user = g.get("vault_user")
    if user is None:
        raise policy.Denied(policy.deny("not_authenticated"))
    return user


def step_owed() -> str | None:
    """The sign-in step this request's session still owes (set by the guard), or None."""
    return g.get("vault_step")
