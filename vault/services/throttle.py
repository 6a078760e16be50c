"""Counting failed sign-ins per account name and per client address, and locking them out for a while.

The counters live in the database, not in process memory: under gunicorn each worker would otherwise
keep its own count and an attacker would get `workers × limit` guesses. Counting runs in the caller's
transaction (with the audit record of the failure), and the row is locked while it is bumped, so two
workers failing at once both count.

Names are counted whether or not the account exists: a lockout that only happened to real accounts
would tell an attacker which names are real.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from vault.config.settings import Settings
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.models import LoginAttempt, User, utcnow
from vault.runtime import Runtime


def user_key(username: str) -> str:
    return "user:" + username.strip()[:64]


def address_key(address: str | None) -> str:
    return "addr:" + (address or "unknown")[:64]


@dataclass(frozen=True)
class Limits:
    max_failures: int
    address_max_failures: int
    window: timedelta
    lockout: timedelta

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            max_failures=settings.login_max_failures,
            address_max_failures=settings.login_address_max_failures,
            window=timedelta(minutes=settings.login_window_minutes),
            lockout=timedelta(minutes=settings.login_lockout_minutes),
        )


def blocked(session: Session, username: str, address: str | None, now: datetime | None = None) -> str | None:
    """"throttled" if the address is locked out, "locked" if the account name is, else None."""
    now = now or utcnow()
    rows = {
        row.key: row
        for row in session.scalars(
            select(LoginAttempt).where(LoginAttempt.key.in_([address_key(address), user_key(username)]))
        )
    }
    address_row = rows.get(address_key(address))
    if address_row is not None and address_row.locked_until is not None and address_row.locked_until > now:
        return "throttled"
    user_row = rows.get(user_key(username))
    if user_row is not None and user_row.locked_until is not None and user_row.locked_until > now:
        return "locked"
    return None


def account_locked(session: Session, username: str, now: datetime | None = None) -> bool:
    """The account name is locked out now (its API tokens stop too, not only its sign-ins)."""
    row = session.get(LoginAttempt, user_key(username))
    return row is not None and row.locked_until is not None and row.locked_until > (now or utcnow())


def record_failure(
    session: Session, settings: Settings, username: str, address: str | None, now: datetime | None = None
) -> list[str]:
    """Count one failure for the name and the address; returns the keys this failure locked out."""
    now = now or utcnow()
    limits = Limits.of(settings)
    _purge(session, limits, now)
    locked: list[str] = []
    for key, limit in ((user_key(username), limits.max_failures),
                       (address_key(address), limits.address_max_failures)):
        if _bump(session, key, limit, limits, now):
            locked.append(key)
    return locked


def count_failure(rt: Runtime, session: Session, user: User | None, name: str, ctx: AccessContext) -> str | None:
    """Count a failed password or code, and audit any lockout it causes ("auth:lockout").

    Returns "locked" or "throttled" when this failure started a lockout, else None.
    """
    started = None
    for key in record_failure(session, rt.settings, name, ctx.client_addr):
        account = key.startswith("user:")
        rt.audit.record(session, action=AuditAction.AUTH_LOCKOUT, actor=user, actor_name=None if user else name[:200],
                        ctx=ctx, outcome="denied", reason_code="locked" if account else "throttled",
                        subject_user_id=user.id if user else None,
                        detail={"key": "account" if account else "address",
                                "minutes": rt.settings.login_lockout_minutes})
        started = started or ("locked" if account else "throttled")
    return started


def record_success(session: Session, username: str) -> None:
    """A right password ends the account's run of failures (the address keeps its count)."""
    session.execute(delete(LoginAttempt).where(LoginAttempt.key == user_key(username)))


def clear(session: Session, username: str) -> None:
    """Lift an account's lockout (an administrator re-enabling the account, for instance)."""
    record_success(session, username)


def _bump(session: Session, key: str, limit: int, limits: Limits, now: datetime) -> bool:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # Create the row if missing without racing another worker doing the same, then lock it.
    session.execute(
        insert(LoginAttempt).values(key=key, window_start=now, failures=0).on_conflict_do_nothing(
            index_elements=["key"])
    )
    row = session.execute(
        select(LoginAttempt).where(LoginAttempt.key == key).with_for_update().execution_options(
            populate_existing=True)
    ).scalar_one()
    if row.locked_until is not None and row.locked_until > now:
        return False
    if row.window_start + limits.window <= now or row.locked_until is not None:
        # A new window, or the first failure after a lockout ran out: start counting afresh.
        row.window_start, row.failures, row.locked_until = now, 0, None
    row.failures += 1
    if row.failures >= limit:
        row.locked_until = now + limits.lockout
        session.flush()
        return True
    session.flush()
    return False


def _purge(session: Session, limits: Limits, now: datetime) -> None:
    """Forget counters whose window and lockout are both over, so unknown names do not pile up."""
    session.execute(
        delete(LoginAttempt).where(
            LoginAttempt.window_start < now - limits.window,
            or_(LoginAttempt.locked_until.is_(None), LoginAttempt.locked_until < now),
        )
    )


def address_blocked(session: Session, address: str | None, now: datetime | None = None) -> bool:
    """The client address is locked out (for a public link page, where there is no account name to count)."""
    row = session.get(LoginAttempt, address_key(address))
    return row is not None and row.locked_until is not None and row.locked_until > (now or utcnow())


def count_address_failure(session: Session, settings: Settings, address: str | None,
                          now: datetime | None = None) -> bool:
    """Count one failure of an anonymous link (forged, spent, expired) for the client address only, with the
    sign-in's address limit: someone trying links by the thousand is paused like someone guessing passwords,
    and shares the same count. True when this failure started a lockout."""
    now = now or utcnow()
    limits = Limits.of(settings)
    _purge(session, limits, now)
    return _bump(session, address_key(address), limits.address_max_failures, limits, now)
