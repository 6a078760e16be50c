"""A real SMTP server for the mail tests (aiosmtpd), on an ephemeral port, optionally with STARTTLS and
a login, that keeps every message it accepts and can be stopped and started again on the same port."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import threading
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

USER, PASSWORD = "mailer", "s3cret pass"


class _PortZeroController(Controller):
    """aiosmtpd's readiness probe cannot connect to port 0; learn the real port before it tries."""

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    tls: bool

    @property
    def text(self) -> str:
        return self.message.get_body(("plain",)).get_content()

    @property
    def html(self) -> str:
        return self.message.get_body(("html",)).get_content()


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.server.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.server.delay:
            await asyncio.sleep(self.server.delay)
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self.server.lock:
            tls = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
            self.server.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message,  # type: ignore[arg-type]
                                                 tls))
        return "250 OK"


class SmtpServer:
    def __init__(self, tls: ssl.SSLContext | None = None, login: bool = False, implicit: bool = False) -> None:
        self.tls = tls
        self.implicit = implicit  # TLS from the first byte (smtps://) instead of STARTTLS
        self.login = login
        self.port = 0
        self.received: list[Received] = []
        self.refuse: set[str] = set()
        self.delay = 0.0
        self.lock = threading.Lock()
        self._controller: Controller | None = None

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login == USER.encode() and data.password == PASSWORD.encode()
        return AuthResult(success=ok, handled=False)

    def start(self) -> SmtpServer:
        kwargs: dict[str, Any] = {}
        if self.tls is not None and self.implicit:
            # aiosmtpd only counts STARTTLS as TLS when deciding to offer AUTH; this connection is TLS
            # from its first byte, so AUTH may be offered at once.
            kwargs.update(ssl_context=self.tls, auth_require_tls=False)
        elif self.tls is not None:
            kwargs.update(tls_context=self.tls, require_starttls=True)
        if self.login:
            kwargs.update(authenticator=self._authenticate, auth_required=True)
        controller = _PortZeroController(_Handler(self), hostname="127.0.0.1", port=self.port, **kwargs)
        controller.start()
        self.port = controller.port
        self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def url(self, **options: str) -> str:
        auth = f"{USER}:{PASSWORD.replace(' ', '%20')}@" if self.login else ""
        query = "&".join(f"{k}={v}" for k, v in options.items())
        scheme = "smtps" if self.implicit else "smtp"
        return f"{scheme}://{auth}127.0.0.1:{self.port}" + (f"?{query}" if query else "")

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.recipients]


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 and localhost (EC P-256: made in milliseconds)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path
