"""Two application servers on one PostgreSQL and one S3 store, as behind a load balancer.

Each server is a gunicorn of its own (its own process group, port and workers); requests are spread
across both. What must hold is what holds on one: quotas exact (the reservation is a row lock in the
database, not a counter in a process), one contiguous verified audit chain, an alert raised once,
a session made on one server good on the other (same secret key, sessions in the database), and a key
rotation done beside one server picked up by both without a restart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from crypto import Keyring
from tests.fixtures.postgres import PostgresCluster
from tests.fixtures.seaweed import SeaweedServer
from tests.reliability.conftest import sign_in
from tests.reliability.deployment import AppServer, Deployment
from tests.support.factories import Users, make_document
from vault.core.context import AccessContext
from vault.models import Alert, AuditEvent, Document, DocumentVersion, Role
from vault.services import accounts, agreement

# Real servers started, killed and restarted: tens of seconds on a loaded 2-core machine.
# One pair of servers for the module, its state carried from test to test: one worker, in order.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("two_servers")]

OPENERS = 50
QUOTA = 3
VIEW = {"reason": "Prepare the visit to the customer", "place": "Head office", "download": True}
# Downloads of grade 1 leave as the original bytes, so what arrives can be compared with what was stored.
ORIGINALS = "[grades.1]\ndownload_original = true\n"
PLAIN = b"Customer file: prices 4711, margins 12%.\n" * 300


class Scene:
    def __init__(self, deployment: Deployment, servers: list[AppServer]) -> None:
        self.deployment = deployment
        self.servers = servers
        self.rt = deployment.runtime()
        self.users = Users(self.rt)
        self.tokens: dict[str, str] = {}
        for name, role in (("ann", Role.BORROWER), ("carl", Role.COMPILER), ("bea", Role.BORROWER)):
            self.users.make(name, role)
            with self.rt.db.session() as session:
                agreement.accept(self.rt, session, accounts.get_user(session, name), AccessContext.cli())
            self.tokens[name] = self.users.token(name)
        self.carl_id = user_id(self.rt, "carl")

    def headers(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def server(self, n: int) -> str:
        return self.servers[n % len(self.servers)].url


def user_id(rt, name: str) -> int:
    with rt.db.session() as session:
        return accounts.get_user(session, name).id


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory, postgres_cluster: PostgresCluster,
          own_seaweed: SeaweedServer) -> Iterator[Scene]:
    postgres_cluster.create_database("two_servers")
    work: Path = tmp_path_factory.mktemp("two-servers")
    deployment = Deployment(work, database_url=postgres_cluster.url("two_servers"), seaweed=own_seaweed,
                            policy=ORIGINALS).init()
    try:
        servers = deployment.serve(workers=2, threads=8, count=2)
        yield Scene(deployment, servers)
    finally:
        deployment.close()
        postgres_cluster.drop_database("two_servers")


def test_fifty_opens_across_two_servers_spend_exactly_the_quota(scene: Scene) -> None:
    document = make_document(scene.rt, compiler_id=scene.carl_id, grade=1, view_quota=QUOTA, content=PLAIN)
    barrier = threading.Barrier(OPENERS)
    answers: list[tuple[int, int, str]] = []
    lock = threading.Lock()

    def open_one(n: int) -> None:
        barrier.wait()
        answer = requests.post(f"{scene.server(n)}/api/v1/documents/{document}/views", json=VIEW,
                               headers=scene.headers("ann"), timeout=120)
        body = answer.json()
        code = body.get("code", "") if answer.status_code != 201 else body["content_url"]
        with lock:
            answers.append((n % 2, answer.status_code, code))

    threads = [threading.Thread(target=open_one, args=(n,)) for n in range(OPENERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    statuses = sorted(status for _, status, _ in answers)
    assert statuses == [201] * QUOTA + [403] * (OPENERS - QUOTA), answers
    assert {code for _, status, code in answers if status == 403} == {"quota_exhausted"}
    assert {server for server, _, _ in answers} == {0, 1}
    # Every opened view delivers its bytes once, from whichever server the content URL is fetched.
    opened = [url for _, status, url in answers if status == 201]
    for n, url in enumerate(opened):
        content = requests.get(url.replace(scene.servers[0].url, scene.server(n)).replace(
            scene.servers[1].url, scene.server(n)), headers=scene.headers("ann"), timeout=60)
        assert content.status_code == 200 and content.content == PLAIN
    # A delivery's end is recorded as its response closes, just after the last byte reached the client.
    deadline = time.monotonic() + 30
    while scene.deployment.accounts().views_by_status != {"delivered": QUOTA} and time.monotonic() < deadline:
        time.sleep(0.1)
    assert scene.deployment.accounts().views_by_status == {"delivered": QUOTA}
    # The 47 refusals across both servers raised the probing alert once, not once per server or worker.
    ann = user_id(scene.rt, "ann")
    with scene.rt.db.session() as session:
        alerts = session.execute(select(Alert.rule, func.count()).where(Alert.user_id == ann)
                                 .group_by(Alert.rule)).all()
    assert dict(alerts).get("probing") == 1, alerts
    assert all(count == 1 for _, count in alerts), alerts


def test_the_audit_chain_is_contiguous_and_verifies(scene: Scene) -> None:
    document = make_document(scene.rt, compiler_id=scene.carl_id, grade=1, view_quota=100, content=PLAIN)
    barrier = threading.Barrier(20)

    def open_many(n: int) -> None:
        barrier.wait()
        for _ in range(2):
            answer = requests.post(f"{scene.server(n)}/api/v1/documents/{document}/views", json=VIEW,
                                   headers=scene.headers("bea"), timeout=120)
            assert answer.status_code == 201, answer.text

    threads = [threading.Thread(target=open_many, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    with scene.rt.db.session() as session:
        sequence = list(session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)))
    assert sequence == list(range(1, len(sequence) + 1))
    verified = scene.deployment.cli("audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_session_made_on_one_server_is_good_on_the_other(scene: Scene) -> None:
    browser = sign_in(scene.servers[0].url, "bea")
    for server in scene.servers:
        home = browser.get(f"{server.url}/", allow_redirects=False, timeout=30)
        assert home.status_code == 200, (server.url, home.status_code, home.headers.get("Location"))
        assert "Bea" in home.text
    # Signing out on the second server ends the session on the first too.
    logout = browser.get(f"{scene.servers[1].url}/", timeout=30)
    token = logout.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    out = browser.post(f"{scene.servers[1].url}/logout", data={"csrf_token": token}, allow_redirects=False,
                       timeout=30)
    assert out.status_code == 302
    again = browser.get(f"{scene.servers[0].url}/", allow_redirects=False, timeout=30)
    assert again.status_code == 302 and "/login" in again.headers["Location"]


def test_a_key_rotation_beside_one_server_is_picked_up_by_both(scene: Scene) -> None:
    document = make_document(scene.rt, compiler_id=scene.carl_id, grade=1, view_quota=100, content=PLAIN)
    ann = scene.headers("ann")

    def read(server: AppServer) -> bytes:
        opened = requests.post(f"{server.url}/api/v1/documents/{document}/views", json=VIEW, headers=ann,
                               timeout=60)
        assert opened.status_code == 201, opened.text
        content = requests.get(opened.json()["content_url"], headers=ann, timeout=60)
        assert content.status_code == 200, content.text
        return content.content

    for server in scene.servers * 2:  # every worker, very likely, holds the old keyring
        assert read(server) == PLAIN
    old_key = Keyring.load(scene.deployment.keyring_path).active_key_id
    rotated = scene.deployment.cli("keys", "rotate")
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    new_key = Keyring.load(scene.deployment.keyring_path).active_key_id
    assert new_key != old_key
    for server in scene.servers * 3:
        assert read(server) == PLAIN
    customer = _customer_of(scene, document)
    for server in scene.servers:
        uploaded = requests.post(f"{server.url}/api/v1/customers/{customer}/documents", headers=scene.headers("carl"),
                                 data={"title": "After the rotation", "grade": "1"},
                                 files={"file": ("plan.txt", PLAIN, "text/plain")}, timeout=60)
        assert uploaded.status_code == 201, uploaded.text
        with scene.rt.db.session() as session:
            keys = set(session.scalars(select(DocumentVersion.key_id)
                                       .where(DocumentVersion.document_id == uploaded.json()["id"])))
        assert keys == {new_key}
    checked = scene.deployment.cli("fsck", "--min-age-minutes", "0")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _customer_of(scene: Scene, document_id: int) -> int:
    with scene.rt.db.session() as session:
        found = session.get(Document, document_id)
        assert found is not None
        return found.customer_id
