"""`GET /api/v1/me`: who the token belongs to, so a client can check its token and the roles behind it."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from vault.api import serializers
from vault.api.blueprint import bp
from vault.api.spec import operation
from vault.core.actions import Action
from vault.web import auth
from vault.web.guard import permission


@bp.get("/me")
@permission(Action.ACCOUNT_SELF)
@operation("The caller's account", tag="account", response="Me")
def me() -> Any:
    return jsonify(serializers.me(auth.current()))
