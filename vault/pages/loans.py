"""Loan and view pages: the borrower's loans and requests, opening a view, the approver's queue and the
custodian's desk. Every decision is the policy's (through the services); these pages parse, call, and
explain a refusal in plain words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from vault import policy
from vault.config.policy_file import GradeRule
from vault.core.actions import Action
from vault.core.errors import NotFound, ServiceError
from vault.models import Document, Loan, LoanKind, LoanStatus, User, utcnow
from vault.pages.customers import hidden_as_not_found
from vault.pages.forms import ConfirmForm
from vault.pages.forms.loans import (
    CATEGORY_LABELS,
    BatchApprovalForm,
    DecisionForm,
    ExtensionForm,
    LoanRequestForm,
    OpenViewForm,
    QuotaForm,
    ReleaseForm,
    RevokeForm,
)
from vault.pages.refusals import record_form_refusal
from vault.pages.viewer import remember_download
from vault.policy import loans as loan_rules
from vault.policy import views as view_rules
from vault.services import accounts, loan_context, quota
from vault.services import documents as documents_service
from vault.services import loans as loans_service
from vault.services import views as views_service
from vault.web import auth, locale, navigation
from vault.web.guard import permission
from vault.web.pipeline import access_context, db_session, keep_work, not_found_response, runtime
from vault.web.redirects import safe_next

bp = Blueprint("loans", __name__)
navigation.add("loans.mine", Action.LOAN_REQUEST, "My loans")
navigation.add("loans.approvals", Action.LOAN_APPROVE, "Approvals")
navigation.add("loans.custody", Action.LOAN_RELEASE, "Custody")

STATUS_LABELS = {
    LoanStatus.REQUESTED: _l("waiting for approval"),
    LoanStatus.APPROVED: _l("approved"),
    LoanStatus.ACTIVE: _l("active"),
    LoanStatus.REJECTED: _l("rejected"),
    LoanStatus.RETURNED: _l("returned"),
    LoanStatus.EXPIRED: _l("expired"),
    LoanStatus.REVOKED: _l("revoked"),
    LoanStatus.WITHDRAWN: _l("withdrawn"),
}
# Which field of the loan page a refusal of typed input belongs to, so its message stands beside it.
_FIELD_OF = {"comment_required": "reject", "reason_too_short": "revoke", "reason_not_meaningful": "revoke",
             "reason_copies_category": "revoke"}


bp.register_error_handler(NotFound, not_found_response)


@bp.errorhandler(ServiceError)
def _service_error(exc: ServiceError) -> Any:
    return render_template("loans/problem.html", message=exc.message, code=exc.code), exc.status


def _refused(exc: policy.Denied, template: str, *, read_again: str = "", **context: Any) -> Any:
    """Record the refusal (rolled back work, own transaction) and show it on a page of our own.

    `read_again`: the page shows `context`'s document once more (a form shown again), so that read is
    recorded under this `shown` after the refusal's own unit, and kept though the answer is a 403."""
    record_form_refusal(exc)
    if read_again:
        _read_again(context["document"], read_again)
    return render_template(template, decision=exc.decision, **context), 403


def _read_again(document: Document, shown: str) -> None:
    """Record that a form shown again with its errors names `document` and its customer once more (the first
    showing's record covers only that one), and keep the record though the answer is an error. The request
    has written nothing else by then (a form's checks decide nothing; a refusal has rolled back the act and
    committed its record), so keeping the work keeps this record alone. Should it fail, the request fails
    and the page is not shown: no read without its record."""
    documents_service.record_read(runtime(), db_session(), auth.current(), document, shown=shown,
                                  ctx=access_context(), again=True)
    keep_work()


def _document(document_id: int) -> Document:
    with hidden_as_not_found(document_id=document_id):
        return documents_service.get_document(db_session(), auth.current(), document_id)


def _loan(loan_id: int) -> Loan:
    with hidden_as_not_found(loan_id=loan_id):
        return loans_service.get_loan(db_session(), auth.current(), loan_id)


# -- the panel on a document's page --------------------------------------------------------------------


