"""PostgreSQL cursors make a result's description only when it is read, and then psycopg's own.

SQLAlchemy asks for the description after every statement but reads it only on a statement's first run;
building it each time cost a view about as much Python as executing its statements (`vault.db.described`).
Whoever reads it must still get exactly what psycopg gives.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from sqlalchemy import select, text

from vault.db.described import DescribedOnDemandCursor
from vault.models import User
from vault.runtime import Runtime

pytestmark = pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)

QUERY = "SELECT 1 AS one, 'two'::varchar(7) AS two, now() AS three, 4.5::numeric(5, 2) AS four"


def _plain_and_lazy(rt: Runtime, sql: str) -> tuple[Any, Any, Any]:
    connection = rt.db.engine.raw_connection()
    dbapi = connection.dbapi_connection
    assert isinstance(dbapi, psycopg.Connection)
    assert dbapi.cursor_factory is DescribedOnDemandCursor  # every pooled connection of the engine
    plain, lazy = psycopg.Cursor(dbapi), dbapi.cursor()
    plain.execute(sql)
    lazy.execute(sql)
    return connection, plain, lazy


def test_a_description_read_is_psycopgs_own(rt: Runtime) -> None:
    connection, plain, lazy = _plain_and_lazy(rt, QUERY)
    try:
        described = lazy.description
        assert len(described) == 4 and bool(described)
        assert [tuple(column) for column in described] == [tuple(column) for column in plain.description]
        assert [column.name for column in described] == ["one", "two", "three", "four"]
        assert described[1].display_size == 7 and described[-1][5] == 2  # a varchar's size, a numeric's scale
        assert [tuple(column) for column in described[0:2]] == [tuple(column) for column in plain.description[0:2]]
        assert lazy.fetchall() == plain.fetchall()
    finally:
        plain.close()
        lazy.close()
        connection.close()


def test_a_command_has_no_description_and_an_empty_select_an_empty_one(rt: Runtime) -> None:
    connection, plain, lazy = _plain_and_lazy(rt, "SET LOCAL statement_timeout = 0")
    try:
        assert lazy.description is None and plain.description is None
        lazy.execute("SELECT ;")
        assert lazy.description == [] and not lazy.description
        lazy.close()
        assert lazy.description is None  # psycopg's answer for a closed cursor, too
    finally:
        plain.close()
        connection.close()


def test_a_description_cannot_be_read_once_its_cursor_moved_on(rt: Runtime) -> None:
    """Made late from the cursor's next result, it would describe the wrong columns: refused instead."""
    connection, plain, lazy = _plain_and_lazy(rt, QUERY)
    try:
        earlier = lazy.description
        lazy.execute("SELECT 1 AS other")
        with pytest.raises(RuntimeError):
            earlier[0]
        assert [column.name for column in lazy.description] == ["other"]
    finally:
        plain.close()
        lazy.close()
        connection.close()


def test_sqlalchemy_reads_results_by_name_first_and_later(rt: Runtime) -> None:
    """A statement's first run builds its result's keys from the description; later runs reuse them."""
    statement = select(User.id.label("who"), User.username).where(User.id == -1)
    with rt.db.session() as session:
        for _ in range(3):
            result = session.execute(statement)
            assert list(result.keys()) == ["who", "username"] and result.all() == []
            assert session.execute(text("SELECT 7 AS seven")).mappings().one() == {"seven": 7}
