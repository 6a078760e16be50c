"""Mail test fixtures: a real SMTP server per test (plain, or STARTTLS with a login), settings that
point the runtime at it, and a small cast of people with addresses."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.mail.smtpd import SmtpServer, self_signed
from vault.models import Role, User

BASE_URL = "https://vault.example.com"
SECURITY = ("security@example.com", "ciso@example.com")


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture
def smtp_tls(certificate: tuple[Path, Path]) -> Iterator[SmtpServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    server = SmtpServer(tls=context, login=True).start()
    yield server
    server.stop()


@pytest.fixture
def settings_overrides(smtp: SmtpServer) -> dict[str, Any]:
    return {"smtp_url": smtp.url(timeout="5"), "mail_from": "vault@example.com", "base_url": BASE_URL,
            "security_contacts": ",".join(SECURITY)}


def give_email(rt: Any, user_id: int, address: str, locale: str | None = None) -> None:
    with rt.db.session() as session:
        user = session.get(User, user_id)
        user.email = address
        user.locale = locale


@pytest.fixture
def cast(users: Any, rt: Any) -> dict[str, int]:
    """People with addresses: `name@example.com`."""
    roles = {"ann": (Role.BORROWER,), "carl": (Role.COMPILER,), "paula": (Role.APPROVER,),
             "quinn": (Role.APPROVER,), "cora": (Role.CUSTODIAN,), "cid": (Role.CUSTODIAN,),
             "abby": (Role.APPROVER, Role.BORROWER), "adam": (Role.ADMIN,)}
    ids = {}
    for name, held in roles.items():
        ids[name] = users.make(name, *held).id
        give_email(rt, ids[name], f"{name}@example.com")
    return ids
