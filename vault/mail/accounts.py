"""A person's e-mail address and language: set by an admin (`vault user email`) or by the person
(account page), validated, unique, and audited like every other change to an account."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault.config.addresses import InvalidAddress, normalize
from vault.core.context import AccessContext
from vault.core.errors import Conflict, ServiceError
from vault.models import User
from vault.runtime import Runtime


def set_email(rt: Runtime, session: Session, user: User, address: str | None, *, actor: User | None,
              ctx: AccessContext) -> str | None:
    """Set (or with an empty value, remove) `user`'s address; returns the stored form.

    Raises:
        ServiceError: `invalid_email`.
        Conflict: `email_taken` when another account has the address.
    """
    value: str | None = None
    if address and address.strip():
        try:
            value = normalize(address)
        except InvalidAddress:
            raise ServiceError("invalid_email", _l("That is not an e-mail address (name@example.com).")) from None
        other = session.scalar(select(User.id).where(func.lower(User.email) == value, User.id != user.id))
        if other is not None:
            raise Conflict("email_taken", _l("Another account already uses this e-mail address."))
    if value == user.email:
        return value
    previous = user.email
    user.email = value
    session.flush()
    rt.audit.record(session, action="user:email", actor=actor, ctx=ctx, subject_user_id=user.id,
                    detail={"from": previous, "to": value})
    return value
