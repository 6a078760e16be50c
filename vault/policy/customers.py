"""Rules on customers and documents as objects: who sees them, who decides who works a customer (their
content: see loans and views)."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from vault.config.policy_file import LookupSettings
from vault.core.actions import Action
from vault.models import Customer, Role, User
from vault.policy.core import MESSAGES, Decision, allow, deny, object_rule
from vault.policy.notice import decider_problem, on_notice
from vault.policy.visibility import customer_visible, document_visible


@object_rule(Action.CUSTOMER_READ)
def _read_customer(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """Whether `actor` sees this customer: the same rule as `visible_customers`, for one row."""
    return customer_visible(actor, target)


@object_rule(Action.DOCUMENT_READ)
def _read_document(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """Whether `actor` sees this document's metadata: the same rule as `visible_documents`."""
    return document_visible(actor, target)


MAX_CO_OWNERS = 3

MESSAGES.update({
    "person_departing": _l("People on notice take on no customers: not as owner or co-owner, not from the pool."),
})


def new_owner_problem(owner: User | None) -> Decision:
    """Whether a new customer may be given `owner` (its creator by default): never someone on notice, who
    would gain a customer outside their handover, left to them after their last day."""
    return deny("person_departing") if on_notice(owner) else allow()


MESSAGES.update({
    "lookup_cap_reached": _l("You have no look-ups left today."),
})


def lookup_cap(actor: User, lookups: LookupSettings) -> int:
    """How many look-ups by name `actor` may make in a local day: `per_day`, and on notice `notice_per_day`
    (never more than `per_day`: a leaver is the person the limit exists for). 0: none at all."""
    if on_notice(actor):
        return min(lookups.per_day, lookups.notice_per_day)
    return lookups.per_day


def lookup_spent(spent_today: int | None) -> Decision:
    """Whether a look-up may go ahead, given the day's count after spending one unit of the cap (None: the
    database found none left to spend). Refused with `lookup_cap_reached`: a sweep of the directory five
    names at a time is stopped here, whether the queries hit or miss."""
    return deny("lookup_cap_reached") if spent_today is None else allow()


def manages(actor: User, person: User | None) -> bool:
    """Whether `actor` is above `person` in the chain of managers (a cycle stops the walk)."""
    seen: set[int] = set()
    boss = person.manager if person is not None else None
    while boss is not None and boss.id not in seen:
        if boss.id == actor.id:
            return True
        seen.add(boss.id)
        boss = boss.manager
    return False


@object_rule(Action.CUSTOMER_ASSIGN)
def _assign(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """`target` is the customer; context: `gaining` (the person given the customer, as owner or co-owner,
    or None when someone is taken off it), `co_owners` (how many it would have).

    Who works a customer is decided above the people working it: the owner's manager (anywhere up the
    chain) or an approver; never the person who gains it, so nobody widens their own book, nor someone
    they manage when they do not see the customer already (they would see it through that person), and
    never for someone on notice, whose book only shrinks. Nobody on notice decides who works a customer
    (`decider_problem`), not even to take someone off it: the leaver's successor in the role does.
    """
    customer: Customer = target
    gaining: User | None = context.get("gaining")
    if gaining is not None and gaining.id == actor.id:
        return deny("own_gain")
    if not (deciding := decider_problem(actor)):
        return deciding
    if on_notice(gaining):
        return deny("person_departing")
    if context.get("co_owners", 0) > MAX_CO_OWNERS:
        return deny("too_many_co_owners")
    if gaining is not None and manages(actor, gaining) and not customer_visible(actor, customer):
        # Through the person gaining it the actor would see the customer too: their own reach, widened.
        return deny("own_reach", _l("Giving this customer to someone you manage would let you see it too: another "
                                    "approver decides this one."))
    if Role.APPROVER in actor.role_set or manages(actor, customer.owner):
        return allow()
    return deny("not_owners_manager")
