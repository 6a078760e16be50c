"""Back up a running instance and restore it into an empty one: the chain verifies, fsck is clean, files open.

The backup is what an operator takes with the database's and the store's own tools: `pg_dump` (or
SQLite's online backup), and a copy of every object (documents, viewer pages, audit checkpoints). The
keyring is kept apart from both (it is what makes the copies readable) and copied on its own. The
restore goes into a fresh database and a fresh store (another S3 server, or another folder); the same
keyring and secret key are configured, and then `vault fsck`, `vault audit verify` and a view of a file
through the product must all succeed with the bytes uploaded before the backup.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import ObjectStore
from tests.fixtures.postgres import PostgresCluster
from tests.fixtures.seaweed import SeaweedServer
from tests.reliability.deployment import Deployment
from tests.support.factories import Users, make_document
from vault import create_app
from vault.core.context import AccessContext
from vault.models import Role
from vault.services import accounts, agreement

pytestmark = pytest.mark.slow

ORIGINALS = "[grades.1]\ndownload_original = true\n"
VIEW = {"reason": "Prepare the visit to the customer", "place": "Head office", "download": True}
PLAIN = b"Customer file: prices 4711, margins 12%, renewal in March.\n" * 200


@pytest.fixture(params=["sqlite+local", "postgresql+s3"])
def instances(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Deployment, Deployment, str]]:
    """(source instance, empty target instance, kind), each with its own database and store."""
    kind = request.param
    if kind == "sqlite+local":
        source = Deployment(tmp_path / "source", policy=ORIGINALS).init()
        target = Deployment(tmp_path / "target", policy=ORIGINALS)
        yield source, target, kind
    else:
        cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
        cluster.create_database("restore_source")
        cluster.create_database("restore_target")
        with SeaweedServer(bucket="vault") as first, SeaweedServer(bucket="vault") as second:
            source = Deployment(tmp_path / "source", database_url=cluster.url("restore_source"), seaweed=first,
                                policy=ORIGINALS).init()
            target = Deployment(tmp_path / "target", database_url=cluster.url("restore_target"), seaweed=second,
                                policy=ORIGINALS)
            try:
                yield source, target, kind
            finally:
                source.close()
                target.close()
                cluster.drop_database("restore_source")
                cluster.drop_database("restore_target")
        return
    source.close()
    target.close()


def seed(source: Deployment) -> tuple[int, str]:
    """A compiler's file and a borrower who has viewed it; an audit checkpoint in the store."""
    rt = source.runtime()
    users = Users(rt)
    users.make("carl", Role.COMPILER)
    users.make("ann", Role.BORROWER)
    with rt.db.session() as session:
        agreement.accept(rt, session, accounts.get_user(session, "ann"), AccessContext.cli())
        carl = accounts.get_user(session, "carl").id
    document = make_document(rt, compiler_id=carl, grade=1, content=PLAIN)
    token = users.token("ann")
    assert read(source, document, token) == PLAIN
    checkpoint = source.cli("audit", "checkpoint")
    assert checkpoint.returncode == 0, checkpoint.stdout + checkpoint.stderr
    return document, token


def read(deployment: Deployment, document: int, token: str) -> bytes:
    client = create_app(runtime=deployment.runtime()).test_client()
    headers = {"Authorization": f"Bearer {token}"}
    opened = client.post(f"/api/v1/documents/{document}/views", json=VIEW, headers=headers)
    assert opened.status_code == 201, opened.get_data(as_text=True)
    content = client.get(opened.get_json()["content_url"], headers=headers)
    assert content.status_code == 200, content.get_data(as_text=True)
    return content.get_data()


def copy_objects(source: ObjectStore, target: ObjectStore) -> int:
    """Every object of the source store into the target store, streamed; returns how many."""
    copied = 0
    for info in source.list(""):
        with source.open(info.key) as body:
            target.put(info.key, body, length=info.size)
        copied += 1
    return copied


def test_backup_then_restore_into_an_empty_instance(instances: tuple[Deployment, Deployment, str],
                                                    tmp_path: Path) -> None:
    source, target, kind = instances
    document, token = seed(source)
    backup = tmp_path / "backup"
    backup.mkdir()
    # 1. The database, consistently, while the instance runs.
    url = source.runtime().settings.database
    if kind == "sqlite+local":
        database_file = Path(url.removeprefix("sqlite:///"))
        with sqlite3.connect(database_file) as live, sqlite3.connect(backup / "vault.db") as copy:
            live.backup(copy)
    else:
        cluster_dir = url.split("host=", 1)[1]
        dumped = subprocess.run([_pg_tool("pg_dump"), "-h", cluster_dir, "-U", "vault", "-Fc",
                                 "-f", str(backup / "vault.dump"), "restore_source"],
                                capture_output=True, text=True, check=False)
        assert dumped.returncode == 0, dumped.stderr
    # 2. The objects (documents, pages, checkpoints) into a separate copy.
    staged = Deployment(tmp_path / "staging", policy=ORIGINALS, data_dir=backup / "objects-store").init()
    objects = copy_objects(source.runtime().store, staged.runtime().store)
    assert objects >= 3  # the file, its viewer page(s), the checkpoint
    # 3. The keyring, on its own (never with the data it protects).
    keyring_copy = tmp_path / "keyring-backup.json"
    shutil.copy2(source.keyring_path, keyring_copy)
    source.close()

    # Restore into the empty instance: the keyring first, then the database, then the objects.
    shutil.copy2(keyring_copy, target.keyring_path)
    target_url = target.settings_env.get("VAULT_DATABASE_URL")
    if kind == "sqlite+local":
        data = Path(target.settings_env["VAULT_DATA_DIR"])
        data.mkdir(parents=True, mode=0o700)
        shutil.copy2(backup / "vault.db", data / "vault.db")
    else:
        assert target_url is not None
        cluster_dir = target_url.split("host=", 1)[1]
        restored = subprocess.run([_pg_tool("pg_restore"), "-h", cluster_dir, "-U", "vault", "--no-owner",
                                   "-d", "restore_target", str(backup / "vault.dump")],
                                  capture_output=True, text=True, check=False)
        assert restored.returncode == 0, restored.stderr
    target.init()  # the bucket or folder; the schema is already at head
    assert copy_objects(staged.runtime().store, target.runtime().store) == objects
    staged.close()

    fsck = target.cli("fsck", "--min-age-minutes", "0")
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    verified = target.cli("audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "intact" in verified.stdout and "0 checkpoint(s) verified" not in verified.stdout, verified.stdout
    # The same person, with the same token, opens the same file and gets the same bytes.
    assert read(target, document, token) == PLAIN


def _pg_tool(name: str) -> str:
    return str(PostgresCluster().bindir / name)
