"""Customer record pages: the record on the customer page (masked), the reveal, the edit form, the
contact log and the history with its diffs.

The customer page itself (`vault.pages.customers.show`) renders through `render_customer` here, so the
masked record, the forms and the reveal's answer share one template, and a page shown again after a refused
form holds everything the page's visit does.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import ngettext

from vault import policy
from vault.core.actions import Action
from vault.core.errors import NotFound, ServiceError
from vault.models import Customer, utcnow
from vault.pages.forms.customers import CoOwnerForm, OwnerForm, RemoveCoOwnerForm
from vault.pages.forms.documents import choice
from vault.pages.forms.pool import ReleaseForm
from vault.pages.forms.records import (
    Kept,
    LogForm,
    RecordForm,
    RevealForm,
    submitted_contacts,
    submitted_notes,
    submitted_terms,
)
from vault.pages.refusals import record_form_refusal
from vault.services import customers as customers_service
from vault.services import documents as documents_service
from vault.services import letters, pool, records, upkeep
from vault.services.records import InvalidRecord, RecordView
from vault.web import auth
from vault.web.guard import permission
from vault.web.pipeline import (
    access_context,
    db_session,
    keep_work,
    not_found_response,
    runtime,
)

bp = Blueprint("records", __name__, url_prefix="/customers")


def _may(action: Action, customer: Customer, **context: Any) -> bool:
    return bool(policy.authorize(auth.current(), action, customer, **context))


def assignment_forms(customer: Customer, *, submitted: bool = False) -> dict[str, Any]:
    """The forms deciding who works the customer (owner, co-owner added, co-owner taken off), their choices
    filled in; `submitted` binds them to the request's form, otherwise they are empty, for the page."""
    actor = auth.current()
    bound: dict[str, Any] = {} if submitted else {"formdata": None}
    people = [u for u in customers_service.owner_choices(db_session()) if u.id != actor.id]
    owner = OwnerForm(prefix="owner", **bound)
    owner.owner.choices = [choice(u.id, f"{u.display_name} ({u.username})") for u in people
                           if u.id != customer.owner_id]
    co_owner = CoOwnerForm(prefix="co", **bound)
    co_owner.person.choices = [choice(u.id, f"{u.display_name} ({u.username})") for u in people
                               if not customer.worked_by(u.id)]
    remove = RemoveCoOwnerForm(prefix="rm", **bound)
    remove.person.choices = [choice(c.user_id, c.user.display_name) for c in customer.co_owners]
    return {"owner": owner, "co_owner": co_owner, "remove": remove}


def render_customer(customer: Customer, *, view: RecordView | None = None, reveal_form: RevealForm | None = None,
                    edit_form: RecordForm | None = None, log_form: LogForm | None = None,
                    release_form: ReleaseForm | None = None, status: int = 200) -> Any:
    """The customer page: facts, the record (masked unless `view` is a reveal's), the forms the actor may
    use, and the files. Every answer showing the page builds it here, the visit and a page shown again with
    a refused form alike, so neither shows less than the other (the forms deciding who works the customer
    were once left off the pages shown again).

    A form's error (`status` 400) still answers with this page, so the read that opened the customer
    (`read_customer`: its audit record and its count for the early warning) stands with the error instead
    of being rolled back with it; every caller has given back whatever else the request did."""
    session, actor, rt = db_session(), auth.current(), runtime()
    if status >= 400:
        keep_work()
    view = view or records.masked_view(rt, session, customer)
    if edit_form is None and _may(Action.CUSTOMER_EDIT, customer):
        edit_form = RecordForm(prefix="rec", formdata=None, data={**view.facts, "version": str(view.version)})
        # The person has paid for these with a reveal: they may edit from them. A group with nothing in it
        # hides nothing, so a new customer's first contacts and terms need no reveal.
        if view.revealed or not view.contacts:
            edit_form.show_contacts(view.contacts)
        if view.revealed or not view.terms:
            edit_form.show_terms(view.terms)
        if view.revealed or not view.notes:
            edit_form.show_notes(view.notes)
    successor = records.successor_of(session, actor, customer) is not None
    if log_form is None and _may(Action.CUSTOMER_LOG, customer, successor=successor):
        log_form = LogForm(prefix="log", formdata=None)
    remaining, today = records.remaining_reveals(rt, session, actor, customer)
    documents = documents_service.customer_documents(session, actor, customer)
    currency = upkeep.record_state(rt, session, customer)
    assignment = (assignment_forms(customer)
                  if _may(Action.CUSTOMER_ASSIGN, customer, gaining=None) else None)
    return render_template("customers/show.html", customer=customer, documents=documents, forms=assignment,
                           record=view, reveal_form=reveal_form or RevealForm(prefix="rv", formdata=None),
                           edit_form=edit_form, log_form=log_form, remaining=remaining, remaining_today=today,
                           may_history=_may(Action.CUSTOMER_HISTORY, customer), currency=currency,
                           customer_letters=letters.letters_of(session, customer.id), now=utcnow(),
                           may_revoke=lambda letter: letters.may_revoke(actor, letter),
                           release_form=release_form or (ReleaseForm(prefix="rel", formdata=None)
                                                         if _may(Action.POOL_RELEASE, customer) else None)), status


