"""Running a piece of work on untrusted input in a fork of this process, held to a memory cap and a time limit.

Why: the bounds of parsing and drawing a file in the server's own process are checks we wrote (the
measure of what a PDF page draws, the deadlines of the progressive drawing, checked every hundred objects).
An interactive form's fields and annotations' looks are drawn in one call that cannot pause, and a decoder
may hold more than the measure counts: nothing we wrote bounds what a parser does that we did not foresee.
In a fork the bounds hold whatever happens inside it: its data segment is capped (``RLIMIT_DATA``), the
parent kills it past its time, and a crash of its native code, or an allocation past the cap, is this
work's failure, not a dead worker. The worker never holds what the work allocated.

A fork of the worker starts in a few milliseconds with the worker's fonts and code already loaded, and costs
no process of its own between calls (a fork server holding the rendering code took 168 MiB per worker and
about 25 ms more per drawing, every child starting cold). A fork copies one thread, so it is made while the
fork holds the PDFium lock: no other thread is inside PDFium, whose state the child takes over, and the
child releases its copy of the lock. The child only does its work, sends and exits: it never touches what
the worker's other threads were using, and it collects none of the worker's garbage (whose finalizers could
act on the worker's connections). Messages come back over a pipe, pickled, one at a time, so a long result
(a document's pages) keeps memory flat. A child that has sent its last message is reaped by a thread of its
own rather than waited for: tearing down a fork of a large worker takes milliseconds.

The child is also held in (`vault.core.confine`): before the work starts it closes the sockets, pipes and
writable files it inherited (the worker's database, object store and mail connections, other uploads'
files) and unmaps shared writable memory, and the kernel refuses it new sockets, programs, other processes'
memory and any change to the file system; the office converter's child starts LibreOffice, which writes
its PDF, so it may, but it too reaches no network.
And what the child sends cannot make the worker do anything but read it: messages are unpickled with only
the classes the work declares it sends (`allowed`), and none may be longer than `max_message` bytes. A child
that breaks either is killed and its work has failed (`ForkMisbehaved`).

It gives up every capability, and enters a Landlock domain (`vault.core.fence`): no other process's memory,
environment or descriptors are open to it, and a drawing or a trace reads only the trees it draws with.

What remains: the child holds a copy of the worker's memory as it was at the fork, keys included, and the
office conversion's child reads what the worker can read. Only the pages and answers it sends leave it.
"""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import os
import pickle
import re
import resource
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import Any, NoReturn

from vault.core.confine import confine, prepare
from vault.core.pdfium_calls import PDFIUM_LOCK

log = logging.getLogger(__name__)

GRACE_SECONDS = 5.0
"""How long a child that has sent its last message may take to exit before it is killed."""
_REAP_POLL = (0.001, 0.05)
"""The first and the longest pause between two looks at whether a child has exited (doubling in between)."""

# Python 3.12 and later warn at every fork of a process with threads that the child may deadlock on a lock
# another thread held. This module forks such a process on purpose, holding the one lock its children use
# (see the module text); the warning would be logged at every upload and trace.
warnings.filterwarnings("ignore", message=r"This process \(pid=\d+\) is multi-threaded, use of fork\(\)",
                        category=DeprecationWarning, module=re.escape(__name__))

Send = Callable[[tuple[Any, ...]], None]
"""What the work calls to send a message (a tuple of plain values and of the classes it declared) to the
parent."""
MAX_MESSAGE = 1 << 20
"""The longest message a child may send, in bytes, unless its work says otherwise."""


class ForkTimedOut(Exception):
    """The work did not send its next message before the deadline; the child was killed."""


class ForkDied(Exception):
    """The child ended before sending the message awaited: out of memory, crashed or killed."""


class ForkMisbehaved(ForkDied):
    """The child sent what its work never sends (a class it did not declare, a message past its length):
    taken over, or broken. It was killed, and nothing it sent was acted upon."""


