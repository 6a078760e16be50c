"""Backups an operator can restore: a consistent database dump, a manifest of every object, the objects.

A backup folder holds:

* the database, dumped consistently while the instance runs: `pg_dump -Fc` on PostgreSQL (in the
  snapshot the audit head and the versions were read from), SQLite's online backup API otherwise;
* `manifest.json`: every object of the store with its size and the SHA-256 of the stored (encrypted)
  bytes; for each file version the size and SHA-256 of its plaintext, as recorded at upload; the audit
  chain's head (seq and MAC) and the latest signed checkpoint, as they were in the dump; the ids of the
  master keys the dump needs and a check value of the audit key, so a restore with the wrong keyring is
  refused before anything is written;
* `objects/`: a copy of every object, always for a local-folder store, on request for S3 (whose own
  replication may serve instead).

"Every object" means every object of vault's: one a row of the dump names, or one whose key has the
shape vault gives its objects (`integrity.is_vault_key`, the rule `vault fsck` removes and aborts by).
A bucket shared with other programs without `VAULT_S3_PREFIX` holds their objects too; a backup copying
them would carry their data where they never meant it to go, and a restore writing them back would put
stale copies over their current ones. So they are left out of a backup (counted), left out of a restore
(a backup made before this rule may list them: named and skipped, never written; refusing such a
backup instead would leave its authenticated manifest unrestorable), and do not make a store "not empty".

The manifest is authenticated: its field `mac` is "hmac-sha256:" and the HMAC-SHA256 of the manifest's
canonical JSON without that field (sorted keys, no spaces, ASCII), under a key derived from the keyring
(`Keyring.derive_key(MANIFEST_MAC_LABEL)`). The SHA-256 values alone would prove nothing against someone
who can write to the backup folder: they could cut the dump's audit log back to an earlier checkpoint,
delete the later checkpoints and rewrite the manifest to match, and the restored log would verify. The
key is derived from the checkpoint signing seed, not from the audit key, because the audit key may be
handed to an auditor (see `Keyring.derive_key`), and an auditor must not be able to forge a backup. An
HMAC rather than an Ed25519 signature: only the holder of the keyring restores, so nobody needs to check
a backup with the public key, and the checkpoint key then signs checkpoints and nothing else.
A manifest without `mac` (a backup made before manifests were authenticated) is restored only when the
operator says so (`accept_unsigned`), and the restore's audit record says it was not authenticated.

The keyring is never in it: whoever holds both holds every file. It is exported on its own
(`vault keys export`), and a backup folder inside the keyring's folder is refused.

The database is dumped before the store is listed: an object is always written before the row that
names it, so every object the dump refers to is in the listing. Objects written after the dump (an
upload's object whose row the dump lacks, a checkpoint past the dump's head) are left out, so the
restored instance holds no orphan and no checkpoint of records it does not have.

A restore goes into an empty instance only, checks the whole backup against its manifest before writing
anything, loads the dump and the objects, then checks the result the way `vault fsck` and `vault audit
verify` do and decrypts a sample of files. The services here commit only through the unit of work.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Any, NamedTuple

from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from storage import StorageError
from vault.audit import rows as audit_rows
from vault.audit.checkpoints import PREFIX as CHECKPOINT_PREFIX
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.core.errors import ServiceError
from vault.core.private_files import open_private
from vault.models import AuditCheckpoint, AuditHead, DocumentVersion, VersionPage, utcnow
from vault.runtime import Runtime
from vault.services import audit as audit_service
from vault.services import database_dumps as dumps
from vault.services import integrity
from vault.services.documents import OBJECT_PREFIX

FORMAT = 1
MANIFEST = "manifest.json"
OBJECTS = "objects"
SQLITE_DUMP = "database.sqlite3"
POSTGRES_DUMP = "database.dump"
CHUNK = 1024 * 1024
DEFAULT_SAMPLE = 5
# What the keyring check value is computed over: it proves the same audit key without revealing it.
_KEY_CHECK_LABEL = b"vault backup: audit key check"
# What the manifest's MAC key is derived with (HKDF info): one key for this use alone.
MANIFEST_MAC_LABEL = b"vault backup: manifest mac v1"
MAC_FIELD = "mac"
_MAC_PREFIX = "hmac-sha256:"
# How many keys of objects not vault's a backup or a restore names (the rest are counted).
FOREIGN_SHOWN = 20
# Tables a freshly initialised instance already fills: the schema's revision and the empty chain head.
_BOOKKEEPING = {"alembic_version"}


@dataclass(frozen=True)
class DumpState:
    """What the dump holds, read in the same snapshot as the dump itself."""

    head_seq: int
    head_mac: str
    checkpoint: dict[str, Any] | None
    versions: dict[str, dict[str, Any]]  # object key -> version id, plaintext size and SHA-256
    key_ids: list[str]
    pages: frozenset[str] = frozenset()  # the viewer's page objects the dump names

    def belongs(self, key: str) -> bool:
        """Whether the object is part of the state the dump holds: an object a row of the dump names, a
        checkpoint up to the dump's head, an export manifest. Not an object under `documents/` that no row
        of the dump names (an upload after the dump), a checkpoint past the dump's head, nor any object
        whose key vault never gives (another program's, in a shared bucket: see the module's docstring)."""
        if key in self.versions or key in self.pages:
            return True  # named by the dump: vault's, whatever its shape
        if not integrity.is_vault_key(key) or key.startswith(OBJECT_PREFIX):
            return False
        if key.startswith(CHECKPOINT_PREFIX):
            return int(key.removeprefix(CHECKPOINT_PREFIX).removesuffix(".json")) <= self.head_seq
        return True


@dataclass
class BackupResult:
    out: Path
    database_file: str
    objects: int = 0
    object_bytes: int = 0
    copied: bool = False
    head_seq: int = 0
    checkpoint_seq: int | None = None
    missing: list[str] = field(default_factory=list)  # versions named by the dump but absent from the store
    skipped: int = 0  # objects written after the dump (no row of the dump names them)
    foreign: int = 0  # objects under keys vault never gives (another program's): left out
    foreign_shown: list[str] = field(default_factory=list)  # the first `FOREIGN_SHOWN` of them


@dataclass
class RestoreResult:
    objects: int
    head_seq: int
    fsck: integrity.FsckReport
    verify_summary: str
    verify_ok: bool
    sampled: list[str] = field(default_factory=list)
    sample_failures: list[str] = field(default_factory=list)
    manifest: str = "authenticated"  # or "unsigned_accepted" (see `authenticate`)
    not_restored: list[str] = field(default_factory=list)  # the backup's keys that are not vault's

    @property
    def ok(self) -> bool:
        return self.fsck.ok and self.verify_ok and not self.sample_failures


# -- backup --------------------------------------------------------------------------------------------


def check_destination(out: Path, keyring_path: Path) -> None:
    """Refuse a backup folder inside the keyring's folder (or holding it), or one that is not empty.

    Raises:
        ServiceError: the folder is next to the keyring, is a file, or already holds something.
    """
    target = out.resolve()
    keyring_dir = keyring_path.resolve().parent
    if target == keyring_dir or keyring_dir in target.parents or target in keyring_path.resolve().parents:
        raise ServiceError(
            "backup_beside_keyring",
            f"{out} is inside the keyring's folder {keyring_dir} (or holds it): a backup must never travel with "
            "the key that decrypts it. Choose a folder elsewhere and export the keyring separately with "
            "`vault keys export`.")
    if target.exists() and not target.is_dir():
        raise ServiceError("backup_not_a_folder", f"{out} exists and is not a folder")
    if target.is_dir() and any(target.iterdir()):
        raise ServiceError("backup_not_empty", f"{out} is not empty; give a new or empty folder for each backup")


def backup(rt: Runtime, out: Path, *, copy_objects: bool = False, ctx: AccessContext | None = None,
           progress: Callable[[int], None] | None = None) -> BackupResult:
    """Dump the database, list (and copy) every object, write the manifest, record "backup:create".

    Objects are always copied from a local-folder store; from S3 only with `copy_objects`.

    Raises:
        ServiceError: the destination is refused (recorded as a denied "backup:create"), or the dump tool
            failed (its message included).
    """
    ctx = ctx or AccessContext.cli()
    try:
        check_destination(out, rt.settings.keyring_path)
    except ServiceError as exc:
        with rt.db.session() as session:
            rt.audit.record(session, action=AuditAction.BACKUP_CREATE, actor=None, ctx=ctx, outcome="denied",
                            reason_code=exc.code, detail={"out": str(out.resolve())})
        raise
    copy = copy_objects or rt.settings.storage != "s3"
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    dialect = rt.db.dialect
    if dialect == "sqlite":
        database_file = SQLITE_DUMP
        state = _dump_sqlite(rt, out / database_file)
    elif dialect == "postgresql":
        database_file = POSTGRES_DUMP
        state = _dump_postgres(rt, out / database_file)
    else:
        raise ServiceError("backup_unsupported", f"no backup for a {dialect} database")
    result = BackupResult(out=out, database_file=database_file, copied=copy, head_seq=state.head_seq,
                          checkpoint_seq=state.checkpoint["seq"] if state.checkpoint else None)
    objects: list[dict[str, Any]] = []
    for info in rt.store.list(""):
        if not state.belongs(info.key):
            if integrity.is_vault_key(info.key):
                result.skipped += 1
            else:
                result.foreign += 1
                if len(result.foreign_shown) < FOREIGN_SHOWN:
                    result.foreign_shown.append(info.key)
            continue
        entry: dict[str, Any] = {"key": info.key}
        with rt.store.open(info.key) as body:
            if copy:
                path = _object_path(out, info.key)
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                with open_private(path) as handle:
                    entry["size"], entry["sha256"] = _stream(body, handle)
            else:
                entry["size"], entry["sha256"] = _stream(body, None)
        if info.key in state.versions:
            entry["version"] = state.versions[info.key]
        objects.append(entry)
        result.objects += 1
        result.object_bytes += entry["size"]
        if progress is not None:
            progress(1)
    listed = {entry["key"] for entry in objects}
    result.missing = sorted(key for key in state.versions if key not in listed)
    manifest = {
        "format": FORMAT,
        "created": utcnow().isoformat(),
        "database": {"dialect": dialect, "file": database_file, "sha256": _file_sha256(out / database_file)},
        "storage": rt.settings.storage,
        "objects_copied": copy,
        "audit_head": {"seq": state.head_seq, "mac": state.head_mac},
        "checkpoint": state.checkpoint,
        "keyring": {"key_ids": state.key_ids, "audit_key_check": audit_key_check(rt.keyring.audit_key)},
        "missing_objects": result.missing,
        "objects": objects,
    }
    manifest[MAC_FIELD] = manifest_mac(rt.keyring.derive_key(MANIFEST_MAC_LABEL), manifest)
    with open_private(out / MANIFEST) as handle:
        handle.write(json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8"))
    with rt.db.session() as session:
        rt.audit.record(session, action=AuditAction.BACKUP_CREATE, actor=None, ctx=ctx,
                        outcome="allowed" if not result.missing else "failed",
                        reason_code="objects_missing" if result.missing else None,
                        detail={"out": str(out.resolve()), "dialect": dialect, "objects": result.objects,
                                "bytes": result.object_bytes, "objects_copied": copy,
                                "skipped_after_dump": result.skipped, "left_out_not_vault": result.foreign,
                                "audit_head_seq": state.head_seq, "checkpoint_seq": result.checkpoint_seq,
                                "missing": result.missing[:100]})
    return result


class HeadState(NamedTuple):
    """The audit log's state as a backup records it: records in all chains and the digest of the heads."""

    seq: int
    mac: str


