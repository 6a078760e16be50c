"""Account administration: people, roles, disabling, second-factor resets, and the two-person rule.

An administrator manages accounts and nothing else: the policy keeps every other role away from an
admin (static conflict), so these pages are the whole of what an admin can open besides their own
account. Role conflicts are refused by the policy with its reason, audited like every refusal.

A role of power (approver, custodian, auditor, admin), or any role for a person on notice, given here is
only a request: a second admin (an auditor, for the auditor role) approves or refuses it, on the person's
page or on the list of waiting requests. A new account gets no password from the admin: the page shows,
once, a one-time link with which its owner sets their own. An account in use gets a new link only by mail,
to its owner's address; the page says where it went and shows none (`policy.accounts`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask import session as cookie
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session
from wtforms import BooleanField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from vault import policy
from vault.core.actions import Action
from vault.core.errors import NotFound, ServiceError
from vault.models import ManagerRequest, Role, RoleRequest, User
from vault.pages.forms import ConfirmForm
from vault.pages.forms.documents import choice
from vault.pages.forms.text import SafeForm
from vault.services import accounts, managers, totp
from vault.web import auth, labels, navigation
from vault.web.guard import permission
from vault.web.pipeline import access_context, db_session, runtime

T = TypeVar("T")

bp = Blueprint("admin", __name__, url_prefix="/admin")

navigation.add("admin.users", Action.USER_MANAGE, "Users")
navigation.add("admin.role_requests", Action.ROLE_APPROVE, "Role requests")

# The one-time link of a new account, kept in the admin's own session until their next page shows it.
_LINK_KEY = "vault.password_link"
USERS_PAGE = accounts.USERS_PAGE

ROLE_CHOICES = [choice(role.value, labels.lazy(role.value, "role")) for role in Role]


class CreateUserForm(SafeForm):
    username = StringField(_l("User name"), validators=[DataRequired(), Length(max=64)])
    display_name = StringField(_l("Full name"), validators=[Optional(), Length(max=200)])
    roles = SelectMultipleField(_l("Roles"), choices=ROLE_CHOICES, option_widget=CheckboxInput(),
                                widget=ListWidget(prefix_label=False))


class RoleForm(SafeForm):
    role = SelectField(_l("Role"), choices=ROLE_CHOICES)


class DisableForm(SafeForm):
    """Disabling ends the person's sessions and tokens at once: asked to be meant, and why (kept with the
    audit record, as `vault user disable --reason` keeps it)."""

    reason = TextAreaField(_l("Why (kept in the audit log)"), validators=[Length(max=accounts.MAX_REASON)])
    confirm = BooleanField(_l("I understand: their sessions and tokens end now."),
                           validators=[DataRequired(_l("Tick the box to confirm."))])


class ManagerForm(SafeForm):
    manager = SelectField(_l("Manager"), coerce=int)


NO_MANAGER = 0


def _manager_form(person: User) -> ManagerForm:
    form = ManagerForm()
    others = db_session().scalars(select(User).where(User.id != person.id, User.disabled.is_(False))
                                  .order_by(User.display_name)).all()
    form.manager.choices = [(NO_MANAGER, _("Nobody")), *((u.id, f"{u.display_name} ({u.username})") for u in others)]
    if request.method == "GET":
        form.manager.data = person.manager_id or NO_MANAGER
    return form


def _user(user_id: int) -> User:
    user = db_session().get(User, user_id)
    if user is None:
        raise policy.Denied(policy.deny("not_found"), subject_user_id=user_id)
    return user


def _flash_form_errors(form: SafeForm) -> None:
    for errors in form.errors.values():
        for error in errors:
            flash(str(error), "error")


@bp.route("/users", methods=["GET", "POST"])
@permission(Action.USER_MANAGE)
def users():
    me = auth.current()
    session = db_session()
    form = CreateUserForm()
    if form.validate_on_submit():
        if form.roles.data:
            g.vault_denied_action = str(Action.ROLE_ASSIGN)  # a refusal here is a role conflict
        try:
            created = accounts.create_user(
                runtime(), session, username=form.username.data, password=None,
                display_name=form.display_name.data or None,
                roles=tuple(Role(value) for value in form.roles.data or ()), actor=me, ctx=access_context())
            issued = accounts.create_password_link(runtime(), session, created, actor=me, ctx=access_context())
        except ServiceError as exc:
            session.rollback()
            flash(_(exc.message), "error")
        else:
            _hand_over(created, issued)
            flash(_("Account %(name)s created.", name=created.username), "success")
            return redirect(url_for("admin.user", user_id=created.id))
    elif form.is_submitted():
        _flash_form_errors(form)
    found = accounts.page_of_users(session, page=request.args.get("page", 1, type=int) or 1,
                                   page_size=USERS_PAGE)
    required = {person.id for person in found.users if totp.required(person)}
    return render_template("admin/users.html", people=found.users, enrolled=found.enrolled, required=required,
                           form=form, page=found.page, pages=found.pages)


@bp.route("/users/<int:user_id>")
@permission(Action.USER_MANAGE)
def user(user_id: int):
    return _user_page(_user(user_id))


def _user_page(person: User, disable_form: DisableForm | None = None, status: int = 200) -> Any:
    session = db_session()
    handed = cookie.pop(_LINK_KEY, None)
    link = handed.get("url") if isinstance(handed, dict) and handed.get("user_id") == person.id else None
    me = auth.current()
    mailed = accounts.mailed_link(session, person, me)
    pending = accounts.pending_role_requests(session, person)
    named = managers.pending_manager_requests(session, person)
    return render_template(
        "admin/user.html", person=person, enrolled=totp.enrolled(session, person), mailed=mailed,
        link_mail=accounts.mail_state(runtime().settings, person) if mailed else None,
        second_factor_required=totp.required(person), role_form=RoleForm(), confirm_form=ConfirmForm(),
        is_me=person.id == me.id, manager_form=_manager_form(person),
        pending=pending, managers_named=named, decidable=_decidable(session, me, pending, named),
        password_link=link, disable_form=disable_form or DisableForm(formdata=None),
    ), status


@bp.route("/users/<int:user_id>/manager", methods=["POST"])
@permission(Action.USER_MANAGE)
def manager(user_id: int):
    person = _user(user_id)
    form = _manager_form(person)
    if not form.validate_on_submit():
        _flash_form_errors(form)
        return redirect(url_for("admin.user", user_id=person.id))
    boss = _user(form.manager.data) if form.manager.data != NO_MANAGER else None
    try:
        waiting = managers.set_manager(runtime(), db_session(), person, boss, actor=auth.current(),
                                       ctx=access_context())
    except ServiceError as exc:
        flash(_(exc.message), "error")
    else:
        if waiting is not None and boss is not None:
            flash(_("%(boss)s named as %(name)s's manager: a second administrator must approve it.",
                    name=person.display_name, boss=boss.display_name), "info")
        else:
            flash(_("%(name)s now reports to %(boss)s.", name=person.display_name,
                    boss=boss.display_name if boss else _("nobody")), "success")
    return redirect(url_for("admin.user", user_id=person.id))


def _hand_over(person: User, issued: accounts.IssuedLink) -> None:
    """Show a brand-new account's link once, on the person's page, for the admin to hand over (it is not kept
    anywhere else); for a mailed link, say only where it went."""
    if issued.secret is None:
        flash(_("A one-time password link was sent to %(address)s.", address=issued.sent_to or ""), "success")
        return
    cookie[_LINK_KEY] = {"user_id": person.id,
                         "url": url_for("auth.set_password", secret=issued.secret, _external=True)}


@bp.route("/users/<int:user_id>/password-link", methods=["POST"])
@permission(Action.USER_MANAGE)
def password_link(user_id: int):
    """A new one-time link (the old one stops working), e.g. when the first one expired unused, or the person
    forgot their password (then it goes to their mailbox)."""
    person = _user(user_id)
    if ConfirmForm().validate_on_submit():
        try:
            issued = accounts.create_password_link(runtime(), db_session(), person, actor=auth.current(),
                                                   ctx=access_context())
        except ServiceError as exc:
            db_session().rollback()
            flash(_(exc.message), "error")
        else:
            _hand_over(person, issued)
    return redirect(url_for("admin.user", user_id=person.id))


@bp.route("/role-requests")
@permission(Action.ROLE_APPROVE)
def role_requests():
    """Every request waiting for a second person (admins and auditors decide from here)."""
    session, me = db_session(), auth.current()
    named = managers.pending_manager_requests(session) if policy.authorize(me, Action.MANAGER_APPROVE) else []
    requests = accounts.pending_role_requests(session)
    return render_template("admin/role_requests.html", requests=requests, managers_named=named,
                           decidable=_decidable(session, me, requests, named), confirm_form=ConfirmForm(), me=me)


def _decidable(session: Session, me: User, roles: list[RoleRequest], named: list[ManagerRequest]) -> set[Any]:
    """The requests listed that `me` may decide, as (kind, id): the lists offer a verdict only there, by the
    same rule as the decision (`accounts.role_decider`, `managers.manager_decider`)."""
    holders = accounts.request_holders(session, roles, named)
    return ({("role", r.id) for r in roles if accounts.role_decider(session, me, r, holders)}
            | {("manager", r.id) for r in named if managers.manager_decider(session, me, r, holders)})


def _waiting(find: Callable[[Session, int], T], request_id: int, verdict: str) -> T | None:
    """The request a verdict is posted on (a role, or a manager named): an unknown verdict or request, or
    one already decided, is "not found"; None when the form's token is wrong (the caller goes back)."""
    if verdict not in ("approve", "refuse"):
        raise policy.Denied(policy.deny("not_found"))
    if not ConfirmForm().validate_on_submit():
        return None
    try:
        return find(db_session(), request_id)
    except NotFound:
        raise policy.Denied(policy.deny("not_found")) from None


