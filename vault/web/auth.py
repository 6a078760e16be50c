"""Who is calling: a session cookie for pages, a bearer token for the API (never both).

The API ignores cookies on purpose: a request that carries no token cannot be a cross-site forgery
riding on a browser session, which is why the API can be exempt from CSRF tokens.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, g, redirect, request, session, url_for
from flask_login import LoginManager, current_user, login_user, logout_user

from .. import policy
from ..models import User
from ..services.accounts import user_for_token
from .pipeline import db_session, refusal_response, wants_json

login_manager = LoginManager()



def install(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def _load(user_id: str) -> Any:
        try:
            user = db_session().get(User, int(user_id))
        except (TypeError, ValueError):
            return None
        if user is None or not user.can_sign_in or session.get("epoch") != user.session_epoch:
            return None
        return _LoginUser(user)


class _LoginUser:
    """Adapter so the ORM object stays a plain model and flask-login gets what it needs."""

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def __init__(self, user: User) -> None:
        self.user = user

    def get_id(self) -> str:
        return str(self.user.id)


def sign_in(user: User) -> None:
    session.clear()
    session["epoch"] = user.session_epoch
    login_user(_LoginUser(user))


def sign_out() -> None:
    logout_user()
    session.clear()


def page_user() -> User | None:
    if current_user.is_authenticated:
        return current_user.user
    return None


def api_user() -> User | None:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    return user_for_token(db_session(), secret.strip())


def authenticate() -> User | None:
    """Identify the caller for the guard and remember them for audit records of the request."""
    user = api_user() if wants_json() else page_user()
    g.vault_user = user
    return user


def unauthenticated() -> Any:
    if wants_json():
        return refusal_response(policy.deny("not_authenticated", "A valid bearer token is required."), 401)
    return redirect(url_for("auth.login", next=request.full_path if request.query_string else request.path))


def current() -> User:
    """The authenticated user of this request (the guard has already made sure there is one)."""
    user = g.get("vault_user")
    if user is None:
        raise policy.Denied(policy.deny("not_authenticated"))
    return user
