"""Departure pages: notice, the handover and its confirmations, the report, and the leavers' loans.

Who sees what: administrators give notice, move the last day, reassign customers and complete a
departure; auditors (and administrators) read departures and their reports; the successor confirms
contacts; approvers waive missing confirmations; custodians and approvers revoke leavers' loans.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select

from vault import policy
from vault.alerts.raising import RULE_TITLES
from vault.core.actions import Action
from vault.core.errors import NotFound, ServiceError
from vault.models import Departure, HandoverItem, Loan, RoleAssignment, User, UserStatus, utcnow
from vault.pages.customers import SEGMENT_LABELS
from vault.pages.forms import ConfirmForm
from vault.pages.forms.departures import (
    NOBODY,
    TO_POOL,
    CompleteForm,
    ContactForm,
    DepartureForm,
    DepartureUpdateForm,
    LeaverRevokeForm,
    OverrideForm,
    ReassignForm,
    WithdrawForm,
)
from vault.pages.refusals import record_form_refusal
from vault.policy import departures as departure_rules
from vault.services import departures as service
from vault.services import letters, loan_context
from vault.services import loans as loans_service
from vault.services import report as report_service
from vault.services.customers import OWNER_ROLES
from vault.web import auth, navigation
from vault.web.guard import permission
from vault.web.pipeline import (
    access_context,
    db_session,
    keep_work,
    not_found_response,
    runtime,
)

bp = Blueprint("departures", __name__, url_prefix="/departures")
# The report's handover states in the reader's words, for the report page (`{{ c.handover_state|handover_state }}`).
bp.add_app_template_filter(report_service.handover_label, "handover_state")
navigation.add("departures.index", Action.DEPARTURE_REPORT, "Departures")
navigation.add("departures.handover", Action.HANDOVER_CONFIRM, "Handover")
navigation.add("departures.leavers_loans", Action.LOAN_REVOKE, "Leavers' loans")

# -- helpers -------------------------------------------------------------------------------------------


bp.register_error_handler(NotFound, not_found_response)


@bp.app_template_filter("key_reason")
def _key_reason(value: str | None) -> str:
    """Why a handover's customer is a key one, as stored (and as the API gives it: "segment vip", "grade 2-3
    file"), in the reader's language."""
    if not value:
        return ""
    if value.startswith("segment "):
        segment = value.removeprefix("segment ")
        label = SEGMENT_LABELS.get(segment)
        return _("Segment: %(segment)s", segment=_(label) if label else segment)
    if value == "grade 2-3 file":
        return _("Has a file of grade 2 or 3")
    return value

@bp.errorhandler(ServiceError)
def _service_error(exc: ServiceError) -> Any:
    return render_template("departures/problem.html", message=exc.message, code=exc.code), exc.status


def _departure(departure_id: int) -> Departure:
    try:
        return service.get_departure(db_session(), departure_id)
    except NotFound:
        raise policy.Denied(policy.deny("not_found")) from None


def _item(departure: Departure, item_id: int) -> HandoverItem:
    item = db_session().get(HandoverItem, item_id)
    if item is None or item.departure_id != departure.id:
        raise policy.Denied(policy.deny("not_found"), subject_user_id=departure.user_id)
    return item


def _owners(exclude: int | None = None) -> list[User]:
    """Active people who can receive customers (account managers not leaving)."""
    users = db_session().scalars(
        select(User).join(RoleAssignment, RoleAssignment.user_id == User.id)
        .where(RoleAssignment.role.in_(OWNER_ROLES)).distinct().order_by(User.display_name))
    return [u for u in users if u.can_sign_in and u.status == UserStatus.ACTIVE and u.id != exclude]


def _choices(people: list[User], none_label: str | None = None) -> list[tuple[int, str]]:
    out = [(NOBODY, none_label)] if none_label else []
    return out + [(u.id, f"{u.display_name} ({u.username})") for u in people]


def _reassign_choices(people: list[User]) -> list[tuple[int, str]]:
    """A handover item's choices: a person, or the shared pool (nobody owns it until claimed or assigned)."""
    return [(TO_POOL, _("Return to the shared pool")), *_choices(people)]


def _user(user_id: int) -> User | None:
    return db_session().get(User, user_id) if user_id and user_id != NOBODY else None


def _audit_url() -> str | None:
    return url_for("audit.index") if "audit.index" in current_app.view_functions else None


def _finish_due() -> None:
    """After a change that ends access (a last day in the past), carry out the last-day steps now, in the
    same unit of work as the change."""
    service.run_due(runtime(), db_session(), ctx=access_context())


