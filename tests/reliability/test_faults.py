"""Faults under a real deployment: gunicorn on PostgreSQL and SeaweedFS, each a process of its own.

The S3 server is killed in the middle of an upload and of a view, PostgreSQL is restarted while requests
run, a gunicorn worker is SIGKILLed while it streams a file. After each fault and its recovery:

* the user got a clear answer (503 with a message for a dependency that is down, never a 500), or a
  connection cut where the process answering died;
* `vault fsck --repair` leaves no object without its row and no row without its object;
* no unit of quota is spent for a view that delivered nothing (every unit is delivered, partial, or
  given back);
* `vault audit verify` is clean.

The SMTP server down is covered by `tests/mail/test_delivery.py` (an act while it is down is mailed once
it is back; a request page still succeeds). The data folder's disk full is `test_disk_full.py`.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from tests.fixtures.postgres import PostgresCluster
from tests.fixtures.seaweed import SeaweedServer
from tests.reliability.deployment import AppServer, Deployment
from tests.support.factories import Users, make_document
from vault.core.context import AccessContext
from vault.models import Document, DocumentView, Role, ViewStatus, utcnow
from vault.services import accounts, agreement, lost_deliveries, maintenance

# Real servers started, killed and restarted: tens of seconds on a loaded 2-core machine.
# One shared scene runs the faults in order (its counts carry from one to the next): one worker, in order.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("faults")]

MIB = 1024 * 1024
# Text over the renderer's layout limit: stored without a preview, so uploads cost only their bytes.
BIG = (b"order 4711; Example Industries; 12 units at 31.50; delivered Tuesday.\n" * (24 * MIB // 70))
VIEW = {"reason": "Prepare the visit to the customer", "place": "Head office", "download": True}
ORIGINALS = "[grades.1]\ndownload_original = true\nviews = 1000\n"


class Scene:
    def __init__(self, deployment: Deployment, server: AppServer) -> None:
        self.deployment = deployment
        self.server = server
        self.rt = deployment.runtime()
        users = Users(self.rt)
        self.tokens: dict[str, str] = {}
        for name, role in (("ann", Role.BORROWER), ("carl", Role.COMPILER)):
            users.make(name, role)
            with self.rt.db.session() as session:
                agreement.accept(self.rt, session, accounts.get_user(session, name), AccessContext.cli())
            self.tokens[name] = users.token(name)
        with self.rt.db.session() as session:
            self.carl_id = accounts.get_user(session, "carl").id
        self.big = make_document(self.rt, compiler_id=self.carl_id, grade=1, content=BIG, name="orders.txt")
        self.small = make_document(self.rt, compiler_id=self.carl_id, grade=1, name="notes.txt")
        with self.rt.db.session() as session:
            document = session.get(Document, self.big)
            assert document is not None
            self.customer = document.customer_id

    def headers(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def open_view(self, document: int) -> requests.Response:
        return requests.post(f"{self.server.url}/api/v1/documents/{document}/views", json=VIEW,
                             headers=self.headers("ann"), timeout=60)

    def views(self) -> dict[str, int]:
        return self.deployment.accounts().views_by_status

    def status_of(self, view_id: int) -> str:
        """The status of one view: each test follows its own views by id, so what earlier tests left
        (in whatever order they ran) does not change what it counts."""
        with self.rt.db.session() as session:
            view = session.get(DocumentView, view_id)
            assert view is not None
            return str(ViewStatus(view.status).value)

    def assert_consistent(self) -> None:
        """The closing checks of every fault: store and database agree, the chain verifies, and no unit
        is held by a view that can no longer deliver (expired reservations are given back by the sweep)."""
        # Exit 0 after a repair: nothing unresolved (orphans removed, nothing missing, nothing corrupt).
        repaired = self.deployment.cli("fsck", "--repair", "--min-age-minutes", "0")
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        time.sleep(1.1)  # past the content URLs' lifetime (1 s here)
        # The sweep as cron runs it now, and an hour later: expired reservations are given back, and a
        # delivery whose end could not be recorded (its worker died, or the database was down at that
        # moment) is settled as partial.
        with self.rt.db.session() as session:
            maintenance.run(self.rt, session, ctx=AccessContext.cli())
            maintenance.run(self.rt, session, ctx=AccessContext.cli(),
                            now=utcnow() + lost_deliveries.LOST_AFTER + timedelta(minutes=1))
        held = {status: n for status, n in self.views().items() if status in ("reserved", "delivering")}
        assert held == {}, held
        verified = self.deployment.cli("audit", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory, own_postgres: PostgresCluster,
          own_seaweed: SeaweedServer) -> Iterator[Scene]:
    own_postgres.create_database("faults")
    work: Path = tmp_path_factory.mktemp("faults")
    deployment = Deployment(work, database_url=own_postgres.url("faults"), seaweed=own_seaweed, policy=ORIGINALS,
                            extra={"VAULT_CONTENT_URL_SECONDS": "1"}).init()
    try:
        [server] = deployment.serve(workers=2, threads=4)
        yield Scene(deployment, server)
    finally:
        deployment.close()


def _multipart(boundary: str, title: str, size: int) -> tuple[bytes, bytes]:
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n{title}\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"grade\"\r\n\r\n1\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"orders.txt\"\r\n"
        f"Content-Type: text/plain\r\n\r\n"
    ).encode()
    return head, f"\r\n--{boundary}--\r\n".encode()


def upload_with(scene: Scene, title: str, midway: object) -> tuple[int, str]:
    """Upload BIG over one HTTP connection; call `midway()` once half of the file has been sent."""
    boundary = uuid.uuid4().hex
    head, tail = _multipart(boundary, title, len(BIG))
    connection = http.client.HTTPConnection("127.0.0.1", scene.server.port, timeout=120)
    connection.putrequest("POST", f"/api/v1/customers/{scene.customer}/documents")
    connection.putheader("Authorization", f"Bearer {scene.tokens['carl']}")
    connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    connection.putheader("Content-Length", str(len(head) + len(BIG) + len(tail)))
    connection.endheaders()
    try:
        connection.send(head)
        half = len(BIG) // 2
        for start in range(0, len(BIG), MIB):
            connection.send(BIG[start:start + MIB])
            if start <= half < start + MIB:
                time.sleep(0.3)  # the server has read and stored what came so far
                midway()  # type: ignore[operator]
        connection.send(tail)
    except OSError:
        pass  # the server answered and closed before the whole body arrived
    answer = connection.getresponse()
    body = answer.read().decode(errors="replace")
    connection.close()
    return answer.status, body


def _documents_titled(scene: Scene, title: str) -> int:
    with scene.rt.db.session() as session:
        return session.scalar(select(func.count()).select_from(Document).where(Document.title == title)) or 0


def test_s3_killed_mid_upload(scene: Scene, own_seaweed: SeaweedServer) -> None:
    status, body = upload_with(scene, "Killed store", own_seaweed.kill)
    try:
        assert status == 503, body
        assert "file store cannot be reached" in body
    finally:
        own_seaweed.restart()
    assert _documents_titled(scene, "Killed store") == 0
    scene.assert_consistent()
    # And the same upload succeeds once the store is back.
    status, body = upload_with(scene, "Store back", lambda: None)
    assert status == 201, body
    assert _documents_titled(scene, "Store back") == 1


def test_s3_killed_before_and_during_a_view(scene: Scene, own_seaweed: SeaweedServer) -> None:
    opened = scene.open_view(scene.big)
    assert opened.status_code == 201, opened.text
    own_seaweed.kill()
    try:
        content = requests.get(opened.json()["content_url"], headers=scene.headers("ann"), timeout=60)
        assert content.status_code == 503, content.text
        assert "given back" in content.text or "try again" in content.text.lower()
    finally:
        own_seaweed.restart()
    assert scene.status_of(opened.json()["view_id"]) == "refunded"
    # Midway: the first bytes arrive, then the store dies; the stream is cut, and the unit stays spent
    # as partial (bytes did leave), never counted as delivered.
    opened = scene.open_view(scene.big)
    assert opened.status_code == 201, opened.text
    received = 0
    with requests.get(opened.json()["content_url"], headers=scene.headers("ann"), timeout=60, stream=True) as stream:
        assert stream.status_code == 200
        chunks = stream.iter_content(256 * 1024)
        received += len(next(chunks))
        own_seaweed.kill()
        with pytest.raises(requests.RequestException):
            for chunk in chunks:
                received += len(chunk)
    own_seaweed.restart()
    assert 0 < received < len(BIG)
    view_id = opened.json()["view_id"]
    _wait_for(lambda: scene.status_of(view_id) == "partial", lambda: scene.status_of(view_id))
    scene.assert_consistent()
    assert scene.status_of(view_id) == "partial"


def test_postgresql_restarted_under_load(scene: Scene, own_postgres: PostgresCluster) -> None:
    statuses: list[int] = []
    failures: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def work() -> None:
        while not stop.is_set():
            try:
                opened = scene.open_view(scene.small)
                codes = [opened.status_code]
                if opened.status_code == 201:
                    content = requests.get(opened.json()["content_url"], headers=scene.headers("ann"), timeout=60)
                    codes.append(content.status_code)
                    if content.status_code >= 500:
                        failures.append(content.text[:200])
                elif opened.status_code >= 500:
                    failures.append(opened.text[:200])
            except requests.RequestException as error:
                codes = [0]
                failures.append(repr(error))
            with lock:
                statuses.extend(codes)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    own_postgres.stop_only()
    time.sleep(2)
    own_postgres.start_again()
    time.sleep(3)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    assert 500 not in statuses and 0 not in statuses, (sorted(set(statuses)), failures[:5])
    assert 503 in statuses, sorted(set(statuses))  # the outage was seen, as a clear "try again"
    assert all("database" in failure.lower() for failure in failures), failures[:5]
    # Service resumes by itself (bounded: the pool finds its connections dead and opens new ones).
    _wait_for(lambda: scene.open_view(scene.small).status_code == 201, lambda: "no view opens after the restart")
    scene.assert_consistent()


def test_a_worker_killed_mid_request(scene: Scene) -> None:
    server = scene.server
    workers = server.wait_workers(2)
    opened = scene.open_view(scene.big)
    assert opened.status_code == 201, opened.text
    with requests.get(opened.json()["content_url"], headers=scene.headers("ann"), timeout=60, stream=True) as stream:
        assert stream.status_code == 200
        chunks = stream.iter_content(256 * 1024)
        next(chunks)
        for pid in workers:  # whichever worker serves the stream
            _kill(pid)
        with pytest.raises(requests.RequestException):
            for _chunk in chunks:
                pass
    server.wait_workers(2)
    _wait_for(lambda: requests.get(f"{server.url}/healthz", timeout=5).status_code == 200, lambda: "no answer")
    # The dead worker could not record how the stream ended; the sweep settles it as partial.
    view_id = opened.json()["view_id"]
    assert scene.status_of(view_id) == "delivering"
    after = scene.open_view(scene.small)
    assert after.status_code == 201, after.text
    scene.assert_consistent()
    assert scene.status_of(view_id) == "partial"


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def _wait_for(condition, describe, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if condition():
                return
        time.sleep(0.2)
    raise AssertionError(f"not reached within {timeout:.0f} s: {describe()}")
