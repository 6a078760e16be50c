"""Who has given notice: the one test every rule about people on notice asks.

On notice, access tightens: a leaver gains no customer (`policy.customers`), edits no record
(`policy.records`), sees no queue of other people's loans (`policy.visibility`) and takes no decision
that gives anyone else access (`decider_problem`): no loan approved or released, no custodian designated,
no quota set (`policy.loans`), no suspension lifted and no alert resolved, no handover confirmation
waived, no notice withdrawn and no last day moved (`policy.departures`), no customer given to anyone,
from the pool or otherwise (`policy.pool`, `policy.customers`), and, as an administrator, no role, manager,
account, address or account restoring for anyone (`policy.roles`, `policy.accounts`). It lives apart so
that the visibility rules, which the others build on, can ask it too.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from vault.models import User, UserStatus
from vault.policy.core import MESSAGES, Decision, allow, deny

MESSAGES.update({
    "decider_departing": _l("People on notice no longer approve, release or widen anyone's access; a "
                            "colleague who is not leaving does it."),
})


def on_notice(person: User | None) -> bool:
    """Whether `person` has given notice: they gain no customer until they leave (or withdraw the notice),
    so what they reach cannot grow while they are on their way out."""
    return person is not None and person.status == UserStatus.DEPARTING


def decider_problem(actor: User) -> Decision:
    """Whether `actor` may still take a decision that gives someone else access: never on notice, when a
    leaver could let an accomplice in on the way out. Only the acts that widen access ask this; those that
    only take access away (a rejection, a revocation, an acknowledged alert) stay open to them."""
    return deny("decider_departing") if on_notice(actor) else allow()
