"""Rules on the shared pool: who lists it, claims from it, assigns from it and returns customers to it.

The pool is the customers without an owner. Sales staff see of it only names and segments, and only of
the segments they may claim (the policy file's `[pool] claim_roles_<segment>`); a claim makes the
claimant the owner, so the customer becomes visible to them by ownership (`policy.visibility`).
- claim: a person holding a role allowed for the customer's segment, below their limit for that segment;
- assign: a manager gives a pooled customer to someone below them in the chain (an approver to anyone),
  never to themselves, within that person's segment rights and limit;
- release: the owner, anyone above the owner in the chain of managers, or an approver; never an owner on
  notice, whose customers go through their departure's handover (else they could release them for an
  accomplice to claim).
Nobody on notice claims or is assigned a pooled customer (`policy.customers.on_notice`).
The service looks up the settings and the counts and hands them over as context, so the rules here
stay pure decisions.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from vault.core.actions import Action
from vault.models import Customer, Role, User
from vault.policy.core import Decision, allow, deny, object_rule
from vault.policy.customers import manages
from vault.policy.notice import decider_problem, on_notice


def may_claim_segment(person: User, claim_roles: frozenset[str]) -> bool:
    """Whether one of the person's roles is among those allowed to claim a segment (never for someone on
    notice, who claims nothing and so is shown no pooled names)."""
    return not on_notice(person) and bool({str(r) for r in person.role_set} & claim_roles)


def _segment_and_limit(person: User, context: dict[str, Any], yourself: bool) -> Decision | None:
    if not may_claim_segment(person, frozenset(context.get("claim_roles", ()))):
        return deny("pool_segment", _l("You may not claim customers of this segment.") if yourself else
                    _l("This person may not hold customers of this segment from the pool."))
    if context.get("held", 0) >= context.get("limit", 0):
        return deny("pool_limit", _l("You already hold as many customers of this segment as allowed; work or "
                                     "release one first.") if yourself else
                    _l("This person already holds as many customers of this segment as allowed."))
    return None


@object_rule(Action.POOL_CLAIM)
def _claim(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """`target` is the customer; context: `claim_roles` (role names allowed for its segment), `held` (the
    actor's open claims in that segment), `limit`, `released_by` (who released it to the pool from
    someone else's book, if so).

    Nobody claims a customer they took from someone else's book: a manager refused it as their own gain,
    or an approver who also claims, would otherwise release it and claim it back."""
    customer: Customer = target
    if on_notice(actor):
        return deny("person_departing")
    if customer.owner_id is not None:
        return deny("not_in_pool")
    if context.get("released_by") == actor.id:
        return deny("own_release", _l("You returned this customer to the pool from someone else's book: someone "
                                      "else takes it from there."))
    refused = _segment_and_limit(actor, context, yourself=True)
    return allow() if refused is None else refused


@object_rule(Action.POOL_ASSIGN)
def _assign(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """`target` is the customer; context: `gaining` (the person given it), and `claim_roles`, `held`,
    `limit` as for a claim, about the person gaining it."""
    customer: Customer = target
    gaining: User = context["gaining"]
    if customer.owner_id is not None:
        return deny("not_in_pool")
    if gaining.id == actor.id:
        return deny("own_gain")
    if not (deciding := decider_problem(actor)):
        return deciding
    if on_notice(gaining):
        return deny("person_departing")
    if Role.APPROVER not in actor.role_set and not manages(actor, gaining):
        return deny("not_gainers_manager")
    refused = _segment_and_limit(gaining, context, yourself=False)
    return allow() if refused is None else refused


@object_rule(Action.POOL_RELEASE)
def _release(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """`target` is the customer; only one with an owner can go back to the pool. Someone on notice releases
    neither their own customers (they go through the handover) nor anyone else's (an accomplice could claim
    it: `decider_problem`)."""
    customer: Customer = target
    if customer.owner_id is None:
        return deny("already_in_pool")
    if customer.owner_id == actor.id and on_notice(actor):
        return deny("owner_departing", _l("You have given notice: your customers go to their new owners through "
                                          "your departure's handover."))
    if not (deciding := decider_problem(actor)):
        return deciding
    if customer.owner_id == actor.id or Role.APPROVER in actor.role_set or manages(actor, customer.owner):
        return allow()
    return deny("not_owner_or_manager")
