"""Every blueprint the application serves, in one list (the route guard covers them all)."""

BLUEPRINTS: tuple[str, ...] = (
    "vault.views.auth",
    "vault.views.home",
)
