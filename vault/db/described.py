"""PostgreSQL cursors whose description of a result is made only when something reads it.

psycopg builds the description (a `Column` per field: its name decoded, its type looked up in the
connection's registry) afresh on every access, and SQLAlchemy asks for it after every statement. Yet
SQLAlchemy reads it only the first time a cached statement runs, to build the result's metadata, which it
then keeps with the compiled statement; afterwards it looks only at whether there is one. A view runs the
same statements every time, the first two returning some eighty columns between them, so building those
objects that nobody read cost about as much Python as executing the statements did.

Here the description is a sequence that knows its length at once and makes psycopg's own columns when an
item is first read, from the result it was made for: anyone who reads it gets what psycopg would have given.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import psycopg


class _Description(Sequence[Any]):
    """The description of one result: its length known, its columns made by psycopg on first reading."""

    __slots__ = ("_columns", "_count", "_cursor", "_result")

    def __init__(self, cursor: psycopg.Cursor[Any], result: Any, count: int) -> None:
        self._cursor = cursor
        self._result = result
        self._count = count
        self._columns: list[Any] | None = None

    def _made(self) -> list[Any]:
        if self._columns is None:
            # psycopg reads the columns from the cursor's current result: it must still be this one.
            if self._cursor.pgresult is not self._result:
                raise RuntimeError("a result's description read after its cursor moved on to another result")
            self._columns = psycopg.Cursor.description.fget(self._cursor)  # type: ignore[attr-defined]
            assert self._columns is not None
        return self._columns

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: Any) -> Any:
        return self._made()[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._made())

    def __eq__(self, other: object) -> bool:
        return self._made() == other

    __hash__ = None  # type: ignore[assignment]  # a list's equality, and a list's unhashability

    def __repr__(self) -> str:
        return repr(self._made())


class DescribedOnDemandCursor(psycopg.Cursor[Any]):
    """psycopg's cursor, but `description` is made lazily (see the module's docstring)."""

    __slots__ = ()

    @property
    def description(self) -> Sequence[Any] | None:  # type: ignore[override]
        result = self.pgresult
        if result is not None and result.nfields:
            return _Description(self, result, result.nfields)
        # No result, or one without fields (a command; "SELECT ;"): psycopg's own answer, None or [].
        return super().description


def describe_on_demand(dbapi_connection: Any) -> None:
    """Make `dbapi_connection`'s cursors describe their results on demand (psycopg connections only)."""
    if isinstance(dbapi_connection, psycopg.Connection):
        dbapi_connection.cursor_factory = DescribedOnDemandCursor