def _beside_fields(form: Any, problems: dict[str, policy.Decision]) -> None:
    """Put each input problem the policy found beside its field, in the reader's language; a field the
    form already refused keeps that error alone."""
    for name, problem in problems.items():
        field = getattr(form, name, None)
        if field is not None and not field.errors:
            field.errors = [_(problem.message)]


def _refusals_beside_rows(form: RecordForm, exc: ServiceError, contacts: list[Kept], terms: list[Kept]) -> None:
    """Every refused value of the edit beside its input. The service stops at the first; each contact and
    term is then checked alone with the service's own rules (which decide and record nothing), so one
    answer shows every slip, each under the contact or term it is in, not a path such as `contacts[2]`."""
    placed = _rows_beside(contacts, terms)
    if exc.message in placed:
        return
    field = getattr(exc, "field", "")
    if field in records.FACTS and not getattr(form, field).errors:
        _beside(getattr(form, field), exc, placed)
    else:  # about a whole group (too many contacts or terms), or nothing the rows above show
        form.group_errors["terms" if field.startswith("terms") else "contacts"].append(exc.message)


def _rows_beside(contacts: list[Kept], terms: list[Kept]) -> set[str]:
    """Check each contact and term alone with the service's rules and put every refusal beside its input;
    return the refusals placed."""
    placed: set[str] = set()
    for index, kept in enumerate(contacts):
        try:
            records.clean_contact(kept.value, f"contacts[{index}]")
        except InvalidRecord as problem:
            # "contacts[0].phones", "contacts[0].messaging.telegram": the group's field is the second step.
            steps = problem.field.split(".")
            _beside(getattr(kept.row, steps[1]) if len(steps) > 1 and steps[1] in kept.row else kept.row.name,
                    problem, placed)
    for kept in terms:
        name, value = kept.value
        try:
            records.clean_terms({name: value})
        except InvalidRecord as problem:
            _beside(kept.row.value if problem.field.startswith("terms.") else kept.row.name, problem, placed)
    return placed


def _beside(field: Any, problem: ServiceError, placed: set[str]) -> None:
    """Put a service's refusal under `field` in the reader's language, as "Phones: '12' is not a phone
    number" (the field's own label, not the API's path); a field already refused keeps its first error."""
    placed.add(problem.message)
    if field.errors:
        return
    why = getattr(problem, "why", None)
    field.errors = [_("%(field)s: %(why)s", field=field.label.text, why=why) if why else problem.message]


def _customer(customer_id: int) -> Customer:
    return customers_service.read_customer(runtime(), db_session(), auth.current(), customer_id,
                                           ctx=access_context())


def shown_again(customer_id: int, status: int, *, may: Action | None = None, **forms: Any) -> Any:
    """The customer page again after one of its forms was refused, the form as typed with its errors.

    Whatever the request did for the act is given back first: the read that opened the customer for it too,
    since the page's read is recorded once more, marked `again`, so the log tells a retry from a visit and the
    early warning counts one read, not two. A refusal's record already stands in a unit of its own.
    `render_customer` keeps this read with the error; should its record fail, the request fails: no customer
    shown without it. `may`: an action the reader must still be allowed on this customer for the form to be
    worth showing again (any other refusal stands on its own page: nothing in the form would change it)."""
    db_session().rollback()
    actor = auth.current()
    customer = customers_service.read_customer(runtime(), db_session(), actor, customer_id,
                                               ctx=access_context(), again=True)
    if may is not None:
        policy.require(actor, may, customer, audit={"customer_id": customer.id})
    return render_customer(customer, status=status, **forms)


@bp.route("/<int:customer_id>/reveal", methods=["POST"])
@permission(Action.CUSTOMER_REVEAL)
def reveal(customer_id: int) -> Any:
    """Show the contacts, terms, notes and log in clear, once, for a reason and a place (spends a reveal)."""
    customer = _customer(customer_id)
    form = RevealForm(prefix="rv")
    typed = {"reason": form.reason.data or "", "place": form.place.data or ""}
    if not form.validate_on_submit():
        # Nothing decided, spent or recorded; the policy's input rules still speak beside the fields the
        # form let through, so every slip is shown in this one answer.
        _beside_fields(form, records.reveal_problems(**typed))
        return shown_again(customer_id, 400, reveal_form=form)
    try:
        shown = records.reveal(runtime(), db_session(), auth.current(), customer, ctx=access_context(), **typed)
    except policy.Denied as exc:
        problems = records.reveal_problems(**typed)
        if exc.decision.code not in {problem.code for problem in problems.values()}:
            raise  # refused for who the person is or what they have spent, not for what was typed
        # Refused for the first slip, before anything was spent: recorded where every form refusal is (as
        # the API's refusal is; should that record fail, the reveal was refused all the same and the form
        # is still shown); the customer page shown again keeps its read's record beside the refusal's, and
        # every slip stands beside its field, the form filled in as typed.
        record_form_refusal(exc)
        _beside_fields(form, problems)
        return shown_again(customer_id, 403, reveal_form=form)
    flash(ngettext("Revealed for you: %(num)d reveal of this customer left in the period, %(today)d today.",
                   "Revealed for you: %(num)d reveals of this customer left in the period, %(today)d today.",
                   shown.remaining, today=shown.remaining_today), "success")
    return render_customer(customer, view=shown.record)


