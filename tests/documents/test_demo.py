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
from vault.audit.verify import verify_chain
from vault.cli import cli
from vault.cli.demo import DemoServer, served_at
from vault.config.settings import load_settings
from vault.mail.kinds import Kind
from vault.models import (
    Alert,
    AlertStatus,
    AuditEvent,
    Customer,
    Departure,
    DepartureStatus,
    Document,
    DocumentVersion,
    Loan,
    LoanStatus,
    MailOutbox,
    Role,
    Severity,
    User,
    UserStatus,
)
from vault.policy import role_conflict
from vault.runtime import Runtime
from vault.services import accounts, demo, demo_content, demo_work, departures, documents, todo, views
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
    # The work in progress, one line a kind, and where to find it; and the second factor the deciders meet.
    for line in ("loan request waiting for an approver: 1 (1 new;", "grade-3 loan waiting for a custodian's release: "
                 "1 (1 new;", "active loan: 1 (1 new;", "person on notice: 1 (1 new;", "open alerts: 2 (2 new"):
        assert line in first.output
    assert "set up a second factor at their first sign-in" in first.output
    assert "  tom              Lena's grade-3 loan is approved and waits for your release\n" in first.output

    second = _run(demo_env, "--no-serve", "--data-dir", str(data_dir))
    assert second.exit_code == 0, second.output
    assert "people: 17 (0 new)" in second.output
    assert "customers: 36 (0 new)" in second.output
    assert "files: 72 (0 new" in second.output
    assert "active loan: 1 (0 new;" in second.output and "open alerts: 2 (0 new" in second.output

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

            # The handover's letters to the leaver's customers carry an answer link back to the demo's server
            # (its default `VAULT_BASE_URL`), not a letter without one.
            letters = list(session.scalars(select(MailOutbox).where(MailOutbox.kind == Kind.CUSTOMER_LETTER)))
            assert letters
            assert all("http://127.0.0.1:5000/letter/" in row.body_text for row in letters), letters[0].body_text
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


@pytest.mark.parametrize(("host", "expected"), [("127.0.0.1", "http://127.0.0.1:5000"),
                                              ("0.0.0.0", "http://127.0.0.1:5000"),
                                              ("::1", "http://[::1]:5000"), ("::", "http://[::1]:5000"),
                                              ("demo.local", "http://demo.local:5000")])
def test_the_demo_links_its_mail_to_where_it_is_served(host, expected):
    assert served_at(host, 5000) == expected


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


# The demo's own trusted place, so the work's grade-3 file opens from this computer as in `vault demo`.
LOOPBACK_TRUSTED = {"trusted_places": "This computer (demo)=127.0.0.0/8"}


def _desk(rt, session, username):
    return todo.todo_for(rt, session, accounts.get_user(session, username))


def _work_rows(session):
    return (session.scalar(select(func.count()).select_from(Loan)),
            session.scalar(select(func.count()).select_from(Departure)),
            session.scalar(select(func.count()).select_from(Alert)),
            session.scalar(select(func.max(AuditEvent.seq))))


