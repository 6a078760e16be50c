"""Many sessions doing one act at the same instant: the scaffolding of every "N simultaneous attempts on a
limit of K give exactly K" test (view quotas, reveal quotas, pool claims).

Each thread loads what it needs and commits *before* the barrier (on SQLite every open transaction holds
the write lock, so a thread waiting at the barrier inside one would stall the others), then all act at
once; a `policy.Denied` is rolled back and reported by its code, anything else as "error: …" so the
assertion on the outcomes shows it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from vault import policy


def run_threads(workers: list[Callable[[], None]], *, timeout: float = 300) -> None:
    """Start every worker, wait for all; fail if one is still running after `timeout` seconds."""
    threads = [threading.Thread(target=work) for work in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads)


def at_once(rt: Any, count: int, prepare: Callable[[Session], Any], act: Callable[[Session, Any], object],
            *, success: str = "done") -> list[str]:
    """Run `act(session, prepare(session))` in `count` sessions released together by one barrier.

    Returns:
        The sorted outcomes: `success` for each act that committed, the refusal's code for each
        `policy.Denied`, "error: …" for anything else.
    """
    barrier = threading.Barrier(count)
    results: list[str] = []
    lock = threading.Lock()

    def one() -> None:
        session = rt.db.sessions()
        try:
            loaded = prepare(session)
            session.commit()
            barrier.wait()
            try:
                act(session, loaded)
                session.commit()
                outcome = success
            except policy.Denied as exc:
                session.rollback()
                outcome = exc.decision.code
        except Exception as exc:  # reported in the outcomes, so the assertion shows what went wrong
            outcome = f"error: {exc!r}"
        finally:
            session.close()
        with lock:
            results.append(outcome)

    run_threads([one] * count)
    return sorted(results)