def audit_key_check(audit_key: bytes) -> str:
    """A value that matches only for the same audit key, and from which the key cannot be recovered."""
    return hmac.new(audit_key, _KEY_CHECK_LABEL, hashlib.sha256).hexdigest()


def manifest_mac(key: bytes, manifest: dict[str, Any]) -> str:
    """The MAC a manifest carries: over its canonical JSON without the MAC field, so it can be written
    into the manifest it covers (and re-computed from the file as read, whatever its layout)."""
    body = {name: value for name, value in manifest.items() if name != MAC_FIELD}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return _MAC_PREFIX + hmac.new(key, canonical, hashlib.sha256).hexdigest()


def _read_state(session: Session) -> DumpState:
    head_seq, head_mac = audit_rows.head_state(session)
    checkpoint = session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(1)).first()
    versions = {
        key: {"id": vid, "size": size, "sha256": sha}
        for vid, key, size, sha in session.execute(select(DocumentVersion.id, DocumentVersion.object_key,
                                                          DocumentVersion.size, DocumentVersion.sha256))
    }
    key_ids = sorted(session.scalars(select(DocumentVersion.key_id).distinct()))
    pages = frozenset(session.scalars(select(VersionPage.object_key)))
    return DumpState(
        head_seq=head_seq, head_mac=head_mac,
        checkpoint=None if checkpoint is None else {
            "seq": checkpoint.seq, "mac": checkpoint.mac, "ts": checkpoint.ts.isoformat(),
            "object_key": checkpoint.object_key, "signature": checkpoint.signature,
            **({"heads": json.loads(checkpoint.heads)} if checkpoint.heads else {})},
        versions=versions, key_ids=key_ids, pages=pages)


