"""The `[alerts]` and `[working_hours]` sections of the policy file, checked key by key.

A mistyped threshold must stop the start-up, not silently leave a rule at its default: a company that
believes it lowered "customers per day" to 10 and still runs at 20 is worse off than one that knows.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..config import ConfigError, Settings

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class AlertSettings:
    """Thresholds of the early-warning rules; a threshold of 0 (or false) switches its rule off."""

    customers_per_day: int = 20  # rule 1: more than this many distinct customers' files in 24 hours
    median_factor: float = 5.0  # rule 2: views today at least this many times the 30-day daily median
    median_min_views: int = 10  # rule 2: ...and at least this many views (a median of 0 is no baseline)
    outside_hours: bool = True  # rule 3
    new_place: bool = True  # rule 4
    refusals_per_hour: int = 5  # rule 5: this many refused attempts within an hour
    departing_access: bool = True  # rule 6
    quotas_per_day: int = 3  # rule 7: this many documents' quotas used up in one day
    auto_suspend: bool = False  # revoke the person's loans when a high-severity alert is raised
    webhook_attempts: int = 5
    webhook_backoff_seconds: float = 2.0  # doubled after each failed attempt
    webhook_timeout_seconds: float = 5.0


_INT_MIN = {"customers_per_day": 0, "median_min_views": 1, "refusals_per_hour": 0, "quotas_per_day": 0,
            "webhook_attempts": 1}
_FLOAT_MIN = {"median_factor": 0.0, "webhook_backoff_seconds": 0.0, "webhook_timeout_seconds": 0.1}


def alert_settings(settings: Settings) -> AlertSettings:
    """Parse `[alerts]`.

    Raises:
        ConfigError: an unknown key, or a value of the wrong type or range.
    """
    raw = settings.section("alerts")
    known = {f.name for f in fields(AlertSettings)}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"[alerts] unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name in _INT_MIN:
            if not isinstance(value, int) or isinstance(value, bool) or value < _INT_MIN[name]:
                raise ConfigError(f"[alerts] {name} must be a whole number of at least {_INT_MIN[name]}")
        elif name in _FLOAT_MIN:
            if not isinstance(value, int | float) or isinstance(value, bool) or value < _FLOAT_MIN[name]:
                raise ConfigError(f"[alerts] {name} must be a number of at least {_FLOAT_MIN[name]}")
            value = float(value)
        elif not isinstance(value, bool):
            raise ConfigError(f"[alerts] {name} must be true or false")
        values[name] = value
    return AlertSettings(**values)


@dataclass(frozen=True)
class WorkingHours:
    zone: ZoneInfo
    days: frozenset[int]  # 0 = Monday, as datetime.weekday()
    start: time
    end: time

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)

    def contains(self, moment: datetime) -> bool:
        local = self.local(moment)
        return local.weekday() in self.days and self.start <= local.time() < self.end


def zone(name: str, where: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: unknown timezone {name!r} (use a name like Europe/Paris)") from None


def _clock(value: Any, key: str) -> time:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 24:
        return time(23, 59, 59, 999999) if value == 24 else time(value)
    if isinstance(value, str):
        hours, sep, minutes = value.strip().partition(":")
        if sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2:
            h, m = int(hours), int(minutes)
            if (h, m) == (24, 0):
                return time(23, 59, 59, 999999)
            if 0 <= h <= 23 and 0 <= m <= 59:
                return time(h, m)
    raise ConfigError(f"[working_hours] {key} must be an hour (0-24) or \"HH:MM\", not {value!r}")


def working_hours(settings: Settings) -> WorkingHours:
    """Parse `[working_hours]`: timezone (default VAULT_TIMEZONE), days, start and end.

    Raises:
        ConfigError: an unknown key or a malformed value.
    """
    raw = settings.section("working_hours")
    unknown = set(raw) - {"timezone", "days", "start", "end"}
    if unknown:
        raise ConfigError(f"[working_hours] unknown key(s) {', '.join(sorted(unknown))}")
    tz = zone(str(raw.get("timezone", settings.timezone)), "[working_hours] timezone")
    days_raw = raw.get("days", list(DAY_NAMES[:5]))
    if not isinstance(days_raw, list) or not all(isinstance(d, str) for d in days_raw):
        raise ConfigError("[working_hours] days must be a list of day names such as [\"mon\", \"tue\"]")
    days: set[int] = set()
    for name in days_raw:
        short = name.strip().lower()[:3]
        if short not in DAY_NAMES:
            raise ConfigError(f"[working_hours] days: {name!r} is not a day name")
        days.add(DAY_NAMES.index(short))
    start = _clock(raw.get("start", 8), "start")
    end = _clock(raw.get("end", 19), "end")
    if start >= end:
        raise ConfigError("[working_hours] start must be before end")
    return WorkingHours(zone=tz, days=frozenset(days), start=start, end=end)


def check(settings: Settings) -> None:
    """Parse every section the alerts and departures read, so a bad file stops the start-up."""
    alert_settings(settings)
    working_hours(settings)
    zone(settings.timezone, "VAULT_TIMEZONE")
