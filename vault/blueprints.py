"""Every blueprint the application serves, in one list (the route guard covers them all)."""

BLUEPRINTS: tuple[str, ...] = (
    "vault.views.account",
    "vault.views.admin",
    "vault.views.auth",
    "vault.views.home",
    "vault.views.customers",
    "vault.views.documents",
    "vault.views.loans",
    "vault.views.content",
    "vault.api",
    "vault.api_audit",
    "vault.views.audit",
    "vault.views.departures",
    "vault.views.alerts",
)
