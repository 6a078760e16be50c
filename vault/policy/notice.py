"""Who has given notice: the one test every rule about people on notice asks.

On notice, access tightens: a leaver gains no customer (`policy.customers`), edits no record
(`policy.records`), sees no queue of other people's loans and, as a manager, no customer of their team but by
a look-up (`policy.visibility`), and takes no decision that gives anyone else access (`decider_problem`): no
loan approved or released, no custodian designated, no quota set (`policy.loans`), no handover confirmation
waived, no notice withdrawn and no last day moved (`policy.departures`), no customer given to anyone, from the
pool or otherwise (`policy.pool`, `policy.customers`), no departure report or departure read, which name a
colleague's customers (`policy.departures`), no audit log read, which names them too (`policy.audit_log`), no
rotation decided, skipped or listed (`policy.rotation`), no alert read, acknowledged or resolved and no
suspension lifted (`policy.departures`), and, as an administrator, no role, manager, account, address or
account restoring for anyone (`policy.roles`, `policy.accounts`). Nor does a colleague who is not leaving
widen a leaver's reach for them: no view quota raised, theirs or (for them) everyone's (`policy.loans`,
`view_quota`), no manager named at or below them (`reach_through_manager`). It lives apart so that the
visibility rules, which the others build on, can ask it too.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from vault.models import User, UserStatus
from vault.policy.core import MESSAGES, Decision, allow, deny

MESSAGES.update({
    "decider_departing": _l("People on notice no longer approve, release or widen anyone's access; a "
                            "colleague who is not leaving does it."),
    "manager_departing": _l("This manager is on notice, or reports to someone who is: they would see the "
                            "person's customers on their way out. Name a manager who is not leaving."),
})


def on_notice(person: User | None) -> bool:
    """Whether `person` has given notice: they gain no customer until they leave (or withdraw the notice),
    so what they reach cannot grow while they are on their way out."""
    return person is not None and person.status == UserStatus.DEPARTING


def decider_problem(actor: User) -> Decision:
    """Whether `actor` may still take a decision that gives someone else access: never on notice, when a
    leaver could let an accomplice in on the way out. Only the acts that widen access ask this; those that
    only take access away (a rejection, a revocation) stay open to them."""
    return deny("decider_departing") if on_notice(actor) else allow()


def departing_above(manager: User | None) -> User | None:
    """The first person on notice among `manager` and everyone above them in the chain of managers (a cycle
    stops the walk), or None.

    A manager sees the customers of everyone below them, down the whole chain (`policy.visibility`): naming
    someone as a person's manager opens that person's customers to the manager and to every manager above.
    Were one of them on notice, they would gain a team's customers in their last days, which no handover
    lists and no successor takes back, so such a manager is not named (`manager_departing`)."""
    seen: set[int] = set()
    while manager is not None and manager.id not in seen:
        if on_notice(manager):
            return manager
        seen.add(manager.id)
        manager = manager.manager
    return None


def reach_through_manager(manager: User | None) -> Decision:
    """Whether `manager` may be named anyone's manager now: not while they, or anyone above them, is on
    notice (`departing_above`)."""
    return deny("manager_departing") if departing_above(manager) is not None else allow()
