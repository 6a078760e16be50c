"""Rules on people's accounts as objects: nobody widens, or quietly narrows, their own standing."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from vault.core.actions import Action
from vault.models import User
from vault.policy.core import Decision, allow, deny, object_rule
from vault.policy.notice import decider_problem, reach_through_manager

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
# An account in use gets its password link in its owner's mailbox, never in an administrator's hands; the
# address it goes to is the other half, so whoever set the current address does not also send the link
# (`_link_to_established`).
_ADDRESS_HALF = _l("You set this person's current e-mail address: another administrator sends them a password "
                   "link (or the operator, with vault user password-link).")
# A link that goes by mail only and cannot (`_mailed_link`), by (account in use, no address rather than no mail).
_UNMAILABLE = {
    (False, True): ("no_email_address", _l(
        "Only the administrator who created this account is shown its password link; from anyone else it goes "
        "to the owner's mailbox, and there is no e-mail address on record. The operator gives one on the server: "
        "vault user password-link %(username)s.")),
    (False, False): ("mail_not_configured", _l(
        "Only the administrator who created this account is shown its password link; from anyone else it goes "
        "to the owner's mailbox, and this vault sends no mail (VAULT_SMTP_URL, VAULT_MAIL_FROM and "
        "VAULT_BASE_URL). The operator gives one on the server: vault user password-link %(username)s.")),
    (True, True): ("no_email_address", _l(
        "This account is in use (its owner has signed in, or it has an API token), so its password link goes "
        "to the owner's mailbox, and there is no e-mail address on record. The operator gives one on the "
        "server: vault user password-link %(username)s.")),
    (True, False): ("mail_not_configured", _l(
        "This account is in use (its owner has signed in, or it has an API token), so its password link goes "
        "to the owner's mailbox, and this vault sends no mail (VAULT_SMTP_URL, VAULT_MAIL_FROM and "
        "VAULT_BASE_URL). The operator gives one on the server: vault user password-link %(username)s.")),
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

    A password link for an account in use (`context['established']`: its owner signed in, it holds an API
    token, or its password was chosen, by the operator or by its owner through a link) would let the
    administrator who sees it sign in as that person, so it goes by mail to the address
    on record, and only when it can (`context['mail']`: "ready", "not_configured", "no_address"; else only the
    operator gives one, on the server). The address is then the other half: `context['addressed_by']`, who
    set the current address once the account was in use (None: the operator), must not include the actor;
    the person's signing in since does not lift it, since it confirms nothing about the address. A brand-new
    account's link is shown only to the administrator who created it (`context['created_by']`), who hands it
    over; from anyone else it is mailed under the same rules, except that whoever set the address at all holds
    it (`link_by_mail`). The creator then holds the account, so the roles they give it wait for a second
    administrator (`policy.roles.needs_second_person`).

    An administrator on notice only takes access away (`_NARROWING`): creating, enabling, naming a manager
    (who then sees the person's customers), changing an address a password link goes to, or either half of
    an account's restoring would let a leaver open a way in for an accomplice (`decider_problem`). Nor is
    anyone given a manager (`context['manager']`, the one named) who is on notice or below someone who is:
    the leaver would see the person's customers through them (`reach_through_manager`).
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
    if change == "manager" and not (reach := reach_through_manager(context.get("manager"))):
        return reach
    if change in _SECOND_HALF and actor.id in context.get("restored_by", ()):
        return deny("separation_of_duties", _SECOND_HALF[change])
    if change == "password_link" and link_by_mail(actor, context.get("established", False),
                                                   context.get("created_by")):
        return _mailed_link(actor, user, context)
    return allow()


def _mailed_link(actor: User, user: User, context: dict[str, Any]) -> Decision:
    """An administrator's password link that goes by mail only (`link_by_mail`), and not from the one who
    changed the address it goes to (see `_manage`)."""
    mail = context.get("mail")
    if mail == "ready":
        # Asked only when a mail can go: where none can, another administrator could not send one either.
        if actor.id in context.get("addressed_by", ()):
            return deny("separation_of_duties", _ADDRESS_HALF)
        return allow()
    code, message = _UNMAILABLE[(bool(context.get("established")), mail == "no_address")]
    return deny(code, message % {"username": user.username})


def link_by_mail(actor: User | None, established: bool, created_by: int | None) -> bool:
    """Whether a password link goes to its owner's mailbox rather than to whoever asked for it.

    The operator's link is printed on the server, which holds everything anyway. An administrator's goes by
    mail for an account in use, and for a brand-new account someone else created: shown to a second
    administrator, it would let them set a password and sign in as an account waiting for its owner (given
    roles already, perhaps), and the owner's own link would merely stop working. Only the creator, who hands
    the account over and whose role grants to it wait for a second administrator
    (`policy.roles.needs_second_person`), is shown it."""
    return actor is not None and (established or created_by != actor.id)
