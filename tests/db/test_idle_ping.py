"""PostgreSQL connections are pinged before use only after resting in the pool, and a dead one is replaced.

A ping before every checkout cost a round trip each time, three per view; a connection back in use a
moment after it was returned is not pinged. One that rested is, and if its server process has gone
(terminated here with `pg_terminate_backend`, as a restart or an idle timeout would), the pool opens a
fresh connection and the unit of work never sees the dead one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from vault.db import engine as engine_module
from vault.runtime import Runtime

pytestmark = pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)


@pytest.fixture
def pings(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every ping the pool sends (the dialect's own ping, observed, still run)."""
    seen: list[Any] = []
    dialect = rt.db.engine.dialect
    real = dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        seen.append(dbapi_connection)
        return real(dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", counted)
    yield seen


def _backend(rt: Runtime) -> int:
    with rt.db.session() as session:
        return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_back_in_use_at_once_is_not_pinged(rt: Runtime, pings: list[Any]) -> None:
    first = _backend(rt)
    for _ in range(5):
        assert _backend(rt) == first  # the same pooled connection each time
    assert pings == []


def test_a_connection_that_rested_is_pinged(rt: Runtime, pings: list[Any],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    first = _backend(rt)
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    assert _backend(rt) == first  # alive: the ping passed and the connection was kept
    assert len(pings) == 1


def test_a_rested_connection_found_dead_is_replaced_before_the_work_sees_it(
        rt: Runtime, pings: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    first = _backend(rt)
    outside = create_engine(rt.db.engine.url, poolclass=NullPool)  # not from the pool under test
    try:
        with outside.connect() as other:
            assert other.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": first}).scalar() is True
    finally:
        outside.dispose()
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    assert _backend(rt) != first  # the unit of work ran on a fresh connection
    assert pings  # found by a ping, not by the unit of work failing
