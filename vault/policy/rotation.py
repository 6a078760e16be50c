"""Rules on rotation proposals: who decides a proposed change of account manager, and who confirms having
reached the customer afterwards.

Deciding is the same power as assigning the customer (`policy.customers`): the current owner's manager,
anywhere up the chain, or an approver. Never the person who would gain the customer, nor the owner about
to lose it: each would be deciding about themselves.

Nobody on notice decides a rotation, approval or skip, or runs the plan (`rotation_departing`): an approval
gives a customer to someone, which no leaver does (`policy.notice`), and the queue names a customer, its
owner and who would take it over, customers a manager on notice no longer sees (`policy.visibility.sees_team`)
and an approver never did. It is a standing rule of the action, so the guard asks it on every route, pages and
API, and records each refusal, and the queue's listing (`services.rotation.decidable`) asks the same rule
rather than a copy of it: a person on notice is listed nothing. A withdrawn notice gives the queue back.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from vault.core.actions import Action
from vault.models import Customer, ProposalStatus, Role, RotationProposal, User
from vault.policy.core import MESSAGES, Decision, allow, deny, object_rule, standing_rule
from vault.policy.customers import manages
from vault.policy.notice import on_notice

MESSAGES.update({
    "rotation_departing": _l("People on notice decide no rotation, whose proposals name a team's customers; a "
                             "colleague who is not leaving does it."),
})


def may_decide_customer(actor: User, customer: Customer) -> bool:
    """Whether `actor` stands above the customer's owner (or is an approver): the rotation's deciders."""
    return Role.APPROVER in actor.role_set or manages(actor, customer.owner)


@standing_rule(Action.ROTATION_DECIDE)
def _decider(actor: User) -> Decision:
    """Whether `actor` may decide rotations at all (list, approve, skip, run the plan): never on notice (see the
    module docstring)."""
    return deny("rotation_departing") if on_notice(actor) else allow()


@object_rule(Action.ROTATION_DECIDE)
def _decide(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """`target` is the proposal; context: `gaining` (who would receive the customer; None for a skip)."""
    proposal: RotationProposal = target
    gaining: User | None = context.get("gaining")
    if actor.id == proposal.to_user_id or (gaining is not None and gaining.id == actor.id):
        return deny("own_gain")
    if actor.id == proposal.from_user_id:
        return deny("own_rotation", _l("Nobody decides the rotation of their own customers."))
    if not may_decide_customer(actor, proposal.customer):
        return deny("not_owners_manager")
    return allow()  # a decider on notice was refused by the standing rule, before this one


@object_rule(Action.ROTATION_CONFIRM)
def _confirm(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """`target` is the approved proposal; context: `contact_logged` (whether the actor logged reaching the
    customer's main contact since the approval)."""
    proposal: RotationProposal = target
    if proposal.to_user_id != actor.id or proposal.status != ProposalStatus.APPROVED:
        return deny("not_new_owner", _l("Only the new owner of a rotated customer confirms the contact."))
    if proposal.customer.owner_id != actor.id:
        return deny("no_longer_owner", _l("The customer has since gone to someone else."))
    if proposal.confirmed_at is not None:
        return deny("already_confirmed")
    if not context.get("contact_logged"):
        return deny("contact_not_logged")
    return allow()
