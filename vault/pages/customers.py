"""Customer pages: the list with search, creation by compilers, and one customer with its documents."""

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
from vault.models import Document, User
from vault.pages.forms.documents import CustomerForm, choice
from vault.services import customers as customers_service
from vault.services import documents as documents_service
from vault.services.uploads import human_size
from vault.web import auth, navigation
from vault.web.guard import permission
from vault.web.pipeline import access_context, db_session, runtime

bp = Blueprint("customers", __name__, url_prefix="/customers")
navigation.add("customers.index", Action.CUSTOMER_READ, "Customers")

SEGMENT_LABELS = {"vip": "VIP", "key": "Key account", "ordinary": "Ordinary"}


@bp.app_template_filter("filesize")
def _filesize(value: int | None) -> str:
    return "" if value is None else human_size(int(value))


@bp.app_template_filter("segment_label")
def _segment_label(value: Any) -> str:
    return _(SEGMENT_LABELS.get(str(value), str(value)))


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
    session = db_session()
    found = customers_service.list_customers(session, auth.current(), query=query, page=page)
    counts: dict[int, int] = {}
    if found.customers:
        ids = [c.id for c in found.customers]
        counts = dict(session.execute(  # type: ignore[arg-type]
            select(Document.customer_id, func.count()).where(Document.customer_id.in_(ids))
            .group_by(Document.customer_id)).all())
    return render_template("customers/index.html", found=found, query=query, counts=counts)


@bp.route("/new", methods=["GET", "POST"])
@permission(Action.CUSTOMER_CREATE)
def new() -> Any:
    session, actor = db_session(), auth.current()
    form = CustomerForm()
    owners = customers_service.owner_choices(session)
    form.owner.choices = [choice(u.id, f"{u.display_name} ({u.username})") for u in owners]
    if request.method == "GET" and any(u.id == actor.id for u in owners):
        form.owner.data = actor.id
    status = 200
    if form.validate_on_submit():
        owner = session.get(User, form.owner.data)
        try:
            customer = customers_service.create_customer(
                runtime(), session, actor, name=form.name.data, segment=form.segment.data, owner=owner,
                notes=form.notes.data or "", ctx=access_context())
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
    with hidden_as_not_found(customer_id=customer_id):
        customer = documents_service.get_customer(session, actor, customer_id)
    documents = documents_service.customer_documents(session, actor, customer)
    return render_template("customers/show.html", customer=customer, documents=documents)
