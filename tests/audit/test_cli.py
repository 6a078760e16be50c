"""`vault audit ...` end to end: verify with its exit code, export with its manifest, and the offline
check of an export with each kind of key material."""

from __future__ import annotations

import json
import os
import stat

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tests.audit.conftest import CTX, append, attack, drop_append_only
from vault.cli import cli
from vault.models import AuditEvent


@pytest.fixture
def run(rt):
    env = {"VAULT_DATA_DIR": str(rt.settings.data_dir), "VAULT_DATABASE_URL": rt.settings.database_url,
           "VAULT_KEYRING": str(rt.settings.keyring), "VAULT_SECRET_KEY": "test-secret-key",
           "VAULT_AUDIT_CHECKPOINT_EVERY": "10"}

    def invoke(*args: str):
        return CliRunner().invoke(cli, ["audit", *args], env=env, catch_exceptions=False)

    return invoke


def _verify_records(rt):
    with rt.db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == "audit:verify")))


def test_verify_intact_then_damaged(rt, run):
    append(rt, 14)
    result = run("verify")
    assert result.exit_code == 0, result.output
    assert "audit log intact: 14 records verified (seq 1..14), 1 checkpoint(s) verified" in result.output
    drop_append_only(rt)
    attack(rt, "UPDATE audit_events SET reason_text = 'nothing to see' WHERE seq = 5")
    result = run("verify")
    assert result.exit_code == 1
    assert "audit log DAMAGED: first bad seq 5: modified" in result.output
    records = _verify_records(rt)
    assert [json.loads(r.detail)["result"] for r in records] == ["intact", "damaged"]
    assert json.loads(records[1].detail)["first_bad_seq"] == 5
    assert records[0].actor_name.startswith("cli:") and records[0].client_addr == "cli"
    result = run("verify", "--from", "6")
    assert result.exit_code == 0, result.output


def test_export_and_verify_export_with_each_key(rt, run, tmp_path):
    append(rt, 11)
    out = tmp_path / "audit.jsonl"
    old_umask = os.umask(0o022)
    try:
        result = run("export", "--format", "jsonl", "--out", str(out))
    finally:
        os.umask(old_umask)
    assert result.exit_code == 0, result.output
    assert "12 rows (seq 1..12)" in result.output
    # Finding 14: the export and its manifest name people and customers: the owner's alone.
    for written in (out, tmp_path / "audit.jsonl.manifest.json"):
        assert stat.S_IMODE(os.stat(written).st_mode) == 0o600, written
    pub, key = tmp_path / "pub.pem", tmp_path / "audit.key"
    assert run("public-key", "--out", str(pub)).exit_code == 0
    assert pub.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert run("hmac-key", "--out", str(key)).exit_code == 0
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert run("hmac-key", "--out", str(key)).exit_code != 0  # never overwritten
    for options in (["--keyring", str(rt.settings.keyring)], ["--public-key", str(pub)],
                    ["--audit-key-file", str(key), "--public-key", str(pub)]):
        result = run("verify-export", str(out), *options)
        assert result.exit_code == 0, (options, result.output)
        assert "export intact" in result.output
    # The audit key alone checks every row, but not which rows the file holds (the signed manifest's part).
    key_only = run("verify-export", str(out), "--audit-key-file", str(key))
    assert key_only.exit_code == 3 and "ok: every row's MAC recomputed" in key_only.output, key_only.output
    public_only = run("verify-export", str(out), "--public-key", str(pub)).output
    assert "ok: manifest signature valid" in public_only and "row MACs not checked" in public_only
    out.write_bytes(out.read_bytes().replace(b'"tester2"', b'"mallory"', 1))
    result = run("verify-export", str(out), "--audit-key-file", str(key))
    assert result.exit_code == 1
    assert "BAD: seq 3 (shard 1, #3): the MAC does not match the record" in result.output
    with rt.db.session() as session:
        actions = list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))
    assert actions.count("audit:export") == 1 and actions.count("audit:key_export") == 1


