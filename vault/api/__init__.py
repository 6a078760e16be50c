"""The JSON API under /api/v1: bearer tokens only, the same policy and services as the pages.

Resources live in their own modules (me, customers, documents, loans, views, alerts, departures, rotations, search,
users, approvals, quotas, letters, openapi); importing them registers their routes on `bp`. Errors are always
`{"error": ..., "code": ...}` JSON.
"""

from __future__ import annotations

from vault.api import (
    alerts,
    approvals,
    customers,
    departures,
    documents,
    errors,
    letters,
    loans,
    me,
    openapi,
    pool,
    quotas,
    records,
    rotations,
    search,
    users,
    views,
)
from vault.api.blueprint import bp

# Bearer tokens only (cookies are ignored under /api), so there is no browser session to forge requests with.
CSRF_EXEMPT = True

errors.install(bp)

__all__ = ["CSRF_EXEMPT", "alerts", "approvals", "bp", "customers", "departures", "documents", "letters", "loans",
           "me", "openapi", "pool", "quotas", "records", "rotations", "search", "users", "views"]
