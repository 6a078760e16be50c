"""The application factory: the one place that puts the parts together (settings, runtime, the request
pipeline and every blueprint). `gunicorn "vault:create_app()"` serves it in production.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from flask import Flask
from flask_babel import Babel
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

import vault.alerts
import vault.mail  # noqa: F401  (registers the notification listeners)
from vault.config.settings import ensure_secret_key, load_settings
from vault.core import languages
from vault.runtime import Runtime
from vault.web import converters, locale, setup

# The pages' templates live in the top-level templates/ folder; vault/templates links to it, so the
# package finds them the same way in a checkout and installed from a wheel (which carries the files).
TEMPLATES = Path(__file__).parent / "templates"
# Message catalogues (`messages.pot` is the template translators start from; see babel.cfg).
TRANSLATIONS = Path(__file__).parent / "translations"

# Every blueprint the application serves, in one list (the route guard covers them all).
BLUEPRINTS: tuple[str, ...] = (
    "vault.pages.account",
    "vault.pages.admin",
    "vault.pages.auth",
    "vault.pages.home",
    "vault.pages.customers",
    "vault.pages.records",
    "vault.pages.pool",
    "vault.pages.search",
    "vault.pages.documents",
    "vault.pages.loans",
    "vault.pages.content",
    "vault.pages.viewer",
    "vault.api",
    "vault.api.audit",
    "vault.pages.audit",
    "vault.pages.departures",
    "vault.pages.rotation",
    "vault.pages.alerts",
    "vault.pages.letters",
)
LANGUAGES = languages.LANGUAGES

csrf = CSRFProtect()
babel = Babel()


def create_app(config: dict[str, Any] | None = None, runtime: Runtime | None = None) -> Flask:
    """Build the application. Refuses to start without a safe keyring (see `vault init`)."""
    if runtime is None:
        settings = ensure_secret_key(load_settings(config))
        runtime = Runtime.build(settings)
    settings = runtime.settings
    app = Flask(__name__, template_folder=str(TEMPLATES), static_folder="static")
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_upload_bytes + 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
        SESSION_COOKIE_NAME="vault_session",
        WTF_CSRF_TIME_LIMIT=None,
        BABEL_DEFAULT_LOCALE="en",
        BABEL_TRANSLATION_DIRECTORIES=str(TRANSLATIONS),
    )
    app.extensions["vault"] = runtime
    app.logger.setLevel(settings.log_level.upper())
    if settings.proxy_count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_count, x_proto=settings.proxy_count,
                                x_host=settings.proxy_count)  # type: ignore[method-assign]
    csrf.init_app(app)
    babel.init_app(app, locale_selector=locale.select_locale, timezone_selector=locale.select_timezone)
    locale.install(app)

    converters.install(app)
    setup.install(app)
    for module_name in BLUEPRINTS:
        module = importlib.import_module(module_name)
        app.register_blueprint(module.bp)
        if getattr(module, "CSRF_EXEMPT", False):
            csrf.exempt(module.bp)
    return app

