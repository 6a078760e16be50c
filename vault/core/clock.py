"""The time every part of vault sees, in one place.

Services, models and the session layer ask `clock.now()` (or `utcnow()`), never the system directly, so
a test can move time for all of them at once (a loan falls due, a content URL expires, a session idles
out) instead of rewriting timestamps in the database or waiting. In production the clock is the system's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    """The system's UTC time, optionally shifted by an offset or frozen at one moment (tests only)."""

    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._frozen: datetime | None = None

    def now(self) -> datetime:
        if self._frozen is not None:
            return self._frozen
        return datetime.now(UTC) + self._offset

    def timestamp(self) -> float:
        """Seconds since the epoch, for the parts that count in seconds (sessions, authenticator codes)."""
        return self.now().timestamp()

    def advance(self, delta: timedelta) -> None:
        """Move time forward (or back) by `delta`; it keeps running from there unless frozen."""
        if self._frozen is not None:
            self._frozen += delta
        else:
            self._offset += delta

    def freeze(self, at: datetime | None = None) -> None:
        """Stop time at `at` (default: now)."""
        moment = at or self.now()
        if moment.tzinfo is None:
            raise ValueError("the clock takes aware datetimes only")
        self._frozen = moment.astimezone(UTC)

    def reset(self) -> None:
        """Back to the system's time."""
        self._offset, self._frozen = timedelta(0), None


clock = Clock()


def utcnow() -> datetime:
    """Now, in UTC, as the clock says."""
    return clock.now()
