"""The caller's own account: `GET /api/v1/me` (who the token belongs to, so a client can check its token and
the roles behind it), and the confidentiality agreement for people who only use the API.

Every other API route answers 403 `agreement_required` until the token's owner has accepted the current
agreement; these two routes are the only ones open before that (`vault.web.auth.OPEN_BEFORE_AGREEMENT`),
so an account that never opens the pages reads the text and accepts it in its own name.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify
from flask_babel import get_locale

from vault.api import serializers
from vault.api.blueprint import bp
from vault.api.inputs import Field, JsonBody
from vault.api.spec import operation
from vault.core.actions import Action
from vault.models import User
from vault.services import agreement
from vault.web import auth
from vault.web.guard import permission
from vault.web.pipeline import access_context, db_session, runtime

ACCEPT = JsonBody(
    "AgreementAccept",
    fields=(Field("version", "string", "The version the caller was shown (`version` of `GET /agreement`).",
                  max_length=64),),
)


@bp.get("/me")
@permission(Action.ACCOUNT_SELF)
@operation("The caller's account", tag="account", response="Me")
def me() -> Any:
    return jsonify(serializers.me(auth.current()))


def _agreement(user: User) -> dict[str, Any]:
    settings = runtime().settings
    locale = str(get_locale())
    found = agreement.acceptance(db_session(), user, settings.agreement_version)
    return {
        "version": settings.agreement_version,
        "language": locale,
        "text": agreement.text(settings, locale),
        "accepted": found is not None,
        "accepted_at": serializers.timestamp(found.accepted_at) if found is not None else None,
    }


@bp.get("/agreement")
@permission(Action.ACCOUNT_SELF)
@operation("The current confidentiality agreement, and whether the caller accepted it", tag="account",
           response="Agreement",
           description="Open to a token whose owner has not accepted the current version yet (every other "
                       "route answers 403 `agreement_required` until then). The text is the one the "
                       "`/agreement` page shows, in the caller's language when there is a translation.")
def agreement_text() -> Any:
    return jsonify(_agreement(auth.current()))


@bp.post("/agreement/accept")
@permission(Action.ACCOUNT_SELF)
@operation("Accept the confidentiality agreement in the caller's own name (audited)", tag="account",
           response="Agreement", body=ACCEPT, errors=(409,),
           description="Recorded as `agreement:accept` with the time, address and place, as on the page; "
                       "accepting a version again changes nothing. 409 `agreement_version_stale` when the "
                       "version given is not the current one (the text changed after it was read): nothing is "
                       "recorded. Open before acceptance, as `GET /agreement`; a read-only token cannot accept.")
def accept_agreement() -> Any:
    values = ACCEPT.parse()
    user = auth.current()
    agreement.accept(runtime(), db_session(), user, access_context(), version=values["version"])
    return jsonify(_agreement(user))