@dataclass
class Panel:
    """What the document page shows about reading the file, for the person looking at it."""

    document: Document
    rule: GradeRule
    borrower: bool
    needs_loan: bool
    loan: Loan | None
    pending: Loan | None
    expired: bool
    limit: int
    remaining: int
    extension: Loan | None
    can_download: bool
    place_ok: bool
    may_override: bool
    asks_category: bool  # someone on notice opening a file that needs no loan
    form: OpenViewForm
    request_form: LoanRequestForm
    max_days: int


@bp.app_template_global("loan_panel")
def loan_panel(document: Document) -> Panel:
    session, actor = db_session(), auth.current()
    rule = runtime().settings.grade(document.grade)
    borrower = bool(policy.authorize(actor, Action.DOCUMENT_VIEW))
    loan = loans_service.active_loan(session, actor, document) if borrower else None
    if loan is not None and loan.due_at is not None and loan.due_at <= utcnow():
        loan = None  # expired on the next touch; never offered as usable
    pending = None
    expired = False
    if borrower and loan is None:
        pending = loans_service.open_request(session, actor, document, LoanKind.LOAN)
        latest = loans_service.latest_loan(session, actor, document)
        expired = latest is not None and (latest.status == LoanStatus.EXPIRED or (
            latest.status == LoanStatus.ACTIVE and latest.due_at is not None and latest.due_at <= utcnow()))
    limit = views_service.quota_limit(runtime(), session, actor, document)
    remaining = max(0, limit - quota.used(session, actor.id, document.id))
    form = OpenViewForm(formdata=None)
    if loan is not None:
        form.reason.data = loan.reason
        form.place.data = loan.declared_place
    return Panel(
        document=document, rule=rule, borrower=borrower,
        needs_loan=rule.loan_required or document.compiler_id == actor.id, loan=loan, pending=pending,
        expired=expired, limit=limit, remaining=remaining,
        extension=loans_service.open_request(session, actor, document, LoanKind.EXTENSION) if borrower else None,
        can_download=rule.download and bool(policy.authorize(actor, Action.DOCUMENT_DOWNLOAD)),
        place_ok=not rule.trusted_places_only or bool(access_context().named_place),
        may_override=_may_override(actor, document),
        asks_category=view_rules.on_notice_without_loan(actor, rule),
        form=form, request_form=LoanRequestForm(formdata=None), max_days=loan_rules.max_days(rule),
    )


def _may_override(actor: User, document: Document) -> bool:
    """Whether to offer the quota form: for one person at least (everyone's is an approver's call)."""
    decision = policy.authorize(actor, Action.QUOTA_OVERRIDE, document, views=None)
    return bool(decision) or decision.code == "quota_document_wide"


@bp.app_template_global("loan_status_label")
def loan_status_label(status: str) -> str:
    return str(STATUS_LABELS.get(LoanStatus(status), status))


@bp.app_template_global("category_label")
def category_label(category: str) -> str:
    return str(CATEGORY_LABELS.get(category, category))


@bp.route("/documents/<int:document_id>/reading")
@permission(Action.DOCUMENT_READ)
def reading(document_id: int) -> Any:
    """The reading panel of one document on its own (linked from the loan pages)."""
    with hidden_as_not_found(document_id=document_id):
        document = documents_service.read_document(runtime(), db_session(), auth.current(), document_id,
                                                   shown="reading", ctx=access_context())
    return render_template("loans/reading.html", document=document)


# -- borrower ------------------------------------------------------------------------------------------


def _page_number() -> int:
    """The `page` of a list's address: a whole number from 1; anything else is the first page."""
    page = request.args.get("page", 1, type=int)
    return page if page is not None and 1 <= page <= 1_000_000 else 1


@bp.route("/loans")
@permission(Action.LOAN_READ)
def mine() -> Any:
    session, actor = db_session(), auth.current()
    found = loans_service.page_of_loans(session, actor, mine=True, page=_page_number())
    remaining = {loan.document_id: views_service.remaining_views(session, actor, loan.document)
                 for loan in found.loans}
    return render_template("loans/mine.html", loans=found.loans, found=found, remaining=remaining, now=utcnow())


