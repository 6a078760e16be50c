"""Accounts: creation, roles (with their static conflicts), password checks and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import policy
from ..context import AccessContext
from ..models import ApiToken, Role, RoleAssignment, User, UserStatus, utcnow
from ..passwords import MIN_LENGTH
from ..permissions import Action
from ..runtime import Runtime
from .errors import Conflict, NotFound, ServiceError

TOKEN_PREFIX = "vt_"  # noqa: S105 (a public marker, not a secret)


def find_user(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def get_user(session: Session, username: str) -> User:
    user = find_user(session, username)
    if user is None:
        raise NotFound("user")
    return user


def check_password_rules(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise ServiceError("weak_password", f"A password needs at least {MIN_LENGTH} characters.")


def create_user(
    rt: Runtime,
    session: Session,
    *,
    username: str,
    password: str,
    display_name: str | None = None,
    roles: tuple[Role, ...] = (),
    actor: User | None = None,
    ctx: AccessContext | None = None,
) -> User:
    """Create an account and give it `roles`; `actor` None means the command line (the operator)."""
    username = username.strip()
    if not username or len(username) > 64 or not username.replace(".", "").replace("-", "").replace("_", "").isalnum():
        raise ServiceError("invalid_username", "A user name is 1–64 letters, digits, dots, dashes or underscores.")
    if find_user(session, username):
        raise Conflict("user_exists", f"The user {username} already exists.")
    if actor is not None:
        policy.require(actor, Action.USER_MANAGE)
    check_password_rules(password)
    user = User(username=username, display_name=display_name or username, password_hash=rt.passwords.hash(password),
                status=UserStatus.ACTIVE)
    session.add(user)
    session.flush()
    rt.audit.record(session, action="user:create", actor=actor, ctx=ctx or AccessContext.cli(),
                    subject_user_id=user.id, detail={"username": username})
    for role in roles:
        assign_role(rt, session, user, role, actor=actor, ctx=ctx)
    return user


def assign_role(
    rt: Runtime, session: Session, user: User, role: Role, *, actor: User | None, ctx: AccessContext | None = None
) -> None:
    """Give `user` a role, refusing the static conflicts (admin alone; auditor apart from the duties)."""
    if actor is not None:
        policy.require(actor, Action.ROLE_ASSIGN, user, role=role, audit={"subject_user_id": user.id})
    else:
        conflict = policy.role_conflict(user.role_set, role)
        if conflict:
            raise ServiceError("role_conflict", conflict)
    if role in user.role_set:
        return
    user.roles.append(RoleAssignment(role=role, granted_by_id=actor.id if actor else None))
    session.flush()
    rt.audit.record(session, action="role:assign", actor=actor, ctx=ctx or AccessContext.cli(),
                    subject_user_id=user.id, detail={"role": str(role)})


def remove_role(
    rt: Runtime, session: Session, user: User, role: Role, *, actor: User | None, ctx: AccessContext | None = None
) -> None:
    if actor is not None:
        policy.require(actor, Action.USER_MANAGE)
        if actor.id == user.id:
            raise policy.Denied(policy.deny("separation_of_duties", "Nobody may change their own roles."))
    for assignment in list(user.roles):
        if assignment.role == role:
            user.roles.remove(assignment)
    session.flush()
    rt.audit.record(session, action="role:remove", actor=actor, ctx=ctx or AccessContext.cli(),
                    subject_user_id=user.id, detail={"role": str(role)})


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(
    rt: Runtime, session: Session, user: User, *, name: str = "cli", expires_at: datetime | None = None,
    actor: User | None = None, ctx: AccessContext | None = None,
) -> NewToken:
    """A bearer token for `user`; the secret is returned once and only its hash is stored."""
    if not user.can_sign_in:
        raise ServiceError("account_disabled", "A disabled or departed account cannot get a token.")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name[:100], token_hash=hash_token(secret), prefix=secret[:10],
                     expires_at=expires_at)
    session.add(token)
    session.flush()
    rt.audit.record(session, action="token:create", actor=actor, ctx=ctx or AccessContext.cli(),
                    subject_user_id=user.id, detail={"token_id": token.id, "name": token.name})
    return NewToken(token=token, secret=secret)


def revoke_tokens(
    rt: Runtime, session: Session, user: User, *, token_id: int | None = None, actor: User | None = None,
    ctx: AccessContext | None = None,
) -> int:
    """Revoke one token of `user` (or all of them); returns how many were revoked."""
    query = select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    if token_id is not None:
        query = query.where(ApiToken.id == token_id)
    tokens = list(session.scalars(query))
    if token_id is not None and not tokens:
        raise NotFound("token")
    now = utcnow()
    for token in tokens:
        token.revoked_at = now
        rt.audit.record(session, action="token:revoke", actor=actor, ctx=ctx or AccessContext.cli(),
                        subject_user_id=user.id, detail={"token_id": token.id})
    return len(tokens)


def user_for_token(session: Session, secret: str) -> User | None:
    """The active user behind a bearer secret, or None (revoked, expired, disabled or unknown)."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
    now = utcnow()
    if token is None or token.revoked_at is not None or (token.expires_at and token.expires_at <= now):
        return None
    if not token.user.can_sign_in:
        return None
    token.last_used_at = now
    return token.user
