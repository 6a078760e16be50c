"""Each person's choice per kind of notification: immediately (default), in the daily digest, or off."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.core.errors import ServiceError
from vault.mail.kinds import CHOOSABLE, Kind, allowed_modes
from vault.models import MailMode, MailPreference, User


def mode_for(session: Session, user_id: int, kind: Kind) -> MailMode:
    """The stored choice, never `off` for a kind that cannot be silenced (an old row cannot either)."""
    mode = session.scalar(select(MailPreference.mode).where(MailPreference.user_id == user_id,
                                                            MailPreference.kind == str(kind)))
    chosen = MailMode(mode) if mode else MailMode.IMMEDIATE
    return chosen if chosen in allowed_modes(kind) else MailMode.IMMEDIATE


def all_for(session: Session, user: User) -> dict[Kind, MailMode]:
    return {kind: mode_for(session, user.id, kind) for kind in CHOOSABLE}


def set_mode(session: Session, user: User, kind: str, mode: str) -> MailPreference:
    """Store one choice in the caller's transaction.

    Raises:
        ServiceError: `invalid_kind` or `invalid_mode`, including `off` for a security alert.
    """
    if kind not in {str(k) for k in CHOOSABLE}:
        raise ServiceError("invalid_kind", _l("Unknown kind of notification."))
    known = Kind(kind)
    if mode not in {str(m) for m in allowed_modes(known)}:
        if mode == MailMode.OFF:
            raise ServiceError("invalid_mode", _l("Security alerts cannot be turned off."))
        raise ServiceError("invalid_mode", _l("Choose immediately, daily digest or off."))
    row = session.scalar(select(MailPreference).where(MailPreference.user_id == user.id,
                                                      MailPreference.kind == kind))
    if row is None:
        row = MailPreference(user_id=user.id, kind=kind, mode=MailMode(mode))
        session.add(row)
    else:
        row.mode = MailMode(mode)
    session.flush()
    return row