@bp.route("/documents/<int:document_id>/loans/new", methods=["GET", "POST"])
@permission(Action.LOAN_REQUEST)
def request_loan(document_id: int) -> Any:
    return _request(document_id, LoanKind.LOAN)


@bp.route("/documents/<int:document_id>/extension", methods=["GET", "POST"])
@permission(Action.LOAN_REQUEST)
def request_extension(document_id: int) -> Any:
    return _request(document_id, LoanKind.EXTENSION)


def _request(document_id: int, kind: LoanKind) -> Any:
    session, actor = db_session(), auth.current()
    extension = kind == LoanKind.EXTENSION
    if request.method == "GET":
        # The form names the file and its customer, as the document's page does: a recorded read.
        with hidden_as_not_found(document_id=document_id):
            document = documents_service.read_document(
                runtime(), session, actor, document_id, shown="extension_form" if extension else "loan_form",
                ctx=access_context())
    else:
        document = _document(document_id)
    form = ExtensionForm() if extension else LoanRequestForm()
    rule = runtime().settings.grade(document.grade)
    page = {"document": document, "form": form, "kind": str(kind), "rule": rule,
            "max_days": loan_rules.max_days(rule),
            "limit": views_service.quota_limit(runtime(), session, actor, document),
            "untrusted": rule.trusted_places_only and not access_context().named_place}
    if request.method == "GET":
        active = loans_service.active_loan(session, actor, document)
        if active is not None:
            form.place.data = active.declared_place
            form.category.data = active.category
        return render_template("loans/request.html", **page)
    valid = form.validate()
    place = form.place.data or ""
    typed = {"reason": form.reason.data or "", "category": form.category.data or "", "place": place,
             "days": None if extension else form.days.data,
             "extra_views": form.extra_views.data if extension else None}
    shown = "extension_form" if extension else "loan_form"
    if not valid:
        # The form's own checks failed, so nothing is decided; the policy's input rules still speak beside
        # the fields the form let through, so every slip is shown in this one answer instead of the next.
        # The form names the file and its customer again: that showing is recorded and kept.
        _beside_fields(form, loans_service.request_problems(runtime(), document, kind=str(kind), **typed))
        _read_again(document, shown)
        return render_template("loans/request.html", **page), 400
    g.access_context = access_context().declaring(place.strip())
    try:
        loan = loans_service.request_loan(
            runtime(), session, actor, document, reason=typed["reason"], category=typed["category"],
            place=place, days=0 if extension else form.days.data, ctx=access_context(), kind=str(kind),
            extra_views=form.extra_views.data if extension else 0,
        )
    except policy.Denied as exc:
        problems = loans_service.request_problems(runtime(), document, kind=str(kind), **typed)
        if exc.decision.code not in {problem.code for problem in problems.values()}:
            # Refused for who or where, not for what was typed.
            return _refused(exc, "loans/request.html", read_again=shown, **page)
        # Refused for the first slip (recorded as such, as the API's refusal is); every slip stands beside
        # its field, the form filled in.
        _beside_fields(form, problems)
        return _refused(exc, "loans/request.html", read_again=shown, field_refusal=exc.decision, **page)
    flash(_("Your request is sent to the approvers."), "success")
    if page["untrusted"]:
        flash(_("You are not in a trusted place now: once approved, this file opens only from one "
                "(a company network)."), "warning")
    return redirect(url_for("loans.show", loan_id=loan.id))


def _beside_fields(form: Any, problems: dict[str, policy.Decision]) -> None:
    """Put each input problem the policy found beside its field, in the reader's language; a field the
    form already refused keeps that error alone (its value was never read, so the policy's word on it
    would only repeat it)."""
    for name, problem in problems.items():
        field = getattr(form, name, None)
        if field is not None and not field.errors:
            field.errors = [_(problem.message)]


