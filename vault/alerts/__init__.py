"""Early warning: rules watching views, refusals, loan requests and spent quotas, the alerts they raise,
and the webhook that announces them.

Importing this package registers the rules' listeners (`vault.hooks`); `Runtime.build` calls
`install`, so the web application and every command line run with them, and a malformed `[alerts]`,
`[working_hours]` or `[departure]` section stops the start-up instead of a request.
"""

from __future__ import annotations

from ..config import Settings
from . import rules as _rules  # noqa: F401  (registers the listeners)
from .config import AlertSettings, WorkingHours, alert_settings, working_hours
from .raising import RULE_TITLES, Finding, raise_alert


def install(settings: Settings) -> None:
    """Check every section the early warning and departures read.

    Raises:
        ConfigError: an unknown key or a malformed value in `[alerts]`, `[working_hours]` or
            `[departure]`, or a webhook URL that is not http(s).
    """
    from ..services.departures import departure_settings
    from . import config, webhook

    config.check(settings)
    departure_settings(settings)
    if settings.webhook_url:
        webhook.check_url(settings.webhook_url)


__all__ = [
    "RULE_TITLES",
    "AlertSettings",
    "Finding",
    "WorkingHours",
    "alert_settings",
    "install",
    "raise_alert",
    "working_hours",
]
