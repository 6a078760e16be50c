"""Signing in: one generic answer for every failure, so the form does not reveal which names exist."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..context import AccessContext
from ..models import User, utcnow
from ..runtime import Runtime
from .accounts import find_user


def authenticate(rt: Runtime, session: Session, username: str, password: str, ctx: AccessContext) -> User | None:
    """The user if the password is right and the account may sign in; every attempt is audited."""
    user = find_user(session, username.strip())
    if user is None:
        rt.passwords.dummy_verify()
        rt.audit.record(session, action="auth:login", actor=None, actor_name=username.strip()[:200], ctx=ctx,
                        outcome="denied", reason_code="bad_credentials")
        return None
    if not rt.passwords.verify(user.password_hash, password):
        rt.audit.record(session, action="auth:login", actor=user, ctx=ctx, outcome="denied",
                        reason_code="bad_credentials", subject_user_id=user.id)
        return None
    if not user.can_sign_in:
        rt.audit.record(session, action="auth:login", actor=user, ctx=ctx, outcome="denied",
                        reason_code="account_disabled", subject_user_id=user.id)
        return None
    if rt.passwords.needs_rehash(user.password_hash):
        user.password_hash = rt.passwords.hash(password)
    user.last_login_at = utcnow()
    rt.audit.record(session, action="auth:login", actor=user, ctx=ctx, subject_user_id=user.id)
    return user


def sign_out(rt: Runtime, session: Session, user: User, ctx: AccessContext) -> None:
    rt.audit.record(session, action="auth:logout", actor=user, ctx=ctx, subject_user_id=user.id)
