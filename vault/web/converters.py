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
# The numbers 0..2**31-1 as a pattern. An id out of range must not even match the path: werkzeug checks a
# rule's method before its converter's value, so with two rules on one path (GET and PATCH of a customer)
# a number rejected only by `max` answered the second method with 405 instead of 404.
_UP_TO_ID_MAX = (r"(?:\d{1,9}|1\d{9}|20\d{8}|21[0-3]\d{7}|214[0-6]\d{6}|2147[0-3]\d{5}|21474[0-7]\d{4}"
                 r"|214748[0-2]\d{3}|2147483[0-5]\d{2}|21474836[0-3]\d|214748364[0-7])")


class BoundedId(IntegerConverter):
    """`int`, with `max` defaulting to the largest value of a 32-bit id column."""

    def __init__(self, map: Map, fixed_digits: int = 0, min: int | None = None, max: int | None = ID_MAX,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)
        if max == ID_MAX and not fixed_digits and not signed:
            self.regex = _UP_TO_ID_MAX


def install(app: Flask) -> None:
    """Register before any blueprint: rules bind their converters when they are added."""
    app.url_map.converters["int"] = BoundedId