# -- list, notice, one departure -----------------------------------------------------------------------


@bp.route("/")
@permission(Action.DEPARTURE_REPORT)
def index() -> Any:
    found = service.page_of_departures(db_session(), auth.current(), page=request.args.get("page", 1, type=int))
    return render_template("departures/index.html", departures=found.departures, found=found)


@bp.route("/new", methods=["GET", "POST"])
@permission(Action.DEPARTURE_MANAGE)
def new() -> Any:
    session, actor = db_session(), auth.current()
    form = DepartureForm()
    leavers = [u for u in session.scalars(select(User).where(User.status == UserStatus.ACTIVE)
                                          .order_by(User.display_name))
               if u.id != actor.id and u.can_sign_in]  # another administrator too: the API and CLI allow it
    form.user.choices = _choices(leavers)
    form.successor.choices = _choices(_owners(), _("Nobody yet: put the customers on the reassignment list"))
    if request.method == "GET":
        form.notice_date.data = service.today(runtime().settings)
    if form.validate_on_submit():
        leaver = _user(form.user.data)
        if leaver is None:
            raise policy.Denied(policy.deny("not_found"))
        try:
            departure = service.start_departure(
                runtime(), session, actor, leaver, last_day=form.last_day.data,
                successor=_user(form.successor.data), notice_date=form.notice_date.data, note=form.note.data or "",
                ctx=access_context())
        except ServiceError as exc:
            # Refused for what was typed: the form again, with what was typed and the reason beside its field.
            session.rollback()
            _field_of(form, exc.code).errors = [exc.message]
            return render_template("departures/new.html", form=form), exc.status
        if leaver.past_last_day:
            _finish_due()
        flash(_("Notice recorded for %(name)s.", name=leaver.display_name), "success")
        return redirect(url_for("departures.show", departure_id=departure.id))
    status = 400 if request.method == "POST" else 200
    return render_template("departures/new.html", form=form), status


# Which field of the notice form a refusal of the departure service is about.
_NOTICE_FIELDS = {"invalid_dates": "last_day", "invalid_successor": "successor", "already_departing": "user",
                  "account_disabled": "user", "note_too_long": "note", "invalid_note": "note"}


def _field_of(form: DepartureForm, code: str) -> Any:
    return getattr(form, _NOTICE_FIELDS.get(code, "user"))


@bp.route("/<int:departure_id>")
@permission(Action.DEPARTURE_REPORT)
def show(departure_id: int) -> Any:
    return _show(_departure(departure_id))


def _show(departure: Departure, status: int = 200, *, complete_form: CompleteForm | None = None,
          update_form: DepartureUpdateForm | None = None, withdraw_form: WithdrawForm | None = None) -> Any:
    """The departure page; shown again after a form's input was refused (an unticked box, a change with a day
    before the notice, a withdrawal's reason too short), with that form as typed and the reason beside its
    field. The page names the leaver's customers, so that showing is a read of its own, recorded (marked
    `again`) and kept though the answer is an error: every caller has rolled back, or never did, whatever
    else the request did (a refusal's record is committed on its own by then)."""
    session, actor = db_session(), auth.current()
    again = status >= 400
    if again:
        keep_work()
    loans = service.loans_shown(session, departure)
    service.read_departure(runtime(), session, actor, departure, shown="page", ctx=access_context(), again=again,
                           loans=loans)
    may_manage = bool(policy.authorize(actor, Action.DEPARTURE_MANAGE, departure))
    owners = _owners(exclude=departure.user_id)
    if update_form is None:
        update_form = DepartureUpdateForm(formdata=None)
        update_form.last_day.data = departure.user.last_day
        update_form.note.data = departure.note
    update_form.successor.choices = _choices(owners, _("(unchanged)"))
    reassign_form = ReassignForm(formdata=None)
    reassign_form.to_user.choices = _reassign_choices(owners)
    return render_template(
        "departures/show.html", departure=departure, may_manage=may_manage, update_form=update_form,
        reassign_form=reassign_form, confirm_form=ConfirmForm(formdata=None), loans=loans,
        withdraw_form=withdraw_form or WithdrawForm(formdata=None),
        complete_form=complete_form or CompleteForm(formdata=None),
        completion=departure_rules.completion_problem(departure), audit_url=_audit_url(),
        letters_by_item=letters.letters_of_items(session, [item.id for item in departure.items]),
        may_revoke=lambda letter: letters.may_revoke(actor, letter), now=utcnow(),
    ), status


