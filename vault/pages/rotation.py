"""The rotation page: managers see the open proposals they may decide and approve, edit or skip each one,
or run the plan; new owners confirm having reached the customers rotated to them.

Deciding is refused, whatever the page shows, by `policy.rotation`: only the current owner's managers (up
the chain) and approvers decide, never for a customer they would gain or lose.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext

from vault import policy
from vault.core.actions import Action
from vault.core.errors import NotFound, ServiceError
from vault.models import RotationProposal, User
from vault.pages.forms import ConfirmForm
from vault.pages.forms.rotation import ApproveForm, RotationContactForm, SkipForm
from vault.pages.refusals import record_form_refusal
from vault.services import rotation as service
from vault.web import auth, navigation
from vault.web.guard import permission
from vault.web.pipeline import access_context, db_session, keep_work, not_found_response, runtime

bp = Blueprint("rotation", __name__, url_prefix="/rotation")
navigation.add("rotation.index", Action.ROTATION_DECIDE, "Rotation")
bp.register_error_handler(NotFound, not_found_response)


@bp.errorhandler(ServiceError)
def _service_error(exc: ServiceError) -> Any:
    return render_template("departures/problem.html", message=exc.message, code=exc.code), exc.status


def _team_choices(proposal: RotationProposal) -> list[tuple[int, str]]:
    members = service.team_of(db_session(), proposal.from_user.manager_id)
    chosen = [(m.id, m.display_name) for m in members if m.id not in (proposal.from_user_id, auth.current().id)]
    if proposal.to_user_id not in {c[0] for c in chosen}:
        chosen.insert(0, (proposal.to_user_id, proposal.to_user.display_name))
    return chosen


def _forms(proposals: list[RotationProposal]) -> dict[int, tuple[ApproveForm, SkipForm]]:
    forms: dict[int, tuple[ApproveForm, SkipForm]] = {}
    for proposal in proposals:
        approve = ApproveForm(formdata=None, prefix=f"a{proposal.id}", to_user=proposal.to_user_id)
        approve.to_user.choices = _team_choices(proposal)
        forms[proposal.id] = (approve, SkipForm(formdata=None, prefix=f"s{proposal.id}"))
    return forms


def _page(status: int = 200, **overrides: Any) -> Any:
    """The proposals page; with a form's refusal (nothing written before it), the listing's record stands."""
    session, actor = db_session(), auth.current()
    if status >= 400:
        keep_work()
    page = request.args.get("page", 1, type=int) or 1
    found = service.page_for(runtime(), session, actor, page=page, ctx=access_context())
    forms = _forms(found.proposals)
    forms.update(overrides.pop("forms", {}))
    return render_template("rotation/index.html", found=found, forms=forms, propose_form=ConfirmForm(),
                           tasks=service.tasks_for(session, actor), **overrides), status


@bp.route("/")
@permission(Action.ROTATION_DECIDE)
def index() -> Any:
    return _page()


@bp.route("/propose", methods=["POST"])
@permission(Action.ROTATION_DECIDE)
def propose() -> Any:
    if not ConfirmForm().validate_on_submit():
        raise ServiceError("invalid_form", _("The form expired; please try again."))
    made = service.propose(runtime(), db_session(), auth.current(), ctx=access_context())
    flash(ngettext("%(num)d new proposal.", "%(num)d new proposals.", len(made)), "success")
    return redirect(url_for("rotation.index"))


@bp.route("/<int:proposal_id>/approve", methods=["POST"])
@permission(Action.ROTATION_DECIDE)
def approve(proposal_id: int) -> Any:
    session, actor = db_session(), auth.current()
    proposal = service.get_for_decision(session, actor, proposal_id)
    form = ApproveForm(prefix=f"a{proposal.id}")
    form.to_user.choices = _team_choices(proposal)
    if not form.validate_on_submit():
        return _page(400, forms={proposal.id: (form, SkipForm(formdata=None, prefix=f"s{proposal.id}"))},
                     failed=proposal.id)
    to_user = session.get(User, form.to_user.data) if form.to_user.data else None
    if to_user is None:
        raise ServiceError("invalid_owner", _("Choose the new owner."))
    service.approve(runtime(), session, actor, proposal, to_user=to_user, reason=form.reason.data or "",
                    ctx=access_context())
    flash(_("%(customer)s goes to %(person)s.", customer=proposal.customer.name, person=to_user.display_name),
          "success")
    return redirect(url_for("rotation.index"))


@bp.route("/<int:proposal_id>/skip", methods=["POST"])
@permission(Action.ROTATION_DECIDE)
def skip(proposal_id: int) -> Any:
    session, actor = db_session(), auth.current()
    proposal = service.get_for_decision(session, actor, proposal_id)
    form = SkipForm(prefix=f"s{proposal.id}")
    if not form.validate_on_submit():
        approve_form = ApproveForm(formdata=None, prefix=f"a{proposal.id}", to_user=proposal.to_user_id)
        approve_form.to_user.choices = _team_choices(proposal)
        return _page(400, forms={proposal.id: (approve_form, form)}, failed=proposal.id)
    service.skip(runtime(), session, actor, proposal, reason=form.reason.data or "", ctx=access_context())
    flash(_("%(customer)s stays with %(person)s.", customer=proposal.customer.name,
            person=proposal.from_user.display_name), "success")
    return redirect(url_for("rotation.index"))


@bp.route("/tasks")
@permission(Action.ROTATION_CONFIRM)
def tasks() -> Any:
    return _tasks_page()


def _tasks_page(status: int = 200, typed: RotationContactForm | None = None, typed_task: int | None = None,
                decision: policy.Decision | None = None) -> Any:
    """The customers rotated to the person, recorded as a listing of them (`rotation.read_tasks`). Shown again
    after a refused confirmation (with the note as typed and the reason), it names them a second time: that
    read is recorded too, marked `again`, and kept though the answer is an error (a refusal rolled back the act
    and committed its record; a form's own check decided nothing), as the handover list is."""
    again = status >= 400
    if again:
        keep_work()
    found = service.read_tasks(runtime(), db_session(), auth.current(), ctx=access_context(), again=again)
    forms = {t.id: RotationContactForm(formdata=None, prefix=f"c{t.id}") for t in found}
    if typed is not None and typed_task is not None:
        forms[typed_task] = typed
    context: dict[str, Any] = {"decision": decision} if decision is not None else {}
    return render_template("rotation/tasks.html", tasks=found, forms=forms, **context), status


@bp.route("/tasks/<int:proposal_id>/confirm", methods=["POST"])
@permission(Action.ROTATION_CONFIRM)
def confirm(proposal_id: int) -> Any:
    session, actor = db_session(), auth.current()
    proposal = service.get_task(session, actor, proposal_id)
    form = RotationContactForm(prefix=f"c{proposal.id}")
    if not form.validate_on_submit():
        # The list again, the note as typed and the reason beside it (nothing decided).
        return _tasks_page(400, form, proposal.id)
    try:
        service.confirm_contact(runtime(), session, actor, proposal, note=form.note.data or "",
                                ctx=access_context())
    except policy.Denied as exc:
        if not policy.shows_form_again(exc.decision.code):
            raise
        # The contact not yet logged (a step to take first, which still counts as a refusal): recorded, then the
        # list again with the reason, the note kept and the way to the contact log, as the handover does.
        record_form_refusal(exc)
        return _tasks_page(403, form, proposal.id, exc.decision)
    flash(_("Contact with %(customer)s confirmed.", customer=proposal.customer.name), "success")
    return redirect(url_for("rotation.tasks"))


__all__ = ["bp"]
