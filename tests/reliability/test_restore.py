"""`vault backup` of a running instance, `vault restore` into an empty one: the chain verifies, fsck is
clean, the files open with their bytes; and every refusal leaves the target as it was.

Both databases: SQLite with a local-folder store (objects always copied), PostgreSQL with an S3 store
(objects copied on request, `--objects`). The keyring goes its own way (`vault keys export`), and the
same keyring is put in place on the target before the restore, as an operator would.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, delete, func, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from tests.fixtures.postgres import PostgresCluster
from tests.fixtures.seaweed import SeaweedServer
from tests.reliability.deployment import Deployment
from tests.support.factories import Users, make_document
from vault import create_app
from vault.audit.checkpoints import PREFIX as CHECKPOINT_PREFIX
from vault.core.context import AccessContext
from vault.models import AuditCheckpoint, AuditEvent, AuditHead, Role
from vault.services import accounts, agreement
from vault.services import backup as backup_service

pytestmark = pytest.mark.slow

ORIGINALS = "[grades.1]\ndownload_original = true\n"
VIEW = {"reason": "Prepare the visit to the customer", "place": "Head office", "download": True}
PLAIN = b"Customer file: prices 4711, margins 12%, renewal in March.\n" * 200
OTHER = b"Second customer file: discount 7% until June.\n" * 50


class Instances:
    """A seeded source and a factory of empty targets of the same kind (database and store)."""

    def __init__(self, kind: str, tmp_path: Path, cluster: PostgresCluster | None,
                 seaweeds: list[SeaweedServer]) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.cluster = cluster
        self.seaweeds = seaweeds
        self.made: list[Deployment] = []
        self.databases: list[str] = []
        self.source = self.empty("source").init()

    def empty(self, name: str) -> Deployment:
        """A new instance with nothing in it (initialised only by the test when it says so)."""
        if self.cluster is None:
            deployment = Deployment(self.tmp_path / name, policy=ORIGINALS)
        else:
            database = f"restore_{name}"
            self.cluster.create_database(database)
            self.databases.append(database)
            deployment = Deployment(self.tmp_path / name, database_url=self.cluster.url(database),
                                    seaweed=self.seaweeds[min(len(self.made), len(self.seaweeds) - 1)],
                                    policy=ORIGINALS)
        self.made.append(deployment)
        return deployment

    def close(self) -> None:
        for deployment in self.made:
            deployment.close()
        if self.cluster is not None:
            for database in self.databases:
                self.cluster.drop_database(database)


@pytest.fixture(params=["sqlite+local", "postgresql+s3"])
def instances(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Instances]:
    if request.param == "sqlite+local":
        made = Instances(request.param, tmp_path, None, [])
        try:
            yield made
        finally:
            made.close()
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    with SeaweedServer(bucket="vault") as first, SeaweedServer(bucket="vault") as second:
        made = Instances(request.param, tmp_path, cluster, [first, second])
        try:
            yield made
        finally:
            made.close()


def seed(source: Deployment) -> tuple[list[int], str]:
    """Two files of a compiler, one viewed by a borrower; an audit checkpoint in the store."""
    rt = source.runtime()
    users = Users(rt)
    users.make("carl", Role.COMPILER)
    users.make("ann", Role.BORROWER)
    with rt.db.session() as session:
        agreement.accept(rt, session, accounts.get_user(session, "ann"), AccessContext.cli())
        carl = accounts.get_user(session, "carl").id
    documents = [make_document(rt, compiler_id=carl, grade=1, content=PLAIN),
                 make_document(rt, compiler_id=carl, grade=1, content=OTHER)]
    token = users.token("ann")
    assert read(source, documents[0], token) == PLAIN
    checkpointer = rt.audit.checkpoints
    assert checkpointer is not None and checkpointer.write() is not None
    return documents, token


def read(deployment: Deployment, document: int, token: str) -> bytes:
    client = create_app(runtime=deployment.runtime()).test_client()
    headers = {"Authorization": f"Bearer {token}"}
    opened = client.post(f"/api/v1/documents/{document}/views", json=VIEW, headers=headers)
    assert opened.status_code == 201, opened.get_data(as_text=True)
    content = client.get(opened.get_json()["content_url"], headers=headers)
    assert content.status_code == 200, content.get_data(as_text=True)
    return content.get_data()


def take_backup(source: Deployment, out: Path, kind: str) -> dict:
    args = ["backup", "--out", str(out)] + (["--objects"] if kind == "postgresql+s3" else [])
    done = source.cli(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "vault keys export" in done.stderr  # the warning: the keyring is not in the backup
    assert not any(path.name == "keyring.json" for path in out.rglob("*"))
    return json.loads((out / "manifest.json").read_text())


def export_keyring(source: Deployment, to: Path) -> None:
    exported = source.cli("keys", "export", "--out", str(to))
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert stat.S_IMODE(to.stat().st_mode) == 0o600
    again = source.cli("keys", "export", "--out", str(to))
    assert again.returncode != 0 and "refusing to overwrite" in again.stderr


def target_rows(target: Deployment) -> int:
    with target.runtime().db.session() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def test_backup_then_restore_into_an_empty_instance(instances: Instances, tmp_path: Path) -> None:
    source = instances.source
    documents, token = seed(source)
    # An object no row names, as an upload running during the backup leaves: not part of the dump's state.
    source.runtime().store.put("documents/written-after-the-dump", io.BytesIO(b"late"), length=4)
    out = tmp_path / "backup"
    manifest = take_backup(source, out, instances.kind)
    assert "documents/written-after-the-dump" not in {entry["key"] for entry in manifest["objects"]}
    assert manifest["audit_head"]["seq"] > 0 and manifest["checkpoint"]["seq"] >= 1
    versions = [entry for entry in manifest["objects"] if "version" in entry]
    assert len(versions) == 2 and len(manifest["objects"]) >= 4  # two files, their pages, a checkpoint
    assert all(len(entry["sha256"]) == 64 for entry in manifest["objects"])
    keyring_copy = tmp_path / "keyring-export.json"
    export_keyring(source, keyring_copy)
    with source.runtime().db.session() as session:
        acts = set(session.scalars(select(AuditEvent.action).where(AuditEvent.seq > manifest["audit_head"]["seq"])))
    assert {"backup:create", "key:export"} <= acts

    target = instances.empty("target")
    shutil.copy2(keyring_copy, target.keyring_path)  # the operator puts the exported keyring in place
    target.init()  # an empty schema and bucket, as `vault init` leaves them
    restored = target.cli("restore", str(out), "--check-sample", "5")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "fsck: checked 2 version(s)" in restored.stdout and "ok" in restored.stdout
    assert "intact" in restored.stdout, restored.stdout
    assert "sample: 2 of 2 file(s)" in restored.stdout, restored.stdout

    verified = target.cli("audit", "verify")
    assert verified.returncode == 0 and "intact" in verified.stdout, verified.stdout + verified.stderr
    assert "0 checkpoint(s) verified" not in verified.stdout, verified.stdout
    # The same person, with the same token, opens the same files and gets the same bytes.
    assert read(target, documents[0], token) == PLAIN
    assert read(target, documents[1], token) == OTHER
    with target.runtime().db.session() as session:
        restored_record = session.scalars(select(AuditEvent).where(AuditEvent.action == "backup:restore",
                                                                    AuditEvent.outcome == "allowed")).one()
        assert json.loads(restored_record.detail)["manifest"] == "authenticated"

    # The restored instance is no longer empty: a second restore into it is refused and recorded.
    before = target_rows(target)
    again = target.cli("restore", str(out))
    assert again.returncode == 1 and "empty instance only" in again.stderr, again.stderr
    with target.runtime().db.session() as session:
        refused = session.scalars(select(AuditEvent).where(AuditEvent.action == "backup:restore")
                                  .order_by(AuditEvent.seq.desc()).limit(1)).one()
        assert (refused.outcome, refused.reason_code) == ("denied", "instance_not_empty")
    assert target_rows(target) == before + 1
    assert read(target, documents[0], token) == PLAIN


def test_a_backup_that_does_not_match_its_manifest_is_refused_before_anything_is_written(
        instances: Instances, tmp_path: Path) -> None:
    source = instances.source
    seed(source)
    out = tmp_path / "backup"
    manifest = take_backup(source, out, instances.kind)
    version_key = next(entry["key"] for entry in manifest["objects"] if "version" in entry)
    page_key = next(entry["key"] for entry in manifest["objects"]
                    if "version" not in entry and entry["key"].startswith("documents/"))
    target = instances.empty("target")
    shutil.copy2(source.keyring_path, target.keyring_path)
    target.init()

    # One object altered (same size, one byte flipped), another gone.
    altered = out / "objects" / version_key
    data = bytearray(altered.read_bytes())
    data[len(data) // 2] ^= 0x01
    altered.write_bytes(bytes(data))
    (out / "objects" / page_key).unlink()
    refused = target.cli("restore", str(out))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "does not match its manifest, nothing restored" in refused.stderr
    assert f"object {page_key} is missing" in refused.stderr
    assert f"object {version_key} has another SHA-256" in refused.stderr
    assert target_rows(target) == 0
    assert list(target.runtime().store.list("")) == []

    # A keyring other than the backup's is refused too, before anything is written.
    stranger = instances.empty("stranger").init()
    wrong = stranger.cli("restore", str(out))
    assert wrong.returncode == 1 and "is not the one this backup needs" in wrong.stderr, wrong.stderr
    assert target_rows(stranger) == 0 and list(stranger.runtime().store.list("")) == []


def test_a_backup_folder_inside_the_keyrings_folder_is_refused(tmp_path: Path) -> None:
    """The same on either database: the check comes before any dump."""
    source = Deployment(tmp_path / "source", policy=ORIGINALS).init()
    inside = source.keyring_path.parent / "backups" / "today"
    refused = source.cli("backup", "--out", str(inside))
    assert refused.returncode == 1 and "inside the keyring's folder" in refused.stderr, refused.stderr
    assert "vault keys export" in refused.stderr
    assert not inside.exists()
    with source.runtime().db.session() as session:
        denied = session.scalars(select(AuditEvent).where(AuditEvent.action == "backup:create")).one()
        assert (denied.outcome, denied.reason_code) == ("denied", "backup_beside_keyring")
    # A folder that already holds something is refused as well: one backup per folder.
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("keep")
    busy = source.cli("backup", "--out", str(used))
    assert busy.returncode == 1 and "not empty" in busy.stderr, busy.stderr
    assert [path.name for path in used.iterdir()] == ["notes.txt"]
    # A folder that is no backup at all is refused by restore with a message saying so.
    stray = source.cli("restore", str(used))
    assert stray.returncode == 1 and "not a vault backup" in stray.stderr, stray.stderr
    source.close()


@pytest.mark.parametrize("instances", ["postgresql+s3"], indirect=True)
def test_a_backup_without_objects_restores_onto_a_replica_of_the_store(instances: Instances,
                                                                        tmp_path: Path) -> None:
    """Without `--objects` the S3 store's own replication keeps the objects: the restore then checks the
    replica against the manifest, and only the database must be empty."""
    source = instances.source
    documents, token = seed(source)
    out = tmp_path / "backup"
    done = source.cli("backup", "--out", str(out))
    assert done.returncode == 0 and "not copied" in done.stdout, done.stdout + done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["objects_copied"] is False and not (out / "objects").exists()
    target = instances.empty("target")
    shutil.copy2(source.keyring_path, target.keyring_path)
    target.init()
    keys = [entry["key"] for entry in manifest["objects"]]
    replica, original = target.runtime().store, source.runtime().store
    for key in keys[1:]:  # the replica lacks one object
        with original.open(key) as body:
            replica.put(key, body, length=original.stat(key).size)
    refused = target.cli("restore", str(out))
    assert refused.returncode == 1 and f"object {keys[0]} is not in the store" in refused.stderr, refused.stderr
    assert target_rows(target) == 0
    with original.open(keys[0]) as body:
        replica.put(keys[0], body, length=original.stat(keys[0]).size)
    restored = target.cli("restore", str(out))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "intact" in restored.stdout and "sample: 2 of 2 file(s)" in restored.stdout, restored.stdout
    assert read(target, documents[1], token) == OTHER


def _roll_back_audit_log(out: Path, manifest: dict) -> int:
    """What someone who can write to the backup folder (and nothing else) can do: cut the dump's audit log
    back to an earlier signed checkpoint N, drop the later checkpoints, and rewrite the manifest to match.
    Returns N. Every value written is one a valid backup taken at N would hold."""
    dump = out / manifest["database"]["file"]
    checkpoints = sorted((entry for entry in manifest["objects"] if entry["key"].startswith(CHECKPOINT_PREFIX)),
                         key=lambda entry: entry["key"])
    assert len(checkpoints) >= 2, checkpoints
    first = json.loads((out / "objects" / checkpoints[0]["key"]).read_text())
    heads = {int(shard): (int(seq), mac) for shard, seq, mac in json.loads(first["message"])["heads"]}
    rolled_back = int(json.loads(first["message"])["seq"])
    engine = create_engine(f"sqlite:///{dump}", poolclass=NullPool)
    try:
        with Session(engine) as session:
            # The append-only triggers guard a running database, not a file in someone else's hands.
            triggers = session.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                                            "AND tbl_name IN ('audit_events', 'audit_checkpoints')")).all()
            for name, _sql in triggers:
                session.execute(text(f'DROP TRIGGER "{name}"'))
            for shard, in session.execute(select(AuditHead.id)).all():
                seq, mac = heads.get(shard, (0, ""))
                session.execute(delete(AuditEvent).where(AuditEvent.shard == shard, AuditEvent.shard_seq > seq))
                session.execute(update(AuditHead).where(AuditHead.id == shard)
                                .values(seq=seq, mac=mac, last_checkpoint_seq=rolled_back))
            session.execute(delete(AuditCheckpoint).where(AuditCheckpoint.seq > rolled_back))
            for _name, sql in triggers:
                session.execute(text(sql))
            session.commit()
        with Session(engine) as session:
            state = backup_service._read_state(session)
    finally:
        engine.dispose()
    for entry in checkpoints[1:]:
        (out / "objects" / entry["key"]).unlink()
    later = {entry["key"] for entry in checkpoints[1:]}
    manifest["objects"] = [entry for entry in manifest["objects"] if entry["key"] not in later]
    manifest["audit_head"] = {"seq": state.head_seq, "mac": state.head_mac}
    manifest["checkpoint"] = state.checkpoint
    manifest["database"]["sha256"] = hashlib.sha256(dump.read_bytes()).hexdigest()
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return rolled_back


@pytest.mark.parametrize("instances", ["sqlite+local"], indirect=True)
def test_a_backup_whose_audit_log_was_rolled_back_in_the_folder_is_refused(instances: Instances,
                                                                           tmp_path: Path) -> None:
    """The manifest's own SHA-256 values prove nothing against someone who rewrites the manifest too: the
    manifest carries a MAC under a key only the keyring holds, and a restore checks it first."""
    source = instances.source
    documents, token = seed(source)  # checkpoint N
    assert read(source, documents[1], token) == OTHER  # records after N: what the rollback would hide
    checkpointer = source.runtime().audit.checkpoints
    assert checkpointer is not None and checkpointer.write() is not None
    out = tmp_path / "backup"
    manifest = take_backup(source, out, instances.kind)
    assert isinstance(manifest.get("mac"), str) and manifest["mac"].startswith("hmac-sha256:")
    genuine_head = manifest["audit_head"]["seq"]
    rolled_back = _roll_back_audit_log(out, manifest)
    assert 0 < rolled_back < genuine_head

    target = instances.empty("target")
    shutil.copy2(source.keyring_path, target.keyring_path)
    target.init()
    refused = target.cli("restore", str(out))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "does not authenticate" in refused.stderr and "nothing restored" in refused.stderr, refused.stderr
    assert target_rows(target) == 0 and list(target.runtime().store.list("")) == []
    # The flag for old backups accepts a missing MAC only, never a wrong one.
    still = target.cli("restore", str(out), "--accept-unsigned")
    assert still.returncode == 1 and "does not authenticate" in still.stderr, still.stderr
    assert target_rows(target) == 0 and list(target.runtime().store.list("")) == []


@pytest.mark.parametrize("instances", ["sqlite+local"], indirect=True)
def test_a_backup_without_a_mac_restores_only_when_the_operator_accepts_it(instances: Instances,
                                                                          tmp_path: Path) -> None:
    """Backups made before manifests were authenticated carry no MAC: refused by default, restored with
    `--accept-unsigned`, and the restore's audit record says the manifest was not authenticated."""
    source = instances.source
    documents, token = seed(source)
    out = tmp_path / "backup"
    manifest = take_backup(source, out, instances.kind)
    del manifest["mac"]
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    target = instances.empty("target")
    shutil.copy2(source.keyring_path, target.keyring_path)
    target.init()
    refused = target.cli("restore", str(out))
    assert refused.returncode == 1 and "carries no MAC" in refused.stderr, refused.stderr
    assert "--accept-unsigned" in refused.stderr
    assert target_rows(target) == 0 and list(target.runtime().store.list("")) == []

    # Accepted as it is, an unsigned manifest's shape is the folder's word: an entry that is no object was
    # a traceback (from the copied objects' check, or the store's when the objects were not copied).
    (out / "manifest.json").write_text(json.dumps({**manifest, "objects": [*manifest["objects"], "x"]}))
    malformed = target.cli("restore", str(out), "--accept-unsigned")
    assert malformed.returncode == 1 and "manifest entry 'x' is not an object" in malformed.stderr, malformed.stderr
    assert "Traceback" not in malformed.stderr
    assert target_rows(target) == 0 and list(target.runtime().store.list("")) == []
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))

    accepted = target.cli("restore", str(out), "--accept-unsigned")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "not authenticated" in accepted.stderr, accepted.stderr
    assert read(target, documents[0], token) == PLAIN
    with target.runtime().db.session() as session:
        restore_record = session.scalars(select(AuditEvent).where(AuditEvent.action == "backup:restore")).one()
        assert restore_record.outcome == "allowed"
        assert json.loads(restore_record.detail)["manifest"] == "unsigned_accepted"