@bp.route("/documents/<int:document_id>/view", methods=["POST"])
@permission(Action.DOCUMENT_VIEW)
def open_view(document_id: int) -> Any:
    """Opening is a POST carrying the purpose and the place: it spends a view, so never a link or a GET."""
    session, actor = db_session(), auth.current()
    # The document (if the reader may see it), its latest version and the reader's loans of it: one statement.
    with hidden_as_not_found(document_id=document_id):
        known = views_service.opening_of(session, actor, document_id)
    document = known.document
    form = OpenViewForm()
    valid = form.validate()
    typed = {"reason": form.reason.data or "", "place": form.place.data or "", "download": bool(form.download.data),
             "category": form.category.data or None}
    retry = {"document": document, "retry": form, **_open_choices(actor, document)}
    if not valid:
        # The form's own checks failed, so nothing is decided, spent or recorded; the policy's input rules
        # still speak beside the fields the form let through, so every slip is shown in this one answer.
        _beside_fields(form, views_service.open_problems(runtime(), actor, document, **typed))
        return render_template("loans/view_refused.html", decision=None, **retry), 400
    place = typed["place"].strip()
    if form.download.data:
        g.vault_denied_action = str(Action.DOCUMENT_DOWNLOAD)
    g.access_context = access_context().declaring(place)
    try:
        opened = views_service.open_view(runtime(), session, actor, document, ctx=access_context(), known=known,
                                         **{**typed, "place": place})
    except policy.Denied as exc:
        problems = views_service.open_problems(runtime(), actor, document, **typed)
        if exc.decision.code not in {problem.code for problem in problems.values()}:
            # Refused for who or where the person is, not for what was typed: that refusal on its own.
            return _refused(exc, "loans/view_refused.html", document=document,
                            may_extend=exc.decision.code == "quota_exhausted", retry=None)
        # Refused for the first slip (recorded as such, as the API's refusal is, and no view spent); every
        # slip stands beside its field, the form filled in as typed.
        _beside_fields(form, problems)
        return _refused(exc, "loans/view_refused.html", may_extend=False, **retry)
    if opened.view.download:
        remember_download(opened.view.id, opened.secret)
    # Post/redirect/get: Back and reload land on the viewer of this view, never on a second opening.
    return redirect(url_for("viewer.show", view_id=opened.view.id), code=303)


def _open_choices(actor: User, document: Document) -> dict[str, bool]:
    """Which of the open-view form's choices the form offers again after a slip, as the reading panel does:
    the kind of need for someone on notice opening a file that needs no loan; the download box where the
    grade and the person's roles allow one (or where it was ticked, so the person sees why it cannot be)."""
    rule = runtime().settings.grade(document.grade)
    return {"asks_category": view_rules.on_notice_without_loan(actor, rule),
            "can_download": rule.download and bool(policy.authorize(actor, Action.DOCUMENT_DOWNLOAD))}


def _why(refusal: policy.Decision | None) -> str | None:
    """A closed act's reason, in the reader's language (shown beside its disabled button)."""
    return _(refusal.message) if refusal is not None else None


def _show(loan: Loan, status: int = 200, **forms: Any) -> Any:
    """The loan page, with the forms as given (filled in and with their errors after a failed try); the read
    of someone else's loan is recorded (`loan_context.read_decision_context`).

    A form's error or a refused input (`status` 400 or 403) still answers with this page, so that read
    stands with the error instead of being rolled back with it, marked `again` (a retry, not a first look);
    every caller has given back, or never did, whatever else the request did (the refusal itself is
    recorded on its own)."""
    actor = auth.current()
    again = status >= 400
    if again:
        keep_work()
    context = loan_context.read_decision_context(runtime(), db_session(), actor, loan, ctx=access_context(),
                                                 again=again)
    acts, blocked = context.acts, context.offered_blocked(loan, actor)
    page = render_template(
        "loans/show.html", loan=loan, now=utcnow(),
        history=context.requester_history, customer_history=context.customer_history,
        allows=context.allowance, warning=context.place_warning,
        may_approve=acts.approve.open, approve_blocked=_why(blocked["approve"]),
        may_release=acts.release.open, release_blocked=_why(blocked["release"]),
        may_return=acts.return_loan.open, may_revoke=acts.revoke.open,
        may_withdraw=acts.withdraw.open, withdraw_blocked=_why(blocked["withdraw"]),
        decision_form=forms.get("decision") or DecisionForm(formdata=None),
        reject_form=forms.get("reject") or DecisionForm(formdata=None),
        revoke_form=forms.get("revoke") or RevokeForm(formdata=None),
        release_form=forms.get("release") or ReleaseForm(formdata=None),
        confirm_form=ConfirmForm(formdata=None),
    )
    return page, status


