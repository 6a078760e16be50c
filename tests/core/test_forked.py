"""The fork that runs work on untrusted input: each child is reaped by its own parent's end, even when
several threads fork and reap at once (a web worker's concurrent uploads and traces)."""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import socket
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.planted import Planted
from vault.core import confine, fence
from vault.core.forked import ForkDied, Forked, ForkMisbehaved, ForkTimedOut, Send


def _answer(send: Send) -> None:
    send(("done", os.getpid()))


def _silent(send: Send) -> None:
    os._exit(3)


def _sleep(send: Send) -> None:
    time.sleep(30)


@pytest.fixture
def thread_failures() -> Iterator[list[Any]]:
    """Exceptions raised in any thread while the test runs (the reaper threads' included)."""
    failures: list[Any] = []
    previous = threading.excepthook
    threading.excepthook = failures.append
    try:
        yield failures
    finally:
        threading.excepthook = previous


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_many_threads_forking_and_reaping_at_once_leave_no_child_and_raise_nothing(thread_failures: list[Any]) -> None:
    pids: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(15):
                child = Forked(_answer, memory=1 << 30, seconds=30, name="test")
                message = child.receive()
                pids.append(message[1])
                child.close()  # reaped by a thread of its own, while other threads fork
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for reaper in [t for t in threading.enumerate() if t.name == "vault-fork-reaper"]:
        reaper.join(10)
    assert errors == []
    assert [failure.exc_value for failure in thread_failures] == []
    assert len(pids) == 90
    assert not [pid for pid in pids if _exists(pid)], "a child was left unreaped (a zombie still has its pid)"


def test_a_child_that_dies_without_a_word_is_reported_and_reaped() -> None:
    child = Forked(_silent, memory=1 << 30, seconds=30, name="test")
    with pytest.raises(ForkDied):
        child.receive()
    pid = child.pid
    child.close()
    for reaper in [t for t in threading.enumerate() if t.name == "vault-fork-reaper"]:
        reaper.join(10)
    assert not _exists(pid)


def test_a_child_past_its_time_is_killed_and_reaped() -> None:
    child = Forked(_sleep, memory=1 << 30, seconds=0.3, name="test")
    with pytest.raises(ForkTimedOut):
        child.receive()
    assert not _exists(child.pid)


def test_a_child_the_system_reaped_is_left_alone(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
                                                 thread_failures: list[Any]) -> None:
    # A process that ignores SIGCHLD has its children reaped by the system: the wait then finds no child, and
    # nothing may be killed by that number, which may be another process's by now.
    child = Forked(_answer, memory=1 << 30, seconds=30, name="test")
    child.receive()
    os.waitpid(child.pid, 0)  # as the system would have
    killed: list[int] = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: killed.append(pid))
    child.close(stop=True)
    assert killed == []
    assert "reaped by the system" in caplog.text
    assert thread_failures == []


# -- what a child taken over by a crafted file could do (vault.core.confine, the parent's reading) -----------


def _outcome(attempt: Any) -> tuple[Any, ...]:
    """("done",) when `attempt()` went through, else ("refused", the exception's class and errno)."""
    try:
        attempt()
    except OSError as exc:
        return ("refused", type(exc).__name__, exc.errno)
    return ("done",)


def _run_in_child(attempt: Any, **options: Any) -> tuple[Any, ...]:
    def work(send: Send) -> None:
        send(_outcome(attempt))

    with Forked(work, memory=1 << 30, seconds=30, name="test", **options) as child:
        return child.receive()


def test_a_child_cannot_open_a_connection() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        answer = _run_in_child(lambda: socket.create_connection(("127.0.0.1", port), timeout=5).close())
        assert answer == ("refused", "PermissionError", errno.EPERM)
        listener.settimeout(0.2)
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing came


def test_a_child_cannot_use_the_connections_the_worker_holds() -> None:
    # As the worker's signed-in database connection: a socket open in the parent when it forks.
    ours, theirs = socket.socketpair()
    with ours, theirs:
        answer = _run_in_child(lambda: os.write(ours.fileno(), b"DELETE FROM audit_events;"))
        assert answer == ("refused", "OSError", errno.EBADF)
        theirs.setblocking(False)
        with pytest.raises(BlockingIOError):
            theirs.recv(100)  # nothing was written
        ours.sendall(b"still ours")  # the parent's end is untouched
        assert theirs.recv(100) == b"still ours"


def test_a_child_cannot_start_a_program_unless_it_converts_office_files() -> None:
    def start() -> None:
        os.execv(sys.executable, [sys.executable, "-c", "pass"])

    assert _run_in_child(start) == ("refused", "PermissionError", errno.EPERM)
    with pytest.raises(ForkDied):  # the office conversion's child: the program replaced it, and said nothing
        _run_in_child(start, converts=True)