def _dump_sqlite(rt: Runtime, path: Path) -> DumpState:
    """SQLite's online backup API: a consistent copy while other connections read and write."""
    dumps.sqlite_copy(dumps.sqlite_file(rt.settings.database), path)
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool)
    try:
        with Session(engine) as session:
            return _read_state(session)
    finally:
        engine.dispose()


def _dump_postgres(rt: Runtime, path: Path) -> DumpState:
    """`pg_dump -Fc` in a snapshot exported by a transaction that reads the head and versions in it."""
    dumps.pg_tool("pg_dump")  # before the snapshot: a missing tool is said at once
    with rt.db.engine.connect() as connection:
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
        transaction = connection.begin()
        try:
            snapshot = connection.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
            with Session(bind=connection) as session:
                state = _read_state(session)
            dumps.pg_dump(rt.settings.database, path, snapshot=snapshot)
        finally:
            transaction.rollback()  # a read: nothing to keep
    return state


def _stream(body: IO[bytes], sink: IO[bytes] | None) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    while chunk := body.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if sink is not None:
            sink.write(chunk)
    return size, digest.hexdigest()


def _file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return _stream(handle, None)[1]


def _object_path(folder: Path, key: str) -> Path:
    """Where object `key` lives in a backup folder; a key that would leave the folder is refused."""
    base = (folder / OBJECTS).resolve()
    path = (base / key).resolve()
    if base not in path.parents:
        raise ServiceError("backup_bad_key", f"object key {key!r} does not name a file inside the backup")
    return path