@pytest.mark.parametrize("settings_overrides", [LOOPBACK_TRUSTED])
def test_the_demo_leaves_work_on_every_desk_once(rt, settings_overrides):
    """One piece of work at each step, made by the services, found by each desk; a second run adds nothing."""
    lines: list[str] = []
    first = demo.seed(rt, files=False, echo=lines.append)
    assert first.work is not None
    assert first.work.created == {"requested": 1, "approved": 1, "active": 1, "notice": 1, "alert": 2}
    printed = "\n".join(lines)
    for line in ("loan request waiting for an approver: 1 (1 new;", "grade-3 loan waiting for a custodian's "
                 "release: 1 (1 new;", "active loan: 1 (1 new;", "person on notice: 1 (1 new; sam, last day",
                 "open alerts: 2 (2 new"):
        assert line in printed, printed
    # Only the files the work opens were stored (the other sixty-nine are left out with files=False).
    with rt.db.session() as session:
        stored = {tuple(row) for row in session.execute(select(Customer.name, Document.title).join(Document.customer))}
        assert stored == set(demo_work.FILES)

        by_reason = {loan.reason: loan for loan in session.scalars(select(Loan))}
        assert len(by_reason) == 3
        waiting = by_reason[demo_work.WAITING_FOR_APPROVAL.reason]
        releasing = by_reason[demo_work.WAITING_FOR_RELEASE.reason]
        active = by_reason[demo_work.ACTIVE.reason]
        # 1. A grade-2 request of Eva's that nobody has decided, on a customer she works.
        assert (waiting.borrower.username, waiting.document.grade, waiting.status) == ("eva", 2, LoanStatus.REQUESTED)
        assert waiting.decisions == [] and waiting.document.customer.owner.username == "eva"
        # 2. Lena's grade-3 loan: approved by as many approvers as it needs, nobody has released it.
        assert (releasing.borrower.username, releasing.document.grade, releasing.status) == (
            "lena", 3, LoanStatus.APPROVED)
        assert len(releasing.approver_ids) == releasing.approvals_required >= 1
        assert releasing.released_at is None and releasing.document.custodian.username == "tom"
        # 3. Raj's grade-3 loan of a file Nora compiled: approved, released by its custodian, running.
        assert (active.borrower.username, active.document.grade, active.status) == ("raj", 3, LoanStatus.ACTIVE)
        assert active.document.compiler.username != "raj"
        assert active.released_by.username == active.document.custodian.username == "ines"
        assert active.due_at > active.released_at
        # Separation of duties on each: borrower, compiler, approvers and the releasing custodian all differ.
        for loan in (waiting, releasing, active):
            people = [loan.borrower_id, loan.document.compiler_id, *loan.approver_ids,
                      *([loan.released_by_id] if loan.released_by_id else [])]
            assert len(set(people)) == len(people), loan.reason

        # 4. Sam on notice, his last day weeks away on a working day, Eva his successor holding his customers.
        sam = accounts.get_user(session, "sam")
        departure = departures.departure_of(session, sam)
        today = departures.today(rt.settings)
        assert sam.status == UserStatus.DEPARTING and departure.status == DepartureStatus.NOTICE
        assert 14 <= (sam.last_day - today).days <= 21 and sam.last_day.weekday() < 5
        assert departure.notice_date == today and departure.successor.username == "eva"
        # Helvetia is a VIP: a key customer to confirm even without files (with them, his grade-2 ones too).
        key = {item.id for item in departure.items if item.key}
        assert len(departure.items) == 6 and "Helvetia Medtech AG" in {
            item.customer.name for item in departure.items if item.id in key}
        assert {item.customer.owner.username for item in departure.items} == {"eva"}

        # 5. Open alerts from the real rules: the notice, and Sam's look-up outside his book.
        alerts = {alert.rule: alert for alert in session.scalars(select(Alert))}
        assert set(alerts) == {"notice", "outside_book"}
        assert all(alert.status == AlertStatus.OPEN and alert.user_id == sam.id for alert in alerts.values())
        assert alerts["outside_book"].severity == Severity.HIGH
        looked_up = session.scalar(select(Customer).where(Customer.name == "Aurelia Private Bank"))
        assert alerts["outside_book"].evidence["customers"] == [looked_up.id]
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "customer:lookup", AuditEvent.actor_id == sam.id)) == 1

        # Each desk shows its work: the approvers, the custodian who releases (not the other one), the
        # borrower's active loans with every view left, the successor's handovers, the administrator's
        # departures, and the alerts of those who handle them.
        assert [loan.id for loan in _desk(rt, session, "mia").decisions] == [waiting.id]
        assert [loan.id for loan in _desk(rt, session, "leo").decisions] == [waiting.id]
        assert _desk(rt, session, "eva").decisions == []
        assert [loan.id for loan in _desk(rt, session, "tom").releases] == [releasing.id]
        assert _desk(rt, session, "ines").releases == []
        held = _desk(rt, session, "raj").loans
        assert [(h.loan.id, h.views_left) for h in held] == [(active.id, rt.settings.grade(3).views)]
        assert {item.id for item in _desk(rt, session, "eva").handovers} == key  # the key ones wait for her
        assert [d.departure.id for d in _desk(rt, session, "admin").departures] == [departure.id]
        assert {alert.rule for alert in _desk(rt, session, "oskar").alerts} == {"notice", "outside_book"}

    # Raj opens his loan's file at once, from this computer (the demo's trusted place).
    with rt.db.session() as session:
        raj = accounts.get_user(session, "raj")
        opened = views.open_view(rt, session, raj, session.get(Document, active.document_id),
                                 reason=demo_work.ACTIVE.reason, place=demo_work.ACTIVE.place, download=False,
                                 ctx=demo_work.acting_here(rt))
        assert opened.remaining == rt.settings.grade(3).views - 1
    with rt.db.session() as session:
        before = _work_rows(session)

    lines.clear()
    second = demo.seed(rt, files=False, echo=lines.append)
    assert second.work is not None and second.work.created == {}
    printed = "\n".join(lines)
    assert "active loan: 1 (0 new;" in printed and "person on notice: 1 (0 new;" in printed, printed
    with rt.db.session() as session:
        assert _work_rows(session) == before  # not one loan, departure, alert or audit record more
    report = verify_chain(rt.db, rt.audit.key, rt.audit.checkpoints)
    assert report.ok, report.summary()


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_the_demo_without_work_leaves_the_desks_empty(rt):
    """`work=False` is the company before anyone acts: no loan, no notice, no alert, and no file."""
    summary = demo.seed(rt, files=False, work=False)
    assert summary.work is None
    with rt.db.session() as session:
        assert _work_rows(session)[:3] == (0, 0, 0)
        assert session.scalar(select(func.count()).select_from(Document)) == 0
