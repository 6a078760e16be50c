"""Rules on people's accounts as objects: nobody widens, or quietly narrows, their own standing."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from vault.core.actions import Action
from vault.models import User
from vault.policy.core import Decision, allow, deny, object_rule
from vault.policy.notice import decider_problem

# What an administrator may not do to their own account, and the refusal each gets.
_NOT_ON_ONESELF = {
    "remove_role": ("separation_of_duties", "Nobody may change their own roles."),
    "manager": ("separation_of_duties", "Nobody may name their own manager."),
    "disable": ("self_disable", None),
    "reset_second_factor": ("separation_of_duties", "Nobody may reset their own second factor."),
    "password_link": ("separation_of_duties", "Change your own password from My account."),
}
# Restoring access takes two people when one would hold both halves of it: a password link and an empty
# second factor, before the person has signed in again (see `_manage`).
_SECOND_HALF = {
    "password_link": _l("You reset this person's second factor: another administrator gives them a password "
                        "link (or the operator, with vault user password-link)."),
    "reset_second_factor": _l("You gave this person a password link: another administrator resets their second "
                              "factor (or the operator, with vault user reset-2fa)."),
}
# The mail address is not reach: everyone sets their own on their account page, so an admin may set theirs too.
CHANGES = frozenset({"create", "email", "enable", *_NOT_ON_ONESELF})
# What an administrator on notice still does to others' accounts: only what takes access away.
_NARROWING = frozenset({"disable", "remove_role"})


@object_rule(Action.USER_MANAGE)
def _manage(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """`target` is the account; `context['change']` one of `CHANGES`.

    Removing one's own role, disabling oneself or resetting one's own second factor would let one
    person step around the checks that bind them (a second factor they dislike, a role conflict they
    created): a second administrator does it.

    A password link and a second-factor reset of someone else are the two halves of their account: whoever
    holds a link to an account with no authenticator sets the password, enrols their own and signs in as
    that person (a second admin approving one's role requests, an auditor, an approver). So
    `context['restored_by']`, the ids (None: the operator) of those who made the other half since the
    person last signed in, must not include the actor: another administrator makes it.

    An administrator on notice only takes access away (`_NARROWING`): creating, enabling, naming a manager
    (who then sees the person's customers), changing an address a password link goes to, or either half of
    an account's restoring would let a leaver open a way in for an accomplice (`decider_problem`).
    """
    change = context.get("change")
    if change not in CHANGES:
        return deny("not_permitted", _l("Unknown change to an account."))
    user: User = target
    if user.id == actor.id and change in _NOT_ON_ONESELF:
        code, message = _NOT_ON_ONESELF[change]
        return deny(code, message)
    if change not in _NARROWING and not (deciding := decider_problem(actor)):
        return deciding
    if change in _SECOND_HALF and actor.id in context.get("restored_by", ()):
        return deny("separation_of_duties", _SECOND_HALF[change])
    return allow()