def test_what_a_child_sends_cannot_run_code_in_the_worker(tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    planted = tmp_path / "planted"

    def work(send: Send) -> None:
        send(("page", 1, Planted(str(planted))))

    with Forked(work, memory=1 << 30, seconds=30, name="test") as child:
        pid = child.pid
        with pytest.raises(ForkMisbehaved):
            child.receive()
    assert not planted.exists()
    assert "posix.mkdir is not among the work's messages" in caplog.text
    deadline = time.monotonic() + 5
    while _exists(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _exists(pid)


def test_a_child_sends_only_its_declared_classes_and_tuples() -> None:
    def declared(send: Send) -> None:
        send(("failed", ValueError("no pages")))

    with Forked(declared, memory=1 << 30, seconds=30, name="test", allowed=(ValueError,)) as child:
        message = child.receive()
    assert message[0] == "failed" and isinstance(message[1], ValueError)
    with Forked(declared, memory=1 << 30, seconds=30, name="test") as child, pytest.raises(ForkMisbehaved):
        child.receive()  # not declared

    def not_a_tuple(send: Send) -> None:
        send(["page", 1])  # type: ignore[arg-type]

    with Forked(not_a_tuple, memory=1 << 30, seconds=30, name="test") as child, pytest.raises(ForkMisbehaved):
        child.receive()


def test_a_child_cannot_make_the_worker_take_a_message_past_its_length() -> None:
    def flood(send: Send) -> None:
        send(("page", b"x" * 4096))

    with Forked(flood, memory=1 << 30, seconds=30, name="test", max_message=1024) as child, \
            pytest.raises(ForkMisbehaved):
        child.receive()
    with Forked(flood, memory=1 << 30, seconds=30, name="test", max_message=8192) as child:
        assert child.receive() == ("page", b"x" * 4096)


def _verdict(code: list[tuple[int, int, int, int]], number: int, arch: int, arguments: tuple[int, ...] = ()) -> int:
    """What the kernel's BPF machine answers for a call: the filter run on its struct seccomp_data."""
    data = struct.pack("<iIQ6Q", number, arch, 0, *(arguments + (0,) * (6 - len(arguments))))
    accumulator, at = 0, 0
    while True:
        op, jt, jf, k = code[at]
        if op == confine._LOAD_WORD:
            accumulator = struct.unpack_from("<I", data, k)[0]
            at += 1
        elif op == confine._RETURN:
            return k
        else:
            taken = {confine._JUMP_EQUAL: accumulator == k, confine._JUMP_AT_LEAST: accumulator >= k,
                     confine._JUMP_ANY_BIT: bool(accumulator & k)}[op]
            at += 1 + (jt if taken else jf)


EPERM = confine._RET_ERRNO | errno.EPERM
# Calls every drawing makes: read, write (on its own descriptors), mmap.
_EVERYDAY = {"x86_64": (0, 1, 9), "aarch64": (63, 64, 222)}


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_the_filter_answers_each_call_as_meant(monkeypatch: pytest.MonkeyPatch, machine: str) -> None:
    monkeypatch.setattr(confine.platform, "machine", lambda: machine)
    arch, numbers, other = confine._MACHINES[machine]
    code, lenient = confine.program(), confine.program(writes=True)
    assert code is not None and lenient is not None
    assert set(numbers) <= {*confine._REFUSED_CALLS, "open", "openat"}
    for name in confine._REFUSED_CALLS:
        if name in numbers:
            assert _verdict(code, numbers[name], arch) == EPERM, name
            expected = EPERM if name in confine._NETWORK_AND_PROCESSES else confine._RET_ALLOW
            assert _verdict(lenient, numbers[name], arch) == expected, name
    for number in _EVERYDAY[machine]:
        assert _verdict(code, number, arch) == confine._RET_ALLOW
    flags_at = {"open": 1, "openat": 2}
    for name, at in flags_at.items():
        if name not in numbers:
            continue
        def opening(flags: int, at: int = at) -> tuple[int, ...]:
            return tuple(flags if i == at else 0 for i in range(6))
        assert _verdict(code, numbers[name], arch, opening(os.O_RDONLY | os.O_CLOEXEC)) == confine._RET_ALLOW
        assert _verdict(code, numbers[name], arch, opening(os.O_TMPFILE | os.O_RDWR | os.O_EXCL)) == confine._RET_ALLOW
        for writing in (os.O_WRONLY, os.O_RDWR, os.O_CREAT, os.O_TRUNC, os.O_APPEND):
            assert _verdict(code, numbers[name], arch, opening(writing | os.O_CLOEXEC)) == EPERM
            assert _verdict(lenient, numbers[name], arch, opening(writing)) == confine._RET_ALLOW
    # An office conversion's: programs and files, local sockets only.
    converting = confine.program(converts=True)
    assert converting is not None
    for name in ("execve", "unlink", "rename", "mkdirat", "connect", "socketpair"):
        if name in numbers:
            assert _verdict(converting, numbers[name], arch) == confine._RET_ALLOW, name
    for name in confine._PROCESS_CALLS:
        assert _verdict(converting, numbers[name], arch) == EPERM, name
    assert _verdict(converting, numbers["socket"], arch, (socket.AF_UNIX,)) == confine._RET_ALLOW
    for family in (socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK, socket.AF_PACKET):
        assert _verdict(converting, numbers["socket"], arch, (family,)) == EPERM
    # Another architecture's numbering from the same process (i386 through int 0x80): killed.
    assert _verdict(code, numbers["socket"], 0x40000003) == confine._RET_KILL_PROCESS
    if other is not None:  # x86_64's x32 calls
        assert _verdict(code, other + 41, arch) == EPERM


def test_a_child_writes_no_file_but_its_unnamed_scratch(tmp_path: Any) -> None:
    kept = tmp_path / "kept"
    kept.write_bytes(b"as it was")

    def attempts() -> tuple[Any, ...]:
        def scratch() -> None:
            with tempfile.TemporaryFile() as handle:
                handle.write(b"pages")
        return tuple(_outcome(attempt) for attempt in (
            lambda: (tmp_path / "planted.pth").write_text("import os"),
            lambda: kept.write_bytes(b"changed"),
            lambda: os.unlink(kept),
            lambda: os.rename(kept, tmp_path / "moved"),
            lambda: os.mkdir(tmp_path / "dir"),
            lambda: os.chmod(kept, 0o777),
            scratch,
            lambda: kept.read_bytes(),
        ))

    def work(send: Send) -> None:
        send(attempts())

    with Forked(work, memory=1 << 30, seconds=30, name="test") as child:
        answer = child.receive()
    refused = ("refused", "PermissionError", errno.EPERM)
    assert answer == (refused,) * 6 + (("done",), ("done",))
    assert kept.read_bytes() == b"as it was" and sorted(p.name for p in tmp_path.iterdir()) == ["kept"]


def test_a_child_cannot_touch_what_the_worker_has_open_for_writing_or_piped(tmp_path: Any) -> None:
    # As a SQLite database the worker holds, and another upload's pipe being drawn at the same time.
    database = tmp_path / "vault.db"
    database.write_bytes(b"SQLite format 3")
    read_end, write_end = os.pipe()
    with open(database, "r+b") as held:
        os.write(write_end, b"another upload's page")

        def work(send: Send) -> None:
            send((_outcome(lambda: os.write(held.fileno(), b"EVIL")), _outcome(lambda: os.read(read_end, 100))))

        with Forked(work, memory=1 << 30, seconds=30, name="test") as child:
            answer = child.receive()
        assert answer == (("refused", "OSError", errno.EBADF),) * 2
        assert os.read(read_end, 100) == b"another upload's page"  # the worker's ends still work
    os.close(read_end)
    os.close(write_end)
    assert database.read_bytes() == b"SQLite format 3"


def test_a_child_cannot_write_through_shared_memory(tmp_path: Any) -> None:
    # As SQLite's WAL index: a file mapped shared and writable in the worker.
    shared = tmp_path / "vault.db-shm"
    shared.write_bytes(b"\0" * 4096)
    with open(shared, "r+b") as handle, mmap.mmap(handle.fileno(), 4096) as mapped:
        def scribble(send: Send) -> None:
            mapped[:4] = b"EVIL"  # unmapped in the child: this write kills it
            send(("written",))

        with Forked(scribble, memory=1 << 30, seconds=30, name="test") as child, pytest.raises(ForkDied):
            child.receive()
        assert mapped[:4] == b"\0" * 4


def test_where_unnamed_files_cannot_be_made_a_child_may_write_but_not_connect(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setattr(confine, "unnamed_files_work", lambda: False)
    written = tmp_path / "scratch"

    def work(send: Send) -> None:
        send((_outcome(lambda: written.write_bytes(b"pages")), _outcome(lambda: socket.socket().close())))

    with Forked(work, memory=1 << 30, seconds=30, name="test") as child:
        assert child.receive() == (("done",), ("refused", "PermissionError", errno.EPERM))
    assert written.read_bytes() == b"pages"


def test_an_office_conversion_child_talks_locally_but_reaches_no_network(tmp_path: Any) -> None:
    def local() -> None:
        first, second = socket.socketpair()
        first.close()
        second.close()
        socket.socket(socket.AF_UNIX).close()

    assert _run_in_child(local, converts=True) == ("done",)
    assert _run_in_child(lambda: socket.socket().close(), converts=True) == ("refused", "PermissionError", errno.EPERM)
    # The programs it starts inherit the filter: a program that connects out is refused as well.
    said = tmp_path / "said"
    program = ("import socket, sys\n"
               "try:\n    socket.socket().close()\n    word = 'connected'\n"
               "except PermissionError:\n    word = 'refused'\n"
               "open(sys.argv[1], 'w').write(word)\n")

    def start(send: Send) -> None:
        os.execv(sys.executable, [sys.executable, "-c", program, str(said)])

    with Forked(start, memory=1 << 30, seconds=30, name="test", converts=True) as child, pytest.raises(ForkDied):
        child.receive()  # the program replaced the child, and says nothing
    deadline = time.monotonic() + 20
    while not (said.exists() and said.read_text()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert said.read_text() == "refused"


def test_a_child_cannot_take_back_the_descriptors_it_closed() -> None:
    # pidfd_getfd copies a descriptor out of another process the caller may trace: its own parent, where
    # ptrace is not restricted.
    ours, theirs = socket.socketpair()
    with ours, theirs:
        def take() -> None:
            worker = os.pidfd_open(os.getppid())
            libc = ctypes.CDLL(None, use_errno=True)
            taken = libc.syscall(438, worker, ours.fileno(), 0)  # pidfd_getfd, the same number on both machines
            if taken < 0:
                raise OSError(ctypes.get_errno(), "pidfd_getfd")
            os.write(taken, b"DELETE FROM audit_events;")

        assert _run_in_child(take) == ("refused", "PermissionError", errno.EPERM)
        theirs.setblocking(False)
        with pytest.raises(BlockingIOError):
            theirs.recv(100)


landlock = pytest.mark.skipif(fence.version() < 1, reason="this kernel has no Landlock")


@landlock
@pytest.mark.parametrize("converts", [False, True], ids=["drawing", "office"])
def test_a_child_cannot_read_the_live_memory_or_environment_of_another_process(converts: bool) -> None:
    # Memory the worker changes after the fork (another request decrypting another customer's file), read
    # through /proc as a process of the same user may where ptrace is not restricted.
    live = bytearray(b"before the fork")
    address = ctypes.addressof((ctypes.c_char * len(live)).from_buffer(live))

    def read_worker() -> bytes:
        with open(f"/proc/{os.getppid()}/mem", "rb", buffering=0) as memory:
            memory.seek(address)
            return memory.read(len(live))

    assert _run_in_child(read_worker, converts=converts) == ("refused", "PermissionError", errno.EACCES)
    assert _run_in_child(lambda: Path(f"/proc/{os.getppid()}/environ").read_bytes(),
                         converts=converts) == ("refused", "PermissionError", errno.EACCES)


@landlock
def test_a_drawing_child_reads_only_the_trees_it_draws_with(tmp_path: Any) -> None:
    # The data folder (database, objects, keyring) lies outside the trees a drawing reads; so do home
    # folders and the configuration under /etc. A folder beside the checkout stands for it here.
    outside = next((base for base in (os.getcwd(), os.path.expanduser("~"), "/var/tmp")
                    if os.access(base, os.W_OK) and not any(
                        os.path.realpath(base) == tree or os.path.realpath(base).startswith(tree + "/")
                        for tree, _rights in fence.readable())), None)
    if outside is None:
        pytest.skip("no writable folder outside the trees a drawing reads")
    folder = tempfile.mkdtemp(dir=outside, prefix="vault-fence-test-")
    try:
        keyring = os.path.join(folder, "keyring.json")
        Path(keyring).write_text("secret")
        assert _run_in_child(lambda: Path(keyring).read_bytes()) == ("refused", "PermissionError", errno.EACCES)
        assert _run_in_child(lambda: os.listdir(folder)) == ("refused", "PermissionError", errno.EACCES)
        # What it draws with stays readable: the standard library, site-packages, the project's code, fonts.
        for readable_file in (os.__file__, pytest.__file__, confine.__file__, "/etc/ld.so.cache"):
            assert _run_in_child(lambda path=readable_file: Path(path).read_bytes()) == ("done",)
        # LibreOffice reads its installation wherever it is: an office conversion's reads are not fenced.
        assert _run_in_child(lambda: Path(keyring).read_bytes(), converts=True) == ("done",)
    finally:
        for name in os.listdir(folder):
            os.unlink(os.path.join(folder, name))
        os.rmdir(folder)