@bp.route("/<int:departure_id>/update", methods=["POST"])
@permission(Action.DEPARTURE_MANAGE)
def update(departure_id: int) -> Any:
    session, actor = db_session(), auth.current()
    departure = _departure(departure_id)
    form = DepartureUpdateForm()
    form.successor.choices = _choices(_owners(exclude=departure.user_id), _("(unchanged)"))
    if not form.validate_on_submit():
        # The form's own checks failed (a note too long, a day that is no date): nothing decided; the page
        # again, as typed, the reason beside the field (a refusal page would lose what was typed).
        return _show(departure, 400, update_form=form)
    try:
        service.update_departure(runtime(), session, actor, departure, last_day=form.last_day.data,
                                 successor=_user(form.successor.data), note=form.note.data, ctx=access_context())
    except ServiceError as exc:
        field = _UPDATE_FIELDS.get(exc.code)
        if field is None:
            raise
        # Refused for what was typed (a day before the notice): nothing of the change is kept, the form again.
        session.rollback()
        getattr(form, field).errors = [exc.message]
        return _show(departure, exc.status, update_form=form)
    if departure.user.past_last_day and departure.offboarded_at is None:
        _finish_due()
    flash(_("Departure updated."), "success")
    return redirect(url_for("departures.show", departure_id=departure.id))


# Which field of the change form a refusal of the departure service is about; any other refusal (a state, a
# handover that cannot move) is about no field, and stands on a page of its own.
_UPDATE_FIELDS = {"invalid_dates": "last_day", "invalid_successor": "successor", "note_too_long": "note",
                  "invalid_note": "note"}


@bp.route("/<int:departure_id>/items/<int:item_id>/reassign", methods=["POST"])
@permission(Action.DEPARTURE_MANAGE)
def reassign(departure_id: int, item_id: int) -> Any:
    session, actor = db_session(), auth.current()
    departure = _departure(departure_id)
    item = _item(departure, item_id)
    form = ReassignForm()
    form.to_user.choices = _reassign_choices(_owners(exclude=departure.user_id))
    if not form.validate_on_submit():
        raise ServiceError("invalid_form", _("Choose who receives the customer."))
    if form.to_user.data == TO_POOL:
        service.return_to_pool(runtime(), session, actor, item, ctx=access_context())
        flash(_("%(customer)s is back in the shared pool.", customer=item.customer.name), "success")
        return redirect(url_for("departures.show", departure_id=departure.id))
    to_user = _user(form.to_user.data)
    if to_user is None:
        raise ServiceError("invalid_successor", _("Choose who receives the customer."))
    service.reassign(runtime(), session, actor, item, to_user, ctx=access_context())
    flash(_("%(customer)s now belongs to %(name)s.", customer=item.customer.name, name=to_user.display_name),
          "success")
    return redirect(url_for("departures.show", departure_id=departure.id))


@bp.route("/<int:departure_id>/complete", methods=["POST"])
@permission(Action.DEPARTURE_MANAGE)
def complete(departure_id: int) -> Any:
    session, actor = db_session(), auth.current()
    departure = _departure(departure_id)
    form = CompleteForm()
    if not form.validate_on_submit():
        return _show(departure, 400, complete_form=form)
    service.complete(runtime(), session, actor, departure, ctx=access_context())
    flash(_("Departure of %(name)s completed.", name=departure.user.display_name), "success")
    return redirect(url_for("departures.show", departure_id=departure.id))


@bp.route("/<int:departure_id>/withdraw", methods=["POST"])
@permission(Action.DEPARTURE_MANAGE)
def withdraw(departure_id: int) -> Any:
    """The notice is withdrawn: normal policy again for the person (see `services.departures.withdraw`)."""
    session, actor = db_session(), auth.current()
    departure = _departure(departure_id)
    form = WithdrawForm()
    if not form.validate_on_submit():
        # The form's own checks failed (a reason too long): nothing decided; the page again, as typed.
        return _show(departure, 400, withdraw_form=form)
    try:
        user = service.withdraw(runtime(), session, actor, departure, reason=form.reason.data or "",
                                ctx=access_context())
    except policy.Denied as exc:
        if not policy.is_slip(exc.decision.code):
            raise
        record_form_refusal(exc)
        form.reason.errors = [_(exc.decision.message)]
        return _show(departure, 403, withdraw_form=form)
    flash(_("The notice of %(name)s is withdrawn.", name=user.display_name), "success")
    return redirect(url_for("departures.index"))


# -- the report ----------------------------------------------------------------------------------------


def _report(departure_id: int, fmt: str) -> report_service.Report:
    session, actor = db_session(), auth.current()
    departure = _departure(departure_id)
    days = request.args.get("days", type=int)
    report = report_service.produce(runtime(), session, actor, departure.user, fmt=fmt, lookback_days=days,
                                    ctx=access_context())
    return report


