"""Customer pages: the customers one works (with search), the look-up for any other, creation by compilers,
one customer with its documents, and who works it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from vault import policy
from vault.core.actions import Action
from vault.core.errors import NotFound, ServiceError
from vault.core.languages import N_
from vault.models import Customer, Document, User
from vault.pages.forms.customers import LookupForm
from vault.pages.forms.documents import CustomerForm, choice
from vault.pages.records import assignment_forms, render_customer
from vault.services import customers as customers_service
from vault.web import auth, locale, navigation
from vault.web.guard import permission
from vault.web.pipeline import access_context, db_session, not_found_response, runtime

bp = Blueprint("customers", __name__, url_prefix="/customers")
navigation.add("customers.index", Action.CUSTOMER_READ, "Customers")

TO_POOL = 0  # the new-customer form's "no owner: a lead for the shared pool" choice
SEGMENT_LABELS = {"vip": N_("VIP"), "key": N_("Key account"), "ordinary": N_("Ordinary")}


@bp.app_template_filter("filesize")
def _filesize(value: int | None) -> str:
    return locale.size(None if value is None else int(value))


@bp.app_template_filter("segment_label")
def _segment_label(value: Any) -> str:
    """The segment's name in the reader's language; "—" for none (a customer id the report names that no
    longer exists, say): asking the catalogue for an empty text answers its header."""
    if value is None or str(value) == "":
        return "—"
    label = SEGMENT_LABELS.get(str(value))
    return _(label) if label is not None else str(value)


@contextmanager
def hidden_as_not_found(**audit: Any) -> Iterator[None]:
    """Turn a NotFound into a refusal with code not_found: a 404 page, and an audited probe."""
    try:
        yield
    except NotFound:
        raise policy.Denied(policy.deny("not_found"), **audit) from None


@bp.route("/")
@permission(Action.CUSTOMER_READ)
def index() -> Any:
    query = request.args.get("q", "", type=str)[:200]
    page = request.args.get("page", 1, type=int)
    mine = request.args.get("mine", "") == "1"
    session = db_session()
    found = customers_service.list_customers(runtime(), session, auth.current(), query=query, page=page,
                                             mine=mine, ctx=access_context())
    counts: dict[int, int] = {}
    if found.customers:
        ids = [c.id for c in found.customers]
        counts = dict(session.execute(  # type: ignore[arg-type]
            select(Document.customer_id, func.count()).where(Document.customer_id.in_(ids))
            .group_by(Document.customer_id)).all())
    return render_template("customers/index.html", found=found, query=query, counts=counts, mine=mine,
                           lookup_form=LookupForm(formdata=None))


@bp.route("/lookup")
@permission(Action.CUSTOMER_LOOKUP)
def lookup() -> Any:
    """Look up a customer one does not work: at most five names, each look-up audited and counted against the
    person's daily cap, whose remainder the page shows (a spent cap is the refusal page, recorded)."""
    form = LookupForm(request.args)
    session, actor = db_session(), auth.current()
    found = None
    status = 200
    if request.args:
        try:
            found = customers_service.lookup(runtime(), session, actor, form.q.data or "", ctx=access_context())
        except ServiceError as exc:
            form.q.errors = [_(exc.message)]
            status = 400
    return render_template("customers/lookup.html", form=form, found=found, limit=customers_service.LOOKUP_MAX,
                           left=customers_service.lookups_left(runtime(), session, actor)), status


