"""Master keys (KEKs) that wrap per-file data keys, and the other secrets vault needs.

Envelope encryption: every file version is encrypted under its own random
data key (DEK), and only the DEK, wrapped by a master key (KEK), is stored in
the database. Rotating the master key then means adding a KEK and re-wrapping
small DEKs, never re-encrypting files; dropping an old KEK is allowed only
once no wrapped DEK refers to it, so no file can be made unreadable by
accident.

The keyring file also holds the two keys of the audit log, kept apart from
the data keys so that neither use can weaken the other: ``audit_key`` for the
HMAC chain and an Ed25519 key that signs audit checkpoints (its public half
can be handed to an outside verifier).

File format (JSON, mode 0600, replaced atomically on every change)::

    {
      "format": 1,
      "active_kek": "k0002",
      "keks": {
        "k0001": {"key": "<base64, 32 bytes>", "created": "2026-01-05T09:30:00Z", "status": "retired"},
        "k0002": {"key": "<base64, 32 bytes>", "created": "2026-11-22T14:02:11Z", "status": "active"}
      },
      "audit_key": "<base64, 32 bytes>",
      "checkpoint_signing_key": "<base64, 32-byte raw Ed25519 private key>"
    }

Loading is strict, since a damaged keyring must never pass for a good one: a
member named twice in one object, a ``format`` that is not the integer 1
(``true`` and ``1.0`` compare equal to it in Python), a missing or unknown
field are all refused.

KEK ids are ``k`` and a zero-padded counter: short, unique within the keyring
and sorting in creation order.

Changes (rotate, drop) are read-modify-write of one file by processes that
may run at the same time (two `vault keys rotate`, a rotate and a drop). Each
takes an exclusive ``flock`` on the file, re-reads it under the lock and
applies its change to what it read: writing a stale in-memory copy instead
would silently replace or erase a master key another process had already put
to use, and every data key wrapped under it would be lost for good.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from crypto.errors import DecryptionError, KeyringChanged, KeyringError

FORMAT_VERSION = 1
KEY_SIZE = 32
NONCE_SIZE = 12
ACTIVE = "active"
RETIRED = "retired"

_WRAP_LABEL = b"vault:kek:"
_WRAPPED_SIZE = NONCE_SIZE + KEY_SIZE + 16
_KEK_ID = re.compile(r"k[0-9]{4,}")


def new_data_key() -> bytes:
    """Return a fresh random 32-byte data key.

    One per file version, so that a leaked data key exposes one version only
    and re-wrapping under a new master key never touches file contents.
    """
    return secrets.token_bytes(KEY_SIZE)


@dataclass(frozen=True)
class _Kek:
    key: bytes
    created: str
    status: str


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    """What tells a rewritten file from the one read: inode (saves rename a new file over it),
    modification time and size."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class _DuplicateMember(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's members, refusing a name given twice.

    `json` would keep the last copy without a word: a keyring damaged or badly merged by hand (two
    ``k0001`` entries, two audit keys) would load as a good one holding whichever copy came last, and
    the next save would erase the other for good.

    Raises:
        _DuplicateMember: a name appears twice in the object.
    """
    members: dict[str, Any] = {}
    for name, value in pairs:
        if name in members:
            raise _DuplicateMember(name)
        members[name] = value
    return members


class Keyring:
    """The master keys and audit keys of one vault installation, backed by one file.

    Build one with :meth:`create` or :meth:`load`; every change is written
    back to the file before the method returns.
    """

    def __init__(
        self,
        path: Path,
        active_key_id: str,
        keks: dict[str, _Kek],
        audit_key: bytes,
        checkpoint_key: bytes,
    ) -> None:
        self._path = path
        self._active = active_key_id
        self._keks = keks
        self._audit_key = audit_key
        self._checkpoint_key = checkpoint_key
        self._stamp = _file_stamp(path)

    def __repr__(self) -> str:
        # Never show key material, e.g. in a traceback or a debugger.
        return f"Keyring(path={str(self._path)!r}, active_key_id={self._active!r}, keys={len(self._keks)})"

    # -- file ---------------------------------------------------------------

    def refresh(self) -> bool:
        """Reload the keyring if its file changed since this process read or wrote it.

        `vault keys rotate` runs in another process; a running server's workers learn of the new key
        here, without a restart: uploads check before wrapping (so new data keys go under the new
        master key), and unwrapping retries once after a refresh when it meets an unknown key id.
        The audit and checkpoint keys never change, so nothing else needs to follow. Returns whether
        anything was reloaded.

        Raises:
            KeyringError: the changed file is unsafe or malformed (as at start-up).
        """
        if _file_stamp(self._path) == self._stamp:
            return False
        fresh = Keyring.load(self._path)
        if fresh._audit_key != self._audit_key or fresh._checkpoint_key != self._checkpoint_key:
            raise KeyringError(f"keyring file {self._path} now holds other audit keys; restart to accept them")
        self._keks, self._active, self._stamp = fresh._keks, fresh._active, fresh._stamp
        return True

    def unwrap_current(self, key_id: str, wrapped: bytes, context: bytes) -> bytes:
        """:meth:`unwrap`, reloading the file once if `key_id` is unknown (another process rotated)."""
        try:
            return self.unwrap(key_id, wrapped, context)
        except KeyringError:
            if key_id in self._keks or not self.refresh():
                raise
        return self.unwrap(key_id, wrapped, context)

    def wrap_current(self, dek: bytes, context: bytes) -> tuple[str, bytes]:
        """:meth:`wrap` under the active key of the file as it is now (a stat per call)."""
        self.refresh()
        return self.wrap(dek, context)

    @classmethod
    def create(cls, path: str | os.PathLike[str]) -> Keyring:
        """Create a keyring with one KEK, an audit key and a checkpoint signing key.

        Refuses to replace an existing file: overwriting a keyring would make
        every file it protects unreadable.

        Args:
            path: Where to write the keyring file (mode 0600).

        Returns:
            The new keyring, already saved.

        Raises:
            KeyringError: If the file exists or cannot be written.
        """
        path = Path(path)
        first = "k0001"
        keyring = cls(
            path=path,
            active_key_id=first,
            keks={first: _Kek(secrets.token_bytes(KEY_SIZE), _now(), ACTIVE)},
            audit_key=secrets.token_bytes(KEY_SIZE),
            checkpoint_key=Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
            ),
        )
        keyring._write(overwrite=False)
        return keyring

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Keyring:
        """Load and validate a keyring file.

        The application must refuse to start on a keyring that other users
        could read or change, so permissions are checked before anything else.

        Args:
            path: The keyring file.

        Returns:
            The keyring.

        Raises:
            KeyringError: If the file is missing, readable or writable by group
                or others, or malformed.
        """
        path = Path(path)
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise KeyringError(f"keyring file {path} does not exist") from None
        except OSError as exc:
            raise KeyringError(f"keyring file {path} cannot be read: {exc.strerror}") from None
        if not stat.S_ISREG(mode):
            raise KeyringError(f"keyring file {path} is not a regular file")
        if mode & 0o077:
            raise KeyringError(
                f"keyring file {path} is accessible to group or others "
                f"(mode {stat.S_IMODE(mode):04o}); run `chmod 600 {path}` and start again"
            )
        try:
            raw = json.loads(path.read_bytes(), object_pairs_hook=_unique_members)
        except OSError as exc:
            raise KeyringError(f"keyring file {path} cannot be read: {exc.strerror}") from None
        except _DuplicateMember as exc:
            raise KeyringError(f"keyring file {path} is malformed: {exc.name!r} appears twice in one object") from None
        except (ValueError, UnicodeDecodeError):
            raise KeyringError(f"keyring file {path} is not valid JSON") from None
        return cls._parse(path, raw)

    @classmethod
    def _parse(cls, path: Path, raw: Any) -> Keyring:
        def bad(why: str) -> KeyringError:
            return KeyringError(f"keyring file {path} is malformed: {why}")

        def key_bytes(value: Any, what: str) -> bytes:
            try:
                data = base64.b64decode(value, validate=True)
            except (TypeError, ValueError, binascii.Error):
                raise bad(f"{what} is not base64") from None
            if len(data) != KEY_SIZE:
                raise bad(f"{what} must be {KEY_SIZE} bytes, found {len(data)}")
            return data

        if not isinstance(raw, dict):
            raise bad("top level must be an object")
        expected = {"format", "active_kek", "keks", "audit_key", "checkpoint_signing_key"}
        if set(raw) != expected:
            missing, unknown = sorted(expected - set(raw)), sorted(set(raw) - expected)
            raise bad(f"missing fields {missing}, unknown fields {unknown}")
        # `type(...) is int`: True and 1.0 compare equal to 1, and no version of this code writes them.
        if type(raw["format"]) is not int or raw["format"] != FORMAT_VERSION:
            raise bad(f"unsupported format {raw['format']!r}, expected {FORMAT_VERSION}")
        if not isinstance(raw["keks"], dict) or not raw["keks"]:
            raise bad("keks must be a non-empty object")
        keks: dict[str, _Kek] = {}
        for key_id, entry in raw["keks"].items():
            if not _KEK_ID.fullmatch(key_id):
                raise bad(f"KEK id {key_id!r} is not of the form k0001")
            if not isinstance(entry, dict) or set(entry) != {"key", "created", "status"}:
                raise bad(f"KEK {key_id!r} must have exactly key, created and status")
            if entry["status"] not in (ACTIVE, RETIRED):
                raise bad(f"KEK {key_id!r} has unknown status {entry['status']!r}")
            if not isinstance(entry["created"], str):
                raise bad(f"KEK {key_id!r} has a non-text creation time")
            keks[key_id] = _Kek(key_bytes(entry["key"], f"KEK {key_id!r}"), entry["created"], entry["status"])
        active = raw["active_kek"]
        actives = [key_id for key_id, kek in keks.items() if kek.status == ACTIVE]
        if actives != [active]:
            raise bad(f"active_kek is {active!r} but the KEKs marked active are {actives}")
        checkpoint_key = key_bytes(raw["checkpoint_signing_key"], "checkpoint_signing_key")
        return cls(path, active, keks, key_bytes(raw["audit_key"], "audit_key"), checkpoint_key)

    def save(self) -> None:
        """Write the keyring to its file atomically, with mode 0600.

        The new content goes to a temporary file in the same directory, is
        flushed to disk, then renamed over the old file, so a crash leaves
        either the old or the new keyring, never a partial one.

        Raises:
            KeyringError: If the file cannot be written.
        """
        self._write(overwrite=True)

    def _write(self, overwrite: bool) -> None:
        document = {
            "format": FORMAT_VERSION,
            "active_kek": self._active,
            "keks": {
                key_id: {"key": _b64(kek.key), "created": kek.created, "status": kek.status}
                for key_id, kek in sorted(self._keks.items())
            },
            "audit_key": _b64(self._audit_key),
            "checkpoint_signing_key": _b64(self._checkpoint_key),
        }
        data = (json.dumps(document, indent=2) + "\n").encode("ascii")
        directory = self._path.parent
        temp = directory / f".{self._path.name}.{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise KeyringError(f"cannot write keyring file {self._path}: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), 0o600)  # whatever the umask said
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if overwrite:
                os.replace(temp, self._path)
            else:
                # link() fails if the target exists, unlike rename(): no window
                # in which an existing keyring could be overwritten.
                os.link(temp, self._path)
                os.unlink(temp)
        except FileExistsError:
            raise KeyringError(f"keyring file {self._path} already exists; refusing to overwrite it") from None
        except OSError as exc:
            raise KeyringError(f"cannot write keyring file {self._path}: {exc.strerror}") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        # The rename is durable only once the directory entry is on disk.
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._stamp = _file_stamp(self._path)  # our own write is no news to reload

    # -- master keys ---------------------------------------------------------

    @property
    def path(self) -> Path:
        """The keyring file."""
        return self._path

    @property
    def active_key_id(self) -> str:
        """Id of the KEK that wraps new data keys."""
        return self._active

    def key_ids(self) -> list[str]:
        """Ids of all KEKs, active and retired, oldest first."""
        return sorted(self._keks)

    def key_status(self, key_id: str) -> str:
        """Return ``"active"`` or ``"retired"`` for a KEK.

        Raises:
            KeyringError: If the id is unknown.
        """
        return self._kek(key_id).status

    def key_created(self, key_id: str) -> str:
        """Return the ISO 8601 UTC creation time of a KEK.

        Raises:
            KeyringError: If the id is unknown.
        """
        return self._kek(key_id).created

    def _kek(self, key_id: str) -> _Kek:
        try:
            return self._keks[key_id]
        except KeyError:
            raise KeyringError(f"unknown master key id {key_id!r} in keyring {self._path}") from None

    @staticmethod
    def _wrap_context(key_id: str, context: bytes) -> bytes:
        # The key id is bound too, so a wrapped key relabelled with another id
        # fails instead of being tried under the wrong KEK.
        return _WRAP_LABEL + key_id.encode("utf-8") + b"\x00" + context

    def wrap(self, dek: bytes, context: bytes) -> tuple[str, bytes]:
        """Wrap a data key under the active KEK.

        Args:
            dek: The 32-byte data key.
            context: Bytes naming what the key protects (e.g. the stream's
                associated data); the same bytes are needed to unwrap, so a
                wrapped key cannot be moved to another document.

        Returns:
            (key_id, wrapped): the KEK id to store next to the wrapped key,
            and nonce ‖ AES-256-GCM ciphertext ‖ tag (60 bytes).

        Raises:
            KeyringError: If ``dek`` is not 32 bytes.
        """
        if not isinstance(dek, bytes) or len(dek) != KEY_SIZE:
            raise KeyringError(f"a data key must be {KEY_SIZE} bytes")
        key_id = self._active
        nonce = secrets.token_bytes(NONCE_SIZE)
        sealed = AESGCM(self._keks[key_id].key).encrypt(nonce, dek, self._wrap_context(key_id, context))
        return key_id, nonce + sealed

    def unwrap(self, key_id: str, wrapped: bytes, context: bytes) -> bytes:
        """Recover a data key wrapped by :meth:`wrap`, under any KEK still in the keyring.

        Args:
            key_id: The KEK id returned by :meth:`wrap`.
            wrapped: The wrapped key returned by :meth:`wrap`.
            context: The context given to :meth:`wrap`.

        Returns:
            The 32-byte data key.

        Raises:
            KeyringError: If ``key_id`` is not in the keyring.
            DecryptionError: If the wrapped key, its id or the context were altered.
        """
        kek = self._kek(key_id)
        if len(wrapped) != _WRAPPED_SIZE:
            raise DecryptionError()
        try:
            return AESGCM(kek.key).decrypt(
                wrapped[:NONCE_SIZE], wrapped[NONCE_SIZE:], self._wrap_context(key_id, context)
            )
        except InvalidTag:
            raise DecryptionError() from None

    def rewrap(self, key_id: str, wrapped: bytes, context: bytes) -> tuple[str, bytes]:
        """Move a wrapped data key to the active KEK, so an old KEK can be dropped.

        Returns:
            (key_id, wrapped) under the active KEK.

        Raises:
            KeyringError: If ``key_id`` is not in the keyring.
            DecryptionError: If the wrapped key does not authenticate.
        """
        return self.wrap(self.unwrap(key_id, wrapped, context), context)

    def next_key_id(self) -> str:
        """The id :meth:`rotate` will give the next KEK (so it can be recorded before the keyring changes)."""
        number = max(int(key_id[1:]) for key_id in self._keks) + 1
        return f"k{number:04d}"

    def rotate(self, expected: str | None = None) -> str:
        """Add a new active KEK; the previous one is retired but kept for unwrapping.

        Built on the file as it is under its lock (see the module docstring), so a rotation made by
        another process meanwhile is kept and this one comes after it.

        Args:
            expected: The id the caller has recorded for the new KEK (from :meth:`next_key_id`). Judged
                under the lock: if another process rotated since, the new KEK would get another id, and
                nothing is changed rather than a key made that its record does not name.

        Returns:
            The id of the new active KEK.

        Raises:
            KeyringChanged: If ``expected`` is given and is not the id the new KEK would get (nothing changed).
            KeyringError: If the file cannot be read back or saved (nothing is changed then).
        """
        new_ids: list[str] = []

        def change() -> None:
            new_id = self.next_key_id()
            if expected is not None and new_id != expected:
                raise KeyringChanged(expected, new_id, self._active)
            old = self._keks[self._active]
            self._keks[self._active] = _Kek(old.key, old.created, RETIRED)
            self._keks[new_id] = _Kek(secrets.token_bytes(KEY_SIZE), _now(), ACTIVE)
            self._active = new_id
            new_ids.append(new_id)

        self._update(change)
        return new_ids[0]

    def drop(self, key_id: str, still_used: int) -> None:
        """Delete a retired KEK that no wrapped data key refers to any more.

        Dropping a KEK still in use would make files unreadable forever, so the
        caller must count the wrapped keys that name it (re-wrap them first
        with :meth:`rewrap`).

        Args:
            key_id: The retired KEK.
            still_used: Number of wrapped data keys that still name ``key_id``.

        Judged on the file as it is under its lock (see the module docstring), so a key
        another process made active or added meanwhile is neither dropped nor lost.

        Raises:
            KeyringError: If the id is unknown, is the active KEK, or is still used, or
                the file cannot be read back or saved.
        """

        def change() -> None:
            self._kek(key_id)
            if key_id == self._active:
                raise KeyringError(f"master key {key_id} is the active key; rotate before dropping it")
            if still_used != 0:
                raise KeyringError(
                    f"master key {key_id} still wraps {still_used} data key(s); re-wrap them before dropping it"
                )
            del self._keks[key_id]

        self._update(change)

    def _update(self, change: Callable[[], None]) -> None:
        """Apply ``change`` to the file as it is now, under its lock, and save; on any failure the file
        is left as it was and this object as it was read under the lock (or before, if unreadable)."""
        with self._file_lock():
            self._reload()
            previous = (self._active, dict(self._keks))
            try:
                change()
                self.save()
            except BaseException:
                self._active, self._keks = previous[0], previous[1]
                raise

    def _reload(self) -> None:
        """Take the master keys from the file (never write back a copy older than the file)."""
        fresh = Keyring.load(self._path)
        if fresh._audit_key != self._audit_key or fresh._checkpoint_key != self._checkpoint_key:
            raise KeyringError(f"keyring file {self._path} now holds other audit keys; refusing to change it")
        self._keks, self._active, self._stamp = fresh._keks, fresh._active, fresh._stamp

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Hold an exclusive lock on the keyring file as it is at the path.

        Saves rename a new file over the path, so a lock taken on the file a waiter opened may be on one
        that is no longer the keyring: after each wait the locked file is compared with the path's, and
        the lock is taken again on the new one until they match.
        """
        while True:
            try:
                fd = os.open(self._path, os.O_RDONLY)
            except FileNotFoundError:
                raise KeyringError(f"keyring file {self._path} does not exist") from None
            except OSError as exc:
                raise KeyringError(f"keyring file {self._path} cannot be read: {exc.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                current = _file_stamp(self._path)
                if current is not None and current[0] == os.fstat(fd).st_ino:
                    yield
                    return
            finally:
                os.close(fd)  # closing the descriptor releases the lock

    # -- audit keys ----------------------------------------------------------

    @property
    def audit_key(self) -> bytes:
        """32-byte HMAC key for the audit log chain."""
        return self._audit_key

    @property
    def checkpoint_private_key(self) -> Ed25519PrivateKey:
        """Ed25519 key that signs audit checkpoints."""
        return Ed25519PrivateKey.from_private_bytes(self._checkpoint_key)

    def derive_key(self, label: bytes) -> bytes:
        """A 32-byte key for one purpose (`label`), derived with HKDF-SHA256 from the checkpoint
        signing seed: a secret that never leaves the keyring (unlike the audit key, which an auditor may
        be given), so a separate key per use needs no new entry in the file."""
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"vault keyring derive v1",
                    info=label).derive(self._checkpoint_key)

    def checkpoint_public_key_pem(self) -> bytes:
        """Public half of the checkpoint key, PEM (SubjectPublicKeyInfo), for outside verifiers."""
        return self.checkpoint_private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