# -- restore -------------------------------------------------------------------------------------------


def read_manifest(folder: Path) -> dict[str, Any]:
    """The backup's manifest, checked for shape.

    Raises:
        ServiceError: no manifest, not JSON, or another format.
    """
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ServiceError("backup_no_manifest", f"{folder} holds no {MANIFEST}: not a vault backup") from None
    except (OSError, ValueError) as exc:
        raise ServiceError("backup_bad_manifest", f"{folder / MANIFEST} cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ServiceError("backup_bad_manifest", f"{folder / MANIFEST} is not a format {FORMAT} vault manifest")
    required = {"database", "objects", "objects_copied", "audit_head", "keyring"}
    if not required <= set(manifest) or not isinstance(manifest["objects"], list):
        raise ServiceError("backup_bad_manifest", f"{folder / MANIFEST} lacks {sorted(required - set(manifest))}")
    if not isinstance(manifest["database"], dict):
        raise ServiceError("backup_bad_manifest", f"{folder / MANIFEST}: its database entry is not an object")
    return manifest


def instance_contents(rt: Runtime) -> list[str]:
    """What makes the instance not empty: tables with rows, a chain with records, objects in the store."""
    found: list[str] = []
    with rt.db.engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            if table in _BOOKKEEPING:
                continue
            if table == AuditHead.__tablename__:
                rows = connection.execute(select(func.count()).select_from(AuditHead)
                                          .where(AuditHead.seq > 0)).scalar_one()
            else:
                rows = connection.execute(text(f'SELECT COUNT(*) FROM "{table}"')).scalar_one()  # noqa: S608
            if rows:
                found.append(f"table {table} has {rows} row(s)")
        connection.rollback()
    # Only vault's objects make the store not empty: a bucket shared with other programs always holds
    # theirs, and a restore writes only keys of vault's shape, which no key of theirs can be.
    if any(integrity.is_vault_key(info.key) for info in rt.store.list("")):
        found.append(f"the store {rt.store.describe()} holds objects")
    return found


def check_backup(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """Every problem of the backup folder against its manifest (database file and copied objects)."""
    problems: list[str] = []
    database = manifest["database"]
    dump = folder / str(database.get("file", ""))
    if not dump.is_file():
        problems.append(f"the database dump {dump.name} is missing")
    elif _file_sha256(dump) != database.get("sha256"):
        problems.append(f"the database dump {dump.name} differs from the manifest")
    # Possible only in a manifest without a MAC, accepted as it is: named, and left out of the checks below.
    problems += [f"manifest entry {entry!r} is not an object" for entry in manifest["objects"]
                 if not isinstance(entry, dict)]
    if not manifest["objects_copied"]:
        return problems
    for entry in _entries(manifest):
        try:
            path = _object_path(folder, entry["key"])
            with path.open("rb") as handle:
                size, sha = _stream(handle, None)
        except FileNotFoundError:
            problems.append(f"object {entry['key']} is missing")
            continue
        except (ServiceError, OSError, KeyError, TypeError) as exc:
            problems.append(f"object {entry.get('key')!r} cannot be read: {exc}")
            continue
        if size != entry.get("size"):
            problems.append(f"object {entry['key']} has {size} bytes, the manifest says {entry.get('size')}")
        elif sha != entry.get("sha256"):
            problems.append(f"object {entry['key']} has another SHA-256 than the manifest's")
    return problems


def _entries(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The manifest's object entries that are objects (`check_backup` names the others)."""
    return [entry for entry in manifest["objects"] if isinstance(entry, dict)]


def _check_store_holds(rt: Runtime, manifest: dict[str, Any]) -> list[str]:
    """For a backup without objects: the (replicated) store must already hold each with its hash."""
    problems = []
    for entry in _entries(manifest):
        try:
            with rt.store.open(entry["key"]) as body:
                size, sha = _stream(body, None)
        except StorageError as exc:
            problems.append(f"object {entry['key']} is not in the store: {exc}")
            continue
        if (size, sha) != (entry.get("size"), entry.get("sha256")):
            problems.append(f"object {entry['key']} in the store differs from the manifest")
    return problems


def authenticate(rt: Runtime, folder: Path, manifest: dict[str, Any], *, accept_unsigned: bool = False) -> str:
    """Check that this keyring is the backup's and that the manifest is the one `backup` wrote.

    Returns "authenticated", or "unsigned_accepted" for a manifest without a MAC that the operator chose
    to accept (`accept_unsigned`). A wrong MAC is refused whatever the flag says: the flag exists for
    backups made before manifests were authenticated, not for altered ones.

    Raises:
        ServiceError: `restore_wrong_keyring`, `backup_unsigned` (no MAC, not accepted) or
            `backup_forged` (the MAC does not match: the manifest was changed after the backup).
    """
    keyring = manifest["keyring"]
    key_ids = keyring.get("key_ids", []) if isinstance(keyring, dict) else []
    absent = sorted(set(key_ids if isinstance(key_ids, list) else []) - set(rt.keyring.key_ids()))
    if not isinstance(keyring, dict) or absent or \
            keyring.get("audit_key_check") != audit_key_check(rt.keyring.audit_key):
        raise ServiceError("restore_wrong_keyring",
                           f"the keyring {rt.settings.keyring_path} is not the one this backup needs"
                           + (f" (it lacks master keys {', '.join(absent)})" if absent else " (another audit key)")
                           + "; put the keyring exported with `vault keys export` there first")
    claimed = manifest.get(MAC_FIELD)
    if claimed is None:
        if accept_unsigned:
            return "unsigned_accepted"
        raise ServiceError(
            "backup_unsigned",
            f"{folder / MANIFEST} carries no MAC, so nothing proves it is the manifest `vault backup` wrote "
            "(a backup made before manifests were authenticated); nothing restored. If you know this backup "
            "was kept where nobody could change it, restore it with --accept-unsigned (recorded in the audit log)")
    expected = manifest_mac(rt.keyring.derive_key(MANIFEST_MAC_LABEL), manifest)
    if not isinstance(claimed, str) or not hmac.compare_digest(claimed.encode(), expected.encode()):
        raise ServiceError(
            "backup_forged",
            f"{folder / MANIFEST} does not authenticate under this keyring: it was changed after `vault backup` "
            "wrote it; nothing restored. Use another backup")
    return "authenticated"


def restore(rt: Runtime, folder: Path, *, sample: int = DEFAULT_SAMPLE, ctx: AccessContext | None = None,
            seed: int | None = None, verify_jobs: int = 1, accept_unsigned: bool = False) -> RestoreResult:
    """Restore the backup in `folder` into this empty instance, then check it (the audit log with up to
    `verify_jobs` worker processes: see `audit_service.verify`).

    Nothing is written until the keyring is found to be the backup's, the manifest to carry its MAC
    (`authenticate`; a manifest without one only with `accept_unsigned`), the instance to be empty and the
    backup to match its manifest. A refusal on a non-empty instance is recorded in it.

    Raises:
        ServiceError: any of those checks failed (the reason in its message); the restore tool failed.
    """
    ctx = ctx or AccessContext.cli()
    manifest = read_manifest(folder)
    authenticity = authenticate(rt, folder, manifest, accept_unsigned=accept_unsigned)
    # Authenticated as a whole, then kept to vault's objects: the rest is neither checked nor written.
    not_restored = [str(entry.get("key")) for entry in manifest["objects"] if not _restorable(entry)]
    manifest = {**manifest, "objects": [entry for entry in manifest["objects"] if _restorable(entry)]}
    dialect = manifest["database"].get("dialect")
    if dialect != rt.db.dialect:
        raise ServiceError("restore_wrong_database",
                           f"the backup holds a {dialect} database; this instance uses {rt.db.dialect}")
    rt.store.ensure_ready()
    contents = instance_contents(rt)
    if not manifest["objects_copied"]:
        # The objects come from the store's own replication: only the database must be empty.
        contents = [what for what in contents if not what.startswith("the store")]
    if contents:
        if any(what.startswith("table") for what in contents):
            with rt.db.session() as session:
                rt.audit.record(session, action=AuditAction.BACKUP_RESTORE, actor=None, ctx=ctx, outcome="denied",
                                reason_code="instance_not_empty",
                                detail={"from": str(folder.resolve()), "found": contents[:20]})
        raise ServiceError("restore_not_empty",
                           "a restore goes into an empty instance only, and this one is not: " + "; ".join(contents))
    problems = check_backup(folder, manifest)
    if not manifest["objects_copied"]:
        problems += _check_store_holds(rt, manifest)
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise ServiceError("backup_damaged", f"the backup does not match its manifest, nothing restored: {shown}")

    dump = folder / manifest["database"]["file"]
    if dialect == "sqlite":
        _load_sqlite(rt, dump)
    else:
        _load_postgres(rt, dump)
    with rt.db.session() as session:
        head = HeadState(*audit_rows.head_state(session))
    if (head.seq, head.mac) != (manifest["audit_head"]["seq"], manifest["audit_head"]["mac"]):
        raise ServiceError("restore_head_differs",
                           f"the restored audit heads ({head.seq} records) are not the manifest's "
                           f"({manifest['audit_head']['seq']}); the dump and the manifest do not belong together")
    copied = 0
    if manifest["objects_copied"]:
        for entry in manifest["objects"]:
            with _object_path(folder, entry["key"]).open("rb") as body:
                rt.store.put(entry["key"], body, length=entry["size"])
            copied += 1
    with rt.db.session() as session:
        rt.audit.record(session, action=AuditAction.BACKUP_RESTORE, actor=None, ctx=ctx,
                        detail={"from": str(folder.resolve()), "created": manifest.get("created"),
                                "objects": copied, "audit_head_seq": head.seq, "manifest": authenticity,
                                "not_restored_not_vault": len(not_restored),
                                "not_restored_keys": not_restored[:FOREIGN_SHOWN],
                                "checkpoint_seq": (manifest.get("checkpoint") or {}).get("seq")})
    fsck = integrity.fsck(rt, min_age=timedelta(0), ctx=ctx)
    with rt.db.session() as session:
        report = audit_service.verify(rt, session, actor=None, ctx=ctx, jobs=verify_jobs)
    result = RestoreResult(objects=copied, head_seq=head.seq, fsck=fsck, verify_summary=report.summary(),
                           verify_ok=report.ok, manifest=authenticity, not_restored=not_restored)
    _check_sample(rt, manifest, sample, seed, result)
    return result


def _restorable(entry: Any) -> bool:
    """Whether a manifest entry is one of vault's objects: a file version the dump names (the manifest says
    so under its MAC), or a key of the shape vault gives its objects. A backup made before backups kept to
    vault's objects may list another program's too; writing them back would put stale copies over theirs."""
    if not isinstance(entry, dict):
        return True  # malformed: left to `check_backup`, which refuses it
    key = entry.get("key")
    return isinstance(entry.get("version"), dict) or (isinstance(key, str) and integrity.is_vault_key(key))


def _check_sample(rt: Runtime, manifest: dict[str, Any], sample: int, seed: int | None,
                  result: RestoreResult) -> None:
    """Decrypt a few restored files; their plaintext must have the size and SHA-256 the manifest recorded."""
    versions = [entry for entry in manifest["objects"] if isinstance(entry.get("version"), dict)]
    chosen = random.Random(seed).sample(versions, min(sample, len(versions)))  # noqa: S311 (a sample, not a secret)
    for entry in chosen:
        recorded = entry["version"]
        with rt.db.session() as session:
            version = session.get(DocumentVersion, recorded["id"])
            if version is not None:
                session.expunge(version)
        result.sampled.append(entry["key"])
        if version is None or version.object_key != entry["key"]:
            result.sample_failures.append(f"{entry['key']}: no version {recorded['id']} names it")
            continue
        if (version.size, version.sha256) != (recorded["size"], recorded["sha256"]):
            result.sample_failures.append(f"{entry['key']}: the restored row differs from the manifest")
            continue
        problem = integrity.verify_version(rt, version)
        if problem is not None:
            result.sample_failures.append(f"{entry['key']}: {problem.kind} {problem.detail}".rstrip())


def _load_sqlite(rt: Runtime, dump: Path) -> None:
    """Copy the dump into the instance's database file with the backup API (safe with WAL files)."""
    rt.db.dispose()
    path = Path(dumps.sqlite_file(rt.settings.database))
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    dumps.sqlite_copy(dump, path, read_only=True)


def _load_postgres(rt: Runtime, dump: Path) -> None:
    """`pg_restore` into the (empty) database, dropping the empty schema `vault init` may have made."""
    dumps.pg_tool("pg_restore")
    rt.db.dispose()
    dumps.pg_restore(rt.settings.database, dump)


__all__ = ["BackupResult", "RestoreResult", "authenticate", "backup", "check_backup", "check_destination",
           "instance_contents", "manifest_mac", "read_manifest", "restore"]
