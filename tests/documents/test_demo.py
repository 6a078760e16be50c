"""`vault demo`: a realistic company set up through the real services, the same on every run."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter

import pytest
from click.testing import CliRunner
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import func, select

from crypto import Keyring
from tests.conftest import FAST_HASH
from vault.cli import cli
from vault.cli.demo import DemoServer
from vault.config.settings import load_settings
from vault.models import Customer, Document, DocumentVersion, Role, User
from vault.policy import role_conflict
from vault.runtime import Runtime
from vault.services import demo, demo_content, documents
from vault.web.places import named_place


@pytest.fixture
def demo_env(tmp_path, database_url):
    return {"VAULT_DATABASE_URL": database_url, "VAULT_SECRET_KEY": "demo-test-secret",
            **{f"VAULT_{name.upper()}": str(value) for name, value in FAST_HASH.items()}}


def _run(env, *args):
    return CliRunner().invoke(cli, ["demo", *args], env=env, catch_exceptions=False)


def _runtime(data_dir, database_url):
    return Runtime.build(load_settings({"data_dir": data_dir, "database_url": database_url, **FAST_HASH},
                                       environ={}))


def test_demo_sets_up_a_company_once_and_serves_it(tmp_path, database_url, demo_env, monkeypatch):
    data_dir = tmp_path / "demo"
    first = _run(demo_env, "--no-serve", "--data-dir", str(data_dir))
    assert first.exit_code == 0, first.output
    assert "people: 17 (17 new)" in first.output
    assert "customers: 36 (36 new)" in first.output
    assert "files: 72 (72 new" in first.output
    assert f"password for all: {demo.DEMO_PASSWORD}" in first.output
    for user in demo.USERS:
        assert user.username in first.output
    # The logins table lines up on a terminal, where a Chinese character takes two columns.
    assert "  wei      王伟" + " " * 12 + " borrower\n" in first.output
    assert "  dmitry   Дмитрий Соколов  borrower\n" in first.output

    second = _run(demo_env, "--no-serve", "--data-dir", str(data_dir))
    assert second.exit_code == 0, second.output
    assert "people: 17 (0 new)" in second.output
    assert "customers: 36 (0 new)" in second.output
    assert "files: 72 (0 new" in second.output

    rt = _runtime(data_dir, database_url)
    try:
        with rt.db.session() as session:
            people = list(session.scalars(select(User)))
            assert len(people) == 17
            held = Counter(role for user in people for role in user.role_set)
            assert held[Role.ADMIN] >= 1 and held[Role.AUDITOR] >= 1
            assert held[Role.APPROVER] >= 2 and held[Role.CUSTODIAN] >= 2
            assert held[Role.COMPILER] >= 2 and held[Role.BORROWER] >= 3
            for user in people:  # the separation of duties holds for every account
                roles = set(user.role_set)
                assert all(role_conflict(roles - {role}, role) is None for role in roles), user.username
            assert rt.passwords.verify(people[0].password_hash, demo.DEMO_PASSWORD)

            assert session.scalar(select(func.count()).select_from(Customer)) == 36
            # Chinese and Russian customers and people among the others, working in their own language
            names = set(session.scalars(select(Customer.name)))
            assert {"上海明珠贸易有限公司", "ООО «Северный ветер»"} <= names
            by_name = {user.username: user for user in people}
            assert (by_name["wei"].display_name, by_name["wei"].locale, by_name["wei"].timezone) == (
                "王伟", "zh_Hans", "Asia/Shanghai")
            assert (by_name["dmitry"].locale, by_name["dmitry"].timezone) == ("ru", "Europe/Moscow")
            segments = Counter(session.scalars(select(Customer.segment)))
            assert set(segments) == {"vip", "key", "ordinary"}
            assert session.scalar(select(func.count()).select_from(Document)) == 72
            assert session.scalar(select(func.count()).select_from(DocumentVersion)) == 72
            assert set(session.scalars(select(Document.grade))) == {1, 2, 3}
            types = Counter(session.scalars(select(DocumentVersion.content_type)))
            assert types["application/pdf"] == 36
            assert types["image/png"] >= 10
            assert types["text/csv"] >= 5 and types["text/markdown"] >= 5 and types["text/plain"] >= 5

            plan = {(f.customer.name, f.title): f for f in demo_content.files()}
            checked = set()
            for document in session.scalars(select(Document).order_by(Document.id)):
                kind = plan[(document.customer.name, document.title)].kind
                if kind in checked:
                    continue
                checked.add(kind)
                expected = plan[(document.customer.name, document.title)].render()
                grant = documents.ReadGrant.for_check(document.latest)
                with documents.plaintext_chunks(rt, document.latest, grant) as chunks:
                    plaintext = b"".join(chunks)
                assert plaintext == expected, document.title
                with rt.store.open(document.latest.object_key) as handle:
                    stored = handle.read()
                assert expected[:64] not in stored  # encrypted at rest
                if kind == "dossier":
                    text = PdfReader(io.BytesIO(plaintext)).pages[0].extract_text()
                    assert document.customer.name in text and "Commercial terms" in text
                if kind == "chart":
                    assert Image.open(io.BytesIO(plaintext)).size == (640, 360)
                if kind == "orders":
                    assert plaintext.startswith(b"date,order,product,quantity")
            assert checked == {"dossier", "orders", "chart", "visits", "calls"}
    finally:
        rt.close()

    # Served by gunicorn, the production server: a real process answering on a real port.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, **demo_env}
    server = subprocess.Popen(
        [sys.executable, "-c", "from vault.cli import main; main()", "demo", "--data-dir", str(data_dir),
         "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        answer = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                answer = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except OSError:
                time.sleep(0.3)
        assert answer is not None, server.stdout.read() if server.poll() is not None else "no answer"
        assert answer.status == 200 and b'"status":"ok"' in answer.read().replace(b" ", b"")
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert "with gunicorn" in output and "Booting worker" in output, output[-2000:]
    assert "This computer (demo)" in output


def test_the_demo_trusts_loopback_so_every_grade_opens(tmp_path):
    conf = demo.with_loopback_trusted(load_settings({"data_dir": tmp_path}, environ={}))
    assert named_place("127.0.0.1", conf.trusted_places) == "This computer (demo)"
    assert named_place("::1", conf.trusted_places) == "This computer (demo)"
    assert named_place("10.0.0.8", conf.trusted_places) is None
    # A place the operator configured that already covers loopback is kept as it is.
    office = load_settings({"data_dir": tmp_path, "trusted_places": "Office=127.0.0.0/8"}, environ={})
    assert demo.with_loopback_trusted(office).trusted_places == office.trusted_places


def test_the_demo_server_is_gunicorn_with_threads(tmp_path):
    conf = load_settings({"data_dir": tmp_path, "secret_key": "x" * 32, **FAST_HASH}, environ={})
    server = DemoServer(conf, Keyring.create(tmp_path / "keyring.json"), "127.0.0.1", 5999)
    assert server.cfg.bind == ["127.0.0.1:5999"]
    assert (server.cfg.workers, server.cfg.threads, server.cfg.worker_class_str) == (2, 4, "gthread")


@pytest.mark.parametrize("name", ["上海明珠贸易有限公司", "ООО «Северный ветер»"])
def test_chinese_and_russian_dossiers_read_back_their_names(name):
    """The dossier of a Chinese or Russian customer draws its name and contacts in embedded fonts."""
    spec = next(c for c in demo_content.CUSTOMERS if c.name == name)
    plan = next(f for f in demo_content.files() if f.customer == spec and f.kind == "dossier")
    reader = PdfReader(io.BytesIO(plan.render()))
    text = " ".join(reader.pages[0].extract_text().split())
    assert name in text
    assert all(contact[0] in text for contact in demo_content.profile(spec).contacts)
    faces = {str(f.get_object()["/BaseFont"]) for f in reader.pages[0]["/Resources"]["/Font"].values()}
    assert "/Helvetica" not in faces
