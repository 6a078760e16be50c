"""A folder on the local filesystem as an object store: the embedded default, no server needed.

Durability comes from the classic write-to-temp, fsync, rename, fsync-the-folder sequence: a reader, or
the store after a crash, sees either the previous object or the complete new one, never a torn write.
Temporary files and the retention records live under names starting with ``.vault-``, a prefix no key
component may use, so they can never be mistaken for objects.

A write holds an exclusive ``flock`` on its temporary file from its creation until the rename is done,
so that ``vault fsck --repair`` (:meth:`LocalStore.remove_leftover`) can tell the file of a crashed write,
which no one holds, from one still being written, however long that write has stalled.

Write-once retention (``retain_until``) is recorded in a small file per object under
``<root>/.vault-retention/<key>`` and the object is made read-only (0o444). The mode alone would not
stop a process running as root, so the store itself refuses to overwrite or delete the object until the
recorded time has passed.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat as stat_module
import tempfile
from collections.abc import Iterator
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from storage.base import (
    Leftover,
    MeteredStream,
    ObjectInfo,
    ObjectLocked,
    ObjectNotFound,
    StorageError,
    StorageUnavailable,
    validate_key,
    validate_length,
    validate_prefix,
    validate_retain_until,
)

# No key component may start with this: the store keeps its own bookkeeping under such names.
RESERVED_PREFIX = ".vault-"
TEMP_PREFIX = RESERVED_PREFIX + "tmp-"
RETENTION_DIR = RESERVED_PREFIX + "retention"
# Bounded copy buffer: memory stays flat however large the object is.
CHUNK_SIZE = 1024 * 1024
# Most Linux filesystems refuse longer names with ENAMETOOLONG; saying so up front is clearer.
MAX_NAME_BYTES = 255
RETAINED_MODE = 0o444


class LocalStore:
    """Objects stored as files under ``root``.

    Args:
        root: the folder holding the objects; created by :meth:`ensure_ready` if missing.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).absolute()

    @property
    def supports_retention(self) -> bool:
        """Always true: retention is recorded next to the objects and enforced by this class."""
        return True

    def describe(self) -> str:
        """Say where the objects are kept."""
        return f"local folder {self.root}"

    # -- readiness ---------------------------------------------------------------------------------

    def ensure_ready(self) -> None:
        """Create the root folder (and its parents) if missing.

        Raises:
            StorageUnavailable: the folder cannot be created (permissions, a file in the way, ...).
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StorageUnavailable(
                f"cannot create the local store folder {self.root}: {error.strerror}"
            ) from None
        self.check()

    def check(self) -> None:
        """Check that the root folder exists and is writable.

        Raises:
            StorageUnavailable: the folder is missing, not a folder, or not writable.
        """
        if not self.root.is_dir():
            raise StorageUnavailable(f"local store folder {self.root} does not exist or is not a folder")
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageUnavailable(f"local store folder {self.root} is not writable")

    # -- objects -----------------------------------------------------------------------------------

    def put(
        self,
        key: str,
        stream: BinaryIO,
        length: int | None = None,
        content_type: str = "application/octet-stream",
        retain_until: datetime | None = None,
    ) -> ObjectInfo:
        """Copy ``stream`` into a temporary file, make it durable, then rename it over ``key``.

        ``content_type`` is accepted for interface compatibility and not recorded: a folder has no place
        for it and vault keeps the type in its metadata database anyway.

        Raises:
            ValueError: invalid key/length/retention, or the stream did not yield ``length`` bytes.
            ObjectLocked: the existing object is under retention.
            StorageUnavailable: the root folder is missing.
            StorageError: the filesystem refused the write (full disk, a file in the way, ...).
        """
        path = self._path(key)
        source = MeteredStream(stream, validate_length(length))
        retain_until = validate_retain_until(retain_until)
        self._refuse_if_retained(key, path, "overwrite")
        self._make_parents(key, path.parent)
        temp: Path | None = None
        try:
            fd, temp = _locked_temp(path.parent)
            # Closed (and its lock let go) only once the rename is done: see the module's docstring.
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(CHUNK_SIZE):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
                if retain_until is not None:
                    # Read-only before it is published, so the object is never writable under its key.
                    os.fchmod(out.fileno(), RETAINED_MODE)
                self._set_retention(key, retain_until)
                os.replace(temp, path)
            _fsync_dir(path.parent)
        except BaseException as error:
            if temp is not None:
                with suppress(OSError):
                    temp.unlink()
            if isinstance(error, OSError) and error is not source.failure:
                raise self._os_error(error, key, "write") from None
            raise  # the caller's stream failed, or a length/retention error: theirs to see unchanged
        return ObjectInfo(key=key, size=source.total, modified=_mtime(path.stat()), etag=None)

    def open(self, key: str) -> BinaryIO:
        """Open the object's file for reading.

        Raises:
            ObjectNotFound: no object under ``key``.
        """
        path = self._path(key)
        try:
            return path.open("rb")
        except OSError as error:
            raise self._os_error(error, key, "read") from None

    def stat(self, key: str) -> ObjectInfo:
        """Size and modification time of the object's file.

        Raises:
            ObjectNotFound: no object under ``key``.
        """
        path = self._path(key)
        info = self._file_stat(path)
        if info is None:
            raise self._os_error(FileNotFoundError(errno.ENOENT, "not found"), key, "stat")
        return ObjectInfo(key=key, size=info.st_size, modified=_mtime(info), etag=None)

    def exists(self, key: str) -> bool:
        """Whether a file is stored under ``key``."""
        return self._file_stat(self._path(key)) is not None

    def delete(self, key: str) -> None:
        """Remove the object's file and its retention record.

        Raises:
            ObjectNotFound: no object under ``key``.
            ObjectLocked: the object is under retention.
        """
        path = self._path(key)
        if self._file_stat(path) is None:
            raise self._os_error(FileNotFoundError(errno.ENOENT, "not found"), key, "delete")
        self._refuse_if_retained(key, path, "delete")
        try:
            path.unlink()
            with suppress(FileNotFoundError):
                self._retention_path(key).unlink()
        except OSError as error:
            raise self._os_error(error, key, "delete") from None
        _fsync_dir(path.parent)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield the objects whose key starts with ``prefix``, in key order, without loading them all.

        Sorting each folder with sub-folder names suffixed by ``/`` gives exactly the order of the full
        keys, so the walk streams in the same order as an S3 listing. Temporary files, retention records
        and symbolic links are never listed.
        """
        validate_prefix(prefix)
        folder_part, _, partial = prefix.rpartition("/")
        folder_names = folder_part.split("/") if folder_part else []
        if any(name.startswith(RESERVED_PREFIX) for name in folder_names):
            return
        root = self.root.resolve()
        start = root.joinpath(*folder_names)
        if not _inside(start.resolve(), root, allow_root=True):
            raise StorageError(f"key prefix {prefix!r} resolves outside the local store folder {root}")
        key_prefix = folder_part + "/" if folder_part else ""
        yield from self._walk(start, key_prefix, partial)

    # -- temporary files -------------------------------------------------------------------------

    def leftovers(self) -> Iterator[Leftover]:
        """Every temporary file under the root (object folders and retention records alike), in name order.

        Each is tried for its write's lock, so that a listing already tells a write in progress from
        the leftover of a crash; :meth:`remove_leftover` asks again before it removes anything.

        Raises:
            StorageError: a folder cannot be listed.
        """
        root = self.root.resolve()
        found: list[Path] = []

        def failed(error: OSError) -> None:
            raise StorageError(f"cannot list {error.filename} in the local store: {error.strerror}") from None

        for folder, folders, files in os.walk(root, onerror=failed):  # symbolic links are not followed
            folders.sort()
            found.extend(Path(folder, name) for name in files if name.startswith(TEMP_PREFIX))
        for path in sorted(found):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            except FileNotFoundError:
                continue  # its write finished (renamed) or gave up meanwhile
            except OSError as error:
                raise StorageError(f"cannot open {path} in the local store: {error.strerror}") from None
            try:
                info = os.fstat(fd)
                if not stat_module.S_ISREG(info.st_mode):
                    continue
                in_use = not _try_lock(fd)
            finally:
                os.close(fd)
            yield Leftover(name=path.relative_to(root).as_posix(), size=info.st_size, modified=_mtime(info),
                           in_use=in_use)

    def remove_leftover(self, name: str, modified_before: datetime) -> bool:
        """Remove the temporary file ``name`` (as :meth:`leftovers` names it) if no write holds it and it
        was last written before ``modified_before``.

        The file is opened and locked first: a write holds its lock until its rename is done, so a held
        lock is a write in progress, however old the file looks. The name is then checked to still be
        the file locked (a finished write renames its file away) before it is unlinked.

        Returns:
            Whether the file was removed (False: in use, too recent, or gone meanwhile).

        Raises:
            ValueError: ``name`` is not a temporary file's name inside the root.
            StorageError: the filesystem refused the removal.
        """
        root = self.root.resolve()
        path = root.joinpath(*name.split("/"))
        if (not path.name.startswith(TEMP_PREFIX) or ".." in name.split("/")
                or not _inside(path.parent.resolve(), root, allow_root=True)):
            raise ValueError(f"{name!r} is not a temporary file of the local store")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return False
        except OSError as error:
            raise StorageError(f"cannot open {name} in {self.root}: {error.strerror}") from None
        try:
            info = os.fstat(fd)
            if not stat_module.S_ISREG(info.st_mode) or _mtime(info) >= modified_before or not _try_lock(fd):
                return False
            try:
                current = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                return False
            if (current.st_dev, current.st_ino) != (info.st_dev, info.st_ino):
                return False
            try:
                path.unlink()
            except FileNotFoundError:
                return False
            except OSError as error:
                raise StorageError(f"cannot remove {name} in {self.root}: {error.strerror}") from None
        finally:
            os.close(fd)  # lets the lock go, after the unlink: no write can take this file meanwhile
        _fsync_dir(path.parent)
        return True

    # -- helpers -----------------------------------------------------------------------------------

    def _walk(self, folder: Path, key_prefix: str, name_start: str) -> Iterator[ObjectInfo]:
        try:
            with os.scandir(folder) as scan:
                entries = [entry for entry in scan if entry.name.startswith(name_start)]
        except OSError as error:
            if error.errno in (errno.ENOENT, errno.ENOTDIR):
                return  # the prefix names no folder: nothing under it
            raise StorageError(f"cannot list {folder} in the local store: {error.strerror}") from None
        ordered: list[tuple[str, os.DirEntry[str], bool]] = []
        for entry in entries:
            if entry.name.startswith(RESERVED_PREFIX):
                continue
            if entry.is_dir(follow_symlinks=False):
                ordered.append((entry.name + "/", entry, True))
            elif entry.is_file(follow_symlinks=False):
                ordered.append((entry.name, entry, False))
        ordered.sort(key=lambda item: item[0])
        for _, entry, is_folder in ordered:
            if is_folder:
                yield from self._walk(Path(entry.path), f"{key_prefix}{entry.name}/", "")
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # deleted while we were listing
            yield ObjectInfo(key=key_prefix + entry.name, size=info.st_size, modified=_mtime(info), etag=None)

    def _path(self, key: str) -> Path:
        """Map a key to its file, refusing anything that would land outside the root."""
        validate_key(key)
        names = key.split("/")
        for name in names:
            if name.startswith(RESERVED_PREFIX):
                raise ValueError(
                    f"object key {key!r}: components starting with {RESERVED_PREFIX!r} are reserved"
                )
            if len(name.encode("utf-8")) > MAX_NAME_BYTES:
                raise ValueError(f"object key {key!r} has a component longer than {MAX_NAME_BYTES} bytes")
        root = self.root.resolve()
        target = root.joinpath(*names)
        try:
            # Resolving follows symlinks: a link planted inside the root must not lead anywhere else. Strictly
            # first, so that a symlink loop is an error on every Python (3.13 leaves one unresolved when not
            # strict, and the write or delete then failed with a bare OSError); a key not written yet has
            # parts that do not exist (or pass through an object: refused below), which the second
            # resolution takes as they are.
            try:
                path = target.resolve(strict=True)
            except (FileNotFoundError, NotADirectoryError):
                path = target.resolve()
        except (OSError, RuntimeError) as error:  # a symlink loop (RuntimeError before Python 3.13)
            raise StorageError(f"object key {key!r} cannot be resolved in {root}: {error}") from None
        if not _inside(path, root, allow_root=False):
            raise StorageError(f"object key {key!r} resolves outside the local store folder {root}")
        return path

    def _retention_path(self, key: str) -> Path:
        return self.root.resolve().joinpath(RETENTION_DIR, *key.split("/"))

    def _retained_until(self, key: str) -> datetime | None:
        record = self._retention_path(key)
        if not record.is_file():
            return None
        try:
            until = datetime.fromisoformat(record.read_text(encoding="ascii").strip())
        except (OSError, ValueError) as error:  # UnicodeDecodeError is a ValueError
            # Unreadable protection is not "no protection": refuse rather than guess.
            raise StorageError(f"the retention record of {key!r} in {self.root} is unreadable: {error}") from None
        return until if until > datetime.now(UTC) else None

    def _refuse_if_retained(self, key: str, path: Path, action: str) -> None:
        # A record without its object is a leftover of an interrupted put and protects nothing.
        if self._file_stat(path) is None:
            return
        until = self._retained_until(key)
        if until is not None:
            raise ObjectLocked(f"cannot {action} {key!r}: it is retained until {until.isoformat()}")

    def _set_retention(self, key: str, retain_until: datetime | None) -> None:
        """Write (or clear) the retention record; called before the object is renamed into place.

        Written first so that a crash between the two steps can only leave an object protected for too
        long, never a retained object without its protection. OSErrors are left to ``put``.
        """
        record = self._retention_path(key)
        if retain_until is None:
            with suppress(FileNotFoundError, NotADirectoryError):
                record.unlink()
            return
        self._make_parents(key, record.parent)
        fd, temp_name = _locked_temp(record.parent)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(retain_until.isoformat())
                out.flush()
                os.fsync(out.fileno())
                os.fchmod(out.fileno(), RETAINED_MODE)
                os.replace(temp_name, record)
        except BaseException:
            with suppress(OSError):
                os.unlink(temp_name)
            raise
        _fsync_dir(record.parent)

    def _make_parents(self, key: str, folder: Path) -> None:
        """Create the missing folders down to ``folder``, syncing each new entry into its parent."""
        root = self.root.resolve()
        if not root.is_dir():
            # Never recreate a missing root here: it may be an unmounted volume, and writing into the
            # bare mount point would hide the objects from the real one.
            raise StorageUnavailable(f"local store folder {self.root} does not exist; run ensure_ready first")
        missing: list[Path] = []
        current = folder
        while current != root and not current.is_dir():
            missing.append(current)
            current = current.parent
        for path in reversed(missing):
            try:
                path.mkdir()
            except OSError as error:
                if path.is_dir():
                    continue  # created meanwhile by a concurrent put
                raise self._os_error(error, key, "write") from None
            _fsync_dir(path.parent)

    @staticmethod
    def _file_stat(path: Path) -> os.stat_result | None:
        try:
            info = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return info if stat_module.S_ISREG(info.st_mode) else None

    def _os_error(self, error: OSError, key: str, action: str) -> StorageError:
        """Translate a filesystem error into the store's errors, naming the key and the folder."""
        if action in ("read", "stat", "delete") and error.errno in (errno.ENOENT, errno.ENOTDIR, errno.EISDIR):
            return ObjectNotFound(f"no object {key!r} in local folder {self.root}")
        if error.errno in (errno.ENOTDIR, errno.EEXIST):
            return StorageError(f"cannot {action} {key!r} in {self.root}: part of the key is an object")
        if error.errno == errno.EISDIR:
            return StorageError(f"cannot {action} {key!r} in {self.root}: a folder has that name")
        return StorageError(f"cannot {action} {key!r} in {self.root}: {error.strerror or error}")


def _locked_temp(folder: Path) -> tuple[int, Path]:
    """A new temporary file in ``folder``, open and locked for its write (see the module's docstring).

    The file exists for a moment before it is locked; should a repair take and remove it in that moment,
    the write sees its file has no name left (no link) and starts over with another.
    """
    while True:
        fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_nlink > 0:
                return fd, Path(name)
        except BaseException:
            os.close(fd)
            with suppress(OSError):
                os.unlink(name)
            raise
        os.close(fd)


def _try_lock(fd: int) -> bool:
    """Take the write lock of an open temporary file without waiting; False if a write holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _inside(path: Path, root: Path, *, allow_root: bool) -> bool:
    if path == root:
        return allow_root
    return path.is_relative_to(root)


def _mtime(info: os.stat_result) -> datetime:
    return datetime.fromtimestamp(info.st_mtime, tz=UTC)


def _fsync_dir(folder: Path) -> None:
    """Make a rename or unlink in ``folder`` durable: the entry lives in the folder, not the file."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
