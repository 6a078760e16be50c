"""What only the local-folder store does: files, folders, symlinks, fsync and rename."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import os
import re
import stat
import tempfile
import threading
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage import LocalStore, ObjectLocked, ObjectNotFound, StorageError, StorageUnavailable
from storage import local as local_module
from tests.storage.streams import MIB, FailingStream, GeneratedStream, digest_of


def temp_files(root: Path) -> list[Path]:
    return sorted(root.rglob(local_module.TEMP_PREFIX + "*"))


def test_describe_names_the_folder(local_store: LocalStore) -> None:
    assert local_store.describe() == f"local folder {local_store.root}"


def test_objects_are_plain_files_under_the_root(local_store: LocalStore) -> None:
    info = local_store.put("documents/12/3-abc", io.BytesIO(b"ciphertext"))
    path = local_store.root / "documents" / "12" / "3-abc"
    assert path.read_bytes() == b"ciphertext"
    assert info.modified == datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    assert info.etag is None
    # Owner-only: the files are ciphertext, but nobody else on the machine needs to read them.
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_bookkeeping_files_are_never_listed(local_store: LocalStore) -> None:
    root = local_store.root
    local_store.put("a/x", io.BytesIO(b"1"))
    local_store.put("a/retained", io.BytesIO(b"2"), retain_until=datetime.now(UTC) + timedelta(hours=1))
    (root / f"{local_module.TEMP_PREFIX}left-by-a-crash").write_bytes(b"partial")
    (root / "a" / f"{local_module.TEMP_PREFIX}another").write_bytes(b"partial")

    assert [info.key for info in local_store.list()] == ["a/retained", "a/x"]
    assert list(local_store.list(".vault")) == []
    assert list(local_store.list(f"{local_module.RETENTION_DIR}/")) == []
    assert list(local_store.list(f"{local_module.RETENTION_DIR}/a/")) == []


@pytest.mark.parametrize(
    "key", [f"{local_module.TEMP_PREFIX}x", f"a/{local_module.RETENTION_DIR}", "a/.vault-anything"]
)
def test_reserved_names_are_refused_as_keys(local_store: LocalStore, key: str) -> None:
    with pytest.raises(ValueError, match="reserved"):
        local_store.put(key, io.BytesIO(b"x"))
    with pytest.raises(ValueError, match="reserved"):
        local_store.open(key)


def test_a_component_too_long_for_the_filesystem_is_refused(local_store: LocalStore) -> None:
    local_store.put("a/" + "é" * 127, io.BytesIO(b"x"))  # 254 bytes: fits
    with pytest.raises(ValueError, match="longer than 255 bytes"):
        local_store.put("a/" + "é" * 128, io.BytesIO(b"x"))


def test_a_failed_put_leaves_no_temporary_file(local_store: LocalStore) -> None:
    with pytest.raises(Exception, match="source failed"):
        local_store.put("documents/1/x", FailingStream(3 * MIB))
    with pytest.raises(ValueError):
        local_store.put("documents/1/y", GeneratedStream(10), length=11)
    assert temp_files(local_store.root) == []
    assert list(local_store.list()) == []


def test_a_symlink_cannot_lead_outside_the_root(local_store: LocalStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"not yours")
    (local_store.root / "evil").symlink_to(outside)
    (local_store.root / "link").symlink_to(outside / "secret")

    with pytest.raises(StorageError, match="outside the local store folder"):
        local_store.put("evil/planted", io.BytesIO(b"x"))
    with pytest.raises(StorageError, match="outside the local store folder"):
        local_store.open("evil/secret")
    with pytest.raises(StorageError, match="outside the local store folder"):
        local_store.open("link")
    with pytest.raises(StorageError, match="outside the local store folder"):
        local_store.delete("evil/secret")
    with pytest.raises(StorageError, match="outside the local store folder"):
        list(local_store.list("evil/"))
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert (outside / "secret").read_bytes() == b"not yours"
    # Links are not followed by a listing either.
    assert list(local_store.list()) == []


def test_a_symlink_inside_the_root_is_followed(local_store: LocalStore) -> None:
    (local_store.root / "real").mkdir()
    (local_store.root / "alias").symlink_to(local_store.root / "real")
    local_store.put("alias/x", io.BytesIO(b"data"))
    assert (local_store.root / "real" / "x").read_bytes() == b"data"
    assert [info.key for info in local_store.list()] == ["real/x"]


def test_a_symlink_loop_is_an_error(local_store: LocalStore) -> None:
    (local_store.root / "loop").symlink_to(local_store.root / "loop")
    # Reads, writes and deletes alike (on Python 3.13 the write and the delete raised a bare OSError).
    for act in (lambda: local_store.open("loop/x"), lambda: local_store.put("loop/x", io.BytesIO(b"data")),
                lambda: local_store.delete("loop/x")):
        with pytest.raises(StorageError, match="cannot be resolved"):
            act()


def test_write_goes_through_fsync_then_rename_then_folder_fsync(
    local_store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        kind = "folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        events.append(("fsync", kind))
        real_fsync(fd)

    def replace(source, target) -> None:
        events.append(("replace", f"{Path(source).parent == Path(target).parent}:{Path(source).name[:11]}"))
        real_replace(source, target)

    monkeypatch.setattr(local_module.os, "fsync", fsync)
    monkeypatch.setattr(local_module.os, "replace", replace)
    local_store.put("k", io.BytesIO(b"data"))
    # Data durable before the name points at it; the rename durable before put returns.
    assert events == [("fsync", "file"), ("replace", "True:.vault-tmp-"), ("fsync", "folder")]

    events.clear()
    local_store.put("new/folders/k", io.BytesIO(b"data"))
    # Each new folder is synced into its parent before the object is written into it.
    assert events == [
        ("fsync", "folder"), ("fsync", "folder"),
        ("fsync", "file"), ("replace", "True:.vault-tmp-"), ("fsync", "folder"),
    ]


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failing_disk_is_a_storage_error_and_keeps_the_old_object(
    local_store: LocalStore, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    local_store.put("k", io.BytesIO(b"old"))

    def broken(*args) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(local_module.os, failing, broken)
    with pytest.raises(StorageError, match=r"cannot write 'k'.*Input/output error"):
        local_store.put("k", io.BytesIO(b"new"))
    monkeypatch.undo()
    assert local_store.open("k").read() == b"old"
    assert temp_files(local_store.root) == []


def test_no_temporary_file_is_a_storage_error(local_store: LocalStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def out_of_descriptors(prefix: str, dir: Path) -> tuple[int, str]:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(local_module.tempfile, "mkstemp", out_of_descriptors)
    with pytest.raises(StorageError, match=r"cannot write 'k'.*Too many open files"):
        local_store.put("k", io.BytesIO(b"new"))


def test_a_failing_retention_record_write_stores_nothing(
    local_store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace

    def replace(source, target) -> None:
        if local_module.RETENTION_DIR in str(target):
            raise OSError(errno.EIO, "Input/output error")
        real_replace(source, target)

    monkeypatch.setattr(local_module.os, "replace", replace)
    with pytest.raises(StorageError, match="cannot write 'k'"):
        local_store.put("k", io.BytesIO(b"x"), retain_until=datetime.now(UTC) + timedelta(days=1))
    assert not local_store.exists("k")
    assert temp_files(local_store.root) == []


def test_a_failing_unlink_is_a_storage_error(local_store: LocalStore, monkeypatch: pytest.MonkeyPatch) -> None:
    local_store.put("k", io.BytesIO(b"x"))

    def broken(*args, **kwargs) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(local_module.os, "unlink", broken)
    with pytest.raises(StorageError, match=r"cannot delete 'k'.*Read-only file system"):
        local_store.delete("k")
    monkeypatch.undo()
    assert local_store.exists("k")


def test_an_unreadable_folder_is_a_storage_error(local_store: LocalStore, monkeypatch: pytest.MonkeyPatch) -> None:
    local_store.put("a/b", io.BytesIO(b"x"))

    def refused(path):
        raise PermissionError(errno.EACCES, "Permission denied")

    # The tests run as root, who may read every folder: the refusal is injected.
    monkeypatch.setattr(local_module.os, "scandir", refused)
    with pytest.raises(StorageError, match=r"cannot list .* Permission denied"):
        list(local_store.list())


def test_an_object_deleted_during_a_listing_is_skipped(
    local_store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a", "b", "c"):
        local_store.put(name, io.BytesIO(b"x"))
    real_scandir = os.scandir

    @contextlib.contextmanager
    def scandir_then_delete(path):
        with real_scandir(path) as scan:
            entries = list(scan)
        # Another process deletes "b" after the folder was read but before it was stat'ed.
        (local_store.root / "b").unlink()
        yield iter(entries)

    monkeypatch.setattr(local_module.os, "scandir", scandir_then_delete)
    assert [info.key for info in local_store.list()] == ["a", "c"]


def test_a_full_disk_is_a_storage_error(local_store: LocalStore, monkeypatch: pytest.MonkeyPatch) -> None:
    local_store.put("k", io.BytesIO(b"old"))

    def mkstemp_on_a_full_device(prefix: str, dir: Path) -> tuple[int, str]:
        # /dev/full answers every write with ENOSPC, as a full disk does.
        return os.open("/dev/full", os.O_WRONLY), str(Path(dir) / f"{prefix}full")

    monkeypatch.setattr(local_module.tempfile, "mkstemp", mkstemp_on_a_full_device)
    with pytest.raises(StorageError, match="No space left on device"):
        local_store.put("k", GeneratedStream(2 * MIB))
    monkeypatch.undo()
    assert local_store.open("k").read() == b"old"


def test_an_io_error_of_the_source_stream_is_not_a_storage_error(local_store: LocalStore) -> None:
    failure = OSError(errno.EIO, "the uploader's disk failed")
    with pytest.raises(OSError) as raised:
        local_store.put("k", FailingStream(1000, error=failure))
    assert raised.value is failure
    assert not local_store.exists("k")


def test_keys_and_folders_cannot_share_a_name(local_store: LocalStore) -> None:
    local_store.put("a", io.BytesIO(b"object"))
    with pytest.raises(StorageError, match="part of the key is an object"):
        local_store.put("a/b", io.BytesIO(b"x"))
    with pytest.raises(StorageError, match="part of the key is an object"):
        local_store.put("a/b/c", io.BytesIO(b"x"))
    local_store.put("f/b", io.BytesIO(b"x"))
    with pytest.raises(StorageError, match="a folder has that name"):
        local_store.put("f", io.BytesIO(b"object"))
    assert [info.key for info in local_store.list()] == ["a", "f/b"]
    assert list(local_store.list("a/")) == []
    with pytest.raises(ObjectNotFound):
        local_store.open("a/b")
    assert temp_files(local_store.root) == []


def test_a_missing_root_is_unavailable_until_ensure_ready(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "not" / "yet")
    with pytest.raises(StorageUnavailable, match="does not exist"):
        store.check()
    # Not silently recreated: an unmounted volume must not be written into its bare mount point.
    with pytest.raises(StorageUnavailable, match="run ensure_ready"):
        store.put("k", io.BytesIO(b"x"))
    assert not (tmp_path / "not").exists()
    store.ensure_ready()
    store.check()
    store.put("k", io.BytesIO(b"x"))
    assert store.open("k").read() == b"x"


def test_a_root_that_cannot_be_a_folder_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(StorageUnavailable, match="cannot create"):
        LocalStore(tmp_path / "file" / "objects").ensure_ready()
    with pytest.raises(StorageUnavailable, match="not a folder"):
        LocalStore(tmp_path / "file").check()


def test_a_read_only_root_is_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(tmp_path)
    # The tests run as root, for whom every folder is writable: the refusal is injected.
    monkeypatch.setattr(local_module.os, "access", lambda path, mode: False)
    with pytest.raises(StorageUnavailable, match="not writable"):
        store.check()


def test_retention_is_recorded_and_survives_a_new_store(local_store: LocalStore) -> None:
    until = datetime.now(UTC) + timedelta(days=30)
    local_store.put("audit/checkpoints/1.json", io.BytesIO(b"{}"), retain_until=until)
    path = local_store.root / "audit" / "checkpoints" / "1.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444

    reopened = LocalStore(local_store.root)
    with pytest.raises(ObjectLocked, match=re.escape(until.isoformat())):
        reopened.delete("audit/checkpoints/1.json")
    with pytest.raises(ObjectLocked):
        reopened.put("audit/checkpoints/1.json", io.BytesIO(b"forged"))
    assert path.read_bytes() == b"{}"


def test_an_unreadable_retention_record_refuses_rather_than_guesses(local_store: LocalStore) -> None:
    local_store.put("k", io.BytesIO(b"x"), retain_until=datetime.now(UTC) + timedelta(days=1))
    record = local_store.root / local_module.RETENTION_DIR / "k"
    record.chmod(0o600)
    record.write_text("tomorrow, probably")
    with pytest.raises(StorageError, match=r"retention record of 'k'.* is unreadable"):
        local_store.delete("k")
    assert local_store.exists("k")


def test_a_leftover_retention_record_without_its_object_protects_nothing(local_store: LocalStore) -> None:
    record = local_store.root / local_module.RETENTION_DIR / "k"
    record.parent.mkdir(parents=True)
    record.write_text((datetime.now(UTC) + timedelta(days=1)).isoformat())
    local_store.put("k", io.BytesIO(b"x"))
    assert not record.exists()
    local_store.delete("k")


def peak_memory_of_round_trip(store: LocalStore, size: int) -> int:
    source = GeneratedStream(size)
    tracemalloc.start()
    try:
        store.put("big", source)
        with store.open("big") as stream:
            digest = digest_of(stream)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest == source.digest()
    return peak


def test_memory_stays_flat_in_the_file_size(local_store: LocalStore) -> None:
    small = peak_memory_of_round_trip(local_store, 4 * MIB)
    large = peak_memory_of_round_trip(local_store, 48 * MIB)
    # A few 1 MiB chunks in flight (the generator's, the copy's, the reader's), not the file.
    assert large < 6 * MIB
    assert large <= small + 64 * 1024


def test_temp_files_share_the_objects_folder(local_store: LocalStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # Same folder, so the rename never crosses a filesystem boundary (where it would copy, not rename).
    folders: list[Path] = []
    real_mkstemp = tempfile.mkstemp

    def spy(prefix: str, dir: Path) -> tuple[int, str]:
        folders.append(Path(dir))
        return real_mkstemp(prefix=prefix, dir=dir)

    monkeypatch.setattr(local_module.tempfile, "mkstemp", spy)
    local_store.put("x/y/z", io.BytesIO(b"data"))
    assert folders == [local_store.root / "x" / "y"]


class StalledStream(io.RawIOBase):
    """A caller's stream that gives its first bytes, then waits to be let go: a write in progress."""

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()
        self.go = threading.Event()
        self.sent = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if not self.sent:
            self.sent = True
            buffer[:4] = b"head"
            return 4
        self.started.set()
        assert self.go.wait(30)
        return 0


