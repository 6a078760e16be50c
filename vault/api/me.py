"""The caller's own account: `GET /api/v1/me` (who the token belongs to, so a client can check its token and
the roles behind it), the confidentiality agreement for people who only use the API, and what "My account"
offers on one's own tokens and sessions: list and revoke one's tokens, log out everywhere.

Tokens are never made here: a token that could mint tokens would let a stolen one outlive its revocation.
People make theirs on the account page (duty roles with a fresh authenticator code), service accounts get
theirs from `vault token create`.

Every other API route answers 403 `agreement_required` until the token's owner has accepted the current
agreement; the agreement's two routes are the only ones open before that (`vault.web.auth.OPEN_BEFORE_AGREEMENT`),
so an account that never opens the pages reads the text and accepts it in its own name.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify, request
from flask_babel import get_locale

from vault.api import serializers
from vault.api.blueprint import ID, bp
from vault.api.inputs import Field, JsonBody
from vault.api.serializers import _TS_OR_NULL, SCHEMAS, _object, _ref
from vault.api.spec import operation
from vault.core.actions import Action
from vault.models import ApiToken, User, utcnow
from vault.services import accounts, agreement
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


# -- one's own tokens and sessions, as on "My account" -----------------------------------------------------

NO_BODY = JsonBody("AccountAct", fields=(), required=False, description="No body, or an empty object.")


def _caller_token_hash() -> str:
    """The stored hash of the bearer secret this request came with (the guard has already checked it)."""
    _scheme, _sep, secret = request.headers.get("Authorization", "").partition(" ")
    return accounts.hash_token(secret.strip())


def token_json(token: ApiToken, caller_hash: str) -> dict[str, Any]:
    """One of the caller's tokens as the account page lists it: never its secret or hash, only the few
    characters it starts with (shown on the page too) so it can be told apart. `expires_at` is when it
    stops working (`accounts.token_expires_at`), stored or not."""
    expires_at = accounts.token_expires_at(runtime().settings, token)
    return {
        "id": token.id,
        "name": token.name,
        "prefix": token.prefix,
        "scope": token.scope,
        "created_at": serializers.timestamp(token.created_at),
        "expires_at": serializers.timestamp(expires_at),
        "expired": expires_at <= utcnow(),
        "last_used_at": serializers.timestamp(token.last_used_at),
        "revoked_at": serializers.timestamp(token.revoked_at),
        "current": token.token_hash == caller_hash,
    }


def _tokens_json(user: User) -> list[dict[str, Any]]:
    caller_hash = _caller_token_hash()
    return [token_json(token, caller_hash) for token in accounts.list_tokens(db_session(), user)]


@bp.get("/me/tokens")
@permission(Action.ACCOUNT_SELF)
@operation("The caller's own API tokens not revoked, newest first", tag="account", response="MyTokenList",
           description="What the account page lists: id, name, the characters the secret starts with, scope, "
                       "when made, when it expires (an expired one stays listed until revoked) and when last "
                       "used; `current` marks the token of this request. Never a secret. Tokens are not made "
                       "through the API: on the account page, or `vault token create` for service accounts.")
def my_tokens() -> Any:
    return jsonify(tokens=_tokens_json(auth.current()))


@bp.post(f"/me/tokens/<{ID}:token_id>/revoke")
@permission(Action.ACCOUNT_SELF)
@operation("Revoke one of the caller's own tokens (audited)", tag="account", response="MyToken", body=NO_BODY,
           description="Recorded as `token:revoke`, as on the account page; the token stops working at once "
                       "(the one of this request too). Another person's token, or one already revoked, is an "
                       "audited 404, as one that never existed. A `read` token cannot revoke.")
def revoke_my_token(token_id: int) -> Any:
    NO_BODY.parse()
    session, user = db_session(), auth.current()
    caller_hash = _caller_token_hash()
    accounts.revoke_tokens(runtime(), session, user, token_id=token_id, actor=user, ctx=access_context())
    return jsonify(token_json(session.get_one(ApiToken, token_id), caller_hash))


@bp.post("/me/logout-everywhere")
@permission(Action.ACCOUNT_SELF)
@operation("End every browser session of the caller (audited)", tag="account", response="LoggedOutEverywhere",
           body=NO_BODY,
           description="What the account page's log-out-everywhere button does: every signed-in session of the "
                       "caller ends at its next request, recorded as `auth:logout_everywhere`. API tokens are "
                       "NOT revoked, as on the page: `tokens` lists those still live; revoke each with "
                       "`POST /me/tokens/{id}/revoke`.")
def log_out_everywhere() -> Any:
    NO_BODY.parse()
    user = auth.current()
    accounts.log_out_everywhere(runtime(), db_session(), user, access_context())
    return jsonify(sessions_ended=True, tokens=_tokens_json(user))


SCHEMAS["MyToken"] = _object({
    "id": {"type": "integer", "minimum": 1},
    "name": {"type": "string"},
    "prefix": {"type": "string", "description": "The first characters of the secret, as the account page shows."},
    "scope": {"type": "string", "enum": list(accounts.TOKEN_SCOPES)},
    "created_at": {"type": "string", "format": "date-time"},
    "expires_at": _TS_OR_NULL,
    "expired": {"type": "boolean"},
    "last_used_at": {**_TS_OR_NULL, "description": "Kept to the minute."},
    "revoked_at": {**_TS_OR_NULL, "description": "Null while the token works."},
    "current": {"type": "boolean", "description": "The token this request came with."},
}, "One of the caller's API tokens; never its secret.")
SCHEMAS["MyTokenList"] = _object({
    "tokens": {"type": "array", "items": _ref("MyToken")},
})
SCHEMAS["LoggedOutEverywhere"] = _object({
    "sessions_ended": {"type": "boolean", "enum": [True]},
    "tokens": {"type": "array", "items": _ref("MyToken"),
               "description": "The caller's tokens still live (not revoked by this act)."},
})
