"""The shared pool's page: the pooled customers one may take (names and segments only) with a claim button
each, a manager's assignment form, and returning a customer to the pool from its page."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from vault.core.actions import Action
from vault.core.audit_actions import AuditAction
from vault.core.errors import NotFound, ServiceError
from vault.core.languages import N_
from vault.models import Role, User
from vault.pages.forms.documents import choice
from vault.pages.forms.pool import AssignForm, ClaimForm, ReleaseForm
from vault.pages.records import shown_again
from vault.policy.customers import manages, on_notice
from vault.services import customers as customers_service
from vault.services import pool as pool_service
from vault.web import auth, navigation
from vault.web.guard import permission
from vault.web.pipeline import access_context, db_session, not_found_response, runtime

bp = Blueprint("pool", __name__, url_prefix="/pool")
# Someone on notice neither claims nor assigns: the pool would only refuse them.
navigation.add("pool.index", Action.POOL_READ, "Shared pool", shown=lambda person: not on_notice(person))

# The customer history's ownership events, in words (`pool.ownership_history`).
OWNERSHIP_LABELS = {
    AuditAction.CUSTOMER_CREATE: N_("Created"),
    AuditAction.CUSTOMER_OWNER: N_("Account manager changed"),
    AuditAction.CUSTOMER_HANDOVER: N_("Handed over in a departure"),
    AuditAction.POOL_CLAIM: N_("Claimed from the pool"),
    AuditAction.POOL_ASSIGN: N_("Assigned from the pool"),
    AuditAction.POOL_RELEASE: N_("Returned to the pool"),
    AuditAction.POOL_LAPSE: N_("Claim lapsed: back to the pool"),
    AuditAction.POOL_RETURN: N_("Returned to the pool by a departure"),
}


@bp.app_template_filter("ownership_label")
def _ownership_label(action: str) -> str:
    return _(OWNERSHIP_LABELS.get(action, action))


def assignable_people(actor: User) -> list[User]:
    """Whom the actor may give a pooled customer: account managers below them (anyone's for an approver)."""
    people = customers_service.owner_choices(db_session())
    if Role.APPROVER in actor.role_set:
        return [u for u in people if u.id != actor.id]
    return [u for u in people if u.id != actor.id and manages(actor, u)]


def _assign_form(actor: User) -> AssignForm:
    form = AssignForm(prefix="as")
    form.owner.choices = [choice(u.id, f"{u.display_name} ({u.username})") for u in assignable_people(actor)]
    return form


@bp.route("/")
@permission(Action.POOL_READ)
def index() -> Any:
    actor = auth.current()
    page = request.args.get("page", 1, type=int)
    found = pool_service.list_pool(runtime(), db_session(), actor, page=page, ctx=access_context())
    assign_form = _assign_form(actor) if found.may_assign else None
    return render_template("pool/index.html", found=found, claim_form=ClaimForm(formdata=None),
                           assign_form=assign_form)


@bp.route("/<int:customer_id>/claim", methods=["POST"])
@permission(Action.POOL_CLAIM)
def claim(customer_id: int) -> Any:
    if not ClaimForm().validate_on_submit():
        flash(_("The form has expired; please try again."), "error")
        return redirect(url_for("pool.index"))
    customer = pool_service.claim(runtime(), db_session(), auth.current(), customer_id, ctx=access_context())
    flash(_("%(name)s is now yours: log a contact or update the record within %(days)s days, or it goes back to "
            "the pool.", name=customer.name, days=runtime().settings.pool.lapse_days), "success")
    return redirect(url_for("customers.show", customer_id=customer.id))


@bp.route("/<int:customer_id>/assign", methods=["POST"])
@permission(Action.POOL_ASSIGN)
def assign(customer_id: int) -> Any:
    actor = auth.current()
    pool_service.get_pooled(db_session(), actor, customer_id)  # taken or unseen: refused before the form
    form = _assign_form(actor)
    if not form.validate_on_submit():
        flash(_("Choose the person to give the customer to."), "error")
        return redirect(url_for("pool.index"))
    person = db_session().get(User, form.owner.data)
    if person is None:
        raise NotFound("person")
    customer = pool_service.assign(runtime(), db_session(), actor, customer_id, person, ctx=access_context())
    flash(_("%(customer)s is now %(name)s's.", customer=customer.name, name=person.display_name), "success")
    return redirect(url_for("pool.index"))


@bp.route("/<int:customer_id>/release", methods=["POST"])
@permission(Action.POOL_RELEASE)
def release(customer_id: int) -> Any:
    form = ReleaseForm(prefix="rel")
    if not form.validate_on_submit():
        return _release_again(customer_id, form)
    try:
        customer = pool_service.release(runtime(), db_session(), auth.current(), customer_id,
                                        reason=form.reason.data, ctx=access_context())
    except NotFound:
        raise
    except ServiceError as exc:  # a reason the form let through that says nothing once its spaces are taken out
        form.reason.errors = [exc.message]
        return _release_again(customer_id, form)
    flash(_("%(name)s is back in the pool.", name=customer.name), "success")
    return redirect(url_for("pool.index"))


def _release_again(customer_id: int, form: ReleaseForm) -> Any:
    """The customer page again, 400, with the reason as typed and why it was refused beside it: before, a flash
    and a redirect lost what was typed. Only for someone who may release this customer: any other refusal (who
    they are, a customer already pooled) stands on its own page, since nothing in the form would change it.
    The page shows the customer, so its read is recorded, marked `again`, and kept with the error."""
    return shown_again(customer_id, 400, may=Action.POOL_RELEASE, release_form=form)


@bp.errorhandler(ServiceError)
def _service_error(exc: ServiceError) -> Any:
    if isinstance(exc, NotFound):
        return not_found_response(exc)
    db_session().rollback()
    return render_template("error.html", error=exc), exc.status