@bp.route("/role-requests/<int(max=2147483647):request_id>/<string(maxlength=10):verdict>", methods=["POST"])
@permission(Action.ROLE_APPROVE)
def role_decide(request_id: int, verdict: str):
    """`verdict` is "approve" or "refuse"."""
    session = db_session()
    me = auth.current()
    pending = _waiting(accounts.get_role_request, request_id, verdict)
    if pending is None:
        return redirect(url_for("admin.role_requests"))
    accounts.decide_role_request(runtime(), session, pending, approve=verdict == "approve", actor=me,
                                 ctx=access_context())
    if verdict == "approve":
        flash(_("Role %(role)s given to %(name)s.", role=pending.role, name=pending.user.username), "success")
    else:
        flash(_("The request for %(role)s is refused.", role=pending.role), "info")
    if Role.ADMIN in me.role_set and request.form.get("back") == "user":
        return redirect(url_for("admin.user", user_id=pending.user_id))
    return redirect(url_for("admin.role_requests"))


@bp.route("/manager-requests/<int(max=2147483647):request_id>/<string(maxlength=10):verdict>", methods=["POST"])
@permission(Action.MANAGER_APPROVE)
def manager_decide(request_id: int, verdict: str):
    """`verdict` is "approve" or "refuse"; back to the person's page when asked from there."""
    session = db_session()
    pending = _waiting(managers.get_manager_request, request_id, verdict)
    if pending is None:
        return redirect(url_for("admin.role_requests"))
    try:
        managers.decide_manager_request(runtime(), session, pending, approve=verdict == "approve",
                                        actor=auth.current(), ctx=access_context())
    except ServiceError as exc:
        flash(_(exc.message), "error")
    else:
        if verdict == "approve":
            flash(_("%(name)s now reports to %(boss)s.", name=pending.user.display_name,
                    boss=pending.manager.display_name), "success")
        else:
            flash(_("%(boss)s will not be %(name)s's manager.", name=pending.user.display_name,
                    boss=pending.manager.display_name), "info")
    if request.form.get("back") == "user":
        return redirect(url_for("admin.user", user_id=pending.user_id))
    return redirect(url_for("admin.role_requests"))


