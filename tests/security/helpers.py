"""Small helpers for the security tests: audit rows, the password step alone, flash messages."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from tests.conftest import PASSWORD, csrf_from
from vault.models import AuditEvent

_FLASH = re.compile(r'<p class="flash flash-(\w+)"[^>]*>(.*?)</p>', re.S)
_CSRF_VALUE = re.compile(r'(name="csrf_token"[^>]*value=")[^"]+(")')


def events(rt: Any, action: str, outcome: str | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
    if outcome is not None:
        query = query.where(AuditEvent.outcome == outcome)
    with rt.db.session() as session:
        return list(session.scalars(query))


def password_step(client: Any, username: str, password: str = PASSWORD, **data: str) -> Any:
    """Submit the sign-in form only (no later step), as a person typing at the form would."""
    token = csrf_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token, **data})


def post_form(client: Any, page: str, action: str | None = None, **data: str) -> Any:
    """GET `page` for its CSRF token, then POST `data` to `action` (default: the page itself)."""
    token = csrf_from(client.get(page).get_data(as_text=True))
    return client.post(action or page, data={"csrf_token": token, **data})


def flashes(response: Any) -> list[tuple[str, str]]:
    return [(kind, text.strip()) for kind, text in _FLASH.findall(response.get_data(as_text=True))]


def without_csrf(html: str) -> str:
    """The page with its CSRF token values blanked (they carry a timestamp, so differ between requests)."""
    return _CSRF_VALUE.sub(r"\1\2", html)


def location(response: Any) -> str:
    return response.headers.get("Location", "")
