"""Early warning: rules watching views, refusals, loan requests and spent quotas, the alerts they raise,
and the webhook that announces them.

Importing this package registers the rules' listeners on the domain events (`vault.core.events`); the
application factory and the command line import it, so both run with them. No service imports this
package: services announce what happened, the early warning decides what it means.
"""

from __future__ import annotations

from vault.alerts import rules as _rules  # noqa: F401  (registers the listeners)
from vault.alerts.raising import RULE_TITLES, Finding, raise_alert
from vault.config.policy_file import AlertSettings, WorkingHours

__all__ = [
    "RULE_TITLES",
    "AlertSettings",
    "Finding",
    "WorkingHours",
    "raise_alert",
]
