"""Each person's choice per kind of notification: immediately (default), in the daily digest, or off.

Only the person chooses (the account page), and every change is recorded (`account:notifications`):
silencing the requests one should decide, or the customers handed to one, is an act worth a trace."""

from __future__ import annotations

from collections.abc import Mapping

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.core.errors import ServiceError
from vault.mail.kinds import CHOOSABLE, Kind, allowed_modes
from vault.models import MailMode, MailPreference, User
from vault.runtime import Runtime


def mode_for(session: Session, user_id: int, kind: Kind) -> MailMode:
    """The stored choice, never `off` for a kind that cannot be silenced (an old row cannot either)."""
    mode = session.scalar(select(MailPreference.mode).where(MailPreference.user_id == user_id,
                                                            MailPreference.kind == str(kind)))
    chosen = MailMode(mode) if mode else MailMode.IMMEDIATE
    return chosen if chosen in allowed_modes(kind) else MailMode.IMMEDIATE


def all_for(session: Session, user: User) -> dict[Kind, MailMode]:
    return {kind: mode_for(session, user.id, kind) for kind in CHOOSABLE}


def set_modes(rt: Runtime, session: Session, user: User, choices: Mapping[str, str], *,
              ctx: AccessContext) -> dict[str, dict[str, str]]:
    """Store `user`'s own choices (kind → mode) in the caller's transaction and record what changed
    (`account:notifications`, each kind changed with its mode before and after) in the same transaction, so
    a person who stops hearing of the loans they should decide, or of customers handed to them, leaves a
    trace, and a save that fails keeps neither. Every choice is checked before any is stored; nothing
    changed, nothing recorded. Returns the changes recorded.

    Raises:
        ServiceError: `invalid_kind` or `invalid_mode`, including `off` for a security alert.
    """
    wanted = dict(_checked(kind, mode) for kind, mode in choices.items())
    changes: dict[str, dict[str, str]] = {}
    for kind, mode in wanted.items():
        before = mode_for(session, user.id, kind)
        if before != mode:
            changes[str(kind)] = {"from": str(before), "to": str(mode)}
        _store(session, user, kind, mode)
    if changes:
        rt.audit.record(session, action=AuditAction.ACCOUNT_NOTIFICATIONS, actor=user, ctx=ctx,
                        subject_user_id=user.id, detail={"changes": changes})
    return changes


def _checked(kind: str, mode: str) -> tuple[Kind, MailMode]:
    if kind not in {str(k) for k in CHOOSABLE}:
        raise ServiceError("invalid_kind", _l("Unknown kind of notification."))
    known = Kind(kind)
    if mode not in {str(m) for m in allowed_modes(known)}:
        if mode == MailMode.OFF:
            raise ServiceError("invalid_mode", _l("Security alerts cannot be turned off."))
        raise ServiceError("invalid_mode", _l("Choose immediately, daily digest or off."))
    return known, MailMode(mode)


def _store(session: Session, user: User, kind: Kind, mode: MailMode) -> None:
    row = session.scalar(select(MailPreference).where(MailPreference.user_id == user.id,
                                                      MailPreference.kind == str(kind)))
    if row is None:
        session.add(MailPreference(user_id=user.id, kind=str(kind), mode=mode))
    else:
        row.mode = mode
    session.flush()
