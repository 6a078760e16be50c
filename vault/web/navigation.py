"""The links of the top bar, each shown only to people whose roles allow its action."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l

from vault.core.actions import Action


@dataclass(frozen=True)
class NavLink:
    endpoint: str
    action: Action
    label: object  # a lazy translated string
    # Whether the link is for this person at all, beyond their roles (None: always): a link that could
    # only lead a person to a refusal, whatever they do, is not offered.
    shown: Callable[[Any], bool] | None = None


NAV: list[NavLink] = []


def add(endpoint: str, action: Action, label: str, shown: Callable[[Any], bool] | None = None) -> None:
    NAV.append(NavLink(endpoint, action, _l(label), shown))


# Which to-do count (`services.todo.counts_for`) each menu link carries as a badge; the start page carries
# the sum. Kept here rather than on each `add` so the pages that own the links need not know about it.
BADGES: dict[str, tuple[str, ...]] = {
    "home.index": ("decisions", "releases", "handovers", "rotations", "overdue", "alerts", "departures", "grants"),
    "admin.role_requests": ("grants",),
    "loans.approvals": ("decisions",),
    "loans.custody": ("releases",),
    "departures.handover": ("handovers",),
    "rotation.index": ("rotations",),
    "alerts.index": ("alerts",),
    "departures.index": ("departures",),
}


def badges(counts: dict[str, int]) -> dict[str, int]:
    """The number to show beside each menu link (links with nothing waiting are left out)."""
    shown = {endpoint: sum(counts.get(key, 0) for key in keys) for endpoint, keys in BADGES.items()}
    return {endpoint: n for endpoint, n in shown.items() if n}
