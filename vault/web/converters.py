"""URL converters: ids in paths are bounded by what the id columns can hold.

PostgreSQL's integer columns hold 32-bit values and SQLite's 64-bit ones; a larger number in a path
reached the database as a query parameter it cannot bind, a server error. Every `<int:...>` in the
application is bounded here, once, to the smallest column (2**31 - 1), so an id that cannot exist is a
plain 404 before any handler runs. A route whose number lives in a wider column (the audit log's
sequence) says so with its own `int(max=...)`.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter, Map

ID_MAX = 2**31 - 1


class BoundedId(IntegerConverter):
    """`int`, with `max` defaulting to the largest value of a 32-bit id column."""

    def __init__(self, map: Map, fixed_digits: int = 0, min: int | None = None, max: int | None = ID_MAX,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def install(app: Flask) -> None:
    """Register before any blueprint: rules bind their converters when they are added."""
    app.url_map.converters["int"] = BoundedId


