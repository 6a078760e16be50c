"""SMTP transport (smtplib): plain, STARTTLS or implicit TLS, with a timeout on every socket operation.

One connection is opened on the first message and reused for the rest of a batch; any failure drops
it, so the next message starts on a fresh connection. With `starttls=1` a server that does not offer
STARTTLS is an error, never a silent fall-back to plain text. Certificates are verified against the
system's CA store, or the `cafile` the URL names.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from vault.config.smtp import SmtpConfig
from vault.mail.transport import PermanentFailure, TemporaryFailure, TransportError


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    return f"{code} {text}".strip()


class SmtpTransport:
    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._client: smtplib.SMTP | None = None

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.config.cafile)

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        client: smtplib.SMTP
        if cfg.implicit_tls:
            client = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout, context=self._context())
        else:
            client = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        try:
            client.ehlo()
            if cfg.starttls:
                client.starttls(context=self._context())
                client.ehlo()
            if cfg.username:
                client.login(cfg.username, cfg.password or "")
        except BaseException:
            client.close()
            raise
        return client

    def send(self, sender: str, recipient: str, message: EmailMessage) -> None:
        where = f"{self.config.host}:{self.config.port}"
        try:
            if self._client is None:
                self._client = self._connect()
            self._client.send_message(message, from_addr=sender, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            self.close()
            code, reply = next(iter(exc.recipients.values()))
            raise _classified(code, f"{where} refused {recipient}: {_reply(code, reply)}") from None
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            self.close()
            raise _classified(exc.smtp_code, f"{where}: {_reply(exc.smtp_code, exc.smtp_error)}") from None
        except smtplib.SMTPAuthenticationError as exc:
            self.close()
            raise TemporaryFailure(f"{where} refused the login: {_reply(exc.smtp_code, exc.smtp_error)}") from None
        except smtplib.SMTPNotSupportedError as exc:
            self.close()
            raise TemporaryFailure(f"{where}: {exc} (STARTTLS or login not offered)") from None
        except (smtplib.SMTPException, OSError) as exc:  # OSError covers refused, timeouts and ssl errors
            self.close()
            raise TemporaryFailure(f"{where}: {type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()


def _classified(code: int, text: str) -> TransportError:
    return PermanentFailure(text) if 500 <= code < 600 else TemporaryFailure(text)
