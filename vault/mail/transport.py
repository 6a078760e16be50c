"""The narrow interface every mail transport implements, and the two errors it raises.

The sender only sees :class:`Transport`: an SMTP server today; anything else that can deliver one
message (an HTTP mail API) can take its place by translating its own failures into these errors. The
distinction that matters is whether trying again can help: a refused mailbox (5xx) will be refused
tomorrow too, a connection that timed out may not be.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import Protocol


class TransportError(Exception):
    """A message was not accepted. The text names the server and the reply, never a password."""

    permanent = False


class TemporaryFailure(TransportError):
    """Worth another attempt later: server unreachable, timed out, 4xx reply, TLS or login trouble."""


class PermanentFailure(TransportError):
    """The server refused the message for good (5xx for the sender, the recipient or the content)."""

    permanent = True


class Transport(Protocol):
    def send(self, sender: str, recipient: str, message: EmailMessage) -> None:
        """Hand one message to the server for one envelope recipient, or raise a `TransportError`."""
        ...

    def close(self) -> None:
        """Release any open connection (safe to call more than once)."""
        ...
