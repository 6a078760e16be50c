"""The fork that runs work on untrusted input: each child is reaped by its own parent's end, even when
several threads fork and reap at once (a web worker's concurrent uploads and traces)."""

from __future__ import annotations

import errno
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from vault.core import confine
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
        _run_in_child(start, forbid=False)


class _Planted:
    """What a taken-over child could send: a pickle that makes its reader create a directory."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (self.path,))


def test_what_a_child_sends_cannot_run_code_in_the_worker(tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    planted = tmp_path / "planted"

    def work(send: Send) -> None:
        send(("page", 1, _Planted(str(planted))))

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


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_the_filter_refuses_every_call_on_each_machine(monkeypatch: pytest.MonkeyPatch, machine: str) -> None:
    monkeypatch.setattr(confine.platform, "machine", lambda: machine)
    code = confine.program()
    assert code is not None
    arch, numbers, other = confine._MACHINES[machine]
    assert set(numbers) == set(confine._REFUSED_CALLS)
    refused = {k for op, _jt, _jf, k in code if op == confine._JUMP_EQUAL and k != arch}
    assert refused == set(numbers.values())
    # Every check jumps to the last instruction, the refusal; the one before it allows.
    for index, (op, jt, _jf, _k) in enumerate(code):
        if op in (confine._JUMP_EQUAL, confine._JUMP_AT_LEAST) and index > 1:
            assert index + 1 + jt == len(code) - 1
    assert code[-1] == (confine._RETURN, 0, 0, confine._RET_ERRNO | errno.EPERM)
    assert code[-2] == (confine._RETURN, 0, 0, confine._RET_ALLOW)
    assert (other is not None) == any(op == confine._JUMP_AT_LEAST for op, *_ in code)
