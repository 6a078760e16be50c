"""The policy file's sections (`[grades]`, `[alerts]`, `[working_hours]`, `[departure]`, `[records]`,
`[lookups]`, `[rotation]`, `[pool]`), typed and checked key by key once, at start-up.

A mistyped threshold must stop the start-up, not silently leave a rule at its default: a company that
believes it lowered "customers per day" to 10 and still runs at 20 is worse off than one that knows.
Every section is parsed into a frozen dataclass here and nowhere else; the rest of the code reads the
fields of `Settings.alerts`, `Settings.working_hours`, `Settings.departure` and `Settings.grades`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vault.config.errors import ConfigError
from vault.core.segments import Segment

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
    directory_per_hour: int = 15  # rule 8: more than this many distinct customer records read or looked up in an hour
    directory_per_day: int = 40  # rule 8: ...or within 24 hours (a rolling day)
    outside_book: bool = True  # rule 9: a person on notice reads a customer they neither own nor co-own
    # Rule 11: more than this many distinct customers the person neither owns nor co-owns whose contacts they
    # revealed within the last `reveals_outside_book_days` days (rolling): a leak before any notice.
    reveals_outside_book: int = 5
    reveals_outside_book_days: int = 7
    # With a high-severity alert: revoke the person's loans, and for rules 8-9 suspend their access to
    # customer records until an approver lifts it.
    auto_suspend: bool = False
    webhook_attempts: int = 5
    webhook_backoff_seconds: float = 2.0  # doubled after each failed attempt
    webhook_timeout_seconds: float = 5.0


_INT_MIN = {"customers_per_day": 0, "median_min_views": 1, "refusals_per_hour": 0, "quotas_per_day": 0,
            "directory_per_hour": 0, "directory_per_day": 0, "reveals_outside_book": 0,
            "reveals_outside_book_days": 1, "webhook_attempts": 1}
# A window reaching further back than a year is no early warning (and a date before year 1 no date).
_INT_MAX = {"reveals_outside_book_days": 365}
_FLOAT_MIN = {"median_factor": 0.0, "webhook_backoff_seconds": 0.0, "webhook_timeout_seconds": 0.1}


def _only_known_keys(section: str, raw: dict[str, Any], settings: type) -> None:
    """Refuse a key `settings` (a dataclass of the section) does not have: a misspelt key would otherwise
    leave its rule at the default without a word."""
    known = {f.name for f in fields(settings)}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"[{section}] unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")


def _whole_number(section: str, name: str, value: Any, least: int, most: int) -> None:
    """Refuse anything but a whole number from `least` to `most` (TOML's `true` is not 1 here)."""
    if not isinstance(value, int) or isinstance(value, bool) or not least <= value <= most:
        raise ConfigError(f"[{section}] {name} must be a whole number from {least} to {most}")


def parse_alerts(raw: dict[str, Any]) -> AlertSettings:
    """Parse `[alerts]`.

    Raises:
        ConfigError: an unknown key, or a value of the wrong type or range.
    """
    _only_known_keys("alerts", raw, AlertSettings)
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name in _INT_MIN:
            if not isinstance(value, int) or isinstance(value, bool) or value < _INT_MIN[name]:
                raise ConfigError(f"[alerts] {name} must be a whole number of at least {_INT_MIN[name]}")
            if name in _INT_MAX and value > _INT_MAX[name]:
                raise ConfigError(f"[alerts] {name} must be a whole number of at most {_INT_MAX[name]}")
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
        if sep and (hours + minutes).isascii() and hours.isdigit() and minutes.isdigit() and len(minutes) == 2:
            h, m = int(hours), int(minutes)
            if (h, m) == (24, 0):
                return time(23, 59, 59, 999999)
            if 0 <= h <= 23 and 0 <= m <= 59:
                return time(h, m)
    raise ConfigError(f"[working_hours] {key} must be an hour (0-24) or \"HH:MM\", not {value!r}")


def parse_working_hours(raw: dict[str, Any], default_timezone: str) -> WorkingHours:
    """Parse `[working_hours]`: timezone (default VAULT_TIMEZONE), days, start and end.

    Raises:
        ConfigError: an unknown key or a malformed value.
    """
    unknown = set(raw) - {"timezone", "days", "start", "end"}
    if unknown:
        raise ConfigError(f"[working_hours] unknown key(s) {', '.join(sorted(unknown))}")
    tz = zone(str(raw.get("timezone", default_timezone)), "[working_hours] timezone")
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



DEPARTURE_MODES = ("second_approver", "refuse")


@dataclass(frozen=True)
class DepartureSettings:
    """`[departure]`: how far back a departure report looks, which segments are key customers, and how
    loans for people on notice are handled (`second_approver` or `refuse`)."""

    lookback_days: int = 180
    key_segments: frozenset[Segment] = frozenset({Segment.VIP})
    on_notice: str = "second_approver"
    # Grade-1 files need no loan; someone on notice may still open at most this many a day.
    notice_grade1_daily_cap: int = 10


def parse_departure(raw: dict[str, Any]) -> DepartureSettings:
    """Parse `[departure]`: lookback_days, key_segments, on_notice, notice_grade1_daily_cap.

    Raises:
        ConfigError: an unknown key or a malformed value.
    """
    unknown = set(raw) - {"lookback_days", "key_segments", "on_notice", "notice_grade1_daily_cap"}
    if unknown:
        raise ConfigError(f"[departure] unknown key(s) {', '.join(sorted(unknown))}")
    lookback = raw.get("lookback_days", 180)
    if not isinstance(lookback, int) or isinstance(lookback, bool) or not 1 <= lookback <= 3660:
        raise ConfigError("[departure] lookback_days must be a whole number of days from 1 to 3660")
    segments_raw = raw.get("key_segments", ["vip"])
    if not isinstance(segments_raw, list) or not all(isinstance(s, str) for s in segments_raw):
        raise ConfigError("[departure] key_segments must be a list such as [\"vip\", \"key\"]")
    try:
        segments = frozenset(Segment(s.strip().lower()) for s in segments_raw)
    except ValueError:
        raise ConfigError(f"[departure] key_segments: each must be one of {', '.join(Segment)}") from None
    mode = raw.get("on_notice", "second_approver")
    if mode not in DEPARTURE_MODES:
        raise ConfigError(f"[departure] on_notice must be one of {', '.join(DEPARTURE_MODES)}, not {mode!r}")
    cap = raw.get("notice_grade1_daily_cap", 10)
    if not isinstance(cap, int) or isinstance(cap, bool) or not 0 <= cap <= 10_000:
        raise ConfigError("[departure] notice_grade1_daily_cap must be a whole number from 0 to 10000")
    return DepartureSettings(lookback_days=lookback, key_segments=segments, on_notice=mode,
                             notice_grade1_daily_cap=cap)


@dataclass(frozen=True)
class RecordSettings:
    """`[records]`: how often each person may reveal a customer's contacts and terms, and how often each
    segment's record must be updated or confirmed.

    A reveal spends one unit of the person's quota for that customer (per `reveal_window_days`, counted in
    fixed windows since 1970, so the database can spend it with one conditional UPDATE) and one unit of
    their daily cap across customers. Owners and co-owners have their own, higher, quotas: the leaver is
    usually the owner, so they are counted too.
    """

    reveals_vip: int = 3
    reveals_key: int = 5
    reveals_ordinary: int = 10
    owner_reveals_vip: int = 10
    owner_reveals_key: int = 15
    owner_reveals_ordinary: int = 30
    reveal_window_days: int = 30
    reveals_per_day: int = 20
    cadence_vip: int = 30  # days within which a record must be updated or confirmed
    cadence_key: int = 60
    cadence_ordinary: int = 180

    def reveals(self, segment: Segment | str, owner: bool) -> int:
        """The per-customer reveal quota of one person for a customer of `segment`."""
        return int(getattr(self, f"{'owner_' if owner else ''}reveals_{Segment(segment).value}"))

    def cadence(self, segment: Segment | str) -> int:
        return int(getattr(self, f"cadence_{Segment(segment).value}"))


def parse_records(raw: dict[str, Any]) -> RecordSettings:
    """Parse `[records]`: whole numbers only; quotas may be 0 (nobody reveals), windows and cadences not.

    Raises:
        ConfigError: an unknown key, or a value of the wrong type or range.
    """
    _only_known_keys("records", raw, RecordSettings)
    for name, value in raw.items():
        _whole_number("records", name, value, 1 if name.startswith(("cadence_", "reveal_window")) else 0, 100_000)
    return RecordSettings(**raw)


@dataclass(frozen=True)
class LookupSettings:
    """`[lookups]`: how many look-ups by name (the way to reach a customer one does not work) each person may
    make in a local day of the working-hours timezone; 0: none.

    A look-up answers at most five names, so without a daily limit two hundred queries walk the directory
    five names at a time. People on notice, who are the ones most likely to take the customer base with
    them, have their own limit, never higher than everyone's (`vault.policy.customers.lookup_cap`).
    """

    per_day: int = 20
    notice_per_day: int = 5


def parse_lookups(raw: dict[str, Any]) -> LookupSettings:
    """Parse `[lookups]`: per_day and notice_per_day, whole numbers from 0 to 10000.

    Raises:
        ConfigError: an unknown key, or a value of the wrong type or range.
    """
    _only_known_keys("lookups", raw, LookupSettings)
    for name, value in raw.items():
        _whole_number("lookups", name, value, 0, 10_000)
    return LookupSettings(**raw)


# The roles that may own customers (`vault.services.customers.OWNER_ROLES`), by name: a pool claim makes its
# claimant the owner, so only these may be named in `[pool] claim_roles_*`.
POOL_ROLES = ("borrower", "compiler")


@dataclass(frozen=True)
class PoolSettings:
    """`[pool]`: who may claim customers of each segment from the shared pool, how many each person may hold
    at once per segment, and after how many days a claim nobody works goes back to the pool.

    A claim lapses when its holder has neither logged a contact nor updated or confirmed the record for
    `lapse_days`; the maintenance sweep returns it. A manager's assignment from the pool counts as a claim
    of the person given the customer (the same limit, the same lapse).
    """

    claim_roles_vip: frozenset[str] = frozenset(POOL_ROLES)
    claim_roles_key: frozenset[str] = frozenset(POOL_ROLES)
    claim_roles_ordinary: frozenset[str] = frozenset(POOL_ROLES)
    max_claims_vip: int = 3
    max_claims_key: int = 10
    max_claims_ordinary: int = 30
    lapse_days: int = 30

    def claim_roles(self, segment: Segment | str) -> frozenset[str]:
        """Role names whose holders may claim customers of `segment` (empty: nobody)."""
        return frozenset(getattr(self, f"claim_roles_{Segment(segment).value}"))

    def max_claims(self, segment: Segment | str) -> int:
        return int(getattr(self, f"max_claims_{Segment(segment).value}"))


def parse_pool(raw: dict[str, Any]) -> PoolSettings:
    """Parse `[pool]`: claim_roles_<segment> (lists of borrower/compiler, may be empty), max_claims_<segment>
    (0-100000) and lapse_days (1-3660).

    Raises:
        ConfigError: an unknown key, or a value of the wrong type or range.
    """
    _only_known_keys("pool", raw, PoolSettings)
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name.startswith("claim_roles_"):
            if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
                raise ConfigError(f"[pool] {name} must be a list such as [\"borrower\", \"compiler\"]")
            roles = frozenset(r.strip().lower() for r in value)
            if roles - set(POOL_ROLES):
                raise ConfigError(f"[pool] {name}: each role must be one of {', '.join(POOL_ROLES)}")
            values[name] = roles
        elif name.startswith("max_claims_"):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100_000:
                raise ConfigError(f"[pool] {name} must be a whole number from 0 to 100000")
            values[name] = value
        else:
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 3660:
                raise ConfigError(f"[pool] {name} must be a whole number of days from 1 to 3660")
            values[name] = value
    return PoolSettings(**values)


@dataclass(frozen=True)
class GradeRule:
    """What a grade demands; the defaults are the product's table, a deployment may change them."""

    views: int
    loan_required: bool
    approvals: int
    release_required: bool
    download: bool
    trusted_places_only: bool
    max_days: int | None
    # Where downloading is allowed, what leaves is a stamped copy; the original bytes only where this is set.
    download_original: bool = False


DEFAULT_GRADES: dict[int, GradeRule] = {
    1: GradeRule(views=10, loan_required=False, approvals=0, release_required=False, download=True,
                 trusted_places_only=False, max_days=None),
    2: GradeRule(views=3, loan_required=True, approvals=1, release_required=False, download=True,
                 trusted_places_only=False, max_days=30),
    3: GradeRule(views=3, loan_required=True, approvals=1, release_required=True, download=False,
                 trusted_places_only=True, max_days=7),
}
_GRADE_KEYS = {f.name for f in fields(GradeRule)}


def parse_grades(raw: dict[str, Any], where: str = "policy file") -> dict[int, GradeRule]:
    """Parse `[grades.N]` tables over the product's defaults.

    Raises:
        ConfigError: a grade other than 1-3, an unknown key, or an inconsistent rule.
    """
    grades = dict(DEFAULT_GRADES)
    for key, values in raw.items():
        if str(key) not in {"1", "2", "3"} or not isinstance(values, dict):
            raise ConfigError(f"{where}: [grades.{key}] must be grades.1, grades.2 or grades.3")
        bad = set(values) - _GRADE_KEYS
        if bad:
            raise ConfigError(f"{where}: [grades.{key}] unknown key(s) {', '.join(sorted(bad))}")
        grades[int(key)] = replace(grades[int(key)], **values)
    for number, rule in grades.items():
        if rule.views < 0 or rule.approvals < 0 or (rule.max_days is not None and rule.max_days < 1):
            raise ConfigError(f"{where}: [grades.{number}] numbers must be positive")
        if rule.loan_required and rule.approvals < 1:
            raise ConfigError(f"{where}: [grades.{number}] a loan needs at least one approval")
    return grades


@dataclass(frozen=True)
class RotationSettings:
    """`[rotation]`: how often the account manager of each segment's customers changes hands, in months
    (0: that segment does not rotate), and how long a new owner keeps a customer before the plan may move
    it again (`min_tenure_months`, so a customer handed over last month is not rotated on). The plan is a
    proposal: a manager approves, edits or skips every swap (`vault.services.rotation`)."""

    interval_vip: int = 0
    interval_key: int = 12
    interval_ordinary: int = 0
    min_tenure_months: int = 6

    def interval(self, segment: Segment | str) -> int:
        """Months between rotations for a customer of `segment` (0: never rotated)."""
        return int(getattr(self, f"interval_{Segment(segment).value}"))

    def due_after(self, segment: Segment | str) -> int:
        """Months an owner holds a customer of `segment` before a swap is proposed (0: never): the
        interval, and never less than the minimum tenure."""
        months = self.interval(segment)
        return max(months, self.min_tenure_months) if months else 0


def parse_rotation(raw: dict[str, Any]) -> RotationSettings:
    """Parse `[rotation]`: interval_vip, interval_key, interval_ordinary, min_tenure_months, whole numbers
    of months from 0 to 120.

    Raises:
        ConfigError: an unknown key, or a value of the wrong type or range.
    """
    _only_known_keys("rotation", raw, RotationSettings)
    for name, value in raw.items():
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 120:
            raise ConfigError(f"[rotation] {name} must be a whole number of months from 0 to 120")
    return RotationSettings(**raw)


SECTIONS = ("grades", "alerts", "working_hours", "departure", "records", "lookups", "rotation", "pool")


def _clock_text(moment: time) -> str:
    return "24:00" if moment == time(23, 59, 59, 999999) else moment.strftime("%H:%M")


def policy_sections(grades: dict[int, GradeRule], alerts: AlertSettings, hours: WorkingHours,
                    departure: DepartureSettings, records: RecordSettings | None = None,
                    rotation: RotationSettings | None = None,
                    pool: PoolSettings | None = None, lookups: LookupSettings | None = None) -> dict[str, Any]:
    """The policy in force, shaped like the policy file (`vault policy show` prints it as TOML): reading
    it back gives the same settings."""
    return {
        "grades": {str(n): {k: v for k, v in vars(rule).items() if v is not None} for n, rule in grades.items()},
        "alerts": {f.name: getattr(alerts, f.name) for f in fields(AlertSettings)},
        "working_hours": {"timezone": hours.zone.key, "days": [DAY_NAMES[d] for d in sorted(hours.days)],
                          "start": _clock_text(hours.start), "end": _clock_text(hours.end)},
        "departure": {"lookback_days": departure.lookback_days,
                      "key_segments": sorted(str(s) for s in departure.key_segments),
                      "on_notice": departure.on_notice,
                      "notice_grade1_daily_cap": departure.notice_grade1_daily_cap},
        "records": {f.name: getattr(records or RecordSettings(), f.name) for f in fields(RecordSettings)},
        "lookups": {f.name: getattr(lookups or LookupSettings(), f.name) for f in fields(LookupSettings)},
        "rotation": {f.name: getattr(rotation or RotationSettings(), f.name) for f in fields(RotationSettings)},
        "pool": {f.name: sorted(value) if isinstance(value := getattr(pool or PoolSettings(), f.name), frozenset)
                 else value for f in fields(PoolSettings)},
    }


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_toml(sections: dict[str, Any]) -> str:
    """`policy_sections` as the text of a policy file."""
    lines: list[str] = []
    for name, values in sections.items():
        if name == "grades":
            for number, rule in values.items():
                lines.append(f"[grades.{number}]")
                lines += [f"{key} = {_toml_value(value)}" for key, value in rule.items()]
            continue
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"
