"""What a refusal page says besides "no": a heading in plain words and the next step the person can take
(ask for a loan, ask for more views, search, sign in again), chosen by the refusal's reason code.

A step is offered only when the person's roles allow it (a borrower is offered a loan request, an
auditor is not), and only with what the refused request named (a document id for a loan request). The
reason code itself stays on the page in small print, for the help desk.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import url_for
from flask_babel import lazy_gettext as _l

from vault import policy
from vault.core.actions import Action
from vault.models import User


@dataclass(frozen=True)
class NextStep:
    label: object  # a lazy translated string
    url: str
    primary: bool = False


# The page's heading by reason code; anything else is "This was not allowed".
TITLES: dict[str, object] = {
    "not_found": _l("Not found, or not yours to see"),
    "no_active_loan": _l("You need a loan to open this file"),
    "compiler_needs_loan": _l("You need a loan to open this file"),
    "loan_expired": _l("Your loan has ended"),
    "quota_exhausted": _l("You have used all your views of this file"),
    "place_not_trusted": _l("This file opens only from a trusted place"),
    "access_suspended": _l("Your access to customer records is paused"),
    "not_permitted": _l("Your roles do not cover this"),
    "separation_of_duties": _l("Someone else has to do this"),
    "session_expired": _l("Please sign in again"),
    "not_authenticated": _l("Please sign in"),
    "download_not_allowed": _l("This file can be read, not downloaded"),
    "content_url_used": _l("This link was already used"),
    "content_url_expired": _l("This link has expired"),
    "view_window_closed": _l("This view has closed"),
    "customer_not_contacted": _l("A key customer says nobody has contacted them"),
    "mail_not_configured": _l("Only the operator can give this person a password link"),
    "no_email_address": _l("Only the operator can give this person a password link"),
    "lookup_cap_reached": _l("You have used all your look-ups for today"),
}

# Explanations added under the policy's own message, where it alone leaves the person guessing.
HINTS: dict[str, object] = {
    "not_found": _l("You see the customers you work and their files. To reach another customer, look it up by "
                    "name: the look-up is recorded."),
    "place_not_trusted": _l("Open it again from the company's network. If you must read it elsewhere, ask your "
                            "approver about it."),
    "access_suspended": _l("An early-warning alert paused it. An approver reviews the alert and lifts the pause."),
    "not_permitted": _l("If your work needs it, ask an administrator for the role."),
    "separation_of_duties": _l("No one may approve, release or check their own request or file."),
    "customer_not_contacted": _l("The departure's page shows which customer answered so. Once the new owner has "
                                 "reached them, an approver records that with a reason on the override page."),
    "lookup_cap_reached": _l("Each person has a few look-ups a day, fewer when on notice, and one that finds "
                             "nothing counts too. The customers you work are in your list and the search; for "
                             "another one, ask its account manager or your manager."),
}

# Where one reason code covers unlike acts, the hint for the act refused (by its action); the general hint above
# is for the rest. `separation_of_duties` is mostly about loans and files, whose hint would puzzle an
# administrator refused a password link, a second-factor reset or their own roles.
_ACCOUNT_DUTIES = _l("Accounts and roles take two people: nobody changes their own access or approves it, nor "
                     "gives both halves of someone else's way in. Another administrator does it, or the operator "
                     "on the server.")
ACTION_HINTS: dict[str, dict[str, object]] = {
    "separation_of_duties": {
        **{str(action): _ACCOUNT_DUTIES for action in (Action.USER_MANAGE, Action.ROLE_ASSIGN, Action.ROLE_APPROVE,
                                                       Action.MANAGER_APPROVE)},
        str(Action.DEPARTURE_OVERRIDE): _l("A confirmation is given by the person it names; another person with "
                                           "the right to waive it does so, with a reason."),
    },
}


def _document_step(endpoint: str, label: object, action: Action, primary: bool = True) -> Callable[..., Any]:
    def step(can: Callable[[Action], bool], args: Mapping[str, Any]) -> NextStep | None:
        document_id = args.get("document_id")
        if not isinstance(document_id, int) or not can(action):
            return None
        return NextStep(label, url_for(endpoint, document_id=document_id), primary)
    return step


def _step(endpoint: str, label: object, action: Action | None = None, primary: bool = True) -> Callable[..., Any]:
    def step(can: Callable[[Action], bool], _args: Mapping[str, Any]) -> NextStep | None:
        if action is not None and not can(action):
            return None
        return NextStep(label, url_for(endpoint), primary)
    return step


_REQUEST_LOAN = _document_step("loans.request_loan", _l("Request a loan of this file"), Action.LOAN_REQUEST)
_MORE_VIEWS = _document_step("loans.request_extension", _l("Ask for more views"), Action.LOAN_REQUEST)
_BACK_TO_FILE = _document_step("documents.show", _l("Back to the file"), Action.DOCUMENT_READ, primary=False)
_MY_LOANS = _step("loans.mine", _l("See your loans and requests"), Action.LOAN_READ, primary=False)
_SEARCH = _step("search.index", _l("Search the customers and files you may see"), Action.CUSTOMER_READ)
_LOOKUP = _step("customers.lookup", _l("Look up a customer by name"), Action.CUSTOMER_LOOKUP, primary=False)
_SIGN_IN = _step("auth.login", _l("Sign in"))


def _departure_step(endpoint: str, label: object, action: Action, primary: bool = True) -> Callable[..., Any]:
    def step(can: Callable[[Action], bool], args: Mapping[str, Any]) -> NextStep | None:
        departure_id = args.get("departure_id")
        if not isinstance(departure_id, int) or not can(action):
            return None
        return NextStep(label, url_for(endpoint, departure_id=departure_id), primary)
    return step


_OVERRIDE = _departure_step("departures.override", _l("Waive it with a reason"), Action.DEPARTURE_OVERRIDE)
_DEPARTURE = _departure_step("departures.show", _l("Back to the departure"), Action.DEPARTURE_MANAGE, primary=False)

STEPS: dict[str, tuple[Callable[..., Any], ...]] = {
    "not_found": (_SEARCH, _LOOKUP),
    "no_active_loan": (_REQUEST_LOAN, _MY_LOANS),
    "compiler_needs_loan": (_REQUEST_LOAN, _MY_LOANS),
    "loan_expired": (_REQUEST_LOAN, _MY_LOANS),
    "quota_exhausted": (_MORE_VIEWS, _BACK_TO_FILE),
    "loan_already_open": (_MY_LOANS,),
    "extension_already_open": (_MY_LOANS,),
    "place_not_trusted": (_BACK_TO_FILE,),
    "download_not_allowed": (_BACK_TO_FILE,),
    "content_url_used": (_BACK_TO_FILE,),
    "content_url_expired": (_BACK_TO_FILE,),
    "view_window_closed": (_BACK_TO_FILE,),
    "session_expired": (_SIGN_IN,),
    "not_authenticated": (_SIGN_IN,),
    "customer_not_contacted": (_OVERRIDE, _DEPARTURE),
    "lookup_cap_reached": (_SEARCH,),
}


def title_for(code: str) -> object:
    return TITLES.get(code, _l("This was not allowed"))


def hint_for(code: str, action: object = None) -> object | None:
    """The explanation under a refusal with `code` of `action` (an `Action` or its name; None when unknown)."""
    return ACTION_HINTS.get(code, {}).get(str(action)) or HINTS.get(code)


def next_steps(code: str, user: User | None, view_args: Mapping[str, Any] | None) -> list[NextStep]:
    """The steps open to `user` after a refusal with `code` of a request that named `view_args`."""
    if user is None:
        signed_out = code in {"session_expired", "not_authenticated"}
        return [NextStep(_l("Sign in"), url_for("auth.login"), True)] if signed_out else []

    def can(action: Action) -> bool:
        return bool(policy.authorize(user, action))

    found = (make(can, view_args or {}) for make in STEPS.get(code, ()))
    return [step for step in found if step is not None]