def test_filtered_csv_export_and_bad_filters(rt, run, tmp_path):
    append(rt, 3, action="loan:request")
    append(rt, 2, action="auth:login")
    out = tmp_path / "loans.csv"
    result = run("export", "--format", "csv", "--action", "loan:*", "--since", "2000-01-01", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "3 rows (seq 1..3)" in result.output
    assert run("verify-export", str(out), "--keyring", str(rt.settings.keyring)).exit_code == 0
    bad = run("export", "--since", "yesterday", "--out", str(tmp_path / "x.jsonl"))
    assert bad.exit_code == 2 and "--since" in bad.output and "is not a date" in bad.output
    nobody = run("export", "--user", "nobody", "--out", str(tmp_path / "x.jsonl"))
    assert nobody.exit_code == 2 and "there is no user 'nobody'" in nobody.output
    assert not (tmp_path / "x.jsonl").exists()


def test_export_filters_of_the_desk_and_the_api(rt, run, tmp_path):
    """--actor, --loan and --place mean what they mean on the desk and in the API's export."""
    abroad = CTX.declaring("Lisbon")
    with rt.db.session() as session:
        zed_loan = rt.audit.record(session, action="loan:request", actor=None, actor_name="zed", ctx=abroad,
                                   loan_id=5).seq
        zed_login = rt.audit.record(session, action="auth:login", actor=None, actor_name="zed", ctx=CTX,
                                    outcome="denied", reason_code="bad_credentials").seq
        other_loan = rt.audit.record(session, action="loan:approve", actor=None, actor_name="amy", ctx=CTX,
                                     loan_id=5).seq

    def exported(*options: str) -> list[int]:
        out = tmp_path / f"export-{len(list(tmp_path.iterdir()))}.jsonl"
        result = run("export", *options, "--out", str(out))
        assert result.exit_code == 0, result.output
        return [json.loads(line)["seq"] for line in out.read_text().splitlines()]

    assert exported("--actor", "zed") == [zed_loan, zed_login]
    assert exported("--loan", "5") == [zed_loan, other_loan]
    assert exported("--place", "Lisbon") == [zed_loan]
    assert exported("--actor", "zed", "--loan", "#5", "--place", "Head office") == [zed_loan]  # its named place
    assert exported("--actor", "zed", "--outcome", "denied") == [zed_login]
    for options, hint in ((("--loan", "five"), "--loan"), (("--actor", "x" * 201), "--actor"),
                          (("--place", "y" * 201), "--place"), (("--loan", str(2**31)), "--loan")):
        bad = run("export", *options, "--out", str(tmp_path / "refused.jsonl"))
        assert bad.exit_code == 2 and hint in bad.output, (options, bad.output)
    assert not (tmp_path / "refused.jsonl").exists()


def test_checkpoint_command(rt, run):
    append(rt, 3)
    result = run("checkpoint")
    assert result.exit_code == 0 and "checkpoint 3 " in result.output
    assert "nothing new" in run("checkpoint").output


def test_verify_export_needs_a_manifest(run, tmp_path):
    lonely = tmp_path / "lonely.jsonl"
    lonely.write_text("{}\n")
    result = run("verify-export", str(lonely))
    assert result.exit_code == 1 and "no manifest" in result.output


def test_verify_export_without_a_key_never_says_intact(rt, run, tmp_path):
    """Finding 15: an edited export with a recomputed manifest passed as "export intact" without a key.
    Without a key only the file's internal consistency can be checked, and the answer says so, with
    its own exit status (3), whether or not the file was edited."""
    import hashlib

    append(rt, 4)
    out = tmp_path / "audit.jsonl"
    assert run("export", "--format", "jsonl", "--out", str(out)).exit_code == 0
    honest = run("verify-export", str(out))
    out.write_bytes(out.read_bytes().replace(b'"tester2"', b'"mallory"', 1))
    manifest_path = tmp_path / "audit.jsonl.manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["sha256"] = hashlib.sha256(out.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    forged = run("verify-export", str(out))
    for result in (honest, forged):
        assert result.exit_code == 3, result.output
        assert "export intact" not in result.output
        assert "NOT AUTHENTICATED: without a key only internal consistency was checked" in result.output
    assert run("verify-export", str(out), "--keyring", str(rt.settings.keyring)).exit_code == 1


def test_a_csv_export_checked_with_the_audit_key_alone_is_not_said_intact(rt, run, tmp_path):
    """Row MACs are checked on JSON Lines only, so the audit key vouches for nothing in a CSV export: an
    edited CSV with a recomputed manifest passed as "export intact" (exit 0) with --audit-key-file alone.
    It is as unauthenticated as a check without a key (exit 3); the public key still catches the edit."""
    import hashlib

    append(rt, 4)
    out, key, pub = tmp_path / "audit.csv", tmp_path / "audit.key", tmp_path / "pub.pem"
    assert run("export", "--format", "csv", "--out", str(out)).exit_code == 0
    assert run("hmac-key", "--out", str(key)).exit_code == 0
    assert run("public-key", "--out", str(pub)).exit_code == 0
    honest = run("verify-export", str(out), "--audit-key-file", str(key))
    out.write_bytes(out.read_bytes().replace(b"tester2", b"mallory", 1))
    manifest_path = tmp_path / "audit.csv.manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["sha256"] = hashlib.sha256(out.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    forged = run("verify-export", str(out), "--audit-key-file", str(key))
    for result in (honest, forged):
        assert result.exit_code == 3, result.output
        assert "export intact" not in result.output
        assert "NOT AUTHENTICATED" in result.output and "--public-key" in result.output
    assert run("verify-export", str(out), "--public-key", str(pub)).exit_code == 1
    assert run("verify-export", str(out), "--keyring", str(rt.settings.keyring)).exit_code == 1


def test_rows_removed_from_an_export_are_not_said_intact_with_the_audit_key_alone(rt, run, tmp_path):
    """The audit key vouches for each row, not for which rows the file holds: that is the signed manifest's
    part, and without the public key the manifest is whatever the file's holder wrote. A row cut from the
    middle of a full export (the manifest set to "not full", its counts and SHA-256 recomputed) and rows cut
    from its end passed as "export intact" with --audit-key-file alone."""
    import hashlib

    append(rt, 6)
    out, key, pub = tmp_path / "audit.jsonl", tmp_path / "audit.key", tmp_path / "pub.pem"
    assert run("export", "--format", "jsonl", "--out", str(out)).exit_code == 0
    assert run("hmac-key", "--out", str(key)).exit_code == 0
    assert run("public-key", "--out", str(pub)).exit_code == 0
    lines = out.read_bytes().splitlines(keepends=True)
    manifest_path = tmp_path / "audit.jsonl.manifest.json"
    original = json.loads(manifest_path.read_text())
    for kept in (lines[:3] + lines[4:], lines[:-2]):
        out.write_bytes(b"".join(kept))
        manifest = {**original, "full": False, "rows": len(kept), "last_seq": json.loads(kept[-1])["seq"],
                    "sha256": hashlib.sha256(out.read_bytes()).hexdigest()}
        manifest_path.write_text(json.dumps(manifest))
        alone = run("verify-export", str(out), "--audit-key-file", str(key))
        assert alone.exit_code == 3, alone.output
        assert "export intact" not in alone.output and "NOT AUTHENTICATED" in alone.output
        assert "every row's MAC recomputed" in alone.output  # what the key did check is still said
        assert run("verify-export", str(out), "--audit-key-file", str(key), "--public-key", str(pub)).exit_code == 1
    out.write_bytes(b"".join(lines))
    manifest_path.write_text(json.dumps(original))
    assert run("verify-export", str(out), "--audit-key-file", str(key), "--public-key", str(pub)).exit_code == 0


def test_an_out_path_in_a_missing_folder_is_a_usage_error_and_records_no_export(rt, run, tmp_path):
    """An export into a folder that does not exist was recorded as made, then failed with a traceback."""
    append(rt, 2)
    missing = tmp_path / "no" / "such"
    for command in ("export", "hmac-key", "public-key"):
        result = run(command, "--out", str(missing / "x"))
        assert result.exit_code == 2 and "--out" in result.output and "Traceback" not in result.output, (
            command, result.output)
    assert not missing.exists()
    with rt.db.session() as session:
        actions = list(session.scalars(select(AuditEvent.action)))
    assert "audit:export" not in actions and "audit:key_export" not in actions


def test_a_command_line_export_keeps_its_manifest_where_the_desk_serves_it(rt, run, tmp_path):
    """The desk lists every export with a link to its manifest; one made on the command line answered "no
    manifest for this export". Its signed manifest is kept in the store as a download's is, byte for byte
    the one written beside the file."""
    from vault.audit.export import load_manifest

    append(rt, 3)
    out = tmp_path / "audit.jsonl"
    assert run("export", "--out", str(out)).exit_code == 0
    beside = (tmp_path / "audit.jsonl.manifest.json").read_bytes()
    event_seq = json.loads(beside)["export_event_seq"]
    assert load_manifest(rt.store, event_seq) == beside


def test_an_export_is_never_moved_over_a_device_a_pipe_or_a_folder(rt, run, tmp_path):
    """The export is written under another name and moved over --out: as root, `--out /dev/full` replaced
    the device with a plain file. A pipe stands for it here (replacing it harms nothing if this fails)."""
    append(rt, 2)
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    refused = run("export", "--out", str(pipe))
    assert refused.exit_code == 2 and "is not a regular file" in refused.output
    assert stat.S_ISFIFO(os.stat(pipe).st_mode)
    folder = tmp_path / "folder"
    folder.mkdir()
    assert run("export", "--out", str(folder)).exit_code == 2
    with rt.db.session() as session:  # refused before anything was recorded
        assert session.scalars(select(AuditEvent).where(AuditEvent.action == "audit:export")).all() == []
