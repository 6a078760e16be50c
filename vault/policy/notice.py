"""Who has given notice: the one test every rule about people on notice asks.

On notice, access tightens: a leaver gains no customer (`policy.customers`), edits no record
(`policy.records`), decides over nobody else's access (`policy.loans`) and sees no queue of other
people's loans (`policy.visibility`). It lives apart so that the visibility rules, which the others
build on, can ask it too.
"""

from __future__ import annotations

from vault.models import User, UserStatus


def on_notice(person: User | None) -> bool:
    """Whether `person` has given notice: they gain no customer until they leave (or withdraw the notice),
    so what they reach cannot grow while they are on their way out."""
    return person is not None and person.status == UserStatus.DEPARTING