@bp.route("/loans/<int:loan_id>")
@permission(Action.LOAN_READ)
def show(loan_id: int) -> Any:
    return _show(_loan(loan_id))


def _input_refused(exc: policy.Denied, loan: Loan, forms: dict[str, Any]) -> Any:
    """A refusal of what was typed (a reject without a comment, a revoke with a poor reason): recorded
    like any refusal, and shown beside the field on the loan page, with what was typed kept."""
    name = _FIELD_OF.get(exc.decision.code)
    form = forms.get(name or "")
    if form is None:
        raise exc
    field = form.reason if name == "revoke" else form.comment
    field.errors = [*field.errors, _(exc.decision.message)]
    record_form_refusal(exc)
    return _show(db_session().get(Loan, loan.id) or loan, 403, **forms)


def _next_waiting(actor: User, after: int) -> Loan | None:
    """The oldest request the approver may decide now, other than the one just decided."""
    found = loan_context.approval_queue(db_session(), actor)
    for loan in found.loans:
        if loan.id != after and loan_context.approve_act(runtime(), actor, loan).open:
            return loan
    return None


def _named(loan: Loan) -> dict[str, str]:
    """What a decision's message names, so that an approver taken on to the next request can tell which one
    the message is about: who asked, for which file, of which customer (all on the page just decided)."""
    return {"borrower": loan.borrower.display_name or loan.borrower.username, "title": loan.document.title,
            "customer": loan.document.customer.name}


def _back_to_queue(actor: User, decided: int, done: str) -> Any:
    """After a decision: straight on to the next request waiting for this approver, or the queue."""
    following = _next_waiting(actor, decided)
    if following is None:
        flash(locale.sentences(done, _("Nothing else is waiting for you.")), "success")
        return redirect(url_for("loans.approvals"))
    flash(locale.sentences(done, _("Here is the next request.")), "success")
    return redirect(url_for("loans.show", loan_id=following.id))


def _act(loan_id: int, act: Any, done: str) -> Any:
    session, actor = db_session(), auth.current()
    loan = _loan(loan_id)
    act(runtime(), session, actor, loan, access_context())
    flash(done, "success")
    return redirect(safe_next(request.form.get("next"), url_for("loans.show", loan_id=loan_id)))


@bp.route("/loans/<int:loan_id>/approve", methods=["POST"])
@permission(Action.LOAN_APPROVE)
def approve(loan_id: int) -> Any:
    session, actor = db_session(), auth.current()
    loan = _loan(loan_id)
    form = DecisionForm()
    if not form.validate():
        return _show(loan, 400, decision=form)
    loans_service.approve(runtime(), session, actor, loan, comment=form.comment.data or "", ctx=access_context())
    return _back_to_queue(actor, loan_id, _("Your approval of %(borrower)s's request for %(title)s (%(customer)s) "
                                             "is recorded.", **_named(loan)))


@bp.route("/loans/<int:loan_id>/reject", methods=["POST"])
@permission(Action.LOAN_REJECT)
def reject(loan_id: int) -> Any:
    session, actor = db_session(), auth.current()
    loan = _loan(loan_id)
    form = DecisionForm()
    if not form.validate():
        return _show(loan, 400, reject=form)
    try:
        loans_service.reject(runtime(), session, actor, loan, comment=form.comment.data or "", ctx=access_context())
    except policy.Denied as exc:
        return _input_refused(exc, loan, {"reject": form})
    return _back_to_queue(actor, loan_id, _("%(borrower)s's request for %(title)s (%(customer)s) is rejected.",
                                            **_named(loan)))


