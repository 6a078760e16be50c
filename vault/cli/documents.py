"""`vault fsck` and `vault keys ...`: the operator's checks on stored files and master keys."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import click

from vault.cli.common import cli, open_runtime
from vault.core.errors import ServiceError
from vault.services import integrity, keys


@cli.command("fsck")
@click.option("--repair", is_flag=True, help="Remove orphan objects (objects no version refers to) and temporary "
                                            "files left by interrupted writes, and abort unfinished S3 multipart "
                                            "uploads; nothing else, and nothing under a key vault never gives "
                                            "an object.")
@click.option("--min-age-minutes", default=int(integrity.DEFAULT_MIN_AGE.total_seconds() // 60), show_default=True,
              type=click.IntRange(min=0, max=10 * 366 * 24 * 60),
              help="Unreferenced objects, temporary files and multipart uploads active more recently than this "
                   "may be uploads still in progress: reported, never removed (at most ten years).")
def fsck_command(repair: bool, min_age_minutes: int) -> None:
    """Check that every file version's object exists, decrypts and matches its SHA-256, and find orphans.

    Exits with status 1 when a problem remains.
    """
    rt = open_runtime()
    try:
        total = integrity.count_versions(rt)
        with click.progressbar(length=total, label="checking versions", file=sys.stderr,
                               show_pos=True) as bar:
            report = integrity.fsck(rt, repair=repair, min_age=timedelta(minutes=min_age_minutes),
                                    progress=bar.update)
    finally:
        rt.close()
    click.echo(f"checked {report.versions_checked} version(s), {report.objects_listed} object(s) "
               f"in {rt.store.describe()}")
    for problem in report.missing:
        click.echo(f"MISSING   version {problem.version_id}: object {problem.key} is not in the store")
    for problem in report.corrupt:
        click.echo(f"CORRUPT   version {problem.version_id}: {problem.key}: {problem.kind}"
                   + (f" ({problem.detail})" if problem.detail else ""))
    for problem in report.orphans:
        state = "removed" if problem.key in report.removed else "orphan"
        click.echo(f"ORPHAN    {problem.key} ({problem.detail}, no version refers to it): {state}")
    for problem in report.young_orphans:
        click.echo(f"PENDING   {problem.key}: no version refers to it yet, younger than {min_age_minutes} min "
                   "(an upload in progress?); left alone")
    for problem in report.leftovers:
        state = "removed" if problem.key in report.removed_leftovers else "leftover"
        click.echo(f"TEMPORARY {problem.key} ({problem.detail}, left by an interrupted write): {state}")
    for problem in report.pending_leftovers:
        click.echo(f"PENDING   {problem.key}: a temporary file younger than {min_age_minutes} min or still held "
                   "by its write; left alone")
    for upload in report.uploads:
        state = "aborted" if upload.upload_id in report.aborted_uploads else "unfinished"
        click.echo(f"UPLOAD    {upload.key} (upload {upload.upload_id}, begun {upload.initiated.isoformat()}, "
                   f"{upload.size} bytes in parts, left by an interrupted upload): {state}")
    for upload in report.pending_uploads:
        click.echo(f"PENDING   {upload.key}: upload {upload.upload_id} begun {upload.initiated.isoformat()}, "
                   f"active within {min_age_minutes} min (an upload in progress?); left alone")
    for upload in report.foreign_uploads:
        click.echo(f"NOT OURS  {upload.key}: upload {upload.upload_id} begun {upload.initiated.isoformat()}, "
                   "under a key vault never gives an object (another program's?); left alone")
    for problem in report.foreign_shown:
        click.echo(f"NOT OURS  {problem.key} ({problem.detail}): no version refers to it, and vault never gives "
                   "an object such a key (another program's?); left alone")
    if report.foreign_objects:
        more = report.foreign_objects - len(report.foreign_shown)
        click.echo((f"and {more} more; " if more else "")
                   + f"{report.foreign_objects} object(s) not vault's left alone")
    if ((report.foreign_uploads or report.foreign_objects) and rt.settings.storage == "s3"
            and not getattr(rt.store, "key_prefix", None)):
        click.echo("set VAULT_S3_PREFIX to keep vault to a folder of a bucket shared with other programs")
    for key in report.remove_failed:
        click.echo(f"FAILED    could not remove {key}")
    if report.orphans and not repair:
        click.echo("run `vault fsck --repair` to remove the orphan objects")
    if report.leftovers and not repair:
        click.echo("run `vault fsck --repair` to remove the temporary files")
    if report.uploads and not repair:
        click.echo("run `vault fsck --repair` to abort the unfinished uploads")
    if report.removed:
        click.echo(f"removed {len(report.removed)} orphan object(s)")
    if report.removed_leftovers:
        click.echo(f"removed {len(report.removed_leftovers)} temporary file(s)")
    if report.aborted_uploads:
        click.echo(f"aborted {len(report.aborted_uploads)} unfinished upload(s)")
    if report.ok:
        click.echo("ok: the store and the database agree, every version decrypts to what was uploaded")
        return
    click.echo(f"{report.unresolved} problem(s) found", err=True)
    raise SystemExit(1)


@cli.group("keys")
def keys_group() -> None:
    """Master keys (KEKs) that wrap the per-file data keys."""


@keys_group.command("list")
def keys_list() -> None:
    """Every master key with its status, creation time and how many file versions it wraps."""
    rt = open_runtime()
    try:
        infos = keys.list_keys(rt)
        unknown = {k: n for k, n in keys.usage(rt).items() if k not in rt.keyring.key_ids()}
    finally:
        rt.close()
    click.echo(f"{'KEY':8} {'STATUS':8} {'CREATED':21} VERSIONS")
    for info in infos:
        click.echo(f"{info.key_id:8} {info.status:8} {info.created:21} {info.versions}")
    for key_id, count in sorted(unknown.items()):
        click.echo(f"{key_id:8} {'MISSING':8} {'':21} {count}  <- not in the keyring: these files cannot be read")


def _rewrap(rotate: bool, batch_size: int) -> None:
    rt = open_runtime()
    try:
        previous = rt.keyring.active_key_id
        # After a rotation every existing version is pending, so that is the length of the bar.
        total = integrity.count_versions(rt) if rotate else keys.pending(rt)
        with click.progressbar(length=total, label="re-wrapping data keys", file=sys.stderr,
                               show_pos=True) as bar:
            if rotate:
                result = keys.rotate(rt, batch_size=batch_size, progress=bar.update)
            else:
                result = keys.rewrap(rt, batch_size=batch_size, progress=bar.update)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        rt.close()
    if rotate:
        click.echo(f"new active master key {result.active_key_id}; {previous} is retired")
    click.echo(f"re-wrapped {result.rewrapped} data key(s) in {result.batches} batch(es); objects untouched")
    click.echo("restart the application servers so they wrap new files with the new key")


@keys_group.command("rotate")
@click.option("--batch-size", default=keys.BATCH, show_default=True, type=click.IntRange(min=1))
def keys_rotate(batch_size: int) -> None:
    """Add a new active master key and re-wrap every data key under it.

    The keyring is saved first; each batch commits on its own, so an interrupted rotation is finished
    by `vault keys rewrap` (or another rotation).
    """
    _rewrap(True, batch_size)


@keys_group.command("rewrap")
@click.option("--batch-size", default=keys.BATCH, show_default=True, type=click.IntRange(min=1))
def keys_rewrap(batch_size: int) -> None:
    """Re-wrap every data key not yet under the active master key (finishes an interrupted rotation)."""
    _rewrap(False, batch_size)


@keys_group.command("drop")
@click.argument("key_id")
def keys_drop(key_id: str) -> None:
    """Delete a retired master key; refused while any file version still refers to it."""
    rt = open_runtime()
    try:
        keys.drop(rt, key_id)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        rt.close()
    click.echo(f"dropped master key {key_id}")


@keys_group.command("export")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="A new file (mode 0600), kept apart from the backups it makes readable.")
def keys_export(out: Path) -> None:
    """Write a copy of the keyring (every master key, the audit and checkpoint keys) for safekeeping.

    Refuses to overwrite a file; the export is recorded in the audit log before the copy is written.
    """
    rt = open_runtime()
    try:
        keys.export(rt, out)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        rt.close()
    click.echo(f"keyring written to {out} (mode 0600); keep it apart from the backups")
