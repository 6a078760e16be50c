"""Check an exported file and its manifest without the database: what an outside auditor can do.

With the audit key every row's MAC is recomputed from the row and its `prev_mac`, and consecutive rows of
a shard must chain (a full export must be one unbroken chain per shard; rows without "shard" are of
shard 0, the single chain of before sharding, at their own seq). With only the public key the manifest's and the
checkpoint's signatures are checked, and the row at the checkpoint's sequence, if exported, must carry
the signed MAC. With neither, only the SHA-256, the row count and the sequence range are checked:
anyone who edits the file can recompute those, so such a check is `authenticated = False` and must
never be reported as "intact". The audit key alone does not make a check authenticated either: it vouches
for each JSON Lines row (CSV rows carry no checkable MAC, CSV cannot tell empty from null), not for which
rows the file holds. The manifest says that (its counts, its range, whether the export is full), and
without the public key the manifest is whatever the file's holder wrote: rows cut from the file, with
the manifest edited to match, would pass. Only the manifest's signature vouches for the whole.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vault.audit.chain import CHAINED_FIELDS, SHARD_FIELDS, compute_mac
from vault.audit.checkpoints import CheckpointError, SignedCheckpoint, public_key_fingerprint, verify_message
from vault.audit.export import CHAINED_HEADER, CSV_HEADER, MANIFEST_FORMAT, NAME_COLUMNS, is_escaped, manifest_message

READ_SIZE = 1024 * 1024
MAX_PROBLEMS = 20


@dataclass
class ExportCheck:
    rows: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # Whether a key vouched for the whole file: the manifest's signature was checked (see the module text).
    authenticated: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)
        elif len(self.problems) == MAX_PROBLEMS:
            self.problems.append("(further problems not shown)")


def load_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"no manifest at {path}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not a JSON manifest: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{path} is not a vault audit export manifest")
    return manifest


def verify_export(path: Path, manifest: dict[str, Any], *, audit_key: bytes | None = None,
                  public_key: Ed25519PublicKey | None = None) -> ExportCheck:
    """Check `path` against `manifest`; see the module text for what each key adds."""
    check = ExportCheck(authenticated=public_key is not None)
    checkpoint = _checkpoint(check, manifest, public_key)
    fmt = manifest.get("file_format")
    if fmt == "jsonl":
        digest = _jsonl(check, path, manifest, audit_key, checkpoint)
    elif fmt == "csv":
        digest = _csv(check, path, checkpoint)
        if audit_key is not None:
            check.checked.append("row MACs are checked on JSON Lines exports only (CSV cannot tell empty from null)")
    else:
        check.problem(f"unknown file format {fmt!r} in the manifest")
        return check
    if digest != manifest.get("sha256"):
        check.problem(f"SHA-256 of the file is {digest}, the manifest says {manifest.get('sha256')}")
    else:
        check.checked.append("SHA-256 matches the manifest")
    for name, actual in (("rows", check.rows), ("first_seq", check.first_seq), ("last_seq", check.last_seq)):
        if manifest.get(name) != actual:
            check.problem(f"the file has {name} {actual}, the manifest says {manifest.get(name)}")
    check.checked.append(f"{check.rows} rows, seq {check.first_seq}..{check.last_seq}")
    return check


def _checkpoint(check: ExportCheck, manifest: dict[str, Any],
                public_key: Ed25519PublicKey | None) -> SignedCheckpoint | None:
    raw = manifest.get("checkpoint")
    checkpoint = None
    if raw is not None:
        try:
            checkpoint = SignedCheckpoint.from_json(raw)
        except CheckpointError as exc:
            check.problem(f"the manifest's checkpoint is malformed: {exc}")
    if public_key is None:
        return checkpoint
    fingerprint = public_key_fingerprint(public_key)
    if manifest.get("public_key_fingerprint") != fingerprint:
        check.problem(f"the manifest was signed by key {manifest.get('public_key_fingerprint')}, not {fingerprint}")
    if verify_message(public_key, manifest_message(manifest), str(manifest.get("signature", ""))):
        check.checked.append("manifest signature valid")
    else:
        check.problem("the manifest's signature is invalid: the manifest was altered or signed by another key")
    if checkpoint is not None:
        if checkpoint.verify(public_key):
            check.checked.append(f"checkpoint {checkpoint.seq} signature valid")
        else:
            check.problem(f"checkpoint {checkpoint.seq} has an invalid signature")
            checkpoint = None
    elif raw is None and manifest.get("rows"):
        check.problem("the manifest names no checkpoint")
    return checkpoint


def _jsonl(check: ExportCheck, path: Path, manifest: dict[str, Any], key: bytes | None,
           checkpoint: SignedCheckpoint | None) -> str:
    digest = hashlib.sha256()
    full = bool(manifest.get("full"))
    signed = checkpoint.heads if checkpoint is not None else {}
    last_seq = None
    last: dict[int, tuple[int, str]] = {}  # per shard: (shard_seq, mac) of its last row
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            digest.update(line)
            try:
                row = json.loads(line)
                seq, mac, prev = row["seq"], row["mac"], row["prev_mac"]
                record = {name: row[name] for name in CHAINED_FIELDS}
                shard, place = 0, seq
                if "shard" in row:
                    record.update({name: row[name] for name in SHARD_FIELDS})
                    shard, place = row["shard"], row["shard_seq"]
                if not all(isinstance(v, int) for v in (seq, shard, place)) or not isinstance(mac, str) \
                        or not isinstance(prev, str | None) or (shard == 0) != ("shard" not in row):
                    raise TypeError("seq, shard, shard_seq, mac or prev_mac has the wrong type")
            except (ValueError, KeyError, TypeError) as exc:
                check.problem(f"line {number} is not an exported audit record: {exc}")
                continue
            where = f"seq {seq} (shard {shard}, #{place})"
            if last_seq is not None and seq <= last_seq:
                check.problem(f"line {number}: seq {seq} does not follow seq {last_seq}")
            before = last.get(shard)
            if full and place != (before[0] if before else 0) + 1:
                check.problem(f"line {number}: a full export jumps in shard {shard} from "
                              f"#{before[0] if before else 0} to #{place}")
            if before is not None and place == before[0] + 1 and prev != before[1]:
                check.problem(f"{where}: prev_mac is not the MAC of the record before it in its shard")
            if key is not None and (prev is None or compute_mac(key, record, prev) != mac):
                check.problem(f"{where}: the MAC does not match the record")
            if signed.get(shard, (None, None))[0] == place and mac != signed[shard][1]:
                check.problem(f"{where}: the MAC differs from the one signed in checkpoint {checkpoint.seq}")
            if check.first_seq is None:
                check.first_seq = seq
            last_seq = seq
            last[shard] = (place, mac)
            check.rows += 1
    check.last_seq = last_seq
    if key is not None:
        check.checked.append("every row's MAC recomputed with the audit key"
                             + (", and the rows form one unbroken chain" if full else ""))
    covered = [shard for shard, (place, _mac) in signed.items() if shard in last and place <= last[shard][0]]
    if checkpoint is not None and covered:
        check.checked.append(f"the rows at the heads signed in checkpoint {checkpoint.seq} carry the signed MACs "
                             f"(shards {', '.join(map(str, sorted(covered)))})")
    return digest.hexdigest()


def _csv(check: ExportCheck, path: Path, checkpoint: SignedCheckpoint | None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(READ_SIZE):
            digest.update(chunk)
    with path.open("rb") as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        reader = csv.reader(text)
        header = next(reader, None)
        # Exports made before names were added end at prev_mac; both layouts are vault exports.
        layouts = (CSV_HEADER, (*CHAINED_HEADER, *NAME_COLUMNS), CHAINED_HEADER)
        if header is None or tuple(header) not in layouts:
            check.problem("the CSV header is not that of a vault audit export")
            return digest.hexdigest()
        seq_at, mac_at = CSV_HEADER.index("seq"), CSV_HEADER.index("mac")
        placed = tuple(header) == CSV_HEADER
        signed = checkpoint.heads if checkpoint is not None else {}
        last_seq = None
        for number, fields in enumerate(reader, start=2):
            try:
                seq = int(fields[seq_at])
                mac = fields[mac_at]
                shard, place = (int(fields[-2]), int(fields[-1])) if placed else (0, seq)
            except (ValueError, IndexError):
                check.problem(f"line {number} is not an exported audit record")
                continue
            if last_seq is not None and seq <= last_seq:
                check.problem(f"line {number}: seq {seq} does not follow seq {last_seq}")
            if checkpoint is not None and signed.get(shard, (None, None))[0] == place and mac != signed[shard][1]:
                check.problem(f"seq {seq} (shard {shard}, #{place}): the MAC differs from the one signed in "
                              f"checkpoint {checkpoint.seq}")
            unsafe = [header[i] for i, cell in enumerate(fields[:len(header)]) if not is_escaped(cell)]
            if unsafe:
                check.problem(f"line {number}: {', '.join(unsafe)} starts like a formula and is not escaped "
                              "(the vault escapes such cells with a leading apostrophe)")
            if check.first_seq is None:
                check.first_seq = seq
            last_seq = seq
            check.rows += 1
        check.last_seq = last_seq
    return digest.hexdigest()
