"""Master key rotation: a new key encryption key, and every data key re-wrapped under it.

Only the small wrapped data keys in the database change; the encrypted objects are never touched, so a
rotation costs a few milliseconds per thousand files whatever their size. The viewer's page objects
(`services.renditions`) are encrypted under their version's data key, so re-wrapping that key covers them
too: there is nothing more to rotate. The keyring is saved with the
new active key first, then data keys are re-wrapped in batches, each batch its own transaction: an
interrupted rotation is resumed by running it again (`rewrap` moves everything not under the active
key), and until then every data key is still readable because retired keys stay in the keyring until
they are dropped, which is refused while anything refers to them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from crypto import CryptoError, KeyringChanged, KeyringError
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.core.errors import ServiceError
from vault.db import key_lock
from vault.models import CustomerRecord, DocumentVersion
from vault.runtime import Runtime
from vault.services.documents import version_context
from vault.services.record_crypto import key_context

BATCH = 200
# How often a rotation plans a new id after other processes' rotations took the one it recorded.
ROTATE_ATTEMPTS = 5


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    status: str
    created: str
    versions: int


@dataclass(frozen=True)
class RewrapResult:
    active_key_id: str
    previous_key_id: str | None
    rewrapped: int
    batches: int


def usage(rt: Runtime) -> dict[str, int]:
    """How many data keys (file versions and customer records) name each key id (ids no longer in the
    keyring included: that is damage)."""
    counts: dict[str, int] = {}
    with rt.db.session() as session:
        for model in (DocumentVersion, CustomerRecord):
            for key_id, count in session.execute(select(model.key_id, func.count()).group_by(model.key_id)):
                counts[key_id] = counts.get(key_id, 0) + count
    return counts


def _records_under(session: object, key_id: str) -> int:
    return session.scalar(select(func.count()).select_from(CustomerRecord)  # type: ignore[attr-defined]
                          .where(CustomerRecord.key_id == key_id)) or 0


def rewrap_records(rt: Runtime, *, batch_size: int = BATCH) -> int:
    """Re-wrap every customer record's data key not under the active key (the sealed fields stay as they
    are); batches of locked rows, each its own transaction, like the file versions."""
    active = rt.keyring.active_key_id
    done = 0
    last_id = 0
    while True:
        with rt.db.session() as session:
            page = list(session.scalars(
                select(CustomerRecord)
                .where(CustomerRecord.key_id != active, CustomerRecord.customer_id > last_id)
                .order_by(CustomerRecord.customer_id).limit(batch_size).with_for_update()
            ))
            if not page:
                return done
            for record in page:
                try:
                    record.key_id, record.wrapped_key = rt.keyring.rewrap(
                        record.key_id, record.wrapped_key, key_context(record.customer_id))
                except CryptoError as exc:
                    raise ServiceError(
                        "rewrap_failed",
                        f"The data key of customer {record.customer_id}'s record cannot be re-wrapped: {exc}. "
                        "Restore it from a backup.",
                    ) from None
            last_id = page[-1].customer_id
            done += len(page)


def list_keys(rt: Runtime) -> list[KeyInfo]:
    counts = usage(rt)
    return [
        KeyInfo(key_id, rt.keyring.key_status(key_id), rt.keyring.key_created(key_id), counts.get(key_id, 0))
        for key_id in rt.keyring.key_ids()
    ]


def pending(rt: Runtime) -> int:
    """Versions and customer records whose data key is not yet wrapped by the active key."""
    with rt.db.session() as session:
        active = rt.keyring.active_key_id
        return (session.scalar(select(func.count()).select_from(DocumentVersion)
                               .where(DocumentVersion.key_id != active)) or 0) + \
            (session.scalar(select(func.count()).select_from(CustomerRecord)
                            .where(CustomerRecord.key_id != active)) or 0)


def rewrap(
    rt: Runtime,
    *,
    batch_size: int = BATCH,
    progress: Callable[[int], None] | None = None,
    ctx: AccessContext | None = None,
    previous_key_id: str | None = None,
    action: AuditAction = AuditAction.KEY_REWRAP,
) -> RewrapResult:
    """Re-wrap every data key not under the active key, committing after each batch.

    Each batch locks its rows, so an upload or another rewrap running at the same time cannot lose an
    update. A row whose key cannot be unwrapped stops the run with a ServiceError naming it: that is
    damage for `vault fsck`, not something to skip silently.
    """
    active = rt.keyring.active_key_id
    done = batches = 0
    last_id = 0
    while True:
        with rt.db.session() as session:
            page = list(session.scalars(
                select(DocumentVersion)
                .where(DocumentVersion.key_id != active, DocumentVersion.id > last_id)
                .order_by(DocumentVersion.id).limit(batch_size).with_for_update()
            ))
            if not page:
                break
            for version in page:
                try:
                    version.key_id, version.wrapped_dek = rt.keyring.rewrap(
                        version.key_id, version.wrapped_dek, version_context(version))
                except CryptoError as exc:
                    raise ServiceError(
                        "rewrap_failed",
                        _l("The data key of version %(id)s (%(object_key)s) cannot be re-wrapped: %(exc)s. Run "
                           "`vault fsck` and restore it from a backup.",
                           id=version.id, object_key=version.object_key, exc=exc),
                    ) from None
            last_id = page[-1].id
            done += len(page)
            batches += 1
        if progress is not None:
            progress(len(page))
    records = rewrap_records(rt, batch_size=batch_size)
    with rt.db.session() as session:
        rt.audit.record(session, action=action, actor=None, ctx=ctx or AccessContext.cli(),
                        detail={"active_key_id": active, "previous_key_id": previous_key_id,
                                "rewrapped": done, "batches": batches, "records": records})
    return RewrapResult(active, previous_key_id, done, batches)


def rotate(
    rt: Runtime,
    *,
    batch_size: int = BATCH,
    progress: Callable[[int], None] | None = None,
    ctx: AccessContext | None = None,
) -> RewrapResult:
    """Add a new active master key (saved to the keyring file first), then re-wrap every data key.

    The new key is recorded ("key:rotate", the new and the previous key ids) and committed before the
    keyring changes: the re-wrapping may take long and be interrupted, and a master key must never come
    into use with no record of when and by whom (no record, no key). A keyring that cannot be saved adds a
    failed "key:rotate". The re-wrapping is recorded when it ends, by this run or the `rewrap` that
    resumes it ("key:rewrap", with its counts).

    The record names the key actually made: the keyring makes the recorded id or nothing
    (`Keyring.rotate(expected=...)`, judged under the file's lock). Another process that rotated between
    the record and the change has taken that id; the record is then followed by a failed "key:rotate"
    (`keyring_changed`, with the key found active) and the next id is planned, recorded and made, at most
    `ROTATE_ATTEMPTS` times. The record is not committed while holding the file's lock instead: a `drop`
    holds its audit chain's head (on SQLite, the database's write lock) while it waits for that lock, so a
    rotation waiting under the lock to append its record would wait for ever.
    A process that dies after its record and before the change leaves a record of a key never made, never
    a key without a record; the next rotation records and makes that id.

    Raises:
        ServiceError: `keyring_unwritable`, the keyring file could not be saved (nothing changed);
            `keyring_changed`, other rotations took every id this one planned (nothing changed by it).
    """
    ctx = ctx or AccessContext.cli()
    for _attempt in range(ROTATE_ATTEMPTS):
        rt.keyring.refresh()  # another process may have rotated since this one loaded the file
        previous = rt.keyring.active_key_id
        planned = rt.keyring.next_key_id()
        planned_detail = {"active_key_id": planned, "previous_key_id": previous}
        with rt.db.session() as session:
            rt.audit.record(session, action=AuditAction.KEY_ROTATE, actor=None, ctx=ctx, detail=planned_detail)
        try:
            rt.keyring.rotate(expected=planned)
        except KeyringChanged as exc:
            with rt.db.session() as session:
                rt.audit.record(session, action=AuditAction.KEY_ROTATE, actor=None, ctx=ctx, outcome="failed",
                                reason_code="keyring_changed",
                                detail={**planned_detail, "found_active_key_id": exc.active_key_id})
            continue
        except KeyringError as exc:
            with rt.db.session() as session:
                rt.audit.record(session, action=AuditAction.KEY_ROTATE, actor=None, ctx=ctx, outcome="failed",
                                reason_code="keyring_unwritable", detail=planned_detail)
            raise ServiceError("keyring_unwritable", f"the keyring cannot be saved, nothing changed: {exc}") from None
        return rewrap(rt, batch_size=batch_size, progress=progress, ctx=ctx, previous_key_id=previous)
    raise ServiceError("keyring_changed", f"other rotations changed the keyring {ROTATE_ATTEMPTS} times while this "
                                          "one was being recorded; no key was made by it: run it again")


def drop(rt: Runtime, key_id: str, *, ctx: AccessContext | None = None) -> None:
    """Delete a retired master key that no data key refers to any more.

    The drop waits a few seconds at most for uploads about to commit (`key_lock`); if they keep it
    waiting longer it is refused, recorded as a failed "key:drop" ("uploads_under_way"), nothing dropped.

    Raises:
        ServiceError: the key is unknown, active, or still wraps data keys (with the count), or uploads
            kept the drop waiting too long (`uploads_under_way`).
    """
    ctx = ctx or AccessContext.cli()
    try:
        _drop(rt, key_id, ctx)
    except key_lock.KeyLockBusy:
        with rt.db.session() as session:
            rt.audit.record(session, action=AuditAction.KEY_DROP, actor=None, ctx=ctx, outcome="failed",
                            reason_code="uploads_under_way", detail={"key_id": key_id})
        raise ServiceError(
            "uploads_under_way",
            f"master key {key_id} was not dropped: uploads are under way and kept the drop waiting too "
            "long; try again in a moment",
        ) from None


def _drop(rt: Runtime, key_id: str, ctx: AccessContext) -> None:
    with rt.db.session() as session:
        # A data key wrapped before this drop may commit after it (an upload wraps before it streams):
        # such a writer holds the key lock shared from its last look at the keyring to its commit, so
        # taking it exclusive here waits for those commits, and writers after this one find the key
        # gone and wrap again (`key_use.settle`). The count and the audit record share the transaction.
        key_lock.hold_exclusive(session)
        still_used = (session.scalar(select(func.count()).select_from(DocumentVersion)
                                     .where(DocumentVersion.key_id == key_id)) or 0) + _records_under(session, key_id)
        # Recorded first: if the keyring refuses, the record rolls back with the rest.
        rt.audit.record(session, action=AuditAction.KEY_DROP, actor=None, ctx=ctx, detail={"key_id": key_id})
        try:
            rt.keyring.drop(key_id, still_used)
        except KeyringError as exc:
            raise ServiceError("key_in_use" if still_used else "key_not_droppable", str(exc)) from None


def export(rt: Runtime, path: Path, *, ctx: AccessContext | None = None) -> None:
    """Write the keyring to `path` (mode 0600), refusing to overwrite anything; recorded as "key:export".

    The keyring is what makes every backup readable, so it is kept apart from them: exporting it is an
    act of its own, recorded before the file is written (no record, no copy). A half-written copy is
    removed.

    Raises:
        ServiceError: `path` exists, or cannot be written.
    """
    content = rt.keyring.path.read_bytes()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ServiceError("export_exists", f"{path} exists; refusing to overwrite it") from None
    except OSError as exc:
        raise ServiceError("export_unwritable", f"{path} cannot be written: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            with rt.db.session() as session:
                rt.audit.record(session, action=AuditAction.KEY_EXPORT, actor=None, ctx=ctx or AccessContext.cli(),
                                detail={"path": str(path.resolve()), "key_ids": rt.keyring.key_ids(),
                                        "active_key_id": rt.keyring.active_key_id})
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
