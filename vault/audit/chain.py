"""The HMAC chain: canonical bytes of a record and the MAC that links it to the one before.

MAC(n) = HMAC-SHA256(audit key, canonical_json(record n without its MAC) ‖ MAC(n-1) as hex), with
MAC(0) = "", each shard's chain on its own (vault.audit.shards). Canonical JSON (sorted keys, no
spaces, UTF-8, times as ISO 8601 UTC with microseconds) is simple enough for an outside
auditor to recompute with any language.

Two encoders produce the same bytes: `canonical(record_dict(event))` works on an ORM object and is the
reference; `canonical_row(row)` works on a raw result row (columns in `ROW_COLUMNS` order, the time
already formatted, `detail` as stored) and exists because verifying or exporting ten million records
cannot afford a dict, a JSON round trip of `detail` and a datetime per row. `detail` is stored in its
canonical form by `AuditLog.record`, so the stored text is used as is; a cosmetic rewrite of it in
the database therefore counts as a modification, which it is.

Records of the sharded chains (shard ≥ 1) also carry "shard" and "shard_seq" (their place in their
chain) in the canonical form, right after "seq" as sorted keys fall; records of shard 0, the single chain
of before, keep the form they were MAC'd in. Which form a record has is told by its shard alone, so a
record moved between shard 0 and another shard no longer verifies.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any

# The fields a MAC covers, in the order exports show them. Changing this list breaks every chain.
CHAINED_FIELDS: tuple[str, ...] = (
    "seq", "ts", "actor_id", "actor_name", "action", "outcome", "reason_code", "customer_id",
    "document_id", "version_id", "loan_id", "subject_user_id", "client_addr", "named_place",
    "declared_place", "user_agent", "reason_text", "request_id", "detail",
)

# The same fields in canonical (sorted) order: the column order of raw rows given to `canonical_row`.
ROW_COLUMNS: tuple[str, ...] = tuple(sorted(CHAINED_FIELDS))
ROW_INDEX: dict[str, int] = {name: i for i, name in enumerate(ROW_COLUMNS)}
# In a full chain row the MAC follows the ROW_COLUMNS, then the shard and the place in it.
_SHARD_AT = len(ROW_COLUMNS) + 1
# Where a sharded record's chain position goes in its canonical text: after the "seq" field.
SHARD_FIELDS: tuple[str, ...] = ("shard", "shard_seq")
# Byte maps for HMAC's inner and outer key pads (see `hmac_pads`).
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))
INT_FIELDS = frozenset({"seq", "actor_id", "customer_id", "document_id", "version_id", "loan_id", "subject_user_id"})


def format_ts(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_dict(event: Any) -> dict[str, Any]:
    """The chained fields of an event (an `AuditEvent`, or the `AppendedRecord` an append returns) as plain
    JSON values (detail decoded to an object); a sharded record's "shard" and "shard_seq" included."""
    out: dict[str, Any] = {}
    if event.shard:
        out.update(shard=event.shard, shard_seq=event.shard_seq)
    for name in CHAINED_FIELDS:
        value = getattr(event, name)
        if name == "ts":
            value = format_ts(value)
        elif name == "detail":
            value = json.loads(value or "{}")
        out[name] = value
    return out


