"""Rules on opening a document's content: loan, place, download, purpose, and the quota's last word.

The quota itself is enforced by an atomic counter in the database (see `services.views`); the policy
only words the refusal, so that "quota exhausted" reads the same wherever it is met.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_ngettext

from vault.config.policy_file import GradeRule
from vault.core.actions import Action
from vault.models import Category, Document, Loan, LoanStatus, User, UserStatus
from vault.policy.core import MESSAGES, Decision, allow, deny, object_rule
from vault.policy.loans import place_missing, reason_problem

MESSAGES.update({
    "quota_exhausted": _l("You have used all your views of this document."),
    "place_not_trusted": _l("Confidential files open only from a trusted place (a company network)."),
    "download_not_allowed": _l("Files of this grade may be read but not downloaded."),
    "no_content": _l("This document has no file yet."),
    "content_url_used": _l("This link has already been used. Open the document again for a new one."),
    "access_suspended": _l("Your access to documents is suspended after an alert; an approver must lift it."),
    "category_required": _l("People on notice say which kind of need a file answers: choose a category."),
    "notice_daily_cap": _l("People on notice may open only a limited number of files a day; try again tomorrow."),
    "content_url_expired": _l("This link expired before it was used; the view was given back to you."),
    "view_window_closed": _l("This view has closed. Open the document again to read it."),
    "page_not_found": _l("This document has no such page."),
    "no_preview": _l("This file has no preview, so it cannot be read in the viewer."),
    "no_stamped_copy": _l("This file has no preview, so no stamped copy of it can be made for download."),
})


def quota_exhausted(limit: int) -> Decision:
    """The refusal for a spent quota, naming the number so the borrower knows what they had."""
    if limit == 1:
        return deny("quota_exhausted", _l("You have used your only view of this document."))
    return deny("quota_exhausted", lazy_ngettext("You have used your %(num)d view of this document.",
                                                 "You have used your %(num)d views of this document.", limit))


def on_notice_without_loan(actor: User, rule: GradeRule) -> bool:
    """Whether `actor` is on notice and the grade needs no loan: such files are still read, for a stated kind
    of need (a category) and only so many a day (someone leaving once pulled every grade-1 file in one
    evening)."""
    return actor.status == UserStatus.DEPARTING and not rule.loan_required


def open_input_problems(actor: User, rule: GradeRule, context: dict[str, Any]) -> dict[str, Decision]:
    """Every rule on what was typed or chosen to open a view that the request breaks, by field (category,
    download, reason, place), each with its refusal; empty when the input is acceptable.

    The input rules live here once: the object rule refuses with the first of them (interleaved with the
    rules on who and where the person is exactly as before, so the API answers the same code), and a page
    shows them all at once, each beside its field, so that two slips take one correction, not two round
    trips. Each field is judged on its own.

    Args:
        actor: who opens (someone on notice names a category for a file needing no loan).
        rule: the document's grade rule (whether it may be downloaded).
        context: as the object rule reads it: category, download, reason, place (the declared one).
    """
    problems: dict[str, Decision] = {}
    category = context.get("category")
    if on_notice_without_loan(actor, rule) and category not in {c.value for c in Category}:
        problems["category"] = deny("category_required")
    elif category and category not in {c.value for c in Category}:
        # Nobody else must give one, but a kind of need that is not on the list is not recorded as one.
        problems["category"] = deny("invalid_category")
    if context.get("download") and not rule.download:
        problems["download"] = deny("download_not_allowed")
    if (problem := reason_problem(context.get("reason"))) is not None:
        problems["reason"] = deny(problem)
    if place_missing(context.get("place")):
        problems["place"] = deny("place_required")
    return problems


def _open(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """`target` is the document; context: rule (its grade's), loan (the actor's active loan or None),
    loan_expired (their latest loan of it ran out), named_place (the trusted place the request comes
    from, or None), download, reason, place (the declared one), suspended (an early-warning alert has
    suspended the actor's access), notice_cap and notice_opened_today (for someone on notice: the daily
    cap on files needing no loan, and how many they opened today), category (the kind of need, which
    someone on notice must give for those files)."""
    document: Document = target
    rule: GradeRule = context["rule"]
    if context.get("suspended"):
        return deny("access_suspended")
    loan: Loan | None = context.get("loan")
    is_compiler = document.compiler_id == actor.id
    if rule.loan_required or is_compiler:
        if loan is None or loan.status != LoanStatus.ACTIVE or loan.borrower_id != actor.id:
            if context.get("loan_expired"):
                return deny("loan_expired")
            if is_compiler and not rule.loan_required:
                return deny("no_active_loan", MESSAGES["compiler_needs_loan"])
            return deny("no_active_loan")
        if actor.id in loan.approver_ids or actor.id == loan.released_by_id:
            return deny("separation_of_duties")
    problems = open_input_problems(actor, rule, context)
    if on_notice_without_loan(actor, rule):
        if "category" in problems:
            return problems["category"]
        if context.get("notice_opened_today", 0) >= context.get("notice_cap", 0):
            return deny("notice_daily_cap")
    if rule.trusted_places_only and not context.get("named_place"):
        return deny("place_not_trusted")
    # The first input problem, in field order: one reason code, the same wherever the opening comes from.
    return next(iter(problems.values()), allow())


def delivery_place(rule: GradeRule, named_place: str | None) -> Decision:
    """The place rule again when the bytes are fetched: a content URL may travel, the grade's rule does not."""
    if rule.trusted_places_only and not named_place:
        return deny("place_not_trusted")
    return allow()


object_rule(Action.DOCUMENT_VIEW)(_open)
object_rule(Action.DOCUMENT_DOWNLOAD)(_open)
