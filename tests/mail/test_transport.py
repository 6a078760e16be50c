"""The SMTP transport against a real server: plain, STARTTLS with a login, and every failure translated
into a temporary or a permanent one (the sender's retry decision rests on that split)."""

from __future__ import annotations

import socket
import ssl
from email.message import EmailMessage

import pytest

from tests.mail.smtpd import PASSWORD, USER, SmtpServer
from vault.config.smtp import parse_smtp_url
from vault.mail import PermanentFailure, SmtpTransport, TemporaryFailure


def _message(to: str = "ann@example.com") -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "vault@example.com", to, "Hello"
    message.set_content("Plain body")
    message.add_alternative("<p>HTML body</p>", subtype="html")
    return message


def _send(url: str, to: str = "ann@example.com") -> None:
    transport = SmtpTransport(parse_smtp_url(url))
    try:
        transport.send("vault@example.com", to, _message(to))
    finally:
        transport.close()


def test_plain_delivery(smtp: SmtpServer) -> None:
    transport = SmtpTransport(parse_smtp_url(smtp.url(timeout="5")))
    transport.send("vault@example.com", "ann@example.com", _message())
    transport.send("vault@example.com", "bob@example.com", _message("bob@example.com"))  # same connection
    transport.close()
    transport.close()
    assert [r.recipients for r in smtp.received] == [["ann@example.com"], ["bob@example.com"]]
    first = smtp.received[0]
    assert first.sender == "vault@example.com" and not first.tls
    assert first.text.strip() == "Plain body" and "HTML body" in first.html


def test_starttls_with_login(smtp_tls: SmtpServer, certificate) -> None:
    _send(smtp_tls.url(starttls="1", cafile=str(certificate[0]), timeout="5"))
    assert len(smtp_tls.received) == 1 and smtp_tls.received[0].tls


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_implicit_tls_with_login(certificate) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    server = SmtpServer(tls=context, login=True, implicit=True).start()
    try:
        _send(server.url(cafile=str(certificate[0]), timeout="5"))
        with pytest.raises(TemporaryFailure):  # the system's CAs do not know the test certificate
            _send(server.url(timeout="5"))
    finally:
        server.stop()
    assert len(server.received) == 1 and server.received[0].tls


def test_starttls_with_an_untrusted_certificate_is_refused(smtp_tls: SmtpServer) -> None:
    with pytest.raises(TemporaryFailure, match=r"SSLCertVerificationError|certificate"):
        _send(smtp_tls.url(starttls="1", timeout="5"))
    assert smtp_tls.received == []


def test_a_server_requiring_starttls_refuses_plain_text(smtp_tls: SmtpServer) -> None:
    with pytest.raises(TemporaryFailure):
        _send(smtp_tls.url(timeout="5"))
    assert smtp_tls.received == []


def test_starttls_demanded_but_not_offered(smtp: SmtpServer) -> None:
    with pytest.raises(TemporaryFailure, match="STARTTLS"):
        _send(smtp.url(starttls="1", timeout="5"))
    assert smtp.received == []


def test_wrong_password(smtp_tls: SmtpServer, certificate) -> None:
    url = smtp_tls.url(starttls="1", cafile=str(certificate[0]), timeout="5").replace(
        PASSWORD.replace(" ", "%20"), "wrong")
    assert f"{USER}:wrong@" in url
    with pytest.raises(TemporaryFailure, match="login"):
        _send(url)
    assert smtp_tls.received == []


def test_refused_mailbox_is_permanent(smtp: SmtpServer) -> None:
    smtp.refuse.add("gone@example.com")
    with pytest.raises(PermanentFailure, match="550"):
        _send(smtp.url(timeout="5"), to="gone@example.com")


def test_server_down_is_temporary() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TemporaryFailure, match=r"127\.0\.0\.1"):
        _send(f"smtp://127.0.0.1:{port}?timeout=2")
