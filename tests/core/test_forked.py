"""The fork that runs work on untrusted input: each child is reaped by its own parent's end, even when
several threads fork and reap at once (a web worker's concurrent uploads and traces)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from vault.core.forked import ForkDied, Forked, ForkTimedOut, Send


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
