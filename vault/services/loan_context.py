"""What an approver or a custodian decides a loan on: what it will allow, where its borrower was last seen,
the borrower's history, and which acts are open to the person looking at it, and if one is closed, why.

One place for each of these rules, so the loan page, the queues and the API say the same thing: a
button the page shows is an act the API reports open, and a closed one carries the policy's own
reason code, the one the act itself would be refused with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from vault import policy
from vault.config.settings import Settings
from vault.core.actions import Action
from vault.core.context import AccessContext
from vault.models import Loan, LoanStatus, User
from vault.policy import loans as rules
from vault.runtime import Runtime
from vault.services import loans, quota

AWAITING = (LoanStatus.REQUESTED, LoanStatus.APPROVED)


@dataclass(frozen=True)
class Allowance:
    """What a loan will allow once it goes through, from the grade's rule and the borrower's quota: what
    an approver needs to see before saying yes."""

    views: int
    days: int
    extra_views: int
    download: bool
    download_original: bool
    approvals_required: int
    approvals_given: int
    release_required: bool
    trusted_places_only: bool

    @property
    def approvals_after_mine(self) -> int:
        """Approvals still needed after one more (0: the next approval decides it)."""
        return max(0, self.approvals_required - self.approvals_given - 1)


def allowance(rt: Runtime, session: Session, loan: Loan) -> Allowance:
    """The allowance of `loan` as it stands now (the approvals due count a notice given since the request)."""
    rule = rt.settings.grade(loan.document.grade)
    return Allowance(
        views=quota.limit_for(rt.settings, session, loan.borrower_id, loan.document),
        days=loan.days, extra_views=loan.extra_views, download=rule.download,
        download_original=rule.download and rule.download_original,
        approvals_required=rules.approvals_due(rule, loan), approvals_given=len(loan.approver_ids),
        release_required=loan.release_required, trusted_places_only=rule.trusted_places_only,
    )


@dataclass(frozen=True)
class PlaceWarning:
    """A grade-3 loan whose borrower was last seen outside every trusted place: approving or releasing
    it is allowed, but the file will not open where they are."""

    seen: bool  # False: the borrower has never been seen at all


def place_warning(rt: Runtime, session: Session, loan: Loan) -> PlaceWarning | None:
    """The warning for a loan still to be decided or released whose file opens only from a trusted place,
    when its borrower's latest recorded act was outside one; None otherwise."""
    rule = rt.settings.grade(loan.document.grade)
    if not rule.trusted_places_only or loan.status not in AWAITING:
        return None
    seen, place = loans.last_known_place(session, loan.borrower_id)
    return None if place else PlaceWarning(seen=seen)


@dataclass(frozen=True)
class Act:
    """One act on a loan as it stands for one person: open (given acceptable input), or closed with the
    policy's refusal. `ours`: the person's roles allow this kind of act at all (a page shows its button)."""

    open: bool
    refusal: policy.Decision | None
    ours: bool

    @property
    def blocked(self) -> policy.Decision | None:
        """Why an act the person's roles allow is closed on this loan (shown beside the disabled button);
        None when it is open, or not theirs at all (then no button is shown)."""
        return self.refusal if self.ours else None


def act(actor: User, action: Action, loan: Loan, **context: Any) -> Act:
    """Ask the policy about one act on `loan`, with the context the act itself is asked with.

    It is asked before anything is typed (a reject with no comment, a revoke with no reason yet), so a refusal
    of what was typed (`policy.is_slip`) leaves the act open: the person has yet to type it."""
    decision = policy.authorize(actor, action, loan, **context)
    if decision.allowed or policy.is_slip(decision.code):
        return Act(open=True, refusal=None, ours=True)
    return Act(open=False, refusal=decision, ours=bool(policy.authorize(actor, action)))


def approval_context(rt: Runtime, loan: Loan) -> dict[str, Any]:
    """What `loans.approve` asks the policy with (besides the comment), so an approval reported open is
    one the service will not refuse for who or where anyone is."""
    return {"decided": {d.approver_id for d in loan.decisions}, "rule": rt.settings.grade(loan.document.grade),
            "departure_mode": rt.settings.departure.on_notice}


def approve_act(rt: Runtime, actor: User, loan: Loan) -> Act:
    return act(actor, Action.LOAN_APPROVE, loan, **approval_context(rt, loan))