@bp.route("/loans/<int:loan_id>/release", methods=["POST"])
@permission(Action.LOAN_RELEASE)
def release(loan_id: int) -> Any:
    session, actor = db_session(), auth.current()
    loan = _loan(loan_id)
    form = ReleaseForm()
    # Unconfirmed: the form again, with the box marked; unless the policy refuses the act anyway, which
    # is then a refusal like any other (recorded), not a form to fill in.
    if not form.validate() and loan_context.release_act(runtime(), actor, loan).open:
        return _show(loan, 400, release=form)
    loans_service.release(runtime(), session, actor, loan, ctx=access_context())
    flash(_("The loan is released; its days start now."), "success")
    return redirect(safe_next(form.next.data, url_for("loans.show", loan_id=loan_id)))


@bp.route("/loans/<int:loan_id>/return", methods=["POST"])
@permission(Action.LOAN_RETURN)
def return_loan(loan_id: int) -> Any:
    return _act(loan_id, lambda rt, s, a, loan, ctx: loans_service.return_loan(rt, s, a, loan, ctx=ctx),
                _("The loan is returned."))


@bp.route("/loans/<int:loan_id>/revoke", methods=["POST"])
@permission(Action.LOAN_REVOKE)
def revoke(loan_id: int) -> Any:
    session, actor = db_session(), auth.current()
    loan = _loan(loan_id)
    form = RevokeForm()
    if not form.validate() and loan_context.act(actor, Action.LOAN_REVOKE, loan, reason=form.reason.data or "").open:
        return _show(loan, 400, revoke=form)
    try:
        loans_service.revoke(runtime(), session, actor, loan, reason=form.reason.data or "", ctx=access_context())
    except policy.Denied as exc:
        return _input_refused(exc, loan, {"revoke": form})
    flash(_("The loan is revoked."), "success")
    return redirect(safe_next(form.next.data, url_for("loans.show", loan_id=loan_id)))


@bp.route("/loans/<int:loan_id>/withdraw", methods=["POST"])
@permission(Action.LOAN_WITHDRAW)
def withdraw(loan_id: int) -> Any:
    """The borrower takes back a request nobody has decided yet."""
    session, actor = db_session(), auth.current()
    loan = _loan(loan_id)
    loans_service.withdraw(runtime(), session, actor, loan, ctx=access_context())
    flash(_("Your request is withdrawn."), "success")
    return redirect(url_for("loans.mine"))


# -- approver and custodian ----------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueRow:
    """One request in a queue: whether this person may act on it, and if not, why (beside the box)."""

    loan: Loan
    blocked: str | None
    history: loans_service.History
    warning: loan_context.PlaceWarning | None
    allows: loan_context.Allowance | None = None


def _approval_rows(actor: User, loans: list[Loan]) -> list[QueueRow]:
    session, rt = db_session(), runtime()
    return [QueueRow(loan=loan, blocked=_why(loan_context.approve_act(rt, actor, loan).refusal),
                     history=loans_service.requester_history(session, loan),
                     warning=loan_context.place_warning(rt, session, loan),
                     allows=loan_context.allowance(rt, session, loan)) for loan in loans]


@bp.route("/loans/approvals")
@permission(Action.LOAN_APPROVE)
def approvals() -> Any:
    return _approvals_page(BatchApprovalForm(formdata=None))


def _approvals_page(form: BatchApprovalForm, status: int = 200) -> Any:
    """The approver's queue, its listing recorded (`loans.record_listing`); shown again with the batch
    form's error (400), nothing approved, the record stands with it (as on the loan page, `_show`)."""
    session, actor = db_session(), auth.current()
    if status >= 400:
        keep_work()
    found = loan_context.approval_queue(session, actor, page=_page_number())
    loans_service.record_listing(runtime(), session, actor, found, listing="approvals", ctx=access_context())
    rows = _approval_rows(actor, found.loans)
    return render_template("loans/approvals.html", rows=rows, found=found, form=form,
                           any_open=any(row.blocked is None for row in rows)), status


