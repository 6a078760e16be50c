"""The one place where every access decision is made.

`authorize(actor, action, target, **context)` returns a `Decision`; `require(...)` raises `Denied`.
Pages, the JSON API and the command line all call it, and the services that touch bytes or state take
its answer as an argument, so no path reaches a customer file without a decision. Reason codes are
stable strings: tests, the API and the audit log all use them.

Rules live in the submodules by subject (roles, documents, loans, views...) and register themselves in
`OBJECT_RULES` (or, for a rule about the actor alone that every route of an action asks, `STANDING_RULES`);
this module only dispatches.
"""

from __future__ import annotations

from vault.policy import accounts as _accounts  # noqa: F401  (registers its rules)
from vault.policy import audit_log as _audit_log  # noqa: F401
from vault.policy import customers as _customers  # noqa: F401
from vault.policy import departures as _departures  # noqa: F401
from vault.policy import documents as _documents  # noqa: F401
from vault.policy import letters as _letters  # noqa: F401
from vault.policy import loans as _loans  # noqa: F401
from vault.policy import pool as _pool  # noqa: F401
from vault.policy import records as _records  # noqa: F401
from vault.policy import roles as _roles  # noqa: F401
from vault.policy import rotation as _rotation  # noqa: F401
from vault.policy import views as _views  # noqa: F401
from vault.policy.core import (
    OBJECT_RULES,
    ROLE_RULES,
    Decision,
    Denied,
    MissingRule,
    allow,
    authorize,
    deny,
    message_for,
    require,
)
from vault.policy.customers import lookup_cap, lookup_spent, new_owner_problem
from vault.policy.loans import custodian_acts
from vault.policy.notice import reach_through_manager
from vault.policy.roles import role_conflict
from vault.policy.slips import SLIPS, STEPS_FIRST, is_slip, shows_form_again
from vault.policy.visibility import (
    visibility_values,
    visible_alerts,
    visible_customers,
    visible_documents,
    visible_documents_by_parameter,
    visible_loans,
    worked_customers,
)

__all__ = [
    "OBJECT_RULES",
    "ROLE_RULES",
    "SLIPS",
    "STEPS_FIRST",
    "Decision",
    "Denied",
    "MissingRule",
    "allow",
    "authorize",
    "custodian_acts",
    "deny",
    "is_slip",
    "lookup_cap",
    "lookup_spent",
    "message_for",
    "new_owner_problem",
    "reach_through_manager",
    "require",
    "role_conflict",
    "shows_form_again",
    "visibility_values",
    "visible_alerts",
    "visible_customers",
    "visible_documents",
    "visible_documents_by_parameter",
    "visible_loans",
    "worked_customers",
]
