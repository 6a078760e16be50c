"""The daily digest: the notifications a person chose to get once a day, bundled into one mail per
recipient per day, once that day (in `VAULT_TIMEZONE`) is over.

The bundling runs in one transaction: the digest mail is queued and its parts marked `digested`
together, so a crash leaves either both or neither. Two runs at once cannot bundle a part twice:
PostgreSQL skips the rows the other run has locked, SQLite serializes the transactions, and the
digest's dedupe key (`digest:<address>:<day>`) refuses a second digest for the same day.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from vault.db.engine import Database
from vault.mail.audience import withheld
from vault.mail.kinds import Kind
from vault.mail.render import render
from vault.mail.retention import address_key, forgotten
from vault.models import MailStatus, User
from vault.models.mail import MailOutbox


def send_digests(db: Database, now: datetime) -> int:
    """Queue one digest per recipient and finished day; returns how many digests were queued."""
    queued = 0
    with db.session() as session:
        settings = session.info.get("vault_settings")
        zone = ZoneInfo(settings.timezone if settings else "UTC")
        base_url = settings.base_url if settings else ""
        today = now.astimezone(zone).date()
        query = select(MailOutbox).where(MailOutbox.status == MailStatus.DIGEST).order_by(MailOutbox.id)
        if db.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        groups: dict[tuple[str, date], list[MailOutbox]] = defaultdict(list)
        for row in session.scalars(query):
            day = row.created_at.astimezone(zone).date()
            if day >= today:
                continue
            if withheld(session, row, now):  # e.g. a request to decide, to someone since on notice
                continue
            groups[(row.recipient, day)].append(row)
        for (address, day), parts in sorted(groups.items()):
            user = session.get(User, parts[0].recipient_user_id) if parts[0].recipient_user_id else None
            key = f"digest:{address_key(settings, address)}:{day.isoformat()}"
            if session.scalar(select(MailOutbox.id).where(MailOutbox.dedupe_key == key)) is not None:
                key = f"{key}:{parts[0].id}"  # a part that arrived after that day's digest was made
            message = render("digest", {"day": day.isoformat(),
                                        "items": [{"subject": p.subject, "text": p.body_text} for p in parts]},
                             locale=user.locale if user else None, base_url=base_url)
            digest = MailOutbox(created_at=now, kind=str(Kind.DIGEST), recipient=address,
                                recipient_user_id=parts[0].recipient_user_id, subject=message.subject,
                                body_text=message.text, body_html=message.html, status=MailStatus.QUEUED,
                                attempts=0, next_attempt_at=now, dedupe_key=key[:200])
            session.add(digest)
            session.flush()
            for part in parts:
                part.status = MailStatus.DIGESTED
                part.digest_id = digest.id
                for name, value in forgotten(part.recipient).items():  # the digest carries its text now
                    setattr(part, name, value)
            queued += 1
    return queued
