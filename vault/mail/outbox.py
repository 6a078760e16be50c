"""Writing mail into the outbox, in the caller's transaction.

`enqueue` renders the message for each recipient in their language and adds one outbox row per
recipient. It never commits and never opens a network connection: the mail exists exactly when the
act it is about is committed, and a slow or absent SMTP server cannot slow down or fail that act.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vault.config.addresses import InvalidAddress, normalize
from vault.config.settings import Settings
from vault.mail.audience import may_be_told
from vault.mail.kinds import Kind
from vault.mail.preferences import mode_for
from vault.mail.render import render
from vault.mail.retention import address_key
from vault.models import MailMode, MailOutbox, MailStatus, RoleAssignment, User, utcnow

# Ids of rows to try at once after the transaction commits (see `vault.mail.sender.send_committed`).
NEW_IDS = "vault_mail_new"


def _settings(session: Session) -> Settings | None:
    return session.info.get("vault_settings")


def _resolve(session: Session, recipient: User | str) -> tuple[str, User | None] | None:
    """The address and (when known) the person behind a recipient; None when there is nobody to write to."""
    if isinstance(recipient, User):
        if not recipient.email:
            return None
        return recipient.email, recipient
    try:
        address = normalize(recipient)
    except InvalidAddress:
        return None
    return address, session.scalar(select(User).where(User.email == address))


def enqueue(session: Session, kind: Kind | str, recipients: Iterable[User | str], template: str,
            context: dict[str, Any], *, dedupe: str | None = None, now: datetime | None = None,
            locale: str | None = None) -> list[MailOutbox]:
    """Queue one mail per recipient (people without an address, who chose "off" or who may not be told
    (`vault.mail.audience`) are skipped).

    Args:
        kind: what the mail is about; decides which preference applies.
        recipients: people (their address, language and preference) or bare addresses.
        template: the name under `templates/mail/`.
        context: the template's values (plain data, no ORM objects: the text is rendered now).
        dedupe: a key naming the event; with it, a second call for the same event and recipient adds
            nothing (a retried act, two listeners).
        locale: the language to write in, for mail whose language is chosen with the address (a customer's
            contact has no account to hold one); without it, people get their own and addresses the default.

    Returns:
        The rows added (queued, or held for the digest).
    """
    kind = Kind(kind)
    settings = _settings(session)
    base_url = settings.base_url if settings else ""
    now = now or utcnow()
    added: list[MailOutbox] = []
    seen: set[str] = set()
    for recipient in recipients:
        resolved = _resolve(session, recipient)
        if resolved is None or resolved[0] in seen:
            continue
        address, user = resolved
        seen.add(address)
        if not may_be_told(kind, user):
            continue
        mode = mode_for(session, user.id, kind) if user is not None else MailMode.IMMEDIATE
        if mode == MailMode.OFF:
            continue
        key = f"{dedupe}:{address_key(settings, address)}"[:200] if dedupe else None
        if key and session.scalar(select(MailOutbox.id).where(MailOutbox.dedupe_key == key)) is not None:
            continue
        message = render(template, context, locale=locale or (user.locale if user else None), base_url=base_url)
        row = MailOutbox(
            created_at=now, kind=str(kind), recipient=address, recipient_user_id=user.id if user else None,
            subject=message.subject, body_text=message.text, body_html=message.html,
            status=MailStatus.DIGEST if mode == MailMode.DIGEST else MailStatus.QUEUED,
            attempts=0, next_attempt_at=now, dedupe_key=key,
        )
        try:
            # A savepoint: losing a race on the dedupe key costs this row only, not the caller's act.
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            continue
        added.append(row)
        if row.status == MailStatus.QUEUED:
            session.info.setdefault(NEW_IDS, []).append(row.id)
    return added


def users_with_role(session: Session, role: str, *, exclude: Sequence[int] = ()) -> list[User]:
    """Active people holding `role` who have an address (the recipients of role-wide notices)."""
    people = session.scalars(
        select(User).join(RoleAssignment, RoleAssignment.user_id == User.id)
        .where(RoleAssignment.role == role, User.email.is_not(None)).order_by(User.id)
    ).unique().all()
    return [user for user in people if user.id not in exclude and user.can_sign_in]
