"""Rules on the customer record: who reveals, edits, reads the history of, and logs contacts with a customer.

Seeing a customer (`policy.visibility`) is the floor for all of them: a customer the actor does not see
is "not found" whatever they ask. Above it:
- reveal: anyone who sees the customer, for a stated purpose and place judged as a view's are
  (`reveal_input_problems`), within their quotas (the service spends them);
- edit: the owner and the co-owners, who answer for the record, unless they are on notice;
- history (old versions with their diffs): the owner, the co-owners and everyone above one of them in
  the chain of managers, who check the file (not a manager on notice, who no longer sees the team's
  customers: `policy.visibility.sees_team`);
- contact log: the people working the customer (owner, co-owners, their managers, who log verification
  visits) and a successor taking it over in a departure. Whether the person an entry names is the main
  contact is told only to someone whose reveal still shows them the contacts (`contacts_known`): to anyone
  else it would confirm a guessed name the record masks.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l

from vault.core.actions import Action
from vault.models import Customer, User
from vault.policy.core import Decision, allow, deny, object_rule
from vault.policy.customers import manages
from vault.policy.loans import place_missing, reason_problem
from vault.policy.notice import on_notice
from vault.policy.visibility import customer_visible, sees_team


def in_chain(actor: User, customer: Customer) -> bool:
    """Whether the actor owns or co-owns the customer, or manages (up the chain) one who does, unless they
    are on notice: a manager on notice reaches their team's customers by a look-up only, which opens no
    more than it does for anyone (`policy.visibility.sees_team`)."""
    if customer.worked_by(actor.id):
        return True
    if not sees_team(actor):
        return False
    return manages(actor, customer.owner) or any(manages(actor, co.user) for co in customer.co_owners)


def reveal_input_problems(context: dict[str, Any]) -> dict[str, Decision]:
    """Every input rule a reveal as typed breaks, by field, in field order (reason, then place).

    A reveal's reason is what a reviewer reads in `customer:reveal` to judge whether the contacts were
    needed, as they read a view's, so it is the views' rule (`reason_problem`: ten characters, in words,
    not a category's name), not a reason of its own; the place likewise (`place_missing`).

    Args:
        context: reason and place as typed (stripped).
    """
    problems: dict[str, Decision] = {}
    if (problem := reason_problem(context.get("reason"))) is not None:
        problems["reason"] = deny(problem)
    if place_missing(context.get("place")):
        problems["place"] = deny("place_required", _l("Say where you are (office, customer site, home...)."))
    return problems


@object_rule(Action.CUSTOMER_REVEAL)
def _reveal(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """context: reason, place (as typed). Whether the customer is seen comes first, so a customer one may
    not see is "not found" whatever was typed; then the first slip in field order."""
    seen = customer_visible(actor, target)
    if not seen:
        return seen
    return next(iter(reveal_input_problems(context).values()), allow())


@object_rule(Action.CUSTOMER_EDIT)
def _edit(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """Never by someone on notice: on the way out a record could be rewritten (the main contact's address
    turned into the leaver's own, so the letter introducing the successor reaches them); they still log
    their contacts, and the new owner keeps the record."""
    seen = customer_visible(actor, target)
    if not seen:
        return seen
    if not target.worked_by(actor.id):
        return deny("not_owner")
    if on_notice(actor):
        return deny("editor_departing", _l("You have given notice: your customers' records stay as they are for "
                                           "their new owner. Log your contacts with them instead."))
    return allow()


@object_rule(Action.CUSTOMER_HISTORY)
def _history(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    seen = customer_visible(actor, target)
    if not seen:
        return seen
    return allow() if in_chain(actor, target) else deny("not_in_chain")


@object_rule(Action.CUSTOMER_LOG)
def _log(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """context: `successor` — the actor is the successor of an open handover of this customer."""
    seen = customer_visible(actor, target)
    if not seen:
        return seen
    return allow() if in_chain(actor, target) or context.get("successor") else deny("not_working")


# How long a reveal shows a person the contacts they paid for: what they saw in the morning they may log in the
# afternoon. After a working day, or once the record has changed, they are told no more than anyone else.
REVEAL_VALID = timedelta(hours=12)


def contacts_known(revealed_at: datetime | None, record_changed_at: datetime | None, now: datetime) -> bool:
    """Whether a person may be told what only the unmasked contacts say (that a name typed in the contact log
    is the main contact's, `ContactLogEntry.main_contact`): only within `REVEAL_VALID` of their last reveal of
    the customer, and only if the record has not changed since (its contacts may not be the ones they saw).

    Without a reveal the main contact's name is masked to everyone, its owner included: an answer saying
    whether a typed name is it would let anyone who may log contacts confirm guesses for free, where a
    reveal is spent, judged and recorded.

    Args:
        revealed_at: the person's last reveal of the customer (None: none).
        record_changed_at: the record's last change (None: never changed).
        now: the current time.
    """
    if revealed_at is None:
        return False
    if record_changed_at is not None and revealed_at < record_changed_at:
        return False
    return now - revealed_at <= REVEAL_VALID
