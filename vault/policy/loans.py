"""Rules on loans: who may ask for one, decide it, release it, end it, and what a request must say.

Separation of duties, as applied here: on every loan the borrower, each approver and the releasing
custodian are different people, and the document's compiler never approves or releases a loan of
their own file. The compiler may *borrow* their own file, but only through a loan that others approve
and under the same quota as anyone else, even at grade 1 where nobody else needs a loan: after upload
the compiler reads the file like any borrower, never as its author.

Nobody on notice decides over anyone else's access: they approve, release, designate a custodian and
set quotas no more (`decider_departing`); rejecting a request and revoking a loan, which only take
access away, stay theirs where they still see the loan (their queues are suspended: `policy.visibility`).
Decisions taken before the notice stand.

Input rules (reason, category, place, days) are decided here too, not in forms, so that the pages, the
API and the command line refuse the same requests with the same reason codes and the same audit trace.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l

from vault.config.policy_file import GradeRule
from vault.core.actions import Action
from vault.models import Category, Document, Loan, LoanKind, LoanStatus, Role, User, UserStatus
from vault.policy.core import MESSAGES, Decision, allow, deny, object_rule
from vault.policy.notice import decider_problem, on_notice
from vault.policy.visibility import queues_suspended

MIN_REASON_CHARS = 10
# Grade 1 has no loan length of its own; a compiler's loan of their grade-1 file still ends.
DEFAULT_MAX_DAYS = 30
MAX_EXTRA_VIEWS = 20
MAX_QUOTA = 1000

# Plain English; pages translate them. A reason that only repeats one of these says nothing.
CATEGORY_LABELS: dict[Category, str] = {
    Category.VISIT_PREPARATION: "Visit preparation",
    Category.CONTRACT_RENEWAL: "Contract renewal",
    Category.COMPLAINT: "Complaint",
    Category.HANDOVER: "Handover",
    Category.QUOTATION: "Quotation",
    Category.OTHER: "Other",
}


MESSAGES.update({
    "no_active_loan": _l("You need an active, approved loan to open this document."),
    "compiler_needs_loan": _l("The compiler of a file reads it only through an approved loan, like any borrower."),
    "loan_expired": _l("Your loan of this document has expired."),
    "loan_not_needed": _l("Files of this grade need no loan: open them directly."),
    "loan_already_open": _l("You already have an open loan or request for this document."),
    "extension_already_open": _l("You already asked for more views of this document; wait for the decision."),
    "quota_not_exhausted": _l("You still have views left; ask for more once they are used up."),
    "extra_views_invalid": _l("Ask for between 1 and %(most)d extra views.", most=MAX_EXTRA_VIEWS),
    "departing_refused": _l("People on notice cannot request loans of important or confidential files."),
    "invalid_state": _l("The loan is not in a state that allows this."),
    "invalid_kind": _l("A request is either a loan or an extension."),
    "not_borrower": _l("Only the borrower or a custodian may return a loan."),
    "borrower_inactive": _l("The borrower can no longer sign in."),
    "not_your_request": _l("Only the person who asked for it withdraws a request."),
    "already_decided_withdraw": _l("Someone has already approved this request: it can no longer be withdrawn."),
    "already_decided": _l("You have already decided on this request."),
    "comment_required": _l("Say why you reject the request."),
    "reason_too_short": _l("Give a reason of at least %(least)d characters.", least=MIN_REASON_CHARS),
    "reason_not_meaningful": _l("The reason must be written in words, not only punctuation."),
    "reason_copies_category": _l("Say why in your own words: a category name is not a reason."),
    "invalid_category": _l("Choose one of the listed categories."),
    "place_required": _l("Say where you will read the document."),
    "days_invalid": _l("A loan lasts at least one day."),
    "days_too_long": _l("This loan is longer than the grade allows."),
    "quota_own_reach": _l("Nobody sets the view quota of a document they may borrow themselves."),
    "quota_document_wide": _l("Only an approver changes a document's view quota for everyone; set it for one person."),
    "quota_unknown_person": _l("There is no such person."),
    "not_the_custodian": _l("Only the file's custodian, or the custodian an approver designated for this release, "
                         "releases it."),
    "approvals_missing": _l("The borrower has given notice since this loan was approved: it needs the approvals a "
                            "request made now needs. Revoke it; a new request will be decided on the notice's rules."),
    "invalid_custodian": _l("Name an active custodian who has no other part in this loan."),
    "quota_invalid": _l("A view quota is a whole number from 0 to %(most)d, or empty for the grade's default.",
                        most=MAX_QUOTA),
    "quota_person_departing": _l("This person is on notice: their view quota may be lowered, not raised. More "
                                 "views are asked for as an extension, which the notice's approvers decide."),
})


def custodian_acts(person: User | None) -> bool:
    """Whether a file's named custodian can release its loans: they sign in, hold the role and see the
    release queue (not on notice, not suspended). One who cannot would hold up every release of the file
    until an approver designates someone for each, so then any other eligible custodian releases."""
    return (person is not None and person.can_sign_in and Role.CUSTODIAN in person.role_set
            and not queues_suspended(person))


def _normal(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


_LABELS_NORMAL = {_normal(label) for label in CATEGORY_LABELS.values()} | {_normal(c.value) for c in Category}


def reason_problem(text: str | None) -> str | None:
    """The reason code that makes `text` unacceptable as a stated purpose, or None.

    The purpose is what a reviewer reads afterwards to judge whether an access was legitimate, so
    filler ("..........") and a repeated category name ("Complaint") are refused like an empty one.
    """
    stripped = (text or "").strip()
    if len(stripped) < MIN_REASON_CHARS:
        return "reason_too_short"
    if not any(ch.isalnum() for ch in stripped):
        return "reason_not_meaningful"
    if _normal(stripped) in _LABELS_NORMAL:
        return "reason_copies_category"
    return None



def place_missing(text: str | None) -> bool:
    """Whether `text` names no place: empty, spaces, or only marks with no letter or digit ("-", ".", a
    zero-width space). The declared place is what a reviewer later reads beside the address a view came
    from, and what the new-place warning compares, so a place nobody can read is no place."""
    return not any(ch.isalnum() for ch in text or "")


def max_days(rule: GradeRule) -> int:
    return rule.max_days if rule.max_days is not None else DEFAULT_MAX_DAYS


def approvals_needed(rule: GradeRule, borrower: User) -> int:
    """Distinct approvals a new request needs; fixed on the loan when it is made.

    Someone on notice is the person most likely to take customers along, so their requests for
    important and confidential files need one approver more than usual, and never fewer than two.
    """
    base = max(1, rule.approvals)
    if borrower.status == UserStatus.DEPARTING and rule.loan_required:
        return max(2, base + 1)
    return base


def approvals_due(rule: GradeRule, loan: Loan) -> int:
    """Approvals `loan` needs now: what was fixed when it was made, raised if the borrower has given
    notice since (a request filed the day before the notice must not get through on the old count)."""
    return max(loan.approvals_required, approvals_needed(rule, loan.borrower))


def request_input_problems(rule: GradeRule, ctx: dict[str, Any], kind: LoanKind) -> dict[str, Decision]:
    """Every input rule a loan or extension request breaks, by field (reason, category, place, days,
    extra_views), each with its refusal; empty when what was typed is acceptable.

    The rules on what a person types live here once: the object rule refuses with the first of them
    (so the API and the command line answer one reason code, in this order), and a page shows them all
    at once, each beside its field, so that two slips take one correction, not two round trips. Each
    field is judged on its own, so a field the page's form has already refused can simply be left out.

    Args:
        rule: the document's grade rule (its loan length).
        ctx: the request as typed: reason, category, place, days, extra_views, grade (for the wording).
        kind: a loan asks for days, an extension for extra views.
    """
    problems: dict[str, Decision] = {}
    if (problem := reason_problem(ctx.get("reason"))) is not None:
        problems["reason"] = deny(problem)
    if ctx.get("category") not in {c.value for c in Category}:
        problems["category"] = deny("invalid_category")
    if place_missing(ctx.get("place")):
        problems["place"] = deny("place_required")
    if kind == LoanKind.EXTENSION:
        extra = ctx.get("extra_views")
        if not isinstance(extra, int) or isinstance(extra, bool) or not 1 <= extra <= MAX_EXTRA_VIEWS:
            problems["extra_views"] = deny("extra_views_invalid")
        return problems
    days = ctx.get("days")
    limit = max_days(rule)
    if not isinstance(days, int) or isinstance(days, bool) or days < 1:
        problems["days"] = deny("days_invalid")
    elif days > limit:
        problems["days"] = deny("days_too_long", _l("Loans of grade-%(value)s files last at most %(limit)s days.",
                                                    value=ctx.get("grade", ""), limit=limit))
    return problems


@object_rule(Action.LOAN_REQUEST)
def _request(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """`target` is the document; context: rule, grade, kind, reason, category, place, days, extra_views,
    open_request (an open request of the same kind exists), remaining (views left), departure_mode."""
    document: Document = target
    rule: GradeRule = context["rule"]
    try:
        kind = LoanKind(context.get("kind", LoanKind.LOAN))
    except ValueError:
        return deny("invalid_kind")
    is_compiler = document.compiler_id == actor.id
    if kind == LoanKind.LOAN:
        if not rule.loan_required and not is_compiler:
            return deny("loan_not_needed")
        if context.get("open_request"):
            return deny("loan_already_open")
    else:
        if context.get("open_request"):
            return deny("extension_already_open")
        if context.get("remaining", 0) > 0:
            return deny("quota_not_exhausted")
    if actor.status == UserStatus.DEPARTING and rule.loan_required and context.get("departure_mode") == "refuse":
        return deny("departing_refused")
    # The first input problem, in field order: one reason code, the same wherever the request comes from.
    return next(iter(request_input_problems(rule, context, kind).values()), allow())


def _wrong_state(loan: Loan, message: str) -> Decision:
    """A refusal for a loan in the wrong state; an expired loan says so, being the usual case."""
    if loan.status == LoanStatus.EXPIRED:
        return deny("loan_expired", _l("This loan has expired."))
    return deny("invalid_state", message)


@object_rule(Action.LOAN_APPROVE)
def _approve(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """`target` is the loan; context: decided (ids of people who already decided it), comment, rule (the
    document's grade rule), departure_mode (`[departure] on_notice`)."""
    loan: Loan = target
    decided: Collection[int] = context.get("decided", ())
    if context.get("step") != "reject" and not (deciding := decider_problem(actor)):
        return deciding
    if loan.borrower_id == actor.id:
        return deny("separation_of_duties", _l("Nobody decides on their own request."))
    if loan.document.compiler_id == actor.id:
        return deny("separation_of_duties", _l("The compiler of a file cannot decide on loans of it."))
    if actor.id in decided:
        return deny("already_decided")
    if loan.status != LoanStatus.REQUESTED:
        return _wrong_state(loan, "Only a request waiting for a decision can be decided.")
    if not loan.borrower.can_sign_in:
        return deny("borrower_inactive")
    rule: GradeRule | None = context.get("rule")
    if (loan.borrower.status == UserStatus.DEPARTING and rule is not None and rule.loan_required
            and context.get("departure_mode") == "refuse" and context.get("step") != "reject"):
        # Filed before the notice, decided after it: the notice's rules apply to the decision.
        return deny("departing_refused")
    return allow()


@object_rule(Action.LOAN_REJECT)
def _reject(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    decision = _approve(actor, target, {**context, "step": "reject"})
    if decision and not (context.get("comment") or "").strip():
        return deny("comment_required")
    return decision


@object_rule(Action.LOAN_RELEASE)
def _release(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """`target` is the loan; context: rule (the document's grade rule), departure_mode (`[departure] on_notice`).

    The release is the last decision on the loan: a borrower who has given notice since it was approved gets
    it only on the notice's rules, as a decision on a request does (`_approve`). Only the file's named
    custodian (or the one an approver designated) releases, unless the named one cannot act
    (`custodian_acts`: on notice, suspended, gone): then any other custodian may, so that their notice
    does not hold up the file's releases."""
    loan: Loan = target
    if not (deciding := decider_problem(actor)):
        return deciding
    if loan.borrower_id == actor.id:
        return deny("separation_of_duties", _l("Nobody releases their own loan."))
    if loan.document.compiler_id == actor.id:
        return deny("separation_of_duties", _l("The compiler of a file cannot release loans of it."))
    if actor.id in loan.approver_ids:
        return deny("separation_of_duties", _l("You approved this loan: another custodian must release it."))
    if loan.status != LoanStatus.APPROVED or not loan.release_required or loan.kind != LoanKind.LOAN:
        return _wrong_state(loan, "Only an approved loan waiting for release can be released.")
    if not loan.borrower.can_sign_in:
        return deny("borrower_inactive")
    named = loan.document.custodian
    if named is not None and custodian_acts(named) and actor.id not in (named.id, loan.release_custodian_id):
        return deny("not_the_custodian")
    rule: GradeRule | None = context.get("rule")
    if loan.borrower.status == UserStatus.DEPARTING and rule is not None and rule.loan_required:
        if context.get("departure_mode") == "refuse":
            return deny("departing_refused")
        if len(loan.approver_ids) < approvals_due(rule, loan):
            return deny("approvals_missing")
    return allow()


@object_rule(Action.LOAN_DESIGNATE)
def _designate(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """`target` is the loan; context: custodian (the person named for this release, who must be able to
    release it: `custodian_acts`), reason."""
    loan: Loan = target
    custodian: User | None = context.get("custodian")
    if not (deciding := decider_problem(actor)):
        return deciding
    if actor.id in (loan.borrower_id, loan.document.compiler_id):
        return deny("separation_of_duties", _l("Nobody designates the custodian of their own loan or file."))
    if loan.status != LoanStatus.APPROVED or not loan.release_required or loan.kind != LoanKind.LOAN:
        return _wrong_state(loan, "Only an approved loan waiting for release can be given a custodian.")
    if (custodian is None or not custodian_acts(custodian)
            or custodian.id in (loan.borrower_id, loan.document.compiler_id, actor.id)
            or custodian.id in loan.approver_ids):
        return deny("invalid_custodian")
    problem = reason_problem(context.get("reason"))
    return deny(problem) if problem else allow()


@object_rule(Action.LOAN_RETURN)
def _return(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    loan: Loan = target
    if loan.borrower_id != actor.id and Role.CUSTODIAN not in actor.role_set:
        return deny("not_borrower")
    if loan.kind != LoanKind.LOAN or loan.status != LoanStatus.ACTIVE:
        return _wrong_state(loan, "Only an active loan can be returned.")
    return allow()


@object_rule(Action.LOAN_REVOKE)
def _revoke(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """`target` is the loan; context: reason (why it is revoked, kept in the audit log)."""
    loan: Loan = target
    if loan.borrower_id == actor.id:
        return deny("separation_of_duties", _l("Nobody revokes their own loan: return it instead."))
    if loan.status not in (LoanStatus.APPROVED, LoanStatus.ACTIVE):
        return _wrong_state(loan, "Only an approved or active loan can be revoked.")
    problem = reason_problem(context.get("reason"))
    return deny(problem) if problem else allow()


@object_rule(Action.LOAN_WITHDRAW)
def _withdraw(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """`target` is the loan. The borrower takes back their own request while nobody has acted on it: once
    an approver has approved it, withdrawing would erase a decision in flight, so it must be rejected or
    returned instead."""
    loan: Loan = target
    if loan.borrower_id != actor.id:
        return deny("not_your_request")
    if loan.status != LoanStatus.REQUESTED:
        return _wrong_state(loan, "Only a request waiting for a decision can be withdrawn.")
    if loan.approver_ids:
        return deny("already_decided_withdraw")
    return allow()


def involved(actor: User, loan: Loan) -> bool:
    """Whether `actor` has acted on `loan` (decided, released or closed it)."""
    return (actor.id in {d.approver_id for d in loan.decisions}
            or actor.id in (loan.released_by_id, loan.closed_by_id))


@object_rule(Action.LOAN_READ)
def _read(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """Borrowers see their own loans; approvers and custodians the loans they may act on or acted on.

    An approver sees every open loan, including those they may not decide (their own file), so that
    a forbidden decision is refused with its reason rather than hidden behind "not found"; nobody whose
    customer access is suspended, and nobody on notice, sees the queues (`visibility.queues_suspended`).
    """
    loan: Loan = target
    if loan.borrower_id == actor.id or involved(actor, loan):
        return allow()
    if queues_suspended(actor):
        return deny("not_found")
    roles = actor.role_set
    if Role.APPROVER in roles and loan.status in (LoanStatus.REQUESTED, LoanStatus.APPROVED, LoanStatus.ACTIVE):
        return allow()
    if Role.CUSTODIAN in roles and loan.status in (LoanStatus.APPROVED, LoanStatus.ACTIVE):
        return allow()
    return deny("not_found")


def view_quota_ceiling(holder: User | None, grade_views: int, document_views: int | None) -> int | None:
    """The most views a person's own quota may give them of one file, before extensions: for a person on
    notice, the lower of the grade's number and the file's (an approver's number for everyone); for anyone
    else no ceiling (None).

    On notice more views of a file are an extension, which needs the notice's approvals: no single person's
    decision may widen a leaver's reach. A per-person raise on notice is refused (`quota_person_departing`),
    but an approver's document-wide raise, or a custodian's raise of the person's own quota given before the
    notice, would still lift them; under this ceiling neither does while the notice lasts, and a lowering of
    either still counts. A withdrawn notice lifts the ceiling."""
    if not on_notice(holder):
        return None
    return grade_views if document_views is None else min(grade_views, document_views)


def view_quota(holder: User | None, grade_views: int, document_views: int | None, own: int | None) -> int:
    """The views `holder` may spend on one file before their approved extensions: their own quota, else the
    file's, else the grade's number, under `view_quota_ceiling` (so on notice the lowest of the three). The
    view counter's statement decides with the same numbers (`services.quota.SPEND`)."""
    quota = own if own is not None else document_views if document_views is not None else grade_views
    ceiling = view_quota_ceiling(holder, grade_views, document_views)
    return quota if ceiling is None else min(quota, ceiling)


def extension_views(holder: User | None, held: Iterable[Loan], notice_since: datetime | None) -> tuple[int, int]:
    """The extra views of `holder`'s approved extensions among `held` (their loans of one file), split in
    two: (within, beyond) the notice's ceiling.

    An extension approved before the notice was decided under the rules for someone who is not leaving:
    one approver's word, perhaps. Counted on top of the ceiling it would carry that decision into the notice,
    as a raise of the person's own quota would, so while the notice runs its views count inside the ceiling
    (`within`). One approved during the notice (after `notice_since`, when it was recorded) had the notice's
    approvals (`approvals_due`): that is how a leaver gets more views, so its views go above the ceiling
    (`beyond`). Not on notice, every extension is `within`, and with no ceiling the two add alike. A notice
    whose start is unknown (`notice_since` None) counts every extension within: the narrower reach. An
    approval stamped at the very moment the notice was recorded counts within too."""
    approved = [loan for loan in held if loan.kind == LoanKind.EXTENSION and loan.status == LoanStatus.APPROVED]
    if not on_notice(holder) or notice_since is None:
        return sum(loan.extra_views for loan in approved), 0
    beyond = sum(loan.extra_views for loan in approved
                 if loan.approved_at is not None and loan.approved_at > notice_since)
    return sum(loan.extra_views for loan in approved) - beyond, beyond


def view_limit(holder: User | None, grade_views: int, document_views: int | None, own: int | None, *,
               within: int, beyond: int) -> int:
    """Every view `holder` may spend on one file: `view_quota` plus the extensions' extra views
    (`extension_views`), those approved before the notice inside its ceiling and those approved during it
    above. So on notice neither a raise of the person's own quota nor an extension given before the notice
    lifts them above the lower of the grade's and the file's number; only an extension with the notice's
    approvals does. The view counter's statement decides with the same numbers (`services.quota.SPEND`)."""
    quota = own if own is not None else document_views if document_views is not None else grade_views
    ceiling = view_quota_ceiling(holder, grade_views, document_views)
    return (quota + within if ceiling is None else min(quota + within, ceiling)) + beyond


@object_rule(Action.QUOTA_OVERRIDE)
def _quota(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """`target` is the document; context: views (the new quota, or None for the default), person (the one
    person it is for, or None for everyone: an approver's call), person_given (a name was typed); for a
    person, current (their quota now, before extensions) and default (what None gives them: the document's
    number, else the grade's); views_unread (the form's number could not be read): only who asks, for whom,
    is decided, so that a refusal for who stands whatever was typed.

    Nobody widens their own reach: whoever may borrow documents (a custodian who is also a borrower, an
    approver who is also one) sets no quota at all, for anyone, since a quota raised for everyone or for an
    accomplice is one they could spend themselves. Nobody on notice sets one either (`decider_problem`).
    And nobody raises the quota of a person on notice: their extra views are an extension, which needs the
    notice's approvals (`approvals_needed`), where one custodian's word would give a leaver any number.
    Lowering it, or taking back a raise, only narrows their reach and stays open.
    """
    document: Document = target
    if not (deciding := decider_problem(actor)):
        return deciding
    if document.compiler_id == actor.id:
        return deny("separation_of_duties", _l("The compiler of a file cannot change how often it may be read."))
    person: User | None = context.get("person")
    if Role.BORROWER in actor.role_set or (person is not None and person.id == actor.id):
        return deny("quota_own_reach")
    if context.get("person_given") and person is None:
        return deny("quota_unknown_person")
    if person is None and Role.APPROVER not in actor.role_set:
        return deny("quota_document_wide")
    if context.get("views_unread"):
        return allow()
    views = context.get("views")
    if views is not None and (not isinstance(views, int) or isinstance(views, bool) or not 0 <= views <= MAX_QUOTA):
        return deny("quota_invalid")
    if on_notice(person):
        # Without the numbers to compare, nothing shows the change narrows: refused, as a raise is.
        current, new = context.get("current"), views if views is not None else context.get("default")
        if current is None or new is None or new > current:
            return deny("quota_person_departing")
    return allow()
