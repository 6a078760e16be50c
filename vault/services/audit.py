"""Reading, verification and export as acts: each is checked by the policy and recorded in the log itself.

An export is recorded and committed *before* its first byte leaves (fail closed: no record, no
export), so that the export's own snapshot already contains its record.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from vault import policy
from vault.audit import browse
from vault.audit.checkpoints import Checkpointer
from vault.audit.export import AuditExport, manifest_bytes, save_manifest
from vault.audit.filters import MAX_VALUE, AuditFilter, FilterError
from vault.audit.names import parse_named
from vault.audit.verify import VerifyReport, verify_chain
from vault.core.actions import Action
from vault.core.context import AccessContext
from vault.core.private_files import open_private, write_private
from vault.models import User
from vault.runtime import Runtime


def verify(rt: Runtime, session: Session, *, actor: User | None, ctx: AccessContext, from_seq: int = 1,
           actor_name: str | None = None, progress: Callable[[int], None] | None = None, jobs: int = 1,
           min_records: int | None = None) -> VerifyReport:
    """Verify the chain and its checkpoints, sign a checkpoint of an intact chain's last record, then
    record "audit:verify" with the result in `session`.

    The verification reads through a snapshot of its own; the caller should hold no write transaction
    meanwhile (on SQLite that would stall every writer for as long as the check takes), and commits.
    `jobs` > 1 splits a large log over that many worker processes (`verify_chain`): for the command
    line only, never from a web request, whose worker must not fork.
    """
    if actor is not None:
        policy.require(actor, Action.AUDIT_VERIFY)
    checkpointer = _checkpointer(rt)
    report = verify_chain(rt.db, rt.audit.key, checkpointer, from_seq=from_seq, progress=progress, jobs=jobs,
                          min_records=min_records)
    if report.ok and report.last_heads:
        # What was just verified is signed into the write-once store, so deleting the newest records and
        # resetting the heads later cannot pass the next verification.
        checkpointer.write(at=report.last_heads)
    summary = report.as_dict()
    detail = {key: summary[key] for key in ("from_seq", "checked", "last_seq", "checkpoints", "first_bad_seq", "kind")}
    rt.audit.record(session, action=Action.AUDIT_VERIFY, actor=actor, actor_name=actor_name, ctx=ctx,
                    detail={"result": "intact" if report.ok else "damaged", **detail})
    return report


# What of a refused filter's values is recorded: printable (PostgreSQL refuses NUL), as long as a filter may be
# (a longer value is refused for its length; its first characters say enough of what was tried).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
GIVEN_LIMIT = MAX_VALUE


def filters_for(rt: Runtime, session: Session, *, actor: User, ctx: AccessContext,
                args: Mapping[str, str | None], act: Action = Action.AUDIT_READ) -> AuditFilter:
    """The filter `args` describe (`vault.audit.names.parse_named`), for `actor`'s reading or export (`act`).

    A filter that cannot be understood, or names nobody or several, is recorded in `session` as the act
    it refused (`act`, failed, `invalid_filter`), with what was given and the field at fault: its answer
    still tells something (that no customer bears a name, or which ones share it), and the desk's answer
    shows names, so the log holds it as it holds every reading. The caller keeps the record whatever its
    answer (`keep_work`).

    Raises:
        FilterError: as `parse_named`, once the refusal is recorded.
    """
    policy.require(actor, act)
    try:
        return parse_named(session, args)
    except FilterError as exc:
        given = {key: _CONTROL.sub("\ufffd", str(value))[:GIVEN_LIMIT] for key, value in args.items()
                 if value is not None and str(value).strip()}
        rt.audit.record(session, action=act, actor=actor, ctx=ctx, outcome="failed", reason_code="invalid_filter",
                        detail={"given": given, "field": exc.field})
        raise


def read_page(rt: Runtime, session: Session, *, actor: User, ctx: AccessContext, filters: AuditFilter, size: int,
              before: int | None = None, after: int | None = None) -> browse.Page:
    """A page of the log, newest first (see `vault.audit.browse.page`), recorded as "audit:read" with what
    was asked and how many records were shown, in the caller's unit: the log holds who read it, as it
    holds every other access. The record comes after the page's records, so it is never among them.
    """
    policy.require(actor, Action.AUDIT_READ)
    page = browse.page(session, filters, size=size, before=before, after=after)
    rt.audit.record(session, action=Action.AUDIT_READ, actor=actor, ctx=ctx,
                    detail={"filters": filters.describe(), "before": before, "after": after,
                            "shown": len(page.events)})
    return page


def record_export(rt: Runtime, session: Session, *, actor: User | None, ctx: AccessContext, filters: AuditFilter,
                  fmt: str, destination: str, actor_name: str | None = None) -> int:
    """Record "audit:export" in `session`; returns the record's sequence number. The caller commits
    before the first byte is produced."""
    if actor is not None:
        policy.require(actor, Action.AUDIT_EXPORT)
    event = rt.audit.record(session, action=Action.AUDIT_EXPORT, actor=actor, actor_name=actor_name, ctx=ctx,
                            detail={"format": fmt, "filters": filters.describe(), "destination": destination})
    return event.seq


def _checkpointer(rt: Runtime) -> Checkpointer:
    if rt.audit.checkpoints is None:
        raise RuntimeError("the audit log has no checkpointer")
    return rt.audit.checkpoints


def export_to_file(rt: Runtime, *, filters: AuditFilter, fmt: str, path: Path, actor: User | None,
                   ctx: AccessContext, actor_name: str | None = None,
                   progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Export to `path` and write `path`.manifest.json beside it (and in the store, as a download's);
    returns the manifest.

    The file is written under a temporary name and renamed when complete, so an interrupted export
    never leaves a file that looks finished.
    """
    checkpointer = _checkpointer(rt)
    with rt.db.session() as session:
        event_seq = record_export(rt, session, actor=actor, ctx=ctx, filters=filters, fmt=fmt, destination="file",
                                  actor_name=actor_name)
    partial = path.with_name(path.name + ".partial")
    try:
        with AuditExport(rt.db, checkpointer, filters, fmt) as export, open_private(partial) as out:
            done = 0
            for chunk in export.chunks():
                out.write(chunk)
                if progress is not None and export.stats.last_seq is not None:
                    progress(export.stats.last_seq - done)
                    done = export.stats.last_seq
            out.flush()
            os.fsync(out.fileno())
            manifest = export.manifest(file_name=path.name, event_seq=event_seq)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
    write_private(manifest_path(path), manifest_bytes(manifest))
    # Kept where the desk and the API serve a download's manifest too: the desk lists every export.
    save_manifest(rt.store, event_seq, manifest)
    return manifest


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".manifest.json")


def report_json(report: VerifyReport) -> str:
    return json.dumps(report.as_dict(), indent=2, sort_keys=True)