def test_a_backup_and_a_restore_keep_to_vaults_objects(instances: Instances, tmp_path: Path) -> None:
    """A store shared with another program (a bucket without `VAULT_S3_PREFIX`). Was: `vault backup` copied
    every object of the store, the other program's included (anything outside `documents/` and the
    checkpoints counted as vault's), and `vault restore` refused a target whose store held the other
    program's objects, or would have written the backup's stale copies over them. Now the backup takes only
    keys of vault's shape (or named by the dump) and counts the rest; a restore of a backup that lists
    others' objects (as an older vault made) names them and skips them, and their objects in the target's
    store neither block the restore nor are overwritten."""
    source = instances.source
    documents, token = seed(source)
    theirs = ["documents/readme.txt", "reports/q4.csv", f"documents/{documents[0]}/1-{'ab' * 16}.bak",
              "audit/checkpoints/notes.json"]
    for key in theirs:
        source.runtime().store.put(key, io.BytesIO(b"theirs, at backup time"), length=22)
    out = tmp_path / "backup"
    done = source.cli("backup", "--out", str(out), *(["--objects"] if instances.kind == "postgresql+s3" else []))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"left out {len(theirs)} object(s) not vault's" in done.stdout, done.stdout
    if instances.kind == "postgresql+s3":
        assert "set VAULT_S3_PREFIX" in done.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert not {entry["key"] for entry in manifest["objects"]} & set(theirs)
    assert len([entry for entry in manifest["objects"] if "version" in entry]) == 2
    assert not any((out / "objects" / key).exists() for key in theirs)
    with source.runtime().db.session() as session:
        created = session.scalars(select(AuditEvent).where(AuditEvent.action == "backup:create")).one()
        assert json.loads(created.detail)["left_out_not_vault"] == len(theirs)

    # The same backup as an older vault made it: the other program's objects listed and copied, under a MAC
    # the keyring makes (an older vault had it), so only the rule can keep them out of the restore.
    for key in theirs:
        path = out / "objects" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"theirs, at backup time")
        manifest["objects"].append({"key": key, "size": 22,
                                    "sha256": hashlib.sha256(b"theirs, at backup time").hexdigest()})
    manifest["mac"] = backup_service.manifest_mac(
        source.runtime().keyring.derive_key(backup_service.MANIFEST_MAC_LABEL), manifest)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))

    target = instances.empty("target")
    shutil.copy2(source.keyring_path, target.keyring_path)
    target.init()
    for key in theirs:  # the other program's current objects in the target's shared store
        target.runtime().store.put(key, io.BytesIO(b"theirs, now"), length=11)
    restored = target.cli("restore", str(out))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    for key in theirs:
        assert f"NOT OURS  {key}: in the backup, but vault never gives an object such a key" in restored.stderr
        with target.runtime().store.open(key) as body:
            assert body.read() == b"theirs, now"
    assert f"{len(theirs)} object(s) of the backup not vault's left out of the restore" in restored.stderr
    assert "sample: 2 of 2 file(s)" in restored.stdout, restored.stdout
    assert read(target, documents[0], token) == PLAIN
    with target.runtime().db.session() as session:
        record = session.scalars(select(AuditEvent).where(AuditEvent.action == "backup:restore")).one()
        detail = json.loads(record.detail)
        assert (record.outcome, detail["not_restored_not_vault"]) == ("allowed", len(theirs))
        assert sorted(detail["not_restored_keys"]) == sorted(theirs)