def release_context(settings: Settings, loan: Loan) -> dict[str, Any]:
    """What `loans.release` asks the policy with, so a release reported open is one it will not refuse."""
    return {"rule": settings.grade(loan.document.grade), "departure_mode": settings.departure.on_notice}


def release_act(rt: Runtime, actor: User, loan: Loan) -> Act:
    return act(actor, Action.LOAN_RELEASE, loan, **release_context(rt.settings, loan))


@dataclass(frozen=True)
class Acts:
    """Every act the loan page may offer, for one person."""

    approve: Act
    reject: Act
    release: Act
    return_loan: Act
    revoke: Act
    withdraw: Act


def acts(rt: Runtime, actor: User, loan: Loan) -> Acts:
    decided = {d.approver_id for d in loan.decisions}
    return Acts(
        approve=approve_act(rt, actor, loan),
        reject=act(actor, Action.LOAN_REJECT, loan, decided=decided),
        release=release_act(rt, actor, loan),
        return_loan=act(actor, Action.LOAN_RETURN, loan),
        revoke=act(actor, Action.LOAN_REVOKE, loan),
        withdraw=act(actor, Action.LOAN_WITHDRAW, loan),
    )


@dataclass(frozen=True)
class DecisionContext:
    """The loan page's context for one person. The borrower is shown neither their own history nor a
    warning about themselves; what the loan will allow is shown while it waits for a decision or a release."""

    requester_history: loans.History | None
    customer_history: loans.History | None
    allowance: Allowance | None
    place_warning: PlaceWarning | None
    acts: Acts

    def offered_blocked(self, loan: Loan, actor: User) -> dict[str, policy.Decision | None]:
        """The closed acts a page shows as a disabled button with its reason: a decision on a request
        (never to its borrower, not even a closed one), a release of an approved loan waiting for one
        (never to its borrower), and the borrower's own withdrawal of a request."""
        own = loan.borrower_id == actor.id
        return {
            "approve": self.acts.approve.blocked if loan.status == LoanStatus.REQUESTED and not own else None,
            "release": self.acts.release.blocked
            if loan.status == LoanStatus.APPROVED and loan.release_required and not own else None,
            "withdraw": self.acts.withdraw.blocked if own and loan.status == LoanStatus.REQUESTED else None,
        }


def decision_context(rt: Runtime, session: Session, actor: User, loan: Loan) -> DecisionContext:
    """Everything the loan page shows `actor` to decide on (the caller has checked they may see the loan)."""
    own = loan.borrower_id == actor.id
    return DecisionContext(
        requester_history=None if own else loans.requester_history(session, loan),
        customer_history=None if own else loans.customer_history(session, loan),
        allowance=allowance(rt, session, loan) if loan.status in AWAITING else None,
        place_warning=None if own else place_warning(rt, session, loan),
        acts=acts(rt, actor, loan),
    )


def read_decision_context(rt: Runtime, session: Session, actor: User, loan: Loan, *,
                          ctx: AccessContext, again: bool = False) -> DecisionContext:
    """`decision_context` for showing it (the loan page, `GET /api/v1/loans/{id}/context`), the read
    recorded in the same transaction (`loans.record_read`: someone else's loan only); `again`: the loan page
    shown once more with a form refused (`loans.record_read`)."""
    loans.record_read(rt, session, actor, loan, what="context", ctx=ctx, again=again)
    return decision_context(rt, session, actor, loan)


# -- the queues -----------------------------------------------------------------------------------------


def approval_queue(session: Session, actor: User, page: int = 1) -> loans.LoanPage:
    """The approver's queue: requests waiting for a decision, never the approver's own, first come first
    served (the approvals page and the API list the same page)."""
    return loans.page_of_loans(session, actor, status=str(LoanStatus.REQUESTED), others=True, order="oldest",
                               page=page)


def release_queue(session: Session, actor: User, page: int = 1) -> loans.LoanPage:
    """The custodian's queue: approved loans waiting for their release, first come first served."""
    return loans.page_of_loans(session, actor, status=str(LoanStatus.APPROVED), awaiting_release=True,
                               order="oldest", page=page)


def active_loans(session: Session, actor: User, page: int = 1) -> loans.LoanPage:
    """The custody page's active loans, the one that ends first on top."""
    return loans.page_of_loans(session, actor, status=str(LoanStatus.ACTIVE), order="due", page=page)
