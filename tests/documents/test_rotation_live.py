"""`vault keys rotate` while gunicorn serves with two workers: no restart, no 500.

The workers loaded the keyring at start; the rotation (another process) adds a master key and
re-wraps every data key under it. A worker that then meets the unknown key id reloads the keyring
once and retries, and uploads check the file before wrapping, so new data keys use the new key.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import select

from crypto import Keyring
from tests.documents.conftest import cli_env
from tests.support.factories import everyone_works
from vault.cli import cli
from vault.core.context import AccessContext
from vault.models import DocumentVersion, Role
from vault.services import accounts, agreement, customers

PLAIN = b"Account plan: prices 4711, margins 12%.\n" * 200
REASON = {"reason": "Prepare the visit to the customer", "place": "Head office"}


@pytest.fixture
def keyring_path(tmp_path):
    """A keyring of this test's own: rotating the shared one would change every other test's keys."""
    path = tmp_path / "own-keyring.json"
    Keyring.create(path)
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(rt, tmp_path):
    port = _free_port()
    env = {**os.environ, **cli_env(rt), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-w", "2", "-k", "gthread", "--threads", "2",
         "-b", f"127.0.0.1:{port}", "vault:create_app()"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "gunicorn.log", "wb"))  # noqa: SIM115
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                requests.get(f"{base}/api/v1/openapi.json", timeout=10)
                break
            except requests.RequestException:
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)


def _token(rt, users, name: str, *roles: Role) -> str:
    users.make(name, *roles)
    with rt.db.session() as session:
        from vault.services import accounts

        agreement.accept(rt, session, accounts.get_user(session, name), AccessContext.cli())
    return users.token(name)


def _versions(rt) -> list[DocumentVersion]:
    with rt.db.session() as session:
        return list(session.scalars(select(DocumentVersion).order_by(DocumentVersion.id)))


def test_rotation_under_a_running_server_needs_no_restart(rt, users, server, keyring_path):
    carl = {"Authorization": f"Bearer {_token(rt, users, 'carl', Role.COMPILER)}"}
    bob = {"Authorization": f"Bearer {_token(rt, users, 'bob', Role.BORROWER)}"}
    with rt.db.session() as session:
        customer = customers.create_customer(rt, session, accounts.get_user(session, "carl"), name="Acme",
                                             segment="ordinary", ctx=AccessContext.cli()).id
    everyone_works(rt, customer)

    def upload(title: str) -> int:
        answer = requests.post(f"{server}/api/v1/customers/{customer}/documents", headers=carl,
                               data={"title": title, "grade": "1"},
                               files={"file": ("plan.txt", PLAIN, "text/plain")}, timeout=30)
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]

    def read(document_id: int) -> bool:
        opened = requests.post(f"{server}/api/v1/documents/{document_id}/views", headers=bob, json=REASON,
                               timeout=30)
        assert opened.status_code in (200, 201), opened.text
        # The first page of the viewer: decrypted with the version's key, then stamped.
        page = requests.get(opened.json()["page_url"].replace("{n}", "1"), headers=bob, timeout=30)
        assert page.status_code == 200, page.text
        return page.headers["Content-Type"].startswith("image/")

    first = upload("Before the rotation")
    old_key = Keyring.load(keyring_path).active_key_id
    for _ in range(2):  # both workers, very likely, have served and hold the old keyring
        assert read(first)
    rotated = CliRunner().invoke(cli, ["keys", "rotate"], env=cli_env(rt), catch_exceptions=False)
    assert rotated.exit_code == 0, rotated.output
    new_key = Keyring.load(keyring_path).active_key_id
    assert new_key != old_key and {v.key_id for v in _versions(rt)} == {new_key}
    for _ in range(4):  # whichever worker answers
        assert read(first)
    second = upload("After the rotation")
    assert [v.key_id for v in _versions(rt) if v.document_id == second] == [new_key]
    assert read(second)
