"""The one secret behind every forensic mark and stamped-PDF claim, derived in one place.

    marking secret = HMAC-SHA256(VAULT_SECRET_KEY, "vault/marking/v1")

The viewer embeds view ids with it, and `vault trace`, the auditors' "Trace a leaked copy" and
`POST /api/v1/audit/trace` read them with it, so all of them call :func:`marking_secret`. It is derived
from the application's secret key rather than from the keyring because a master key rotation must not
make earlier leaks untraceable; the flip side is that changing `VAULT_SECRET_KEY` does: keep the old
value somewhere safe if it ever has to change.
"""

from __future__ import annotations

import hashlib
import hmac

from vault.config.settings import Settings

LABEL = b"vault/marking/v1"


def marking_secret(settings: Settings) -> bytes:
    """The marking secret of this deployment (see the module docstring)."""
    if not settings.secret_key:
        raise ValueError("VAULT_SECRET_KEY is not set; the marking secret is derived from it")
    return hmac.new(settings.secret_key.encode("utf-8"), LABEL, hashlib.sha256).digest()
