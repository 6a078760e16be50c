"""Which refusals are slips: about what was typed, not about who, where or what one may reach.

A slip is a reason too short, no place, a date in the future, a note that says nothing: the person corrects it
at once, the form shows it beside its field, and it never counts against anyone (the histories an approver and a
custodian weigh, the early warning's probing rule). Every other refusal is about reach (a person, a place, a
file, a quota, a state) and counts. The codes are the policy's, so the one list of them is the policy's too, and
every use derives from it (`services.loans.counted_refusals`, `services.loan_context.act`, the pages that show a
refused form again): before, three lists disagreed, and a departure form's slip counted toward probing while
its page treated it as a slip.

Codes that speak of input but are left out on purpose, each counted as a refusal of reach, are in
`NOT_SLIPS` with the reason: a decision written down, so a new code of the kind is decided, not forgotten.

`tests/policy/test_slips.py` holds the list to the policy: every code here is one the policy words, and every
code its input rules answer is here, or in `NOT_SLIPS`.
"""

from __future__ import annotations

# By what was typed; each a refusal the policy words (`message_for`).
SLIPS: frozenset[str] = frozenset({
    # A stated purpose, a revocation's or a waiver's reason, a handover note (`loans.reason_problem`).
    "reason_too_short", "reason_not_meaningful", "reason_copies_category",
    # The kind of need: one not on the list, or none from someone on notice who must name one.
    "invalid_category", "category_required",
    # Where the person will read or reveal (`loans.place_missing`).
    "place_required",
    # A loan's days, an extension's views, a person's quota: numbers out of their range.
    "days_invalid", "days_too_long", "extra_views_invalid", "quota_invalid",
    # A rejection without a comment; an alert resolved without a note.
    "comment_required", "note_required",
    # A handover contact dated in the future (or not at all) or before the notice was given.
    "contact_date_future", "contact_before_notice",
    # A look-up too short to search (refused before anything is spent).
    "query_too_short",
})


def is_slip(code: str | None) -> bool:
    """Whether a refusal with `code` is a slip in what was typed (see the module docstring); a refusal with no
    code is not."""
    return code in SLIPS


# Refusals that name a step the person has yet to take elsewhere before the form can go through (a contact
# with the customer's main contact logged in its contact log): not slips, they count like any refusal of
# reach, but the form they refuse is the way on once the step is taken, so it is shown again with what was
# typed and the way to that step, not replaced by a page of its own that loses it.
STEPS_FIRST: frozenset[str] = frozenset({"contact_not_logged"})


def shows_form_again(code: str | None) -> bool:
    """Whether a page answers a refusal with `code` by showing its form again, as typed, with the reason: a
    slip (`is_slip`), or a step to take elsewhere first (`STEPS_FIRST`). Any other refusal stands on a page
    of its own: there is nothing in the form to correct."""
    return is_slip(code) or code in STEPS_FIRST


# Codes that look like refusals of input, and why each still counts against its actor. Nothing decides with this
# map; it records the decision for the reader and for the test that keeps the two apart.
NOT_SLIPS: dict[str, str] = {
    "download_not_allowed": "the pages never offer a download the grade forbids: asking for one is an attempt to "
                            "take out a file meant to stay",
    "invalid_grade": "the pages offer only the three grades and the API's schema bounds it: only a crafted "
                     "request meets it",
    "invalid_kind": "the pages offer only a loan or an extension and the API's schema bounds it: only a crafted "
                    "request meets it",
    "invalid_custodian": "a name of a person is about who, not what was typed",
    "quota_unknown_person": "a name of a person is about who; misses are how accounts are mapped, as the "
                            "look-ups count theirs",
    "invalid_state": "the loan's state, not what was typed",
    "agreement_required": "the person's standing, not what was typed",
    "second_factor_required": "the person's standing, not what was typed",
    "bad_credentials": "a guess at a secret, which the sign-in throttle counts",
    "bad_second_factor": "a guess at a secret, which the sign-in throttle counts",
    "code_reused": "a replayed secret, which the sign-in throttle counts",
    "weak_password": "a secret's rule the account service answers, never recorded as a refusal of access",
    "common_password": "a secret's rule the account service answers, never recorded as a refusal of access",
    "password_contains_username": "a secret's rule the account service answers, never recorded as a refusal of "
                                  "access",
}