def canonical_detail(detail: dict[str, Any] | None) -> str:
    """How `detail` is stored and chained: sorted keys, no spaces, UTF-8 text."""
    return json.dumps(detail or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(record: dict[str, Any]) -> bytes:
    """The reference encoder: a record with a non-zero "shard" has its place in the canonical form."""
    names = (*CHAINED_FIELDS, *SHARD_FIELDS) if record.get("shard") else CHAINED_FIELDS
    return json.dumps(
        {k: record[k] for k in names}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def compute_mac(key: bytes, record: dict[str, Any], previous_mac: str) -> str:
    return hmac.new(key, canonical(record) + previous_mac.encode("ascii"), hashlib.sha256).hexdigest()


def canonical_row_text(r: Sequence[Any], shard: int | None = None, shard_seq: int = 0) -> str:
    """Canonical JSON text of a raw row (see `ROW_COLUMNS`); equal to `canonical(record_dict(...))`.

    `shard` and `shard_seq` are the record's place, taken from the row's own columns after the MAC
    (`rows.chain_columns`) when not given; shard 0 leaves them out.

    Written out by hand, one field after the other: a loop or helper call per field would cost more
    than the HMAC itself. Strings go through the same C escaper `json.dumps` uses.
    """
    if shard is None:
        shard, shard_seq = (r[_SHARD_AT], r[_SHARD_AT + 1]) if len(r) > _SHARD_AT + 1 else (0, 0)
    e = encode_basestring
    return (
        '{"action":' + ("null" if r[0] is None else e(r[0]))
        + ',"actor_id":' + ("null" if r[1] is None else str(r[1]))
        + ',"actor_name":' + ("null" if r[2] is None else e(r[2]))
        + ',"client_addr":' + ("null" if r[3] is None else e(r[3]))
        + ',"customer_id":' + ("null" if r[4] is None else str(r[4]))
        + ',"declared_place":' + ("null" if r[5] is None else e(r[5]))
        + ',"detail":' + (r[6] or "{}")
        + ',"document_id":' + ("null" if r[7] is None else str(r[7]))
        + ',"loan_id":' + ("null" if r[8] is None else str(r[8]))
        + ',"named_place":' + ("null" if r[9] is None else e(r[9]))
        + ',"outcome":' + ("null" if r[10] is None else e(r[10]))
        + ',"reason_code":' + ("null" if r[11] is None else e(r[11]))
        + ',"reason_text":' + ("null" if r[12] is None else e(r[12]))
        + ',"request_id":' + ("null" if r[13] is None else e(r[13]))
        + ',"seq":' + str(r[14])
        + ("" if not shard else ',"shard":' + str(shard) + ',"shard_seq":' + str(shard_seq))
        + ',"subject_user_id":' + ("null" if r[15] is None else str(r[15]))
        + ',"ts":' + e(r[16])
        + ',"user_agent":' + ("null" if r[17] is None else e(r[17]))
        + ',"version_id":' + ("null" if r[18] is None else str(r[18]))
        + "}"
    )


def hmac_pads(key: bytes) -> tuple[Any, Any]:
    """The two SHA-256 states HMAC-SHA256 starts from under `key` (RFC 2104: the key, padded to a block,
    XORed with 0x36 for the inner hash and 0x5c for the outer one), for loops over millions of records.

    HMAC(m) = SHA256(outer ‖ SHA256(inner ‖ m)): a copy of each prepared state per message is the same
    function as `hmac.new(key, m, sha256)`, byte for byte, without a Python-level HMAC object per record
    (whose copy, update and hexdigest are each a Python method): about a third cheaper per record.
    """
    block = hashlib.sha256().block_size
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    return hashlib.sha256(key.translate(_IPAD)), hashlib.sha256(key.translate(_OPAD))


def mac_function(key: bytes) -> Callable[[bytes], str]:
    """A fast HMAC-SHA256 (hex) under `key` (see `hmac_pads`); loops that run per record inline it."""
    inner, outer = hmac_pads(key)
    inner_copy, outer_copy = inner.copy, outer.copy

    def mac(data: bytes) -> str:
        h = inner_copy()
        h.update(data)
        o = outer_copy()
        o.update(h.digest())
        return o.hexdigest()

    return mac


def row_mac(key: bytes, row: Sequence[Any], previous_mac: str, seq: int | None = None, *,
            shard: int | None = None, shard_seq: int = 0) -> str:
    """MAC of a raw row chained to `previous_mac` at place (`shard`, `shard_seq`); `seq` overrides the
    row's chain position (to test a renumbering): `shard_seq` in a shard, the row's own `seq` in shard 0."""
    if shard is None:
        shard, shard_seq = (row[_SHARD_AT], row[_SHARD_AT + 1]) if len(row) > _SHARD_AT + 1 else (0, 0)
    if seq is not None and shard:
        shard_seq, seq = seq, None
    text = canonical_row_text(row if seq is None else (*row[:14], seq, *row[15:]), shard, shard_seq)
    # hmac.digest is OpenSSL's one-shot HMAC: no Python-level HMAC object per row.
    return hmac.digest(key, (text + previous_mac).encode("utf-8"), "sha256").hex()


if (ROW_COLUMNS[6], ROW_COLUMNS[14], ROW_COLUMNS[16]) != ("detail", "seq", "ts"):  # pragma: no cover
    raise RuntimeError("canonical_row_text no longer matches CHAINED_FIELDS")