def crash_leftover(folder: Path, age: timedelta) -> Path:
    """What a write killed mid-copy leaves: a temporary file no one holds, last written `age` ago."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=local_module.TEMP_PREFIX, dir=folder)
    os.write(fd, b"half a file")
    os.close(fd)
    moment = (datetime.now(UTC) - age).timestamp()
    os.utime(name, (moment, moment))
    return Path(name)


def test_leftovers_of_crashed_writes_are_listed_and_removed(local_store: LocalStore) -> None:
    """Temporary files of writes killed mid-copy stayed for ever: nothing listed or removed them."""
    local_store.put("documents/1/a", io.BytesIO(b"object"))
    old = crash_leftover(local_store.root / "documents" / "1", timedelta(hours=2))
    record = crash_leftover(local_store.root / local_module.RETENTION_DIR / "audit", timedelta(hours=2))
    young = crash_leftover(local_store.root / "documents" / "2", timedelta(seconds=5))
    found = {leftover.name: leftover for leftover in local_store.leftovers()}
    root = local_store.root.resolve()
    assert sorted(found) == sorted(p.relative_to(root).as_posix() for p in (old, record, young))
    assert all(not leftover.in_use and leftover.size == 11 for leftover in found.values())
    cutoff = datetime.now(UTC) - timedelta(minutes=15)
    removed = {path: local_store.remove_leftover(path.relative_to(root).as_posix(), cutoff)
               for path in (old, record, young)}
    assert removed == {old: True, record: True, young: False}
    assert temp_files(local_store.root) == [young]  # the young one may be a write: left alone
    assert [info.key for info in local_store.list()] == ["documents/1/a"]
    assert local_store.remove_leftover(old.relative_to(root).as_posix(), cutoff) is False  # already gone


@pytest.mark.parametrize("name", ["documents/1/a", "../outside/.vault-tmp-x", "documents/../../.vault-tmp-x"])
def test_only_temporary_files_inside_the_root_are_removed(local_store: LocalStore, name: str) -> None:
    local_store.put("documents/1/a", io.BytesIO(b"object"))
    with pytest.raises(ValueError, match="not a temporary file"):
        local_store.remove_leftover(name, datetime.now(UTC))
    assert local_store.exists("documents/1/a")


def test_a_write_in_progress_is_never_removed_however_old_it_looks(local_store: LocalStore) -> None:
    """A stalled upload's temporary file is as old as its last byte: its write's lock, not its age, keeps
    it. Once the write ends, the object is whole."""
    stream = StalledStream()
    writer = threading.Thread(target=local_store.put, args=("documents/1/a", stream))
    writer.start()
    try:
        assert stream.started.wait(30)
        [leftover] = local_store.leftovers()
        assert leftover.in_use
        [path] = temp_files(local_store.root)
        moment = (datetime.now(UTC) - timedelta(days=1)).timestamp()
        os.utime(path, (moment, moment))
        assert local_store.remove_leftover(leftover.name, datetime.now(UTC)) is False
        assert path.exists()
    finally:
        stream.go.set()
        writer.join(30)
    with local_store.open("documents/1/a") as stored:
        assert stored.read() == b"head"
    assert temp_files(local_store.root) == [] and list(local_store.leftovers()) == []


# -- leftovers: the fault branches of listing and removing them, each tried here directly (they were tried
# only through `vault fsck` in the documents suite, which the storage coverage floor does not count) ------


def _name(store: LocalStore, path: Path) -> str:
    return path.relative_to(store.root.resolve()).as_posix()


def test_a_leftover_gone_between_the_walk_and_its_turn_is_skipped(local_store: LocalStore) -> None:
    """The walk names every file first and opens each in turn: a write finishing meanwhile renames its file
    away, which is no error."""
    first = crash_leftover(local_store.root / "a", timedelta(hours=1))
    second = crash_leftover(local_store.root / "b", timedelta(hours=1))
    listing = local_store.leftovers()
    assert next(listing).name == _name(local_store, first)
    second.unlink()
    assert list(listing) == []


def test_a_leftover_that_cannot_be_opened_is_a_storage_error(local_store: LocalStore) -> None:
    """A symbolic link under a temporary file's name is never followed (O_NOFOLLOW): listing and removing
    refuse it as a store error rather than open what it points at, and the target is untouched."""
    target = local_store.root.parent / "elsewhere"
    target.write_bytes(b"not the store's")
    link = local_store.root / (local_module.TEMP_PREFIX + "planted")
    link.symlink_to(target)
    with pytest.raises(StorageError, match=r"cannot open .*planted in the local store"):
        list(local_store.leftovers())
    with pytest.raises(StorageError, match=r"cannot open .*planted in"):
        local_store.remove_leftover(link.name, datetime.now(UTC))
    assert link.is_symlink() and target.read_bytes() == b"not the store's"


def test_a_leftover_that_is_not_a_regular_file_is_neither_listed_nor_removed(local_store: LocalStore) -> None:
    """Only a regular file is a write's: a FIFO under such a name (held open here, so opening it does not
    wait for a writer) is passed over by the listing and left by the removal."""
    fifo = local_store.root / (local_module.TEMP_PREFIX + "fifo")
    os.mkfifo(fifo)
    moment = (datetime.now(UTC) - timedelta(hours=1)).timestamp()
    os.utime(fifo, (moment, moment))
    holder = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    try:
        assert list(local_store.leftovers()) == []
        assert local_store.remove_leftover(fifo.name, datetime.now(UTC)) is False
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    finally:
        os.close(holder)


def test_a_folder_the_listing_cannot_enter_is_a_storage_error(local_store: LocalStore,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Injected: a folder's mode does not keep out root, as whom the tests may run."""
    (local_store.root / "documents").mkdir()
    real_scandir = os.scandir

    def refused(path: object = ".") -> object:
        if str(path).endswith("documents"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(local_module.os, "scandir", refused)
    with pytest.raises(StorageError, match=r"cannot list .*documents in the local store: Permission denied"):
        list(local_store.leftovers())


@pytest.mark.parametrize("meanwhile", ["renamed away", "replaced"])
def test_a_leftover_renamed_or_replaced_while_it_was_locked_is_not_removed(
    local_store: LocalStore, monkeypatch: pytest.MonkeyPatch, meanwhile: str
) -> None:
    """Between the open and the unlink the name may come to mean another file (a write renamed its file
    over it, then another write took the name): only the file that was opened and locked is removed.
    The moment is injected, at the lock: no real write can be timed into it."""
    leftover = crash_leftover(local_store.root / "documents", timedelta(hours=1))
    real_try_lock = local_module._try_lock

    def then_the_name_changes(fd: int) -> bool:
        taken = real_try_lock(fd)
        leftover.rename(leftover.with_name("moved"))
        if meanwhile == "replaced":
            leftover.write_bytes(b"a new write's")
        return taken

    monkeypatch.setattr(local_module, "_try_lock", then_the_name_changes)
    assert local_store.remove_leftover(_name(local_store, leftover), datetime.now(UTC)) is False
    assert leftover.with_name("moved").read_bytes() == b"half a file"
    if meanwhile == "replaced":
        assert leftover.read_bytes() == b"a new write's"


def test_a_leftover_gone_just_before_its_unlink_is_not_counted_as_removed(
    local_store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    leftover = crash_leftover(local_store.root, timedelta(hours=1))
    real_stat = os.stat

    def then_gone(path: object, *arguments: object, **options: object) -> os.stat_result:
        found = real_stat(path, *arguments, **options)  # type: ignore[arg-type]
        if Path(str(path)) == leftover:
            os.unlink(leftover)  # injected: another repair got there first
        return found

    monkeypatch.setattr(local_module.os, "stat", then_gone)
    assert local_store.remove_leftover(leftover.name, datetime.now(UTC)) is False


def test_a_refused_unlink_of_a_leftover_is_a_storage_error(local_store: LocalStore,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Injected: root may unlink in a read-only folder, so the refusal cannot be made for real here."""
    leftover = crash_leftover(local_store.root, timedelta(hours=1))
    real_unlink = Path.unlink

    def refused(self: Path, missing_ok: bool = False) -> None:
        if self == leftover:
            raise PermissionError(errno.EPERM, "Operation not permitted", str(self))
        real_unlink(self, missing_ok)

    monkeypatch.setattr(local_module.Path, "unlink", refused)
    with pytest.raises(StorageError, match=f"cannot remove {leftover.name} .*Operation not permitted"):
        local_store.remove_leftover(leftover.name, datetime.now(UTC))
    monkeypatch.undo()
    assert leftover.exists()
    # And the lock was let go: the repair can take it next time.
    assert local_store.remove_leftover(leftover.name, datetime.now(UTC)) is True


def test_a_temporary_file_removed_before_its_write_locked_it_is_replaced(
    local_store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repair may take a write's temporary file in the moment between its creation and its lock (it is
    then no one's): the write sees its file has no name left and starts over with another. Injected at
    the write's lock."""
    real_flock = fcntl.flock
    taken: list[str] = []

    def repair_first(fd: int, operation: int) -> None:
        if not taken:
            name = os.readlink(f"/proc/self/fd/{fd}")
            taken.append(name)
            os.unlink(name)
        real_flock(fd, operation)

    monkeypatch.setattr(local_module.fcntl, "flock", repair_first)
    local_store.put("documents/1/a", io.BytesIO(b"whole"))
    monkeypatch.undo()
    assert len(taken) == 1 and not os.path.exists(taken[0])
    with local_store.open("documents/1/a") as stored:
        assert stored.read() == b"whole"
    assert temp_files(local_store.root) == []


def test_a_lock_refused_to_a_write_leaves_no_temporary_file(local_store: LocalStore,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Injected: a filesystem without locks (some network mounts answer ENOLCK)."""
    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(local_module.fcntl, "flock", no_locks)
    with pytest.raises(StorageError, match="No locks available"):
        local_store.put("documents/1/a", io.BytesIO(b"whole"))
    monkeypatch.undo()
    assert temp_files(local_store.root) == [] and not local_store.exists("documents/1/a")


def test_a_folder_created_meanwhile_by_a_concurrent_put_is_used(local_store: LocalStore,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Two puts into a new folder race to create it; the loser's mkdir fails and finds the folder there.
    Injected: the other put's mkdir, just before ours."""
    real_mkdir = Path.mkdir

    def the_other_put_first(self: Path, *arguments: object, **options: object) -> None:
        real_mkdir(self)
        real_mkdir(self, *arguments, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(local_module.Path, "mkdir", the_other_put_first)
    local_store.put("documents/9/a", io.BytesIO(b"both"))
    monkeypatch.undo()
    with local_store.open("documents/9/a") as stored:
        assert stored.read() == b"both"
