"""`vault audit ...`: verify the chain, sign checkpoints, export, and check an export offline."""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import sys
from pathlib import Path

import click
from sqlalchemy import func, select

from crypto import Keyring, KeyringError
from vault.audit.checkpoints import CheckpointError, load_public_key, object_key
from vault.audit.export import FORMATS
from vault.audit.filters import OUTCOMES, FilterError
from vault.audit.names import parse_named
from vault.audit.offline import load_manifest, verify_export
from vault.cli.common import cli, open_runtime
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext, operator_name
from vault.models import AuditHead
from vault.services import audit as service


@cli.group("audit")
def audit_group() -> None:
    """The tamper-evident audit log."""


def _in_a_folder(_ctx: click.Context, _param: click.Parameter, path: Path) -> Path:
    """An --out path whose folder exists: checked before anything is recorded or written, so a mistyped
    folder is a usage error, not a traceback after the export (or the key's hand-over) was recorded."""
    if not path.parent.is_dir():
        raise click.BadParameter(f"there is no folder {path.parent}")
    if path.exists() and not path.is_file():
        # The file is written under another name and moved over FILE when complete: a device or a pipe
        # there (/dev/stdout, say) would be replaced by a plain file, as root even the system's own.
        raise click.BadParameter(f"{path} is not a regular file: give the path of a file to write")
    return path


OUT = click.Path(dir_okay=False, path_type=Path)


def _head_seq(rt) -> int:
    """How many records the log holds (all chains): the length of a progress bar."""
    with rt.db.session() as session:
        return int(session.scalar(select(func.coalesce(func.sum(AuditHead.seq), 0))) or 0)


@audit_group.command("verify")
@click.option("--from", "from_seq", type=click.IntRange(min=1, max=2**63 - 1), default=1, show_default=True,
              help="Start at this sequence number, trusting the MAC of the record before it.")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes, one range of records each (default: the number of CPUs; a log of "
                   "fewer than 50,000 records per worker is verified in fewer, down to this one process).")
def audit_verify(from_seq: int, jobs: int | None) -> None:
    """Recompute the chain and check the signed checkpoints; exit 1 naming the first damage."""
    rt = open_runtime()
    try:
        total = max(0, _head_seq(rt) - from_seq + 1)
        with click.progressbar(length=total, label="verifying", file=sys.stderr) as bar, \
                rt.db.session() as session:
            report = service.verify(rt, session, actor=None, actor_name=operator_name(),
                                    ctx=AccessContext.cli(), from_seq=from_seq, progress=bar.update,
                                    jobs=jobs or os.cpu_count() or 1)
    finally:
        rt.close()
    click.echo(f"verified in {report.seconds:.1f} s by {report.processes} process(es)", err=True)
    click.echo(report.summary())
    if not report.ok:
        for damage in sorted(report.damage, key=lambda d: d.seq):
            click.echo(f"  seq {damage.seq}: {damage.kind}: {damage.message}", err=True)
        sys.exit(1)