@bp.route("/loans/approvals", methods=["POST"])
@permission(Action.LOAN_APPROVE)
def approve_batch() -> Any:
    """Approve the ticked requests with one comment. Each is approved or refused on its own (and
    recorded on its own); the answer says which went through and why the others did not."""
    session, actor = db_session(), auth.current()
    form = BatchApprovalForm()
    if not form.validate():
        return _approvals_page(form, 400)
    outcome = loans_service.approve_many(runtime(), session, actor, form.loan.data or [],
                                         comment=form.comment.data or "", ctx=access_context())
    if outcome.approved:
        flash(ngettext("%(num)d request approved: %(which)s.", "%(num)d requests approved: %(which)s.",
                       len(outcome.approved),
                which=", ".join(f"#{loan.id} {loan.document.title}" for loan in outcome.approved)), "success")
    for loan_id, decision in outcome.refused:
        flash(_("Request #%(id)d was not approved: %(why)s", id=loan_id, why=_(decision.message)), "error")
    return redirect(url_for("loans.approvals"))


@bp.route("/loans/custody")
@permission(Action.LOAN_RELEASE)
def custody() -> Any:
    session, actor = db_session(), auth.current()
    waiting = loan_context.release_queue(session, actor, page=_page_number())
    releases = [QueueRow(loan=loan, blocked=_why(loan_context.release_act(runtime(), actor, loan).refusal),
                         history=loans_service.customer_history(session, loan),
                         warning=loan_context.place_warning(runtime(), session, loan))
                for loan in waiting.loans]
    active = loan_context.active_loans(session, actor, page=request.args.get("active_page", 1, type=int) or 1)
    for listing, found in (("custody", waiting), ("custody_active", active)):
        loans_service.record_listing(runtime(), session, actor, found, listing=listing, ctx=access_context())
    overrides = loans_service.quota_overrides(session, actor)
    return render_template(
        "loans/custody.html", releases=releases, waiting=waiting, active=active.loans, active_found=active,
        overrides=overrides.documents, personal=overrides.personal, now=utcnow(),
        release_form=ReleaseForm(formdata=None), quota_form=QuotaForm(formdata=None),
    )


@bp.route("/documents/<int:document_id>/quota", methods=["POST"])
@permission(Action.QUOTA_OVERRIDE)
def quota_override(document_id: int) -> Any:
    session, actor = db_session(), auth.current()
    document = _document(document_id)
    form = QuotaForm()
    name = (form.person.data or "").strip()
    person = accounts.find_user(session, name) if name else None
    if not form.validate():
        # No whole number: who asks is decided first (a refusal page, recorded); then the panel again, as typed.
        loans_service.require_quota_setter(runtime(), session, actor, document, person=person,
                                           person_given=bool(name))
        return _quota_again(document, form, 400)
    try:
        loans_service.set_quota_override(runtime(), session, actor, document, form.views.data, person=person,
                                         person_given=bool(name), ctx=access_context())
    except policy.Denied as exc:
        if not policy.shows_form_again(exc.decision.code):
            raise  # refused for who (the person named, the actor's own reach) or what: a refusal page
        # A number out of range: recorded like any refusal, then the panel again with it beside the number.
        record_form_refusal(exc)
        form.views.errors = [*form.views.errors, _(exc.decision.message)]
        return _quota_again(document, form, 403)
    flash(_("The view quota of %(who)s is set.", who=name) if name else _("The view quota of this document is set."),
          "success")
    return redirect(safe_next(form.next.data, url_for("loans.reading", document_id=document_id)))


def _quota_again(document: Document, form: QuotaForm, status: int) -> Any:
    """The document's reading panel again after its quota form was refused for what was typed, the person
    and the number as typed and the reason beside the number. The panel names the file and its customer
    once more: that read is recorded (`shown` "reading", as the panel's own page, marked `again`) and kept
    though the answer is an error (`_read_again`)."""
    _read_again(document, "reading")
    return render_template("loans/reading.html", document=document, quota_form=form), status
