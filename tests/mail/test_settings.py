"""Mail settings are checked at start-up like the rest: a bad URL, sender or contact stops it."""

from __future__ import annotations

import pytest

from vault.config.addresses import InvalidAddress, normalize
from vault.config.settings import ConfigError, load_settings
from vault.config.smtp import parse_smtp_url


def _load(**values: str):
    return load_settings(environ={f"VAULT_{k.upper()}": v for k, v in values.items()})


def test_urls() -> None:
    plain = parse_smtp_url("smtp://relay.internal")
    assert (plain.host, plain.port, plain.starttls, plain.implicit_tls, plain.username) == (
        "relay.internal", 25, False, False, None)
    tls = parse_smtp_url("smtp://u%40x:p%3Ass@mail.example.com?starttls=1&timeout=7")
    assert (tls.port, tls.starttls, tls.username, tls.password, tls.timeout) == (587, True, "u@x", "p:ss", 7.0)
    implicit = parse_smtp_url("smtps://mail.example.com")
    assert (implicit.port, implicit.implicit_tls) == (465, True)
    assert "p:ss" not in repr(tls)


@pytest.mark.parametrize("url, problem", [
    ("http://mail.example.com", "must look like"),
    ("smtp://", "must look like"),
    ("smtp://mail.example.com:99999", "port"),
    ("smtp://mail.example.com?starttls=maybe", "starttls"),
    ("smtp://mail.example.com?tls=1", "unknown option"),
    ("smtps://mail.example.com?starttls=1", "TLS already"),
    ("smtp://mail.example.com?timeout=0", "timeout"),
    ("smtp://mail.example.com?timeout=soon", "timeout"),
])
def test_bad_urls(url: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse_smtp_url(url)


def test_settings_from_the_environment() -> None:
    settings = _load(smtp_url="smtp://mail.example.com", mail_from="vault@example.com",
                     security_contacts=" sec@example.com, ciso@example.com ,")
    assert settings.security_contacts == ("sec@example.com", "ciso@example.com")
    assert _load().smtp_url == ""  # empty: sending off, queueing on


@pytest.mark.parametrize("values, problem", [
    ({"smtp_url": "smtp://mail.example.com"}, "VAULT_MAIL_FROM"),
    ({"smtp_url": "ftp://mail.example.com", "mail_from": "v@example.com"}, "VAULT_SMTP_URL"),
    ({"mail_from": "not an address"}, "VAULT_MAIL_FROM"),
    ({"security_contacts": "sec@example.com,nobody"}, "VAULT_SECURITY_CONTACTS"),
    ({"base_url": "vault.example.com"}, "VAULT_BASE_URL"),
    ({"smtp_urll": "smtp://x"}, "unknown setting"),
])
def test_bad_settings(values: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        _load(**values)


@pytest.mark.parametrize("address", ["", " ", "ann", "ann@", "@example.com", "ann@example", "a b@example.com",
                                     "ann@example.com\r\nBcc: x@y.com", "ann@exa_mple.com", "x" * 65 + "@e.com"])
def test_addresses_refused(address: str) -> None:
    with pytest.raises(InvalidAddress):
        normalize(address)


def test_addresses_normalized() -> None:
    assert normalize("  Ann.Smith+vault@Example.COM ") == "ann.smith+vault@example.com"
