"""The links of the top bar, each shown only to people whose roles allow its action."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from vault.core.actions import Action


@dataclass(frozen=True)
class NavLink:
    endpoint: str
    action: Action
    label: object  # a lazy translated string


NAV: list[NavLink] = []


def add(endpoint: str, action: Action, label: str) -> None:
    NAV.append(NavLink(endpoint, action, _l(label)))