@bp.route("/users/<int:user_id>/roles/add", methods=["POST"])
@permission(Action.ROLE_ASSIGN)
def role_add(user_id: int):
    person = _user(user_id)
    form = RoleForm()
    if form.validate_on_submit():
        session = db_session()
        waiting = accounts.assign_role(runtime(), session, person, Role(form.role.data), actor=auth.current(),
                                       ctx=access_context())
        if waiting is not None:
            flash(_("Role %(role)s requested for %(name)s: a second person must approve it.", role=form.role.data,
                    name=person.username), "info")
        else:
            flash(_("Role %(role)s given to %(name)s.", role=form.role.data, name=person.username), "success")
    else:
        _flash_form_errors(form)
    return redirect(url_for("admin.user", user_id=person.id))


@bp.route("/users/<int:user_id>/roles/remove", methods=["POST"])
@permission(Action.USER_MANAGE)
def role_remove(user_id: int):
    person = _user(user_id)
    form = RoleForm()
    if form.validate_on_submit():
        session = db_session()
        accounts.remove_role(runtime(), session, person, Role(form.role.data), actor=auth.current(),
                             ctx=access_context())
        flash(_("Role %(role)s taken from %(name)s.", role=form.role.data, name=person.username), "success")
    else:
        _flash_form_errors(form)
    return redirect(url_for("admin.user", user_id=person.id))


@bp.route("/users/<int:user_id>/disable", methods=["POST"])
@permission(Action.USER_MANAGE)
def disable(user_id: int):
    person = _user(user_id)
    form = DisableForm()
    if not form.validate_on_submit():
        return _user_page(person, disable_form=form, status=400)
    accounts.disable_user(runtime(), db_session(), person, auth.current(), access_context(),
                          reason=form.reason.data)
    flash(_("%(name)s is disabled: their sessions and tokens have ended.", name=person.username), "success")
    return redirect(url_for("admin.user", user_id=person.id))


@bp.route("/users/<int:user_id>/enable", methods=["POST"])
@permission(Action.USER_MANAGE)
def enable(user_id: int):
    person = _user(user_id)
    if ConfirmForm().validate_on_submit():
        session = db_session()
        accounts.enable_user(runtime(), session, person, auth.current(), access_context())
        flash(_("%(name)s is enabled.", name=person.username), "success")
    return redirect(url_for("admin.user", user_id=person.id))


@bp.route("/users/<int:user_id>/second-factor/reset", methods=["POST"])
@permission(Action.USER_MANAGE)
def second_factor_reset(user_id: int):
    person = _user(user_id)
    if ConfirmForm().validate_on_submit():
        session = db_session()
        accounts.reset_second_factor(runtime(), session, person, auth.current(), access_context())
        flash(_("The second factor of %(name)s is reset; they set up a new one at their next sign-in.",
                name=person.username), "success")
    return redirect(url_for("admin.user", user_id=person.id))
