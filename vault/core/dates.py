"""Calendar dates as the API, the records and the audit filters take them: YYYY-MM-DD and nothing else.

Why: `date.fromisoformat` takes the ISO 8601 basic and week forms too on Python 3.11 and later
("20270101", "2027-W01-1"), which the documentation of every field taking a date does not promise and a
person reading a stored record would not recognise; a birthday stored as "2027W011" reads as nothing.
"""

from __future__ import annotations

import re
from datetime import date

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_day(text: str) -> date:
    """The date written as YYYY-MM-DD (ASCII digits).

    Raises:
        ValueError: any other form, or a day the calendar does not have.
    """
    if not isinstance(text, str) or not _DAY.fullmatch(text):
        raise ValueError(f"{text!r} is not a date written YYYY-MM-DD")
    return date.fromisoformat(text)
