"""vault: customer files kept in the company's hands.

`create_app(config)` builds the Flask application from `VAULT_*` settings (plus `config` overrides,
used by tests); `gunicorn "vault:create_app()"` serves it in production.
"""

from vault.app import create_app

__all__ = ["create_app"]
