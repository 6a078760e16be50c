"""`vault fsck`: do the object store and the database still agree, and does every file still decrypt?

Three kinds of damage are looked for:

* orphan objects: ciphertext under `documents/` that no version row names (left by a crash between the
  store and the database, or a delete that failed). Harmless but unaccounted for; `--repair` removes
  them, and only them. Only an object whose key has the shape vault gives its objects (`is_vault_key`) is
  an orphan: any other under `documents/` (a bucket shared without `VAULT_S3_PREFIX`, another program's
  file in vault's folder) is reported as not ours, counted apart and never removed, as its unfinished
  uploads are below.
* missing objects: a version row whose object is gone. Nothing can repair that but a backup.
* corrupt versions: the object does not authenticate under its data key, or decrypts to a different
  size or SHA-256 than was recorded at upload.
* the viewer's page objects of each version (`version_pages`): missing, not authenticating under the
  version's key and page binding, or with another SHA-256 than recorded; fewer rows than the page count.

* temporary files a crashed write left in a local folder store (`.vault-tmp-*`): never objects, never
  read, but they take space and hold ciphertext nobody accounts for. `--repair` removes those older than
  `min_age` that no write holds (the store tells a write in progress by its lock, however stalled it is).

* unfinished multipart uploads in an S3 store (a process killed mid-upload): invisible to object listings,
  their parts hold space until aborted. `--repair` aborts those with no activity (begun, or a part sent)
  for `min_age`; a younger one may be an upload still going and is left alone. Only an upload whose key
  has the shape vault gives its objects (`is_vault_key`) is vault's: any other in the store's bucket (a
  bucket shared without `VAULT_S3_PREFIX`, or another program writing into vault's folder) is reported as
  not ours and never aborted, since aborting it would destroy another program's work in progress.

Everything is streamed and paged, so memory is flat in the number and size of files. An object younger
than `min_age` that no row names yet may be an upload whose transaction has not committed: it is
reported apart and never removed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select

from crypto import CryptoError, KeyringError, decrypt_stream
from storage import (
    LeavesTemporaryFiles,
    LeavesUnfinishedUploads,
    ObjectInfo,
    ObjectNotFound,
    StorageError,
    UnfinishedUpload,
)
from vault.audit.checkpoints import PREFIX as CHECKPOINT_PREFIX
from vault.audit.export import MANIFEST_PREFIX
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.models import PREVIEW_READY, DocumentVersion, VersionPage, utcnow
from vault.runtime import Runtime
from vault.services import renditions
from vault.services.documents import OBJECT_PREFIX, discard_object, version_context

BATCH = 500
# Keys named by one "storage:repair" record (each record stays small, whatever the number of orphans).
REPAIR_BATCH = 100
# Objects not vault's are counted, and only this many named: a shared bucket may hold thousands of them
# under `documents/`, and a list of them all would break the flat memory and bury vault's own findings.
FOREIGN_SHOWN = 20
DEFAULT_MIN_AGE = timedelta(minutes=15)
# Every key vault gives an object: a version's ciphertext (`documents.object_key`), its viewer pages
# (`renditions.page_key`), a signed checkpoint (`checkpoints.object_key`), an export's manifest
# (`export.manifest_key`). The random part of a version's key makes a stranger's key of this shape unlikely
# by accident; `VAULT_S3_PREFIX` is what keeps a shared bucket's other users out altogether.
_VAULT_KEY = re.compile(
    rf"{re.escape(OBJECT_PREFIX)}[0-9]+/[0-9]+-[0-9a-f]{{32}}(?:{re.escape(renditions.PAGES_SUFFIX)}[0-9]+)?"
    rf"|{re.escape(CHECKPOINT_PREFIX)}[0-9]{{20}}\.json"
    rf"|{re.escape(MANIFEST_PREFIX)}[0-9]{{20}}\.manifest\.json"
)


def is_vault_key(key: str) -> bool:
    """Whether `key` has the shape of a key vault gives its objects (see `_VAULT_KEY`)."""
    return _VAULT_KEY.fullmatch(key) is not None


@dataclass(frozen=True)
class Problem:
    key: str
    version_id: int | None
    kind: str  # orphan | missing | undecryptable | size_mismatch | sha256_mismatch | unreadable | pages_missing
    detail: str = ""


@dataclass
class FsckReport:
    versions_checked: int = 0
    objects_listed: int = 0
    orphans: list[Problem] = field(default_factory=list)
    young_orphans: list[Problem] = field(default_factory=list)
    missing: list[Problem] = field(default_factory=list)
    corrupt: list[Problem] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    remove_failed: list[str] = field(default_factory=list)
    # Temporary files of writes: left by a crash, or (pending) younger than min_age or held by a write.
    leftovers: list[Problem] = field(default_factory=list)
    pending_leftovers: list[Problem] = field(default_factory=list)
    removed_leftovers: list[str] = field(default_factory=list)
    # Unfinished multipart uploads (S3): idle for min_age, or (pending) active more recently than that.
    uploads: list[UnfinishedUpload] = field(default_factory=list)
    pending_uploads: list[UnfinishedUpload] = field(default_factory=list)
    aborted_uploads: list[str] = field(default_factory=list)  # upload ids
    # Unfinished uploads under a key vault never gives an object: another program's, never aborted.
    foreign_uploads: list[UnfinishedUpload] = field(default_factory=list)
    # Objects under `documents/` that no row names and whose key vault never gives: another program's,
    # never removed. Counted; the first `FOREIGN_SHOWN` kept to be named.
    foreign_objects: int = 0
    foreign_shown: list[Problem] = field(default_factory=list)

    @property
    def unresolved(self) -> int:
        """Problems still there after the run (repaired orphans, leftovers and uploads no longer count)."""
        left_orphans = [p for p in self.orphans if p.key not in self.removed]
        left_over = [p for p in self.leftovers if p.key not in self.removed_leftovers]
        left_uploads = [u for u in self.uploads if u.upload_id not in self.aborted_uploads]
        return (len(left_orphans) + len(left_over) + len(left_uploads) + len(self.missing)
                + len(self.corrupt))

    @property
    def ok(self) -> bool:
        return self.unresolved == 0

    def summary(self) -> dict[str, int]:
        return {
            "versions_checked": self.versions_checked,
            "objects_listed": self.objects_listed,
            "orphans": len(self.orphans),
            "young_orphans": len(self.young_orphans),
            "missing": len(self.missing),
            "corrupt": len(self.corrupt),
            "removed": len(self.removed),
            "leftovers": len(self.leftovers),
            "pending_leftovers": len(self.pending_leftovers),
            "removed_leftovers": len(self.removed_leftovers),
            "unfinished_uploads": len(self.uploads),
            "pending_uploads": len(self.pending_uploads),
            "aborted_uploads": len(self.aborted_uploads),
            "foreign_uploads": len(self.foreign_uploads),
            "foreign_objects": self.foreign_objects,
        }


Progress = Callable[[int], None]


def count_versions(rt: Runtime) -> int:
    with rt.db.session() as session:
        return session.scalar(select(func.count()).select_from(DocumentVersion)) or 0


def fsck(
    rt: Runtime,
    *,
    repair: bool = False,
    min_age: timedelta = DEFAULT_MIN_AGE,
    ctx: AccessContext | None = None,
    progress: Progress | None = None,
) -> FsckReport:
    """Check every version and every object; with `repair`, delete orphans older than `min_age`.

    An object that no row names and whose key vault never gives is another program's: counted in
    `foreign_objects`, never an orphan, never deleted, and no problem for `ok`.

    Manages its own short transactions (a long check must not hold one open), and records one
    "storage:fsck" audit event with the counts and any object removed; every removal is named before it
    is made ("storage:repair", `_remove_orphans`).
    """
    report = FsckReport()
    for version in _versions(rt):
        problem = verify_version(rt, version)
        report.versions_checked += 1
        if problem is not None:
            (report.missing if problem.kind == "missing" else report.corrupt).append(problem)
        else:
            for problem in verify_pages(rt, version):
                (report.missing if problem.kind == "missing" else report.corrupt).append(problem)
        if progress is not None:
            progress(1)
    now = utcnow()
    for info in _orphans(rt, report):
        if not is_vault_key(info.key):
            # Checked after the rows: a key a row names is vault's whatever its shape.
            report.foreign_objects += 1
            if len(report.foreign_shown) < FOREIGN_SHOWN:
                report.foreign_shown.append(Problem(info.key, None, "not_ours", f"{info.size} bytes"))
            continue
        problem = Problem(info.key, None, "orphan", f"{info.size} bytes")
        if info.modified is not None and now - info.modified < min_age:
            report.young_orphans.append(problem)
        else:
            report.orphans.append(problem)
    if isinstance(rt.store, LeavesTemporaryFiles):
        for leftover in rt.store.leftovers():
            problem = Problem(leftover.name, None, "leftover", f"{leftover.size} bytes")
            young = now - leftover.modified < min_age
            (report.pending_leftovers if young or leftover.in_use else report.leftovers).append(problem)
    if isinstance(rt.store, LeavesUnfinishedUploads):
        for upload in rt.store.unfinished_uploads():
            if not is_vault_key(upload.key):
                report.foreign_uploads.append(upload)
            elif now - upload.last_activity < min_age:
                report.pending_uploads.append(upload)
            else:
                report.uploads.append(upload)
    if repair:
        _remove_orphans(rt, report, min_age, ctx or AccessContext.cli())
        _remove_leftovers(rt, report, now - min_age, min_age, ctx or AccessContext.cli())
        _abort_uploads(rt, report, now - min_age, min_age, ctx or AccessContext.cli())
    with rt.db.session() as session:
        rt.audit.record(
            session, action=AuditAction.STORAGE_FSCK, actor=None, ctx=ctx or AccessContext.cli(),
            outcome="allowed" if report.ok else "failed",
            reason_code=None if report.ok else "integrity_problems",
            detail={**report.summary(), "repair": repair,
                    "removed_keys": report.removed[:100], "remove_failed": report.remove_failed[:100],
                    "removed_temporary": report.removed_leftovers[:100],
                    "aborted_upload_ids": report.aborted_uploads[:100],
                    "problems": [{"key": p.key, "version_id": p.version_id, "kind": p.kind}
                                 for p in (report.missing + report.corrupt)[:100]]},
        )
    return report


def _remove_orphans(rt: Runtime, report: FsckReport, min_age: timedelta, ctx: AccessContext) -> None:
    """Delete the orphans still unreferenced, each batch named in a "storage:repair" record that commits
    before any of its objects is touched.

    Deleting is the one act of the repair that cannot be undone: recorded after the deletions (as the run's
    summary is), a crash or a database refusing the record would leave objects gone with no trace, and a
    summary can name only so many. So every key is named, a batch at a time, before it goes; a key named
    whose deletion then failed is listed in the summary as such.
    """
    # `is_vault_key` again here, at the one place objects are deleted: whatever fills `report.orphans`,
    # another program's object is never removed.
    still = [problem.key for problem in report.orphans
             if is_vault_key(problem.key) and _still_orphan(rt, problem.key)]
    for start in range(0, len(still), REPAIR_BATCH):
        batch = still[start:start + REPAIR_BATCH]
        with rt.db.session() as session:
            rt.audit.record(session, action=AuditAction.STORAGE_REPAIR, actor=None, ctx=ctx,
                            detail={"remove": batch, "min_age_minutes": int(min_age.total_seconds() // 60)})
        for key in batch:
            discard_object(rt.store, key)
            if rt.store.exists(key):
                report.remove_failed.append(key)
            else:
                report.removed.append(key)


def _remove_leftovers(rt: Runtime, report: FsckReport, modified_before: datetime, min_age: timedelta,
                      ctx: AccessContext) -> None:
    """Remove the temporary files crashed writes left, each batch named in a "storage:repair" record that
    commits before any of them is touched, as the orphans are.

    The store removes a file only if no write holds it and it is still older than `min_age` (it may have
    been written to since the listing), so a file named here may be left after all: it stays in the
    report as a leftover, and the run's summary names only what went.
    """
    if not isinstance(rt.store, LeavesTemporaryFiles):
        return
    names = [problem.key for problem in report.leftovers]
    for start in range(0, len(names), REPAIR_BATCH):
        batch = names[start:start + REPAIR_BATCH]
        with rt.db.session() as session:
            rt.audit.record(session, action=AuditAction.STORAGE_REPAIR, actor=None, ctx=ctx,
                            detail={"remove_temporary": batch,
                                    "min_age_minutes": int(min_age.total_seconds() // 60)})
        for name in batch:
            if rt.store.remove_leftover(name, modified_before):
                report.removed_leftovers.append(name)


def _abort_uploads(rt: Runtime, report: FsckReport, active_before: datetime, min_age: timedelta,
                   ctx: AccessContext) -> None:
    """Abort the unfinished multipart uploads idle for `min_age`, each batch named (key and upload id) in a
    "storage:repair" record that commits before any of them is aborted, as orphans are.

    The store looks at an upload's parts again just before aborting it and leaves it if one was sent
    since `active_before` (or it is gone): such an upload stays in the report, unaborted.
    """
    if not isinstance(rt.store, LeavesUnfinishedUploads):
        return
    for start in range(0, len(report.uploads), REPAIR_BATCH):
        batch = report.uploads[start:start + REPAIR_BATCH]
        with rt.db.session() as session:
            rt.audit.record(session, action=AuditAction.STORAGE_REPAIR, actor=None, ctx=ctx,
                            detail={"abort_uploads": [{"key": upload.key, "upload_id": upload.upload_id,
                                                       "initiated": upload.initiated.isoformat()}
                                                      for upload in batch],
                                    "min_age_minutes": int(min_age.total_seconds() // 60)})
        for upload in batch:
            if rt.store.abort_upload(upload, active_before):
                report.aborted_uploads.append(upload.upload_id)

def verify_version(rt: Runtime, version: DocumentVersion) -> Problem | None:
    """Decrypt one version as a stream and compare its size and SHA-256 with the recorded ones."""
    digest = hashlib.sha256()
    size = 0
    try:
        source = rt.store.open(version.object_key)
    except ObjectNotFound:
        return Problem(version.object_key, version.id, "missing")
    except StorageError as exc:
        return Problem(version.object_key, version.id, "unreadable", str(exc))
    try:
        context = version_context(version)
        dek = rt.keyring.unwrap_current(version.key_id, version.wrapped_dek, context)
        for chunk in decrypt_stream(dek, context, source):
            digest.update(chunk)
            size += len(chunk)
    except KeyringError as exc:
        return Problem(version.object_key, version.id, "undecryptable", str(exc))
    except CryptoError:
        return Problem(version.object_key, version.id, "undecryptable", "does not authenticate")
    except StorageError as exc:
        return Problem(version.object_key, version.id, "unreadable", str(exc))
    finally:
        source.close()
    if size != version.size:
        return Problem(version.object_key, version.id, "size_mismatch", f"{size} bytes, recorded {version.size}")
    if digest.hexdigest() != version.sha256:
        return Problem(version.object_key, version.id, "sha256_mismatch", "content differs from the upload")
    return None


def verify_pages(rt: Runtime, version: DocumentVersion) -> list[Problem]:
    """Every rendered page of a version: present, decrypting under the version's key and its page binding,
    and with the SHA-256 recorded at upload; and as many page rows as the version says it has."""
    with rt.db.session() as session:
        pages = list(session.scalars(select(VersionPage).where(VersionPage.version_id == version.id)
                                     .order_by(VersionPage.number)))
    problems: list[Problem] = []
    if version.preview == PREVIEW_READY and len(pages) != version.page_count:
        problems.append(Problem(version.object_key, version.id, "pages_missing",
                                f"{len(pages)} page rows, the version says {version.page_count}"))
    if not pages:
        return problems
    try:
        dek = rt.keyring.unwrap(version.key_id, version.wrapped_dek, version_context(version))
    except CryptoError as exc:
        return [*problems, Problem(version.object_key, version.id, "undecryptable", str(exc))]
    for page in pages:
        try:
            data = renditions.read_page(rt, dek, version.document_id, version.number, page.object_key, page.number)
        except ObjectNotFound:
            problems.append(Problem(page.object_key, version.id, "missing", f"page {page.number}"))
            continue
        except CryptoError:
            problems.append(Problem(page.object_key, version.id, "undecryptable", f"page {page.number}"))
            continue
        except StorageError as exc:
            problems.append(Problem(page.object_key, version.id, "unreadable", str(exc)))
            continue
        if hashlib.sha256(data).hexdigest() != page.sha256:
            problems.append(Problem(page.object_key, version.id, "sha256_mismatch", f"page {page.number}"))
    return problems


def _versions(rt: Runtime) -> Iterator[DocumentVersion]:
    """Every version, a page at a time in id order, each page read in a transaction of its own."""
    last = 0
    while True:
        with rt.db.session() as session:
            page = list(session.scalars(
                select(DocumentVersion).where(DocumentVersion.id > last).order_by(DocumentVersion.id).limit(BATCH)
            ))
            for version in page:
                session.expunge(version)
        if not page:
            return
        yield from page
        last = page[-1].id


def _orphans(rt: Runtime, report: FsckReport) -> Iterator[ObjectInfo]:
    """Objects under `documents/` that no version names, checked against the database a page at a time."""
    batch: list[ObjectInfo] = []
    for info in rt.store.list(OBJECT_PREFIX):
        report.objects_listed += 1
        batch.append(info)
        if len(batch) >= BATCH:
            yield from _unreferenced(rt, batch)
            batch = []
    if batch:
        yield from _unreferenced(rt, batch)


def _unreferenced(rt: Runtime, batch: list[ObjectInfo]) -> list[ObjectInfo]:
    keys = [info.key for info in batch]
    with rt.db.session() as session:
        known = set(session.scalars(select(DocumentVersion.object_key).where(DocumentVersion.object_key.in_(keys))))
        known |= set(session.scalars(select(VersionPage.object_key).where(VersionPage.object_key.in_(keys))))
    return [info for info in batch if info.key not in known]


def _still_orphan(rt: Runtime, key: str) -> bool:
    """Ask again right before deleting: a row may have committed since the listing."""
    with rt.db.session() as session:
        return (session.scalar(select(func.count()).select_from(DocumentVersion)
                               .where(DocumentVersion.object_key == key)) == 0
                and session.scalar(select(func.count()).select_from(VersionPage)
                                   .where(VersionPage.object_key == key)) == 0)
