"""Watching two transactions meet on PostgreSQL's row locks: whether one waits for the other."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


def waiting_on_a_lock(rt: Any) -> bool:
    """Whether a session of the test's database waits for a lock (PostgreSQL)."""
    with rt.db.engine.connect() as connection:
        return bool(connection.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'").scalar())


def until_done_or_waiting(rt: Any, thread: threading.Thread, seconds: float = 10) -> None:
    """Until `thread` has finished or a session waits for a lock (at most `seconds`)."""
    deadline = time.monotonic() + seconds
    while thread.is_alive() and not waiting_on_a_lock(rt) and time.monotonic() < deadline:
        time.sleep(0.02)


def meanwhile(rt: Any, act: Callable[[Any], object], other: Callable[[], None]) -> None:
    """`act(session)` in a transaction that stays open while `other` runs in a thread, until `other` has
    finished or waits for a lock; then the transaction commits, and `other` must end within 30 s."""
    with rt.db.session() as session:
        act(session)
        session.flush()
        thread = threading.Thread(target=other)
        thread.start()
        until_done_or_waiting(rt, thread)
    thread.join(timeout=30)
    assert not thread.is_alive(), "the other transaction is still waiting"


def at_once(rt: Any, first: Callable[[Any], object], second: Callable[[Any], object]) -> list[object]:
    """`first(session)` in a transaction left open while `second(session)` runs in one of its own (see
    `meanwhile`); what came of the second: ["done"], or the code it was refused with (its work rolled back)."""
    outcome: list[object] = []

    def run() -> None:
        with rt.db.session() as session:
            try:
                second(session)
                outcome.append("done")
            except Exception as exc:
                decision = getattr(exc, "decision", None)
                outcome.append(getattr(decision, "code", None) or getattr(exc, "code", exc))
                session.rollback()

    meanwhile(rt, first, run)
    return outcome


def interleaved(rt: Any, hold: Callable[[Any], Any], other: Callable[[], object],
                then: Callable[[Any, Any], object]) -> None:
    """`hold(session)` takes its locks; `other` runs in a thread until it finishes or waits for a lock; then
    `then(session, held)` (`held` what `hold` returned) finishes the first transaction, which commits, and
    `other` must end within 30 s. For a second act that meets the first between its locks and its record."""
    with rt.db.session() as session:
        held = hold(session)
        thread = threading.Thread(target=other)
        thread.start()
        until_done_or_waiting(rt, thread)
        then(session, held)
    thread.join(timeout=30)
    assert not thread.is_alive(), "the other transaction is still waiting"
