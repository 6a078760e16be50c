"""Signed checkpoints of the chain heads, kept write-once in the object store.

A checkpoint says "at time T each chain (shard) reached place S with MAC M", for every shard at once,
signed with the installation's Ed25519 key. The HMAC chain alone cannot stop someone who holds both
the database and the audit key from recomputing history; a checkpoint held under S3 Object Lock (or the local
store's retention) can:
the rewritten chain no longer reaches M at S, and a truncated one no longer reaches S at all.

The signed message is the canonical JSON of {format, heads, seq, ts} (sorted keys, no spaces, ASCII),
where `heads` is [[shard, shard_seq, mac], ...] in shard order and `seq` the number of records the heads
cover in all (it names the checkpoint and only grows). Checkpoints from before the log was sharded have
the format vault-audit-checkpoint/1 and sign {format, mac, seq, ts} of the single chain, now shard 0;
both are read. The message is stored verbatim in the object's "message" field, so an outside verifier
needs nothing but openssl::

    jq -j .message 00000000000000001000.json > checkpoint-message.bin
    jq -r .signature 00000000000000001000.json | base64 -d > sig.bin
    openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in checkpoint-message.bin -sigfile sig.bin

(`vault audit public-key --out pub.pem` exports the key; Ed25519 signs the raw message, hence -rawin.)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from crypto import Keyring
from storage import ObjectLocked, ObjectNotFound, ObjectStore
from vault.audit.chain import format_ts
from vault.config.settings import Settings
from vault.db.durability import make_commits_durable
from vault.db.engine import Database
from vault.models import AuditCheckpoint, AuditHead, utcnow

FORMAT = "vault-audit-checkpoint/2"
FORMAT_SINGLE = "vault-audit-checkpoint/1"
PREFIX = "audit/checkpoints/"
Heads = tuple[tuple[int, int, str], ...]  # (shard, shard_seq, mac) in shard order


class CheckpointError(Exception):
    """A stored checkpoint is unreadable or malformed; `seq` is the sequence its name claims, if known."""

    def __init__(self, message: str, seq: int | None = None) -> None:
        super().__init__(message)
        self.seq = seq


def object_key(seq: int) -> str:
    """Zero-padded so that the store lists checkpoints in sequence order."""
    return f"{PREFIX}{seq:020d}.json"


def checkpoint_message(seq: int, mac: str, ts: str, heads: Heads | None = None) -> bytes:
    """What a checkpoint signs: all heads (format 2), or the single chain's head (format 1, `heads` None)."""
    if heads is None:
        body: dict[str, Any] = {"format": FORMAT_SINGLE, "mac": mac, "seq": seq, "ts": ts}
    else:
        body = {"format": FORMAT, "heads": [list(h) for h in heads], "seq": seq, "ts": ts}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("ascii")


def heads_of(rows: Any) -> Heads:
    """(shard, shard_seq, mac) of the shards that hold records, in shard order."""
    return tuple(sorted((int(shard), int(seq), str(mac)) for shard, seq, mac in rows if seq > 0))


