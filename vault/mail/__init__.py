"""E-mail notifications: an outbox written in the act's own transaction, sent later over SMTP.

- `outbox.enqueue` renders and queues mail (no commit, no network); `notifications` wires it to events.
- `sender.send_pending` claims due mail, sends it with no transaction open, retries with back-off.
- `digest.send_digests` bundles the mail people chose to get once a day.
- `send_committed` lets the web layer try a request's mail at once, in the background, after its commit.
- `vault mail send-pending|status|test` (cron and operators) live in `vault.cli.mail`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from vault.config.smtp import SmtpConfig, parse_smtp_url
from vault.mail import letters as _letters  # noqa: F401  (registers the customer letter)
from vault.mail import notifications as _notifications  # noqa: F401  (registers the listeners)
from vault.mail.digest import send_digests
from vault.mail.kinds import Kind
from vault.mail.outbox import enqueue
from vault.mail.sender import SendResult, send_pending
from vault.mail.sender import send_committed as _send
from vault.mail.smtp import SmtpTransport
from vault.mail.transport import PermanentFailure, TemporaryFailure, Transport, TransportError
from vault.models import utcnow

if TYPE_CHECKING:
    from vault.config.settings import Settings
    from vault.runtime import Runtime

log = logging.getLogger(__name__)


def transport_for(settings: Settings) -> Transport | None:
    """The configured transport, or None when sending is off (mail still queues)."""
    if not settings.smtp_url:
        return None
    return SmtpTransport(parse_smtp_url(settings.smtp_url))


def send_committed(rt: Runtime, session: Session) -> bool:
    """After the web layer's commit: try the mail this session queued, in a background thread.

    Never raises and never waits: the rows are committed as `queued` already, so whatever happens here
    (server down, queue full) they are sent by the next `vault mail send-pending`.
    """
    try:
        settings = rt.settings
        if not settings.smtp_url:
            return False
        timeout = parse_smtp_url(settings.smtp_url).timeout
        return _send(rt.db, session, lambda: transport_for(settings), now=utcnow,  # type: ignore[arg-type,return-value]
                     max_seconds=timeout * 3)
    except Exception:
        log.exception("mail: could not hand the request's mail to the background sender")
        return False


__all__ = [
    "Kind",
    "PermanentFailure",
    "SendResult",
    "SmtpConfig",
    "SmtpTransport",
    "TemporaryFailure",
    "Transport",
    "TransportError",
    "enqueue",
    "send_committed",
    "send_digests",
    "send_pending",
    "transport_for",
]
