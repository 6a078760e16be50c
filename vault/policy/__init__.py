"""The one place where every access decision is made.

`authorize(actor, action, target, **context)` returns a `Decision`; `require(...)` raises `Denied`.
Pages, the JSON API and the command line all call it, and the services that touch bytes or state take
its answer as an argument, so no path reaches a customer file without a decision. Reason codes are
stable strings: tests, the API and the audit log all use them.

Rules live in the submodules by subject (roles, documents, loans, views...) and register themselves in
`OBJECT_RULES`; this module only dispatches.
"""

from __future__ import annotations

from . import departures as _departures  # noqa: F401  (registers its rules)
from . import documents as _documents  # noqa: F401
from . import loans as _loans  # noqa: F401
from . import roles as _roles  # noqa: F401
from . import views as _views  # noqa: F401
from .core import (
    OBJECT_RULES,
    ROLE_RULES,
    Decision,
    Denied,
    allow,
    authorize,
    deny,
    message_for,
    require,
)
from .roles import role_conflict

__all__ = [
    "OBJECT_RULES",
    "ROLE_RULES",
    "Decision",
    "Denied",
    "allow",
    "authorize",
    "deny",
    "message_for",
    "require",
    "role_conflict",
]
