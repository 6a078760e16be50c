"""`GET /api/v1/me`: who the token belongs to, so a client can check its token and the roles behind it."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from ..permissions import Action
from ..web import auth
from ..web.guard import permission
from . import serializers
from .blueprint import bp
from .spec import operation


@bp.get("/me")
@permission(Action.ACCOUNT_SELF)
@operation("The caller's account", tag="account", response="Me")
def me() -> Any:
    return jsonify(serializers.me(auth.current()))
