"""`vault backup` and `vault restore`: a backup an operator can restore, and the restore checked."""

from __future__ import annotations

import os
from pathlib import Path

import click

from vault.cli.common import cli, echo_err, open_runtime
from vault.core.errors import ServiceError
from vault.services import backup as service


@cli.command("backup")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="A new or empty folder, outside the keyring's folder.")
@click.option("--objects", "copy_objects", is_flag=True,
              help="Copy the objects from an S3 store too (a local-folder store's are always copied).")
def backup_command(out: Path, copy_objects: bool) -> None:
    """Dump the database consistently, write a manifest of every object (size, SHA-256), copy the objects.

    The manifest also holds the audit chain's head and the latest signed checkpoint. The keyring is
    never written into the backup: export it separately with `vault keys export`.
    """
    rt = open_runtime()
    try:
        result = service.backup(rt, out, copy_objects=copy_objects)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        rt.close()
    click.echo(f"database: {out / result.database_file}")
    click.echo(f"objects: {result.objects} ({result.object_bytes} bytes) "
               + ("copied" if result.copied else "listed, not copied (the store's own replication must keep them)"))
    if result.skipped:
        click.echo(f"left out {result.skipped} object(s) written after the dump (no row of it names them)")
    if result.foreign:
        shown = ", ".join(result.foreign_shown) + (", ..." if result.foreign > len(result.foreign_shown) else "")
        click.echo(f"left out {result.foreign} object(s) not vault's (keys vault never gives an object; another "
                   f"program's?): {shown}")
        if rt.settings.storage == "s3" and not getattr(rt.store, "key_prefix", None):
            click.echo("set VAULT_S3_PREFIX to keep vault to a folder of a bucket shared with other programs")
    click.echo(f"audit head: seq {result.head_seq}; latest checkpoint: "
               + (f"seq {result.checkpoint_seq}" if result.checkpoint_seq is not None else "none"))
    click.echo(f"manifest: {out / service.MANIFEST}")
    echo_err("WARNING: the keyring is not in this backup, and nothing in it can be read without it. "
             "Run `vault keys export --out FILE` and keep that file apart from the backups.")
    if result.missing:
        for key in result.missing[:20]:
            echo_err(f"MISSING   {key}: a file version names it but the store does not hold it")
        echo_err(f"{len(result.missing)} object(s) missing from the store; run `vault fsck`")
        raise SystemExit(1)


@cli.command("restore")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--check-sample", "sample", default=service.DEFAULT_SAMPLE, show_default=True,
              type=click.IntRange(min=0), help="How many restored files to decrypt and compare with the manifest.")
@click.option("--accept-unsigned", "accept_unsigned", is_flag=True,
              help="Restore a backup whose manifest carries no MAC (made before manifests were authenticated); "
                   "recorded in the audit log. A wrong MAC is refused all the same.")
def restore_command(folder: Path, sample: int, accept_unsigned: bool) -> None:
    """Restore a backup into an EMPTY instance (database and store), then check it.

    The keyring exported with `vault keys export` must be in place first. The backup is checked against
    its manifest before anything is written; afterwards the store and the database are checked as by
    `vault fsck`, the audit chain as by `vault audit verify`, and a sample of files is decrypted.
    The manifest's MAC (keyed by the keyring) is checked first: a manifest changed since `vault backup`
    wrote it is refused, and one without a MAC needs --accept-unsigned. Exits with status 1 when a check fails.
    """
    rt = open_runtime()
    try:
        result = service.restore(rt, folder, sample=sample, verify_jobs=os.cpu_count() or 1,
                                 accept_unsigned=accept_unsigned)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        rt.close()
    if result.manifest != "authenticated":
        echo_err("WARNING: the manifest of this backup was not authenticated (it carries no MAC); "
                 "restored because --accept-unsigned was given, as the audit log records")
    click.echo(f"restored the database (audit head seq {result.head_seq}) and {result.objects} object(s)")
    for key in result.not_restored[:service.FOREIGN_SHOWN]:
        echo_err(f"NOT OURS  {key}: in the backup, but vault never gives an object such a key (another "
                 "program's, copied by an older `vault backup`); not restored")
    if result.not_restored:
        more = len(result.not_restored) - service.FOREIGN_SHOWN
        echo_err((f"and {more} more; " if more > 0 else "")
                 + f"{len(result.not_restored)} object(s) of the backup not vault's left out of the restore")
    fsck = result.fsck
    click.echo(f"fsck: checked {fsck.versions_checked} version(s), {fsck.objects_listed} object(s): "
               + ("ok" if fsck.ok else f"{fsck.unresolved} problem(s)"))
    for problem in fsck.missing + fsck.corrupt + fsck.orphans + fsck.leftovers:
        click.echo(f"  {problem.kind}: {problem.key}" + (f" ({problem.detail})" if problem.detail else ""))
    for upload in fsck.uploads:
        click.echo(f"  unfinished upload: {upload.key} (upload {upload.upload_id})")
    click.echo(f"audit verify: {result.verify_summary}")
    click.echo(f"sample: {len(result.sampled) - len(result.sample_failures)} of {len(result.sampled)} file(s) "
               "decrypt to the recorded size and SHA-256")
    for failure in result.sample_failures:
        click.echo(f"  {failure}")
    if not result.ok:
        echo_err("the restored instance did not pass its checks")
        raise SystemExit(1)
    click.echo("ok: restored, the store and the database agree, the audit chain verifies")