@bp.route("/new", methods=["GET", "POST"])
@permission(Action.CUSTOMER_CREATE)
def new() -> Any:
    session, actor = db_session(), auth.current()
    form = CustomerForm()
    owners = customers_service.owner_choices(session)
    form.owner.choices = [choice(u.id, f"{u.display_name} ({u.username})") for u in owners]
    form.owner.choices.append(choice(TO_POOL, _("Nobody: a new lead for the shared pool")))
    if request.method == "GET" and any(u.id == actor.id for u in owners):
        form.owner.data = actor.id
    status = 200
    if form.validate_on_submit():
        to_pool = form.owner.data == TO_POOL
        owner = None if to_pool else session.get(User, form.owner.data)
        try:
            customer = customers_service.create_customer(
                runtime(), session, actor, name=form.name.data, segment=form.segment.data, owner=owner,
                notes=form.notes.data or "", to_pool=to_pool, ctx=access_context())
        except ServiceError as exc:
            session.rollback()
            form.name.errors = [*form.name.errors, exc.message]
            status = 409 if exc.status == 409 else 400
        else:
            flash(_("Customer %(name)s created.", name=customer.name), "success")
            return redirect(url_for("customers.show", customer_id=customer.id))
    elif request.method == "POST":
        status = 400
    return render_template("customers/new.html", form=form), status


@bp.route("/<int:customer_id>")
@permission(Action.CUSTOMER_READ)
def show(customer_id: int) -> Any:
    session, actor = db_session(), auth.current()
    customer = customers_service.read_customer(runtime(), session, actor, customer_id, ctx=access_context())
    return render_customer(customer)


def _assignable(customer_id: int) -> Customer:
    """The customer, for someone who may decide who works it (otherwise an audited "not found")."""
    return customers_service.get_for_assignment(db_session(), auth.current(), customer_id)


def _person(user_id: int | None) -> User:
    person = db_session().get(User, user_id) if user_id else None
    if person is None:
        raise NotFound("person")
    return person


@bp.route("/<int:customer_id>/owner", methods=["POST"])
@permission(Action.CUSTOMER_ASSIGN)
def change_owner(customer_id: int) -> Any:
    customer = _assignable(customer_id)
    form = assignment_forms(customer, submitted=True)["owner"]
    if form.validate_on_submit():
        person = _person(form.owner.data)
        customers_service.set_owner(runtime(), db_session(), auth.current(), customer, person,
                                    reason=form.reason.data or "", ctx=access_context())
        flash(_("%(name)s is now the account manager.", name=person.display_name), "success")
        return redirect(url_for("customers.show", customer_id=customer.id))
    flash(_("Choose the new account manager."), "error")
    return redirect(url_for("customers.show", customer_id=customer.id))


@bp.route("/<int:customer_id>/co-owners", methods=["POST"])
@permission(Action.CUSTOMER_ASSIGN)
def add_co_owner(customer_id: int) -> Any:
    customer = _assignable(customer_id)
    form = assignment_forms(customer, submitted=True)["co_owner"]
    if form.validate_on_submit():
        person = _person(form.person.data)
        customers_service.add_co_owner(runtime(), db_session(), auth.current(), customer, person,
                                       ctx=access_context())
        flash(_("%(name)s now co-owns the customer.", name=person.display_name), "success")
    else:
        flash(_("Choose a person."), "error")
    return redirect(url_for("customers.show", customer_id=customer.id))


@bp.route("/<int:customer_id>/co-owners/remove", methods=["POST"])
@permission(Action.CUSTOMER_ASSIGN)
def remove_co_owner(customer_id: int) -> Any:
    customer = _assignable(customer_id)
    form = assignment_forms(customer, submitted=True)["remove"]
    if form.validate_on_submit():
        person = _person(form.person.data)
        customers_service.remove_co_owner(runtime(), db_session(), auth.current(), customer, person,
                                          ctx=access_context())
        flash(_("%(name)s no longer co-owns the customer.", name=person.display_name), "success")
    else:
        flash(_("Choose a co-owner."), "error")
    return redirect(url_for("customers.show", customer_id=customer.id))


@bp.errorhandler(ServiceError)
def _service_error(exc: ServiceError) -> Any:
    if isinstance(exc, NotFound):
        return not_found_response(exc)
    flash(_(exc.message), "error")
    customer_id = (request.view_args or {}).get("customer_id")
    if customer_id is not None and request.method == "POST":
        return redirect(url_for("customers.show", customer_id=customer_id))
    return render_template("error.html", error=exc), exc.status