def _filename(report: report_service.Report, ext: str) -> str:
    return f"departure-report-{report.user.username}-{report.generated_at:%Y%m%d-%H%M}.{ext}"


@bp.route("/<int:departure_id>/report")
@permission(Action.DEPARTURE_REPORT)
def report(departure_id: int) -> Any:
    data = _report(departure_id, "html")
    return render_template("departures/report.html", report=data, departure_id=departure_id,
                           audit_url=_audit_url())


@bp.route("/<int:departure_id>/report.csv")
@permission(Action.DEPARTURE_REPORT)
def report_csv(departure_id: int) -> Any:
    data = _report(departure_id, "csv")
    return Response(report_service.csv_bytes(data), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{_filename(data, "csv")}"', "Cache-Control": "no-store"})


@bp.route("/<int:departure_id>/report.pdf")
@permission(Action.DEPARTURE_REPORT)
def report_pdf(departure_id: int) -> Any:
    data = _report(departure_id, "pdf")
    return Response(report_service.pdf_bytes(data, RULE_TITLES), mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{_filename(data, "pdf")}"', "Cache-Control": "no-store"})


# -- handover: the successor's confirmations and the approver's waiver -----------------------------------


@bp.route("/handover")
@permission(Action.HANDOVER_CONFIRM)
def handover() -> Any:
    return _handover_page()


def _handover_page(status: int = 200, typed: ContactForm | None = None, typed_item: int | None = None,
                   decision: policy.Decision | None = None) -> Any:
    """The handover list, recorded as a listing of its customers (`departures.read_handover`). Shown again
    after a refused confirmation (with what was typed), it names them a second time: that read is recorded
    too, marked `again`, and kept though the answer is an error (a refusal rolled back the act and committed
    its record; a form's own check decided nothing)."""
    again = status >= 400
    if again:
        keep_work()
    handover = service.read_handover(runtime(), db_session(), auth.current(), name_waivable=False,
                                     ctx=access_context(), again=again)
    context: dict[str, Any] = {"failed_item": typed_item} if typed_item is not None else {}
    if decision is not None:
        context["decision"] = decision
    return render_template("departures/handover.html", items=handover.items,
                           forms=_contact_forms(handover.items, typed, typed_item),
                           override_candidates=handover.awaiting if status < 400 else [], **context), status


def _contact_forms(items: list[HandoverItem], typed: ContactForm | None = None,
                   typed_item: int | None = None) -> dict[int, ContactForm]:
    """A blank confirmation form for each unconfirmed item, but the one just typed and refused, kept."""
    forms = {item.id: ContactForm(formdata=None, prefix=f"i{item.id}") for item in items if not item.confirmed}
    if typed is not None and typed_item is not None:
        forms[typed_item] = typed
    return forms


# Which field of the contact confirmation a slip is about, so its message stands beside that field (as on the
# contact editor and the loan request form), not in a banner at the top of a long list; a refusal about no
# field (`contact_not_logged`, a step to take in the contact log first) keeps the banner.
_CONTACT_FIELDS = {"contact_date_future": "contact_date", "contact_before_notice": "contact_date",
                   "reason_too_short": "note", "reason_not_meaningful": "note", "reason_copies_category": "note"}


@bp.route("/handover/items/<int:item_id>/confirm", methods=["POST"])
@permission(Action.HANDOVER_CONFIRM)
def confirm(item_id: int) -> Any:
    session, actor = db_session(), auth.current()
    item = session.get(HandoverItem, item_id)
    if item is None:
        raise policy.Denied(policy.deny("not_found"))
    form = ContactForm(prefix=f"i{item.id}")
    if not form.validate_on_submit():
        # The page again, with what was typed and the reason beside the field (a refusal page would lose it).
        return _handover_page(400, form, item.id)
    try:
        service.confirm_contact(runtime(), session, actor, item, contact_date=form.contact_date.data,
                                note=form.note.data or "", ctx=access_context())
    except policy.Denied as exc:
        if not policy.shows_form_again(exc.decision.code):
            raise
        # A slip or a step still to take (the call not yet in the contact log): audited like any other refusal
        # (a missing step still counts as one), then the form again with the reason, what was typed and the way
        # to that step (a refusal page lost the note and offered only the start page).
        record_form_refusal(exc)
        field = _CONTACT_FIELDS.get(exc.decision.code)
        if field is None:  # a step to take first (the contact log): about the whole form, a banner above it
            return _handover_page(403, form, item.id, exc.decision)
        getattr(form, field).errors = [_(exc.decision.message)]
        return _handover_page(403, form, item.id)
    flash(_("Contact with %(customer)s confirmed.", customer=item.customer.name), "success")
    return redirect(url_for("departures.handover"))


@bp.route("/<int:departure_id>/override", methods=["GET", "POST"])
@permission(Action.DEPARTURE_OVERRIDE)
def override(departure_id: int) -> Any:
    session, actor = db_session(), auth.current()
    departure = _departure(departure_id)
    form = OverrideForm()
    pending = departure_rules.waivable(departure)
    if form.validate_on_submit():
        try:
            service.override(runtime(), session, actor, departure, reason=form.reason.data or "",
                             ctx=access_context())
        except policy.Denied as exc:
            if not policy.is_slip(exc.decision.code):
                raise
            record_form_refusal(exc)
            return _override_page(departure, form, 403, exc.decision)
        flash(ngettext("Confirmation waived for %(num)d customer.", "Confirmations waived for %(num)d customers.",
                       len(pending)), "success")
        return redirect(url_for("departures.handover"))
    # A form sent and failing its own checks (a reason too long) is shown again: an error, not a first showing.
    return _override_page(departure, form, 400 if form.is_submitted() else 200)


def _override_page(departure: Departure, form: OverrideForm, status: int = 200,
                   decision: policy.Decision | None = None) -> Any:
    """The key customers an override would waive, recorded as a listing of them (`departures.read_override`).
    Shown again after a refused or failed try, it names them a second time: that read is recorded too, marked
    `again`, and kept though the answer is an error (the request has written nothing else by then: a
    refusal rolled back the act and committed its record)."""
    again = status >= 400
    if again:
        keep_work()
    pending = service.read_override(runtime(), db_session(), auth.current(), departure, ctx=access_context(),
                                    again=again)
    context: dict[str, Any] = {"decision": decision} if decision is not None else {}
    return render_template("departures/override.html", departure=departure, pending=pending, form=form,
                           **context), status


# -- custodians: the open loans of people on notice -------------------------------------------------------


@bp.route("/loans")
@permission(Action.LOAN_REVOKE)
def leavers_loans() -> Any:
    return _leavers_page()


def _leavers_page(status: int = 200, typed: LeaverRevokeForm | None = None, typed_loan: int | None = None) -> Any:
    """The open loans of people on notice, recorded as a listing of them (`departures.leavers_open_loans`).
    Shown again after a revocation's reason was refused, with the reason as typed beside that loan and the
    refusal beside it: the list names files and customers once more, a read of its own, recorded (marked
    `again`) and kept though the answer is an error (a refusal rolled back the act and committed its record)."""
    session, actor = db_session(), auth.current()
    again = status >= 400
    if again:
        keep_work()
    loans = service.leavers_open_loans(runtime(), session, actor, ctx=access_context(), again=again)
    revocable = service.revocable_by(actor, loans)
    form = LeaverRevokeForm(formdata=None)
    form.reason.data = service.LEAVER_REVOKE_REASON
    return render_template("departures/loans.html", loans=loans, revocable=revocable, form=form, typed=typed,
                           typed_loan=typed_loan), status


@bp.route("/loans/<int:loan_id>/revoke", methods=["POST"])
@permission(Action.LOAN_REVOKE)
def revoke_leaver_loan(loan_id: int) -> Any:
    session, actor = db_session(), auth.current()
    loan = session.get(Loan, loan_id)
    if loan is None or loan.borrower.status != UserStatus.DEPARTING:
        raise policy.Denied(policy.deny("not_found"), loan_id=loan_id)
    form = LeaverRevokeForm()
    reason = form.reason.data or ""
    # The form's own checks failed (a reason too long): the list again, as typed; unless the policy refuses the
    # act anyway for who or what (not for the reason), which is then a refusal like any other.
    if not form.validate_on_submit() and loan_context.act(actor, Action.LOAN_REVOKE, loan, reason=reason).open:
        return _leavers_page(400, form, loan.id)
    try:
        loans_service.revoke(runtime(), session, actor, loan, reason=reason, ctx=access_context())
    except policy.Denied as exc:
        if not policy.is_slip(exc.decision.code):
            raise
        record_form_refusal(exc)
        form.reason.errors = [*form.reason.errors, _(exc.decision.message)]
        return _leavers_page(403, form, loan.id)
    flash(_("Loan %(id)d of %(name)s revoked.", id=loan.id, name=loan.borrower.display_name), "success")
    return redirect(url_for("departures.leavers_loans"))
