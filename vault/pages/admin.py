"""Account administration: people, roles, disabling, second-factor resets.

An administrator manages accounts and nothing else: the policy keeps every other role away from an
admin (static conflict), so these pages are the whole of what an admin can open besides their own
account. Role conflicts are refused by the policy with its reason, audited like every refusal.
"""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from wtforms import PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from vault import policy
from vault.core.actions import Action
from vault.core.errors import ServiceError
from vault.models import Role, TotpSecret, User
from vault.pages.forms import ConfirmForm
from vault.pages.forms.text import SafeForm
from vault.services import accounts, totp
from vault.web import auth, navigation
from vault.web.guard import permission
from vault.web.pipeline import access_context, db_session, runtime

bp = Blueprint("admin", __name__, url_prefix="/admin")

navigation.add("admin.users", Action.USER_MANAGE, "Users")

ROLE_CHOICES = [role.value for role in Role]


class CreateUserForm(SafeForm):
    username = StringField(_l("User name"), validators=[DataRequired(), Length(max=64)])
    display_name = StringField(_l("Full name"), validators=[Optional(), Length(max=200)])
    password = PasswordField(_l("First password"), validators=[DataRequired(), Length(max=1024)])
    roles = SelectMultipleField(_l("Roles"), choices=ROLE_CHOICES, option_widget=CheckboxInput(),
                                widget=ListWidget(prefix_label=False))


class RoleForm(SafeForm):
    role = SelectField(_l("Role"), choices=ROLE_CHOICES)


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
                runtime(), session, username=form.username.data, password=form.password.data,
                display_name=form.display_name.data or None,
                roles=tuple(Role(value) for value in form.roles.data or ()), actor=me, ctx=access_context())
        except ServiceError as exc:
            session.rollback()
            flash(_(exc.message), "error")
        else:
            flash(_("Account %(name)s created.", name=created.username), "success")
            return redirect(url_for("admin.user", user_id=created.id))
    elif form.is_submitted():
        _flash_form_errors(form)
    people = list(session.scalars(select(User).order_by(User.username)))
    enrolled = set(session.scalars(select(TotpSecret.user_id).where(TotpSecret.confirmed_at.is_not(None))))
    required = {person.id for person in people if totp.required(person)}
    return render_template("admin/users.html", people=people, enrolled=enrolled, required=required, form=form)


@bp.route("/users/<int:user_id>")
@permission(Action.USER_MANAGE)
def user(user_id: int):
    person = _user(user_id)
    session = db_session()
    return render_template(
        "admin/user.html", person=person, enrolled=totp.enrolled(session, person),
        second_factor_required=totp.required(person), role_form=RoleForm(), confirm_form=ConfirmForm(),
        is_me=person.id == auth.current().id,
    )


@bp.route("/users/<int:user_id>/roles/add", methods=["POST"])
@permission(Action.ROLE_ASSIGN)
def role_add(user_id: int):
    person = _user(user_id)
    form = RoleForm()
    if form.validate_on_submit():
        session = db_session()
        accounts.assign_role(runtime(), session, person, Role(form.role.data), actor=auth.current(),
                             ctx=access_context())
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
    if ConfirmForm().validate_on_submit():
        session = db_session()
        accounts.disable_user(runtime(), session, person, auth.current(), access_context())
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