class Forked:
    """The parent's end of one forked piece of work: its messages, each awaited until the deadline at most.

    Use as a context manager, or call `close()`: a child whose messages are no longer wanted is killed.

    The child is made with `os.fork` and waited for by this object alone. `multiprocessing.Process` keeps
    every child it started in a list that each later start polls: with two threads forking and reaping at
    once, one thread's poll could reap another's child between that thread's look at it and its own wait,
    which then took the child for alive, killed its number (which the system may have given to another
    process by then) and raised.
    """

    def __init__(self, work: Callable[[Send], None], *, memory: int, seconds: float, name: str,
                 allowed: Iterable[type | Callable[..., Any]] = (), max_message: int = MAX_MESSAGE,
                 converts: bool = False, keep_open: Iterable[int] = ()) -> None:
        """Fork and start ``work(send)`` in the child, capped at ``memory`` bytes of data, to end within
        ``seconds`` from now. Its messages are tuples of plain values (str, bytes, numbers, None, tuples,
        lists, dicts) and instances of the ``allowed`` classes, each at most ``max_message`` bytes
        pickled. The child keeps the descriptors in ``keep_open`` (the file it works on) and its standard
        streams, and closes what else it may not use; ``converts`` lets it start programs, write files and
        make local sockets, as the office converter must (see `vault.core.confine`)."""
        self.name = name
        self.deadline = time.monotonic() + seconds
        self.allowed = frozenset((item.__module__, item.__qualname__) for item in allowed)
        self.max_message = max_message
        prepare(converts=converts)
        self.reader, writer = Pipe(duplex=False)
        try:
            with PDFIUM_LOCK:  # no other thread is inside PDFium while it is copied (see the module text)
                pid = os.fork()
            if pid == 0:  # the child: it never returns from here
                _child(work, memory, converts, frozenset(keep_open), name, self.reader, writer)
        except BaseException:
            self.reader.close()
            raise
        finally:
            writer.close()
        self.pid = pid
        self.closed = False

    def receive(self) -> tuple[Any, ...]:
        """The child's next message.

        Raises:
            ForkTimedOut: none came before the deadline; the child is killed.
            ForkDied: the child ended (out of memory, crashed) without sending it.
            ForkMisbehaved: it sent something its work does not send; the child is killed.
        """
        left = self.deadline - time.monotonic()
        if left <= 0 or not self.reader.poll(left):
            self.close(stop=True)
            raise ForkTimedOut()
        try:
            data = self.reader.recv_bytes(self.max_message)
        except EOFError:
            self._close(stop=False, unfinished=True)
            raise ForkDied() from None
        except OSError as exc:
            if "bad message length" not in str(exc):  # multiprocessing's words for one past max_message
                self._close(stop=False, unfinished=True)
                raise ForkDied() from None
            self._refuse(f"a message longer than {self.max_message} bytes")
        try:
            message = _Messages(data, self.allowed).load()
        except Exception as exc:  # anything an unpickler raises on bytes not made by the work's `send`
            self._refuse(str(exc))
        if not isinstance(message, tuple):
            self._refuse(f"a {type(message).__name__} where messages are tuples")
        return message

    def _refuse(self, what: str) -> NoReturn:
        log.warning("a forked %s sent what it never sends (%s): killed, its work failed", self.name, what[:200])
        self.close(stop=True)
        raise ForkMisbehaved(what)

    def close(self, *, stop: bool = False) -> None:
        """End the child: it has said its last and is left a moment to exit, or (``stop``, or past that
        moment) it is killed. Safe to call twice."""
        self._close(stop=stop, unfinished=False)

    def _close(self, *, stop: bool, unfinished: bool) -> None:
        if self.closed:
            return
        self.closed = True
        self.reader.close()
        what = self.name if unfinished else None
        if stop:
            _end(self.pid, 0, what)
        else:
            threading.Thread(target=_end, args=(self.pid, GRACE_SECONDS, what), name="vault-fork-reaper",
                             daemon=True).start()

    def __enter__(self) -> Forked:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close(stop=True)


def _end(pid: int, grace: float, unfinished: str | None) -> None:
    """Wait up to ``grace`` seconds for a child to exit, kill it if it has not, and reap it. Only this
    function waits for the child, so until it does the number is the child's and killing it is safe.
    `unfinished`: the work's name, for a child that stopped without finishing (its exit is logged)."""
    deadline = time.monotonic() + grace
    pause = _REAP_POLL[0]
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                done, status = os.waitpid(pid, 0)
                break
            time.sleep(min(pause, left))
            pause = min(pause * 2, _REAP_POLL[1])
    except ChildProcessError:
        # The system reaped it (a process that ignores SIGCHLD has its children reaped for it): its number
        # may be another process's by now, so it is left alone.
        log.warning("a forked %s was reaped by the system, not by its parent", unfinished or "work")
        return
    if unfinished is not None:
        log.warning("a forked %s ended without finishing (exit code %s)", unfinished, os.waitstatus_to_exitcode(status))


class _Messages(pickle.Unpickler):
    """A child's message read back with only its work's declared classes: what a plain unpickler would
    import and call by name is refused here (the pickle module's own advice for data one does not trust)."""

    def __init__(self, data: bytes, allowed: frozenset[tuple[str, str]]) -> None:
        super().__init__(io.BytesIO(data))
        self._allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._allowed:
            raise pickle.UnpicklingError(f"{module}.{name} is not among the work's messages")
        return super().find_class(module, name)


def _child(work: Callable[[Send], None], memory: int, converts: bool, keep: frozenset[int], name: str,
           reader: Connection, writer: Connection) -> NoReturn:
    """The forked child: do the work and leave, whatever happens, without running the parent's exit
    handlers or returning into its code."""
    code = 1
    try:
        # The worker's objects are left as they are: none of its garbage is collected (and finalized: a
        # database connection closing, say, through a descriptor about to be closed or given to another file)
        # here, only this work's own.
        gc.freeze()
        reader.close()
        if not confine(converts=converts, keep=keep | {writer.fileno()}):
            log.warning("this system cannot refuse a forked %s sockets, programs and writes (no seccomp)", name)
        _run(work, memory, writer)
        code = 0
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _run(work: Callable[[Send], None], memory: int, out: Connection) -> None:
    """The child: capped, it does the work, then closes its end of the pipe. (Its copy of the PDFium lock,
    held by the parent's thread as it forked, was released as the child left the `with` around the fork.)"""
    # Within the worker's own limit, should the deployment have set a lower one: a limit cannot be raised.
    _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    cap = memory if hard == resource.RLIM_INFINITY else min(memory, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    try:
        work(out.send)
    except Exception:
        # The work's own failures are its messages; anything else ends the child, which the parent sees.
        log.exception("forked work failed")
    finally:
        out.close()
