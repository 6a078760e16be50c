"""Watching two transactions meet on PostgreSQL's row locks: whether one waits for the other."""

from __future__ import annotations

import threading
import time
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
