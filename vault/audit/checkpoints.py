"""Signed checkpoints of the chain head, kept write-once in the object store.

A checkpoint says "at time T the chain reached sequence S with MAC M", signed with the installation's
Ed25519 key. The HMAC chain alone cannot stop someone who holds both the database and the audit key
from recomputing history; a checkpoint held under S3 Object Lock (or the local store's retention) can:
the rewritten chain no longer reaches M at S, and a truncated one no longer reaches S at all.

The signed message is the canonical JSON of {format, mac, seq, ts} (sorted keys, no spaces, ASCII),
stored verbatim in the object's "message" field, so an outside verifier needs nothing but openssl::

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
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from crypto import Keyring
from storage import ObjectLocked, ObjectNotFound, ObjectStore
from vault.audit.chain import format_ts
from vault.config.settings import Settings
from vault.db.engine import Database
from vault.models import AuditCheckpoint, AuditHead, utcnow

FORMAT = "vault-audit-checkpoint/1"
PREFIX = "audit/checkpoints/"
HEAD_ID = 1


class CheckpointError(Exception):
    """A stored checkpoint is unreadable or malformed; `seq` is the sequence its name claims, if known."""

    def __init__(self, message: str, seq: int | None = None) -> None:
        super().__init__(message)
        self.seq = seq


def object_key(seq: int) -> str:
    """Zero-padded so that the store lists checkpoints in sequence order."""
    return f"{PREFIX}{seq:020d}.json"


def checkpoint_message(seq: int, mac: str, ts: str) -> bytes:
    return json.dumps({"format": FORMAT, "mac": mac, "seq": seq, "ts": ts},
                      sort_keys=True, separators=(",", ":")).encode("ascii")


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
    seq: int
    mac: str
    ts: str
    signature: str  # base64
    fingerprint: str

    @property
    def message(self) -> bytes:
        return checkpoint_message(self.seq, self.mac, self.ts)

    @classmethod
    def sign(cls, private_key: Ed25519PrivateKey, seq: int, mac: str, ts: datetime) -> SignedCheckpoint:
        stamp = format_ts(ts)
        signature = private_key.sign(checkpoint_message(seq, mac, stamp))
        return cls(seq, mac, stamp, base64.b64encode(signature).decode("ascii"),
                   public_key_fingerprint(private_key.public_key()))

    def verify(self, public_key: Ed25519PublicKey) -> bool:
        return verify_message(public_key, self.message, self.signature)

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "seq": self.seq, "mac": self.mac, "ts": self.ts,
                "message": self.message.decode("ascii"), "signature": self.signature,
                "public_key_fingerprint": self.fingerprint}

    def to_bytes(self) -> bytes:
        return (json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n").encode("ascii")

    @classmethod
    def from_json(cls, data: Any) -> SignedCheckpoint:
        """Parse a stored checkpoint; its "message" must be exactly what its fields say."""
        try:
            checkpoint = cls(int(data["seq"]), str(data["mac"]), str(data["ts"]), str(data["signature"]),
                             str(data.get("public_key_fingerprint", "")))
            message = data.get("message")
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"malformed checkpoint: {exc}") from None
        if data.get("format") != FORMAT:
            raise CheckpointError(f"unknown checkpoint format {data.get('format')!r}")
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
        return cls(row.seq, row.mac, format_ts(row.ts), row.signature, fingerprint)


class Checkpointer:
    """Decides when a checkpoint is due and writes it: object store first, then its database row."""

    def __init__(self, db: Database, store: ObjectStore, keyring: Keyring, settings: Settings) -> None:
        self.db = db
        self.store = store
        self._private_key = keyring.checkpoint_private_key
        self.public_key = self._private_key.public_key()
        self.fingerprint = public_key_fingerprint(self.public_key)
        self.every = max(1, settings.audit_checkpoint_every)
        self.interval = timedelta(minutes=max(1, settings.audit_checkpoint_minutes))
        self.retention = timedelta(days=max(1, settings.audit_retention_days))
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
        """Called by the append, under the head lock: every N records or M minutes.

        Returns (due, clock): `clock` is a time to store as the head's last_checkpoint_at when the
        minute clock starts, which is at the first record ever; after that it restarts with each
        checkpoint, so an idle log does not sign the same head again and again.
        """
        if seq - last_checkpoint_seq >= self.every:
            return True, None
        if last_checkpoint_at is None:
            return False, ts
        return ts - last_checkpoint_at >= self.interval, None

    def write(self, *, wait: bool = True, at: tuple[int, str] | None = None) -> SignedCheckpoint | None:
        """Sign the current head (or `at` = (seq, mac) of a committed record) and store it.

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
        """Sign the head when records are unsigned and the minute clock ran out, even with no new append.

        Appends check the clock only when they happen; without this, the last records before a quiet
        spell would stay unsigned (and deletable with the head reset) until the next append.
        """
        now = now or utcnow()
        with self.db.session() as session:
            head = session.get(AuditHead, HEAD_ID)
            if head is None or head.seq <= head.last_checkpoint_seq:
                return None
            if head.last_checkpoint_at is not None and now - head.last_checkpoint_at < self.interval:
                return None
        return self.write(wait=False)

    def _write(self, at: tuple[int, str] | None) -> SignedCheckpoint | None:
        with self.db.session() as session:
            head = session.get(AuditHead, HEAD_ID)
            if head is None:
                return None
            seq, mac = at if at is not None else (head.seq, head.mac)
            if seq <= 0:
                return None
            if at is None and seq <= head.last_checkpoint_seq:
                return None
            existing = session.get(AuditCheckpoint, seq)
            if existing is not None:
                return SignedCheckpoint.from_row(existing, self.fingerprint)
        # No transaction is open from here to the final one: the slow part holds no lock.
        key = object_key(seq)
        # A checkpoint already stored under this sequence is never replaced, even if it disagrees with
        # the database: it is the evidence, and verification will report the disagreement.
        checkpoint = self._stored(key)
        if checkpoint is None:
            checkpoint = SignedCheckpoint.sign(self._private_key, seq, mac, utcnow())
            body = checkpoint.to_bytes()
            stamp = datetime.fromisoformat(checkpoint.ts.replace("Z", "+00:00"))
            try:
                self.store.put(key, io.BytesIO(body), length=len(body), content_type="application/json",
                               retain_until=stamp + self.retention)
            except ObjectLocked:
                # Another process stored this sequence first; theirs is as good as ours.
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
        with self.db.session() as session:
            try:
                with session.begin_nested():
                    session.add(AuditCheckpoint(seq=checkpoint.seq, mac=checkpoint.mac, ts=stamp,
                                                object_key=key, signature=checkpoint.signature))
            except IntegrityError:
                pass  # recorded by a concurrent writer
            head = session.execute(
                select(AuditHead).where(AuditHead.id == HEAD_ID).with_for_update()
                .execution_options(populate_existing=True)
            ).scalar_one()
            if checkpoint.seq > head.last_checkpoint_seq:
                head.last_checkpoint_seq = checkpoint.seq
                head.last_checkpoint_at = stamp

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
            if not name.endswith(".json") or not name[:-5].isdigit() or int(name[:-5]) < since:
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