@bp.route("/<int:customer_id>/record", methods=["POST"])
@permission(Action.CUSTOMER_EDIT)
def edit(customer_id: int) -> Any:
    records.hold_for_edit(db_session(), customer_id)  # before the read below is recorded
    customer = _customer(customer_id)
    policy.require(auth.current(), Action.CUSTOMER_EDIT, customer, audit={"customer_id": customer.id})
    form = RecordForm(prefix="rec")
    # Groups the form did not show (masked) are left out, so the service keeps them as they are.
    contacts, terms, notes = submitted_contacts(form), submitted_terms(form), submitted_notes(form)
    if not form.validate_on_submit():
        # The rows' values are checked too, so one answer shows every slip, not the form's first.
        _rows_beside(contacts or [], terms or [])
        return shown_again(customer_id, 400, edit_form=form)
    values: dict[str, Any] = {name: getattr(form, name).data or "" for name in records.FACTS}
    if contacts is not None:
        values["contacts"] = [kept.value for kept in contacts]
    if terms is not None:
        values["terms"] = dict(kept.value for kept in terms)
    if notes is not None:
        values["notes"] = notes
    seen = form.version.data or ""
    # A form from before the field (or one whose field was tampered with) is saved as before, unchecked.
    expected = int(seen) if seen.isascii() and seen.isdigit() and len(seen) < 10 else None
    try:
        version = records.edit(runtime(), db_session(), auth.current(), customer, values, ctx=access_context(),
                               expected_version=expected)
    except NotFound:
        raise
    except records.RecordChanged as exc:
        # Someone saved since this form was filled: what was typed comes back beside the record as it is
        # now, and the next save (from this form) is made over that version, knowingly.
        flash(_(exc.message), "error")
        form.version.data = str(exc.version)
        return shown_again(customer_id, 409, edit_form=form)
    except ServiceError as exc:
        _refusals_beside_rows(form, exc, contacts or [], terms or [])
        return shown_again(customer_id, 400, edit_form=form)
    if version is None:
        flash(_("Nothing changed."), "info")
    else:
        flash(_("Record saved as version %(n)s.", n=version.number), "success")
    return redirect(url_for("customers.show", customer_id=customer.id))


@bp.route("/<int:customer_id>/log", methods=["POST"])
@permission(Action.CUSTOMER_LOG)
def add_log(customer_id: int) -> Any:
    customer = _customer(customer_id)
    actor = auth.current()
    policy.require(actor, Action.CUSTOMER_LOG, customer, audit={"customer_id": customer.id},
                   successor=records.successor_of(db_session(), actor, customer) is not None)
    form = LogForm(prefix="log")
    if not form.validate_on_submit():
        return shown_again(customer_id, 400, log_form=form)
    try:
        records.add_log(runtime(), db_session(), auth.current(), customer, happened_on=form.happened_on.data,
                        channel=form.channel.data, contact=form.contact.data, topic=form.topic.data,
                        result=form.result.data or "", next_step=form.next_step.data or "",
                        verification=form.verification.data, ctx=access_context())
    except NotFound:
        raise
    except ServiceError as exc:
        field = getattr(form, getattr(exc, "field", "topic"), None) or form.topic
        field.errors = [exc.message]
        return shown_again(customer_id, 400, log_form=form)
    flash(_("Contact logged."), "success")
    return redirect(url_for("customers.show", customer_id=customer.id))


@bp.route("/<int:customer_id>/history")
@permission(Action.CUSTOMER_HISTORY)
def history(customer_id: int) -> Any:
    customer = _customer(customer_id)
    versions = records.history(runtime(), db_session(), auth.current(), customer, ctx=access_context())
    return render_template("customers/history.html", customer=customer, versions=versions,
                           ownership=pool.ownership_history(db_session(), customer))


@bp.route("/<int:customer_id>/history/<int:number>")
@permission(Action.CUSTOMER_HISTORY)
def version(customer_id: int, number: int) -> Any:
    customer = _customer(customer_id)
    data = records.old_version(runtime(), db_session(), auth.current(), customer, number, ctx=access_context())
    return render_template("customers/version.html", customer=customer, number=number, data=data)


@bp.errorhandler(ServiceError)
def _service_error(exc: ServiceError) -> Any:
    if isinstance(exc, NotFound):
        return not_found_response(exc)
    return render_template("error.html", error=exc), exc.status
