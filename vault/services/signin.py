"""Signing in: password, then the second factor when the person has one; every attempt is audited.

Every failure of the password step gives the caller the same answer and costs the same time (a
password hash is checked even for an unknown name or a locked account), so neither the message nor
the clock tells which names exist. The reason stays in the audit log, where reviewers need it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.models import User, utcnow
from vault.runtime import Runtime
from vault.services import throttle, totp
from vault.services.accounts import find_user


@dataclass(frozen=True)
class PasswordCheck:
    """The outcome of the password step: `user` is set only when the password was accepted."""

    user: User | None
    code: str
    second_factor: bool = False  # a code from the person's authenticator must follow

    @property
    def ok(self) -> bool:
        return self.user is not None


def check_password(rt: Runtime, session: Session, username: str, password: str, ctx: AccessContext) -> PasswordCheck:
    name = username.strip()[:64]
    block = throttle.blocked(session, name, ctx.client_addr)
    user = find_user(session, name) if name else None
    if user is None:
        rt.passwords.dummy_verify()
        right = False
    else:
        right = rt.passwords.verify(user.password_hash, password)

    def refuse(code: str) -> PasswordCheck:
        _audit_login(rt, session, user, name, ctx, outcome="denied", reason_code=code)
        return PasswordCheck(None, code)

    if block:
        return refuse(block)
    if not right:
        throttle.count_failure(rt, session, user, name, ctx)
        return refuse("bad_credentials")
    assert user is not None
    if not user.can_sign_in:
        return refuse("account_disabled")
    if rt.passwords.needs_rehash(user.password_hash):
        user.password_hash = rt.passwords.hash(password)
    if totp.enrolled(session, user):
        # The run of failures ends only when the whole sign-in succeeds: clearing it here would give
        # anyone who knows the password a fresh set of code guesses at every sign-in.
        rt.audit.record(session, action=AuditAction.AUTH_PASSWORD, actor=user, ctx=ctx, subject_user_id=user.id,
                        detail={"second_factor": "pending"})
        return PasswordCheck(user, "ok", second_factor=True)
    throttle.record_success(session, name)
    user.last_login_at = utcnow()
    detail = {"second_factor": "enrolment_required"} if totp.required(user) else {}
    _audit_login(rt, session, user, name, ctx, detail=detail)
    return PasswordCheck(user, "ok")


def authenticate(rt: Runtime, session: Session, username: str, password: str, ctx: AccessContext) -> User | None:
    """The user if the password step succeeds (a second factor may still be due: see `check_password`)."""
    return check_password(rt, session, username, password, ctx).user


def check_second_factor(
    rt: Runtime, session: Session, user: User, code: str, ctx: AccessContext, *, at: float | None = None
) -> str:
    """Finish a sign-in with an authenticator code or a recovery code: "ok" or the reason code.

    Wrong codes count towards the same lockout as wrong passwords: six digits are guessable otherwise.
    """
    block = throttle.blocked(session, user.username, ctx.client_addr)
    if block:
        _audit_login(rt, session, user, user.username, ctx, outcome="denied", reason_code=block,
                     detail={"step": "second_factor"})
        return block
    outcome, method = totp.verify(rt, session, user, code, at=at)
    if outcome != "ok":
        lockout = throttle.count_failure(rt, session, user, user.username, ctx)
        _audit_login(rt, session, user, user.username, ctx, outcome="denied", reason_code=outcome,
                     detail={"step": "second_factor", "method": method})
        # A failure that starts a lockout ends the half-made session at once.
        return lockout or outcome
    throttle.record_success(session, user.username)
    user.last_login_at = utcnow()
    detail: dict[str, object] = {"second_factor": method}
    if method == "recovery_code":
        detail["recovery_codes_left"] = totp.remaining_recovery_codes(session, user)
    _audit_login(rt, session, user, user.username, ctx, detail=detail)
    return "ok"


def sign_out(rt: Runtime, session: Session, user: User, ctx: AccessContext) -> None:
    rt.audit.record(session, action=AuditAction.AUTH_LOGOUT, actor=user, ctx=ctx, subject_user_id=user.id)


def _audit_login(
    rt: Runtime, session: Session, user: User | None, name: str, ctx: AccessContext, *, outcome: str = "allowed",
    reason_code: str | None = None, detail: dict[str, object] | None = None,
) -> None:
    rt.audit.record(session, action=AuditAction.AUTH_LOGIN, actor=user, actor_name=None if user else name[:200],
                    ctx=ctx,
                    outcome=outcome, reason_code=reason_code, subject_user_id=user.id if user else None,
                    detail=detail)