def public_key_fingerprint(public_key: Ed25519PublicKey) -> str:
    """SHA-256 of the DER public key: `openssl pkey -pubin -in pub.pem -outform DER | sha256sum`."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise CheckpointError(f"not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError("the public key is not an Ed25519 key")
    return key


@dataclass(frozen=True)
class SignedCheckpoint:
    seq: int  # records covered in all shards: the checkpoint's name
    mac: str  # format 1 only: the single chain's MAC at `seq` ("" in format 2)
    ts: str
    signature: str  # base64
    fingerprint: str
    signed_heads: Heads | None = None  # format 2; None for a checkpoint of the single chain

    @property
    def message(self) -> bytes:
        return checkpoint_message(self.seq, self.mac, self.ts, self.signed_heads)

    @property
    def heads(self) -> dict[int, tuple[int, str]]:
        """{shard: (shard_seq, mac)} this checkpoint vouches for (format 1: shard 0 at `seq`)."""
        if self.signed_heads is None:
            return {0: (self.seq, self.mac)}
        return {shard: (seq, mac) for shard, seq, mac in self.signed_heads}

    @classmethod
    def sign(cls, private_key: Ed25519PrivateKey, heads: Heads, ts: datetime) -> SignedCheckpoint:
        stamp = format_ts(ts)
        total = sum(seq for _shard, seq, _mac in heads)
        signature = private_key.sign(checkpoint_message(total, "", stamp, heads))
        return cls(total, "", stamp, base64.b64encode(signature).decode("ascii"),
                   public_key_fingerprint(private_key.public_key()), heads)

    def verify(self, public_key: Ed25519PublicKey) -> bool:
        return verify_message(public_key, self.message, self.signature)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"seq": self.seq, "ts": self.ts, "message": self.message.decode("ascii"),
                                "signature": self.signature, "public_key_fingerprint": self.fingerprint}
        if self.signed_heads is None:
            return {**body, "format": FORMAT_SINGLE, "mac": self.mac}
        return {**body, "format": FORMAT, "heads": [list(h) for h in self.signed_heads]}

    def to_bytes(self) -> bytes:
        return (json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n").encode("ascii")

    @classmethod
    def from_json(cls, data: Any) -> SignedCheckpoint:
        """Parse a stored checkpoint; its "message" must be exactly what its fields say."""
        fmt = data.get("format") if isinstance(data, dict) else None
        if fmt not in (FORMAT, FORMAT_SINGLE):
            raise CheckpointError(f"unknown checkpoint format {fmt!r}")
        try:
            heads = None
            if fmt == FORMAT:
                heads = tuple((int(shard), int(seq), str(mac)) for shard, seq, mac in data["heads"])
            checkpoint = cls(int(data["seq"]), str(data.get("mac", "")) if heads is not None else str(data["mac"]),
                             str(data["ts"]), str(data["signature"]), str(data.get("public_key_fingerprint", "")),
                             heads)
            message = data.get("message")
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"malformed checkpoint: {exc}") from None
        if message is not None and not isinstance(message, str):
            raise CheckpointError(f"malformed checkpoint {checkpoint.seq}: its message is not text")
        if message is not None and message.encode("utf-8") != checkpoint.message:
            raise CheckpointError(f"checkpoint {checkpoint.seq}: its message does not match its fields")
        return checkpoint

    @classmethod
    def from_bytes(cls, raw: bytes) -> SignedCheckpoint:
        try:
            return cls.from_json(json.loads(raw))
        except (ValueError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"checkpoint is not JSON: {exc}") from None

    @classmethod
    def from_row(cls, row: AuditCheckpoint, fingerprint: str) -> SignedCheckpoint:
        heads = None if row.heads is None else tuple((int(a), int(b), str(c)) for a, b, c in json.loads(row.heads))
        return cls(row.seq, row.mac, format_ts(row.ts), row.signature, fingerprint, heads)


class Checkpointer:
    """Decides when a checkpoint is due and writes it: object store first, then its database row."""

    def __init__(self, db: Database, store: ObjectStore, keyring: Keyring, settings: Settings) -> None:
        self.db = db
        self.store = store
        self._private_key = keyring.checkpoint_private_key
        self.public_key = self._private_key.public_key()
        self.fingerprint = public_key_fingerprint(self.public_key)
        # Any one chain reaching its share of N unsigned records triggers a checkpoint of all of them, so
        # however the records spread, at most N are ever unsigned (as with a single chain).
        # The settings' ranges (vault.config.settings.RANGES) keep each of these at 1 or more.
        self.every = -(-settings.audit_checkpoint_every // settings.audit_shards)
        self.interval = timedelta(minutes=settings.audit_checkpoint_minutes)
        self.retention = timedelta(days=settings.audit_retention_days)
        # One writer per process at a time; other processes may race, which only costs a duplicate.
        self._lock = threading.Lock()

    def sign(self, message: bytes) -> str:
        """Base64 Ed25519 signature of `message` (export manifests are signed like checkpoints)."""
        return sign_message(self._private_key, message)

    def public_key_pem(self) -> bytes:
        return self.public_key.public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)

    def due(self, seq: int, ts: datetime, last_checkpoint_seq: int,
            last_checkpoint_at: datetime | None) -> tuple[bool, datetime | None]:
        """Called by the append, under its shard's head lock: every N records of that shard or M minutes.

        Returns (due, clock): `clock` is a time to store as the head's last_checkpoint_at when the
        minute clock starts, which is at the first record ever; after that it restarts with each
        checkpoint, so an idle log does not sign the same head again and again.
        """
        if seq - last_checkpoint_seq >= self.every:
            return True, None
        if last_checkpoint_at is None:
            return False, ts
        return ts - last_checkpoint_at >= self.interval, None

    def write(self, *, wait: bool = True, at: dict[int, tuple[int, str]] | None = None) -> SignedCheckpoint | None:
        """Sign the current heads of all shards (or `at` = {shard: (shard_seq, mac)} of committed records,
        as a snapshot saw them) and store the checkpoint.

        Returns the checkpoint, or None when there is nothing new to sign (or, with wait=False,
        another thread of this process is already writing one).

        Raises:
            storage.StorageError: the object store refused the checkpoint.
        """
        if not self._lock.acquire(blocking=wait):
            return None
        try:
            return self._write(at)
        finally:
            self._lock.release()

    def write_if_stale(self, now: datetime | None = None) -> SignedCheckpoint | None:
        """Sign the heads when records are unsigned and the minute clock ran out, even with no new append.

        Appends check the clock only when they happen; without this, the last records before a quiet
        spell would stay unsigned (and deletable with the head reset) until the next append.
        """
        now = now or utcnow()
        with self.db.session() as session:
            stale = [head for head in session.scalars(select(AuditHead))
                     if head.seq > head.last_checkpoint_seq
                     and (head.last_checkpoint_at is None or now - head.last_checkpoint_at >= self.interval)]
            if not stale:
                return None
        return self.write(wait=False)

    def _write(self, at: dict[int, tuple[int, str]] | None) -> SignedCheckpoint | None:
        with self.db.session() as session:
            current = session.execute(select(AuditHead.id, AuditHead.seq, AuditHead.mac,
                                             AuditHead.last_checkpoint_seq)).all()
            if at is not None:
                heads = heads_of((shard, seq, mac) for shard, (seq, mac) in at.items())
            else:
                heads = heads_of((row[0], row[1], row[2]) for row in current)
                if all(row[1] <= row[3] for row in current):
                    return None
            if not heads:
                return None
            existing = session.get(AuditCheckpoint, sum(seq for _shard, seq, _mac in heads))
            if existing is not None:
                return SignedCheckpoint.from_row(existing, self.fingerprint)
        # Signed heads must outlive a crash of the database: a write-once checkpoint of records it then
        # loses would accuse it of tampering for ever (see vault.db.durability).
        make_commits_durable(self.db)
        # No transaction is open from here to the final one: the slow part holds no lock.
        total = sum(seq for _shard, seq, _mac in heads)
        key = object_key(total)
        # A checkpoint already stored under this number is never replaced, even if it disagrees with
        # the database: it is the evidence, and verification will report the disagreement.
        checkpoint = self._stored(key)
        if checkpoint is None:
            checkpoint = SignedCheckpoint.sign(self._private_key, heads, utcnow())
            body = checkpoint.to_bytes()
            stamp = datetime.fromisoformat(checkpoint.ts.replace("Z", "+00:00"))
            try:
                self.store.put(key, io.BytesIO(body), length=len(body), content_type="application/json",
                               retain_until=stamp + self.retention)
            except ObjectLocked:
                # Another process stored this number first; theirs is as good as ours.
                stored = self._stored(key)
                if stored is None:
                    raise
                checkpoint = stored
        self._record(checkpoint, key)
        return checkpoint

    def _stored(self, key: str) -> SignedCheckpoint | None:
        try:
            with self.store.open(key) as handle:
                return SignedCheckpoint.from_bytes(handle.read())
        except ObjectNotFound:
            return None

    def _record(self, checkpoint: SignedCheckpoint, key: str) -> None:
        stamp = datetime.fromisoformat(checkpoint.ts.replace("Z", "+00:00"))
        heads = None if checkpoint.signed_heads is None else json.dumps([list(h) for h in checkpoint.signed_heads])
        with self.db.session() as session:
            try:
                with session.begin_nested():
                    session.add(AuditCheckpoint(seq=checkpoint.seq, mac=checkpoint.mac, ts=stamp,
                                                object_key=key, signature=checkpoint.signature, heads=heads))
            except IntegrityError:
                pass  # recorded by a concurrent writer
            # Each head is moved by one statement, in shard order: a head is locked only as long as its
            # own update takes, and always in the same order as any other checkpoint writer.
            for shard, (seq, _mac) in sorted(checkpoint.heads.items()):
                session.execute(update(AuditHead).where(AuditHead.id == shard, AuditHead.last_checkpoint_seq < seq)
                                .values(last_checkpoint_seq=seq, last_checkpoint_at=stamp))

    def stored_checkpoint(self, seq: int) -> SignedCheckpoint | CheckpointError | None:
        """The stored checkpoint of one sequence number, if there is one."""
        try:
            checkpoint = self._stored(object_key(seq))
        except CheckpointError as exc:
            return CheckpointError(f"{object_key(seq)}: {exc}", seq=seq)
        if checkpoint is not None and checkpoint.seq != seq:
            return CheckpointError(f"{object_key(seq)} holds the checkpoint of seq {checkpoint.seq}", seq=seq)
        return checkpoint

    def stored_checkpoints(self, since: int = 0) -> list[SignedCheckpoint | CheckpointError]:
        """Every checkpoint object in the store with seq ≥ `since`, in order (unreadable ones as errors)."""
        # An unreachable store must fail the verification loudly, not read as "no checkpoints".
        self.store.check()
        found: list[SignedCheckpoint | CheckpointError] = []
        for info in self.store.list(PREFIX):
            name = info.key[len(PREFIX):]
            number = name[:-5]
            if not name.endswith(".json") or not (number.isascii() and number.isdigit()) or int(number) < since:
                continue
            try:
                with self.store.open(info.key) as handle:
                    checkpoint = SignedCheckpoint.from_bytes(handle.read())
                if checkpoint.seq != int(name[:-5]):
                    raise CheckpointError(f"{info.key} holds the checkpoint of seq {checkpoint.seq}")
                found.append(checkpoint)
            except CheckpointError as exc:
                found.append(CheckpointError(f"{info.key}: {exc}", seq=int(name[:-5])))
        return found


def sign_message(private_key: Ed25519PrivateKey, message: bytes) -> str:
    return base64.b64encode(private_key.sign(message)).decode("ascii")


def verify_message(public_key: Ed25519PublicKey, message: bytes, signature: str) -> bool:
    try:
        public_key.verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True
