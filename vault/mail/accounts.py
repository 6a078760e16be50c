"""A person's e-mail address and language: set by an admin (`vault user email`) or by the person
(account page), validated, unique, and audited like every other change to an account.

Every change or removal of an address is told to the address it replaces (`Kind.ADDRESS_CHANGED`). The
address is where an administrator's password link for an account in use goes (`vault.services.accounts`), so
an address pointed at someone else's mailbox, by two administrators together, by one who then asks an unwitting
colleague for the link, or by whoever holds the person's session, is that account taken; the old mailbox is the
one place the person still hears of it. The person's own change is told too: the account page cannot tell the
person from someone using their session, which is why serious services write to the old address either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.core import Locale, UnknownLocaleError
from babel.dates import format_datetime
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault.config.addresses import InvalidAddress, masked, normalize
from vault.config.settings import Settings
from vault.core import languages
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.core.errors import Conflict, ServiceError
from vault.mail.kinds import Kind
from vault.mail.outbox import enqueue
from vault.models import User, utcnow
from vault.runtime import Runtime


@dataclass(frozen=True)
class EmailChange:
    """What `set_email` did: the stored address, the previous one, and what became of the notice to it
    (None when nothing changed), so that whoever made the change can be told whether the old mailbox was."""

    address: str | None
    previous: str | None
    notice: str | None


def set_email(rt: Runtime, session: Session, user: User, address: str | None, *, actor: User | None,
              ctx: AccessContext) -> EmailChange:
    """Set (or with an empty value, remove) `user`'s address; returns the stored form with the notice's fate.
    The previous address, if any, is sent a notice (when mail is configured), and the record (`user:email`)
    says whether it was (`notice`: `queued`, `no_previous_address`, `mail_not_configured`).

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
        return EmailChange(value, value, None)
    previous = user.email
    user.email = value
    session.flush()
    notice = _tell_previous(rt.settings, session, user, previous, actor=actor)
    rt.audit.record(session, action=AuditAction.USER_EMAIL, actor=actor, ctx=ctx, subject_user_id=user.id,
                    detail={"from": previous, "to": value, "notice": notice})
    return EmailChange(value, previous, notice)


def _tell_previous(settings: Settings, session: Session, user: User, previous: str | None, *,
                   actor: User | None) -> str:
    """Queue the notice to `previous` that `user`'s address is now `user.email` (None: removed), in the
    person's language; what became of it, for the record.

    Not guarded as the event listeners' mail is: a change whose notice cannot be written (a template bug) is
    not made, since the notice is what keeps a redirected address from going unseen."""
    if previous is None:
        return "no_previous_address"
    if not (settings.smtp_url and settings.mail_from):
        return "mail_not_configured"
    now = utcnow()
    by = "operator" if actor is None else "self" if actor.id == user.id else "admin"
    context = {"username": user.username, "by": by, "admin_name": actor.display_name if actor else "",
               "changed_at": _moment(settings, user, now), "new_address": masked(user.email) if user.email else ""}
    # A bare address: the account no longer has it, so it is written in the account's language, and the row
    # is tied to the account it is about.
    rows = enqueue(session, Kind.ADDRESS_CHANGED, [previous], "address_changed", context, now=now,
                   locale=user.locale or languages.DEFAULT)
    if not rows:  # an address the outbox does not write to: the record must not say "queued" untruly
        raise RuntimeError(f"the notice of {user.username}'s changed address was not queued")
    for row in rows:
        row.recipient_user_id = user.id
    return "queued"


def _moment(settings: Settings, user: User, moment: datetime) -> str:
    """`moment` as the person reads times: in their time zone (else the company's) and language, the zone
    named (`4 дек. 2026 г., 22:15:00 MSK`)."""
    try:
        zone = ZoneInfo(user.timezone or settings.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    try:
        locale = Locale.parse(user.locale or languages.DEFAULT)
    except (ValueError, UnknownLocaleError):
        locale = Locale.parse(languages.DEFAULT)
    return (format_datetime(moment, "medium", tzinfo=zone, locale=locale) + " "
            + format_datetime(moment, "zzz", tzinfo=zone, locale=locale))
