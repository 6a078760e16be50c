"""Many sessions doing one act at the same instant: the scaffolding of every "N simultaneous attempts on a
limit of K give exactly K" test (view quotas, reveal quotas, pool claims).

Each thread loads what it needs and commits *before* the barrier (on SQLite every open transaction holds
the write lock, so a thread waiting at the barrier inside one would stall the others), then all act at
once; a refusal (`policy.Denied`, `ServiceError`) is rolled back and reported by its code, anything else
as "error: …" so the assertion on the outcomes shows it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from vault import policy
from vault.core.errors import ServiceError


def run_threads(workers: list[Callable[[], None]], *, timeout: float = 300) -> None:
    """Start every worker, wait for all; fail if one is still running after `timeout` seconds."""
    threads = [threading.Thread(target=work) for work in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads)


def race(rt: Any, attempts: list[Callable[..., object]], *, prepare: Callable[[Session], Any] | None = None,
         success: str = "done") -> list[str]:
    """Run each attempt in its own session, all released together by one barrier.

    With `prepare`, each thread loads with it first (committed before the barrier) and its attempt is
    called as `attempt(session, loaded)`; without, as `attempt(session)`.

    Returns:
        The sorted outcomes: `success` for each attempt that committed, the code of each refusal
        (`policy.Denied`) or service error, "error: …" for anything else.
    """
    barrier = threading.Barrier(len(attempts))
    results: list[str] = []
    lock = threading.Lock()

    def one(attempt: Callable[..., object]) -> None:
        session = rt.db.sessions()
        try:
            loaded = prepare(session) if prepare is not None else None
            session.commit()
            barrier.wait()
            try:
                if prepare is not None:
                    attempt(session, loaded)
                else:
                    attempt(session)
                session.commit()
                outcome = success
            except policy.Denied as exc:
                session.rollback()
                outcome = exc.decision.code
            except ServiceError as exc:
                session.rollback()
                outcome = exc.code
        except Exception as exc:  # reported in the outcomes, so the assertion shows what went wrong
            outcome = f"error: {exc!r}"
        finally:
            session.close()
        with lock:
            results.append(outcome)

    run_threads([lambda attempt=attempt: one(attempt) for attempt in attempts])
    return sorted(results)


def at_once(rt: Any, count: int, prepare: Callable[[Session], Any], act: Callable[[Session, Any], object],
            *, success: str = "done") -> list[str]:
    """`count` sessions doing the same act at once (`race` with one act repeated)."""
    return race(rt, [act] * count, prepare=prepare, success=success)
