"""In-process listeners for domain events, so early-warning rules can watch views and refusals
without the view and loan services knowing about them.

Listeners run inside the caller's transaction (their alerts commit with the act they are about) and
must not do slow I/O: anything external (a webhook) is handed to a background sender.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

Listener = Callable[..., None]
_listeners: dict[str, list[Listener]] = defaultdict(list)

# Event names: "view.opened" (session, rt, view, facts, own_unit),
# "access.denied" (session, rt, user, action, code, ctx),
# "loan.requested" (session, rt, loan), "quota.exhausted" (session, rt, user, document),
# "loan.decided" (session, rt, loan, actor), "customer.handed_over" (session, rt, item, to_user),
# "departure.step" (session, rt, departure, step, actor), "alert.announced" (session, rt, alert, user, announcement),
# "upload.drawing_misbehaved" (session, rt, user, document, version): the drawing of an upload's pages sent
# what a drawing never sends (`user` uploaded it),
# "decider.lost" (session, rt, user, roles): `user`, who held `roles`, may no longer act in the queues (notice
# given, account disabled, a role taken away, sight of the customers suspended),
# "customer.owner_changed" (session, rt, customer, previous_owner_id, new_owner, cause, actor, ctx): emitted by
# every change of a customer's owner (`cause`: "assignment", "handover", and whatever else moves ownership), so
# what follows any change (the letter to the customer) is written once,
# "account.password_link" (session, rt, user, link_path, hours, actor, queued): an administrator's password link
# for an account in use, to be mailed to its owner; the listener adds the ids of the mail it queued to `queued`.


def listen(event: str) -> Callable[[Listener], Listener]:
    def register(func: Listener) -> Listener:
        if func not in _listeners[event]:
            _listeners[event].append(func)
        return func

    return register


def emit(event: str, **kwargs: Any) -> None:
    for func in list(_listeners[event]):
        func(**kwargs)