@audit_group.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign and store a checkpoint of the current head now (run from cron for quiet periods)."""
    rt = open_runtime()
    try:
        checkpointer = rt.audit.checkpoints
        assert checkpointer is not None
        checkpoint = checkpointer.write()
    finally:
        rt.close()
    if checkpoint is None:
        click.echo("nothing new to checkpoint")
    else:
        click.echo(f"checkpoint {checkpoint.seq} ({len(checkpoint.heads)} chain head(s)) stored as "
                   f"{object_key(checkpoint.seq)}")


@audit_group.command("public-key")
@click.option("--out", "out", type=OUT, required=True, callback=_in_a_folder)
def audit_public_key(out: Path) -> None:
    """Write the checkpoint verification key (PEM) for outside verifiers."""
    rt = open_runtime()
    try:
        checkpointer = rt.audit.checkpoints
        assert checkpointer is not None
        out.write_bytes(checkpointer.public_key_pem())
        click.echo(f"public key {checkpointer.fingerprint} written to {out}")
    finally:
        rt.close()


@audit_group.command("hmac-key")
@click.option("--out", "out", type=OUT, required=True, callback=_in_a_folder)
def audit_hmac_key(out: Path) -> None:
    """Write the audit HMAC key (base64, mode 0600) for an auditor who checks exports offline.

    Whoever holds it can recompute the chain, so handing it over is itself recorded.
    """
    rt = open_runtime()
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        rt.close()
        raise click.ClickException(f"{out} exists; refusing to overwrite it") from None
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            # Recorded before the key is written: no record, no key.
            with rt.db.session() as session:
                rt.audit.record(session, action=AuditAction.AUDIT_KEY_EXPORT, actor=None, actor_name=operator_name(),
                                ctx=AccessContext.cli(), detail={"key": "audit-hmac"})
            handle.write(base64.b64encode(rt.audit.key).decode("ascii") + "\n")
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    finally:
        rt.close()
    click.echo(f"audit key written to {out}")


@audit_group.command("export")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="jsonl", show_default=True)
@click.option("--since", help="From this date or date-time (UTC unless an offset is given).")
@click.option("--until", help="Up to this date (the whole day) or date-time.")
@click.option("--user", help="Events by or about this user (name or id).")
@click.option("--actor", help="Events by this actor: a user id, or a name as recorded (unknown login names too).")
@click.option("--customer", help="Events about this customer (name or id).")
@click.option("--document", help="Events about this document (title, within --customer if given, or id).")
@click.option("--loan", help="Events about this loan (id).")
@click.option("--action", help="An action name, or a prefix like loan:*.")
@click.option("--outcome", type=click.Choice(OUTCOMES))
@click.option("--place", help="Events at this named place (trusted network) or declared place.")
@click.option("--out", "out", type=OUT, required=True, callback=_in_a_folder)
def audit_export(fmt: str, out: Path, **given: str | None) -> None:
    """Export the log (streamed) with a signed manifest beside it (FILE.manifest.json).

    The filters are those of the audit desk and of the API's export, with the same meaning.
    """
    rt = open_runtime()
    try:
        try:
            with rt.db.session() as session:
                filters = parse_named(session, given)
        except FilterError as exc:
            raise click.BadParameter(exc.message, param_hint=f"--{exc.field}") from None
        with click.progressbar(length=_head_seq(rt) + 1, label="exporting", file=sys.stderr) as bar:
            manifest = service.export_to_file(rt, filters=filters, fmt=fmt, path=out, actor=None,
                                              actor_name=operator_name(), ctx=AccessContext.cli(),
                                              progress=bar.update)
    finally:
        rt.close()
    click.echo(f"{manifest['rows']} rows (seq {manifest['first_seq']}..{manifest['last_seq']}) written to {out}; "
               f"manifest {service.manifest_path(out)}")


def _read_audit_key(path: Path) -> bytes:
    raw = path.read_bytes()
    if len(raw) == 32:
        return raw
    text = raw.strip().decode("ascii", errors="replace")
    with contextlib.suppress(ValueError, binascii.Error):
        key = base64.b64decode(text, validate=True)
        if len(key) == 32:
            return key
    with contextlib.suppress(ValueError):
        key = bytes.fromhex(text)
        if len(key) == 32:
            return key
    raise click.BadParameter("expected a 32-byte key, in base64, hex or raw", param_hint="--audit-key-file")


# Distinct from 1 (damaged) and 2 (usage): consistent, but nothing vouched for the contents.
EXIT_UNAUTHENTICATED = 3


@audit_group.command("verify-export")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--manifest", "manifest_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Default: FILE.manifest.json.")
@click.option("--keyring", "keyring_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The vault keyring (gives the audit key and the public key).")
@click.option("--audit-key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The audit HMAC key alone (see `vault audit hmac-key`).")
@click.option("--public-key", "public_key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The checkpoint public key (PEM, see `vault audit public-key`).")
def audit_verify_export(file: Path, manifest_file: Path | None, keyring_file: Path | None,
                        audit_key_file: Path | None, public_key_file: Path | None) -> None:
    """Check an exported file against its manifest, without the database.

    Exit status: 0 intact (the manifest's signature checked with the public key or keyring), 1 damaged,
    3 consistent but unauthenticated (no public key: nothing vouched for which rows the file holds).
    """
    audit_key = public_key = None
    if keyring_file is not None:
        try:
            keyring = Keyring.load(keyring_file)
        except KeyringError as exc:
            raise click.ClickException(str(exc)) from None
        audit_key, public_key = keyring.audit_key, keyring.checkpoint_private_key.public_key()
    if audit_key_file is not None:
        audit_key = _read_audit_key(audit_key_file)
    if public_key_file is not None:
        try:
            public_key = load_public_key(public_key_file.read_bytes())
        except CheckpointError as exc:
            raise click.BadParameter(str(exc), param_hint="--public-key") from None
    try:
        manifest = load_manifest(manifest_file or service.manifest_path(file))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    check = verify_export(file, manifest, audit_key=audit_key, public_key=public_key)
    for line in check.checked:
        click.echo(f"ok: {line}")
    if audit_key is None:
        click.echo("note: no audit key given, row MACs not checked")
    if public_key is None:
        click.echo("note: no public key given, signatures not checked")
    if not check.ok:
        for problem in check.problems:
            click.echo(f"BAD: {problem}", err=True)
        sys.exit(1)
    if not check.authenticated:
        # Anyone who edits the file can recompute its digest and counts: that proves nothing.
        if audit_key is None:
            click.echo("NOT AUTHENTICATED: without a key only internal consistency was checked; an edited "
                       "export with a recomputed manifest would pass. Give --keyring, --audit-key-file or "
                       f"--public-key to verify it: {file}")
        else:
            click.echo("NOT AUTHENTICATED: the audit key vouches for each row of a JSON Lines export (none of a "
                       "CSV one), not for which rows the file holds; without the public key the manifest is not "
                       "checked, and rows cut from the file with the manifest edited to match would pass. Give "
                       f"--keyring or --public-key to verify it: {file}")
        sys.exit(EXIT_UNAUTHENTICATED)
    click.echo(f"export intact: {file}")
