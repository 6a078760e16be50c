"""The keyring file, wrapping of data keys, rotation and the audit keys."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from crypto import DecryptionError, Keyring, KeyringChanged, KeyringError, associated_data, new_data_key

CONTEXT = associated_data(10, 1)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "keyring.json"


@pytest.fixture
def keyring(path: Path) -> Keyring:
    return Keyring.create(path)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def rewrite(path: Path, change) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))
    path.chmod(0o600)


def test_create_writes_a_private_file_that_loads_back(keyring: Keyring, path: Path) -> None:
    assert mode_of(path) == 0o600
    document = json.loads(path.read_text())
    assert document["format"] == 1
    assert document["active_kek"] == keyring.active_key_id == "k0001"
    assert document["keks"]["k0001"]["status"] == "active"
    assert document["keks"]["k0001"]["created"].endswith("Z")

    loaded = Keyring.load(path)
    assert loaded.active_key_id == "k0001"
    assert loaded.key_ids() == ["k0001"]
    assert loaded.key_status("k0001") == "active"
    assert loaded.key_created("k0001") == keyring.key_created("k0001")
    assert loaded.audit_key == keyring.audit_key and len(loaded.audit_key) == 32
    assert loaded.checkpoint_public_key_pem() == keyring.checkpoint_public_key_pem()
    assert loaded.path == path


def test_the_keys_are_distinct_and_random(tmp_path: Path) -> None:
    first, second = Keyring.create(tmp_path / "a.json"), Keyring.create(tmp_path / "b.json")
    assert first.audit_key != second.audit_key
    assert first.checkpoint_public_key_pem() != second.checkpoint_public_key_pem()
    assert new_data_key() != new_data_key() and len(new_data_key()) == 32
    document = json.loads((tmp_path / "a.json").read_text())
    assert document["audit_key"] != document["keks"]["k0001"]["key"]


def test_create_refuses_to_overwrite(keyring: Keyring, path: Path) -> None:
    before = path.read_bytes()
    with pytest.raises(KeyringError, match="already exists; refusing to overwrite"):
        Keyring.create(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp file left behind


def test_create_in_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KeyringError, match=r"cannot write keyring file .*No such file"):
        Keyring.create(tmp_path / "missing" / "keyring.json")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602, 0o620, 0o700 | 0o070])
def test_load_refuses_a_file_others_can_access(keyring: Keyring, path: Path, mode: int) -> None:
    path.chmod(mode)
    with pytest.raises(KeyringError) as raised:
        Keyring.load(path)
    message = str(raised.value)
    assert str(path) in message and "chmod 600" in message and f"{mode:04o}" in message


def test_load_accepts_owner_only_modes(keyring: Keyring, path: Path) -> None:
    path.chmod(0o400)
    assert Keyring.load(path).active_key_id == keyring.active_key_id


def test_load_of_a_missing_file_names_it(path: Path) -> None:
    with pytest.raises(KeyringError, match=f"keyring file {re.escape(str(path))} does not exist"):
        Keyring.load(path)


def test_load_of_a_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    folder.mkdir(mode=0o700)
    with pytest.raises(KeyringError, match="not a regular file"):
        Keyring.load(folder)


def test_load_through_a_file_is_a_keyring_error(keyring: Keyring, path: Path) -> None:
    with pytest.raises(KeyringError, match="cannot be read: Not a directory"):
        Keyring.load(path / "keyring.json")


def test_a_read_error_is_a_keyring_error(keyring: Keyring, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_read(_self):
        raise OSError(5, "Input/output error")

    # A failing disk cannot be produced on demand; the read is where it would surface.
    monkeypatch.setattr(Path, "read_bytes", failing_read)
    with pytest.raises(KeyringError, match=f"keyring file {re.escape(str(path))} cannot be read: Input/output error"):
        Keyring.load(path)


def _set(field, value):
    def change(document):
        document[field] = value

    return change


def _set_kek(field, value):
    def change(document):
        document["keks"]["k0001"][field] = value

    return change


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (_set("format", 2), "unsupported format 2"),
        (_set("active_kek", "k0002"), "active_kek is 'k0002'"),
        (_set("keks", {}), "keks must be a non-empty object"),
        (_set("keks", []), "keks must be a non-empty object"),
        (_set("audit_key", "not base64!"), "audit_key is not base64"),
        (_set("audit_key", base64.b64encode(b"short").decode()), "audit_key must be 32 bytes"),
        (_set("audit_key", 12), "audit_key is not base64"),
        (_set("checkpoint_signing_key", ""), "checkpoint_signing_key must be 32 bytes"),
        (_set("extra", 1), "unknown fields \\['extra'\\]"),
        (lambda d: d.pop("audit_key"), "missing fields \\['audit_key'\\]"),
        (_set_kek("status", "old"), "unknown status 'old'"),
        (_set_kek("status", "retired"), "KEKs marked active are \\[\\]"),
        (_set_kek("created", 5), "non-text creation time"),
        (_set_kek("key", "AAAA"), "must be 32 bytes, found 3"),
        (lambda d: d["keks"]["k0001"].pop("created"), "exactly key, created and status"),
        (lambda d: d["keks"].update({"other": d["keks"]["k0001"]}), "KEK id 'other' is not of the form"),
    ],
)
def test_load_refuses_malformed_content(keyring: Keyring, path: Path, change, why: str) -> None:
    rewrite(path, change)
    with pytest.raises(KeyringError, match=f"keyring file {re.escape(str(path))} is malformed: .*{why}"):
        Keyring.load(path)


@pytest.mark.parametrize("value", [True, 1.0, "1", None])
def test_load_refuses_a_format_that_only_compares_equal_to_1(keyring: Keyring, path: Path, value) -> None:
    """`"format": true` and `1.0` passed, since True == 1 == 1.0 in Python: a file no version of vault writes
    was taken for a good keyring."""
    rewrite(path, _set("format", value))
    with pytest.raises(KeyringError, match=f"keyring file {re.escape(str(path))} is malformed: unsupported format"):
        Keyring.load(path)


def _encode(value, twice: str, copy) -> str:
    """JSON of `value` with the member named `twice` written a second time, before the real one, holding
    `copy` (json.dumps cannot write a member twice)."""
    if not isinstance(value, dict):
        return json.dumps(value)
    members = [f"{json.dumps(name)}: {_encode(item, twice, copy)}" for name, item in value.items()]
    if twice in value:
        members.insert(0, f"{json.dumps(twice)}: {_encode(copy, twice, copy)}")
    return "{" + ", ".join(members) + "}"


@pytest.mark.parametrize(("name", "copy"), [
    ("audit_key", base64.b64encode(bytes(32)).decode()), ("format", 1), ("status", "retired"),
    ("k0001", {"key": base64.b64encode(bytes(32)).decode(), "created": "2026-01-01T00:00:00Z", "status": "retired"}),
])
def test_load_refuses_a_duplicate_member(keyring: Keyring, path: Path, name: str, copy) -> None:
    """JSON with a member twice loaded, the last copy silently winning: a damaged or badly merged keyring
    (two k0001 entries, two audit keys) was taken for a good one, whichever copy was meant."""
    keyring.rotate()
    text = path.read_text()
    path.write_text(_encode(json.loads(text), name, copy))
    path.chmod(0o600)
    with pytest.raises(KeyringError, match=f"keyring file {re.escape(str(path))} is malformed: "
                                           f"{re.escape(repr(name))} appears twice"):
        Keyring.load(path)
    # The file as written loads, after a rotation as when new (k0001 retired, k0002 active).
    path.write_text(text)
    assert Keyring.load(path).key_ids() == ["k0001", "k0002"]


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe", b"[1, 2]", b"null"])
def test_load_refuses_non_keyring_files(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(KeyringError, match=f"keyring file {re.escape(str(path))} is (not valid JSON|malformed)"):
        Keyring.load(path)


def test_wrap_and_unwrap_round_trip(keyring: Keyring) -> None:
    dek = new_data_key()
    key_id, wrapped = keyring.wrap(dek, CONTEXT)
    assert key_id == keyring.active_key_id
    assert len(wrapped) == 60 and dek not in wrapped
    assert keyring.unwrap(key_id, wrapped, CONTEXT) == dek
    assert Keyring.load(keyring.path).unwrap(key_id, wrapped, CONTEXT) == dek
    assert keyring.wrap(dek, CONTEXT)[1] != wrapped  # fresh nonce every time


def test_every_altered_bit_of_a_wrapped_key_is_refused(keyring: Keyring) -> None:
    key_id, wrapped = keyring.wrap(new_data_key(), CONTEXT)
    for position in range(len(wrapped)):
        for bit in range(8):
            altered = bytearray(wrapped)
            altered[position] ^= 1 << bit
            with pytest.raises(DecryptionError):
                keyring.unwrap(key_id, bytes(altered), CONTEXT)


@pytest.mark.parametrize("cut", [b"", b"\x00", "truncate", "extend"])
def test_wrapped_keys_of_the_wrong_length_are_refused(keyring: Keyring, cut) -> None:
    key_id, wrapped = keyring.wrap(new_data_key(), CONTEXT)
    value = {"truncate": wrapped[:-1], "extend": wrapped + b"\x00"}.get(cut, cut)
    with pytest.raises(DecryptionError):
        keyring.unwrap(key_id, value, CONTEXT)


def test_the_wrong_context_is_refused(keyring: Keyring) -> None:
    key_id, wrapped = keyring.wrap(new_data_key(), CONTEXT)
    for other in (associated_data(10, 2), associated_data(11, 1), b""):
        with pytest.raises(DecryptionError):
            keyring.unwrap(key_id, wrapped, other)


def test_a_wrapped_key_relabelled_with_another_id_is_refused(keyring: Keyring) -> None:
    old_id, wrapped = keyring.wrap(new_data_key(), CONTEXT)
    keyring.rotate()
    with pytest.raises(DecryptionError):
        keyring.unwrap(keyring.active_key_id, wrapped, CONTEXT)
    assert keyring.unwrap(old_id, wrapped, CONTEXT)


def test_unknown_key_id_is_a_keyring_error(keyring: Keyring) -> None:
    _, wrapped = keyring.wrap(new_data_key(), CONTEXT)
    with pytest.raises(KeyringError, match="unknown master key id 'k0009'"):
        keyring.unwrap("k0009", wrapped, CONTEXT)
    with pytest.raises(KeyringError, match="unknown master key id"):
        keyring.key_status("k0009")


@pytest.mark.parametrize("dek", [b"", b"x" * 31, b"x" * 33, bytearray(32), "x" * 32])
def test_only_32_byte_data_keys_are_wrapped(keyring: Keyring, dek) -> None:
    with pytest.raises(KeyringError, match="a data key must be 32 bytes"):
        keyring.wrap(dek, CONTEXT)


def test_rotation_keeps_old_keys_and_wraps_with_the_new_one(keyring: Keyring, path: Path) -> None:
    dek = new_data_key()
    old_id, old_wrapped = keyring.wrap(dek, CONTEXT)
    new_id = keyring.rotate()
    assert new_id == keyring.active_key_id == "k0002"
    assert keyring.key_ids() == ["k0001", "k0002"]
    assert keyring.key_status("k0001") == "retired" and keyring.key_status("k0002") == "active"
    assert keyring.wrap(dek, CONTEXT)[0] == "k0002"
    assert keyring.unwrap(old_id, old_wrapped, CONTEXT) == dek

    reloaded = Keyring.load(path)  # rotate() saved
    assert reloaded.active_key_id == "k0002"
    assert reloaded.unwrap(old_id, old_wrapped, CONTEXT) == dek
    assert mode_of(path) == 0o600

    assert keyring.rotate() == "k0003"
    assert Keyring.load(path).key_ids() == ["k0001", "k0002", "k0003"]


def test_a_server_follows_a_rotation_made_by_another_process(keyring: Keyring, path: Path) -> None:
    """`vault keys rotate` runs in another process: a running server learns of the new key from the file."""
    dek = new_data_key()
    assert keyring.refresh() is False  # nothing changed since it was written
    other = Keyring.load(path)
    new_id = other.rotate()  # another process rotates and saves
    newer_wrapped = other.wrap(dek, CONTEXT)[1]
    # Unwrapping a key under the unknown id reloads the file once, then succeeds.
    assert keyring.unwrap_current(new_id, newer_wrapped, CONTEXT) == dek
    assert keyring.active_key_id == new_id and keyring.refresh() is False
    # Wrapping checks the file first, so new data keys go under the newest master key.
    assert other.rotate() == "k0003"
    assert keyring.wrap_current(dek, CONTEXT)[0] == "k0003"


def test_an_unknown_key_id_still_unknown_after_reloading_is_refused(keyring: Keyring) -> None:
    wrapped = keyring.wrap(new_data_key(), CONTEXT)[1]
    with pytest.raises(KeyringError):
        keyring.unwrap_current("k0009", wrapped, CONTEXT)  # the file has not changed: no reload helps
    with pytest.raises(DecryptionError):
        keyring.unwrap_current("k0001", wrapped[:-1] + bytes([wrapped[-1] ^ 1]), CONTEXT)


def test_a_keyring_file_with_other_audit_keys_is_not_taken_over_by_a_running_server(
        keyring: Keyring, path: Path) -> None:
    document = json.loads(path.read_text())
    document["audit_key"] = base64.b64encode(os.urandom(32)).decode()
    path.write_text(json.dumps(document))
    path.chmod(0o600)
    os.utime(path, ns=(1, 1))  # a different stamp, whatever the clock's resolution
    with pytest.raises(KeyringError, match="other audit keys"):
        keyring.refresh()


def test_derived_keys_are_stable_per_label_and_distinct_between_labels(keyring: Keyring) -> None:
    first = keyring.derive_key(b"viewer page tokens")
    assert len(first) == 32 and first == Keyring.load(keyring.path).derive_key(b"viewer page tokens")
    assert keyring.derive_key(b"letter links") != first
    assert first not in (keyring.audit_key, Keyring.create(keyring.path.with_name("other.json")).derive_key(
        b"viewer page tokens"))


def test_rewrap_moves_a_key_to_the_active_kek(keyring: Keyring) -> None:
    dek = new_data_key()
    old_id, old_wrapped = keyring.wrap(dek, CONTEXT)
    keyring.rotate()
    new_id, new_wrapped = keyring.rewrap(old_id, old_wrapped, CONTEXT)
    assert new_id == keyring.active_key_id != old_id
    assert keyring.unwrap(new_id, new_wrapped, CONTEXT) == dek


def test_drop_is_refused_while_referenced_or_active(keyring: Keyring, path: Path) -> None:
    keyring.rotate()
    with pytest.raises(KeyringError, match="k0001 still wraps 3 data key"):
        keyring.drop("k0001", still_used=3)
    with pytest.raises(KeyringError, match="k0002 is the active key"):
        keyring.drop("k0002", still_used=0)
    with pytest.raises(KeyringError, match="unknown master key id"):
        keyring.drop("k0042", still_used=0)
    assert Keyring.load(path).key_ids() == ["k0001", "k0002"]


def test_drop_of_an_unused_retired_key(keyring: Keyring, path: Path) -> None:
    old_id, old_wrapped = keyring.wrap(new_data_key(), CONTEXT)
    keyring.rotate()
    keyring.drop(old_id, still_used=0)
    assert keyring.key_ids() == ["k0002"]
    assert Keyring.load(path).key_ids() == ["k0002"]
    with pytest.raises(KeyringError, match="unknown master key id"):
        keyring.unwrap(old_id, old_wrapped, CONTEXT)
    assert keyring.rotate() == "k0003"  # ids are never reused


def test_save_is_atomic_and_private(keyring: Keyring, path: Path) -> None:
    path.chmod(0o644)
    inode = path.stat().st_ino
    with path.open("rb") as old_reader:
        old_content = old_reader.read()
        old_reader.seek(0)
        old_umask = os.umask(0o000)  # even a permissive umask must not widen the file
        try:
            keyring.save()
        finally:
            os.umask(old_umask)
        # A new file was renamed into place; whoever had the old one open still reads it whole.
        assert path.stat().st_ino != inode
        assert old_reader.read() == old_content
    assert mode_of(path) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert Keyring.load(path).key_ids() == ["k0001"]


def test_a_failed_save_leaves_the_previous_file_and_state(
    keyring: Keyring, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = path.read_bytes()

    def full_disk(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    # The disk cannot be filled on demand; the rename is where a real failure would bite.
    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(KeyringError, match=r"cannot write keyring file .*No space left"):
        keyring.rotate()
    assert keyring.active_key_id == "k0001" and keyring.key_ids() == ["k0001"]
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    monkeypatch.undo()

    keyring.rotate()
    rotated = path.read_bytes()
    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(KeyringError):
        keyring.drop("k0001", still_used=0)
    assert keyring.key_ids() == ["k0001", "k0002"]
    assert path.read_bytes() == rotated


def test_checkpoint_key_signs_and_the_pem_verifies(keyring: Keyring) -> None:
    private = keyring.checkpoint_private_key
    assert isinstance(private, Ed25519PrivateKey)
    signature = private.sign(b"checkpoint 1: chain head")
    public = serialization.load_pem_public_key(keyring.checkpoint_public_key_pem())
    assert isinstance(public, Ed25519PublicKey)
    public.verify(signature, b"checkpoint 1: chain head")
    loaded = Keyring.load(keyring.path)
    public.verify(loaded.checkpoint_private_key.sign(b"x"), b"x")


def test_repr_shows_no_key_material(keyring: Keyring) -> None:
    text = repr(keyring)
    assert "k0001" in text
    document = json.loads(keyring.path.read_text())
    for secret in (document["audit_key"], document["checkpoint_signing_key"], document["keks"]["k0001"]["key"]):
        assert secret not in text
    assert repr(keyring.audit_key) not in text


def test_two_processes_rotating_one_after_the_other_keep_both_new_keys(keyring: Keyring, path: Path) -> None:
    """Two `vault keys rotate` (or a rotate and a drop) loaded the file before either saved: each must build
    on the file as it is when it writes, or the second save replaces a master key the first one already
    put to use, and every data key wrapped under it is lost for good."""
    late = Keyring.load(path)  # loaded before the other process rotates
    dek = new_data_key()
    first_id = keyring.rotate()
    wrapped = keyring.wrap(dek, CONTEXT)
    second_id = late.rotate()
    assert second_id != first_id
    on_disk = Keyring.load(path)
    assert on_disk.key_ids() == ["k0001", "k0002", "k0003"] and on_disk.active_key_id == second_id
    assert on_disk.unwrap(*wrapped, CONTEXT) == dek
    assert late.unwrap(*wrapped, CONTEXT) == dek


def test_a_drop_by_a_process_that_loaded_before_a_rotation_keeps_the_new_key(keyring: Keyring, path: Path) -> None:
    keyring.rotate()  # k0001 retired, k0002 active
    late = Keyring.load(path)
    dek = new_data_key()
    keyring.rotate()  # k0003, in use at once
    wrapped = keyring.wrap(dek, CONTEXT)
    late.drop("k0001", still_used=0)
    on_disk = Keyring.load(path)
    assert on_disk.key_ids() == ["k0002", "k0003"] and on_disk.active_key_id == "k0003"
    assert on_disk.unwrap(*wrapped, CONTEXT) == dek
    # The drop is judged on the file as it is: the key that became active meanwhile is refused.
    stale = Keyring.load(path)
    Keyring.load(path).rotate()  # k0004; k0003 retired
    stale.drop("k0003", still_used=0)
    with pytest.raises(KeyringError, match="k0004 is the active key"):
        stale.drop("k0004", still_used=0)
    assert Keyring.load(path).key_ids() == ["k0002", "k0004"]


def test_a_change_is_refused_when_the_file_on_disk_is_damaged(keyring: Keyring, path: Path) -> None:
    """Never write the in-memory state over a file that cannot be read: it may hold keys this process
    never saw."""
    path.write_text("{ not json")
    path.chmod(0o600)
    with pytest.raises(KeyringError, match="not valid JSON"):
        keyring.rotate()
    assert path.read_text() == "{ not json"
    path.unlink()
    with pytest.raises(KeyringError, match="does not exist"):
        keyring.rotate()
    assert not path.exists()


def test_rotations_racing_in_many_threads_lose_no_key(keyring: Keyring, path: Path) -> None:
    """The lock, not luck: each writer re-reads the file only once it holds it."""
    barrier = threading.Barrier(6)
    made: list[str] = []

    def rotate_three() -> None:
        mine = Keyring.load(path)
        barrier.wait()
        for _ in range(3):
            made.append(mine.rotate())

    threads = [threading.Thread(target=rotate_three) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(made) == [f"k{n:04d}" for n in range(2, 20)]
    assert Keyring.load(path).key_ids() == [f"k{n:04d}" for n in range(1, 20)]


def test_a_rotation_asked_for_an_id_makes_that_key_or_nothing(keyring: Keyring, path: Path) -> None:
    """A caller records the id before the keyring changes (`vault keys rotate`); another process rotating
    in between takes it, and the key then made would not be the one recorded: refused, nothing changed."""
    planned = keyring.next_key_id()
    assert Keyring.load(path).rotate() == planned  # the other process
    before = path.read_bytes()
    with pytest.raises(KeyringChanged) as changed:
        keyring.rotate(expected=planned)
    assert (changed.value.expected, changed.value.next_key_id, changed.value.active_key_id) == (
        "k0002", "k0003", "k0002")
    assert path.read_bytes() == before
    assert keyring.rotate(expected="k0003") == "k0003"
    assert Keyring.load(path).key_ids() == ["k0001", "k0002", "k0003"]
