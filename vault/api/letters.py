"""Letters introducing a customer's new account manager: how they stand (listed with the customer, as on
its page) and revoking a letter's link before the contact answers.

The same service and policy as the pages: the new owner, anyone above them in the chain of managers and
an administrator revoke a link (403 `not_letter_owner` for anyone else who sees the customer, as on the page;
404 `not_found` for someone who may not see it, as for an id that does not exist); an answered or revoked link
is `letter_closed`.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify

from vault.api.blueprint import ID, bp
from vault.api.loans import NO_BODY
from vault.api.serializers import SCHEMAS, _object, _ref, timestamp, user_ref
from vault.api.spec import operation
from vault.core.actions import Action
from vault.models import CustomerLetter, LetterAnswer, User, utcnow
from vault.services import letters as service
from vault.web import auth
from vault.web.guard import permission
from vault.web.pipeline import access_context, db_session, runtime

_TS = {"type": "string", "format": "date-time"}
SCHEMAS["CustomerLetter"] = _object({
    "id": {"type": "integer", "minimum": 1},
    "customer_id": {"type": "integer", "minimum": 1},
    "new_owner": _ref("UserRef"),
    "contact": {"type": "string", "description": "The contact written to, masked as on the customer's page."},
    "language": {"type": "string"},
    "earlier_address": {"type": "boolean",
                        "description": "Sent to an address the contact had before a leaver's edit took it out of "
                                       "the record (besides the letters to the record's own addresses)."},
    "created_at": _TS,
    "expires_at": _TS,
    "state": {"type": "string", "enum": ["open", "answered", "revoked", "expired"],
              "description": "What the letter's link would do if followed now."},
    "answer": {"type": ["string", "null"], "enum": [*(str(a) for a in LetterAnswer), None]},
    "revocable": {"type": "boolean", "description": "The link is open and the caller may revoke it."},
}, "A letter telling a customer's contact who their new account manager is, with a link to answer.")
SCHEMAS["CustomerDetail"]["properties"]["letters"] = {
    "type": "array", "items": _ref("CustomerLetter"),
    "description": "Letters about the customer's account manager, newest first."}
SCHEMAS["CustomerDetail"]["required"] = [*SCHEMAS["CustomerDetail"]["required"], "letters"]


def letter_json(letter: CustomerLetter, actor: User) -> dict[str, Any]:
    state = letter.state(utcnow())
    return {
        "id": letter.id,
        "customer_id": letter.customer_id,
        "new_owner": user_ref(letter.new_owner),
        "contact": letter.contact_label,
        "language": letter.language,
        "earlier_address": letter.earlier_address,
        "created_at": timestamp(letter.created_at),
        "expires_at": timestamp(letter.expires_at),
        "state": state,
        "answer": letter.answer,
        "revocable": state == "open" and service.may_revoke(actor, letter),
    }


def letters_json(customer_id: int, actor: User) -> list[dict[str, Any]]:
    """The customer's letters as its page lists them (the caller already sees the customer)."""
    return [letter_json(letter, actor) for letter in service.letters_of(db_session(), customer_id)]


@bp.post(f"/letters/<{ID}:letter_id>/revoke")
@permission(Action.LETTER_REVOKE)
@operation("Revoke a letter's link: it can no longer be answered (audited)", tag="customers",
           response="CustomerLetter", body=NO_BODY,
           description="Recorded as `letter:revoke`. The new owner, their managers (up the chain) and "
                       "administrators; 403 `not_letter_owner` for anyone else who sees the customer, `letter_closed` "
                       "for a link already answered or revoked; 404 `not_found` for someone who may not see the "
                       "customer, as for an id that does not exist. The customer's letters are listed by "
                       "`GET /customers/{id}`.")
def revoke_letter(letter_id: int) -> Any:
    NO_BODY.parse()
    session, actor = db_session(), auth.current()
    letter = service.get_letter(session, letter_id)
    service.revoke(runtime(), session, actor, letter, ctx=access_context())
    return jsonify(letter_json(letter, actor))
