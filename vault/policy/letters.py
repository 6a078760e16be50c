"""Who may revoke the link in a letter introducing a customer's new account manager.

The new owner (who may want to reach the customer first, or sees the letter went to the wrong person),
anyone above them in the chain of managers, and an administrator (who runs departures). Nobody else:
revoking a link silences the customer's voice on the handover, so it is not anyone's to do. To someone who
may not see the letter's customer the letter does not exist ("not found", as for any object).
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from vault.core.actions import Action
from vault.models import CustomerLetter, Role, User
from vault.policy.core import MESSAGES, Decision, allow, deny, object_rule
from vault.policy.customers import manages
from vault.policy.visibility import customer_visible

MESSAGES.update({
    "letter_closed": _l("This letter's link is already answered or revoked."),
    "not_letter_owner": _l("Only the new account manager, their managers or an administrator may revoke this link."),
})


@object_rule(Action.LETTER_REVOKE)
def _revoke(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """`target` is the letter."""
    letter: CustomerLetter = target
    if not (letter.new_owner_id == actor.id or Role.ADMIN in actor.role_set or manages(actor, letter.new_owner)):
        # A letter's id names its customer: to someone who may not see that customer (or whose sight of
        # customers is suspended) it is "not found", as a made-up id is, so ids cannot be probed; someone
        # who sees the customer is told why they may not revoke.
        if not customer_visible(actor, letter.customer):
            return deny("not_found")
        return deny("not_letter_owner")
    if letter.answered_at is not None or letter.revoked_at is not None:
        return deny("letter_closed")
    return allow()
