"""My account: password, second factor, recovery codes, and signing out of every session."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from ..forms import ConfirmForm
from ..mail import notification_page
from ..passwords import MIN_LENGTH
from ..permissions import Action
from ..services import accounts, totp
from ..services.errors import ServiceError
from ..web import auth, navigation, sessions
from ..web.guard import permission
from ..web.pipeline import access_context, db_session, runtime

bp = Blueprint("account", __name__, url_prefix="/account")

navigation.add("account.index", Action.ACCOUNT_SELF, "My account")


class PasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=1024)])
    new = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=1024)])
    confirm = PasswordField(_l("New password again"),
                            validators=[DataRequired(), EqualTo("new", message=_l("The two new passwords differ."))])


class ReauthForm(FlaskForm):
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])


class EnrolForm(FlaskForm):
    code = StringField(_l("Code from the app"), validators=[DataRequired(), Length(max=12)])


@bp.route("")
@permission(Action.ACCOUNT_SELF)
def index():
    user = auth.current()
    session = db_session()
    return render_template(
        "account/index.html",
        user=user,
        enrolled=totp.enrolled(session, user),
        required=totp.required(user),
        codes_left=totp.remaining_recovery_codes(session, user),
        password_form=PasswordForm(),
        reauth_form=ReauthForm(),
        confirm_form=ConfirmForm(),
        min_length=MIN_LENGTH,
        notification_form=notification_page.form_for(session, user),
    )


@bp.route("/password", methods=["POST"])
@permission(Action.ACCOUNT_SELF)
def password():
    user = auth.current()
    form = PasswordForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
        return redirect(url_for("account.index"))
    session = db_session()
    try:
        accounts.change_password(runtime(), session, user, current=form.current.data, new=form.new.data,
                                 ctx=access_context())
    except ServiceError as exc:
        session.commit()  # a wrong current password is counted and audited
        flash(_(exc.message), "error")
        return redirect(url_for("account.index"))
    session.commit()
    sessions.renew_epoch(user)
    flash(_("Your password is changed; your other sessions are signed out."), "success")
    return redirect(url_for("account.index"))


@bp.route("/notifications", methods=["POST"])
@permission(Action.ACCOUNT_SELF)
def notifications():
    return notification_page.save(runtime(), db_session(), auth.current(), access_context())


@bp.route("/second-factor", methods=["GET", "POST"])
@permission(Action.ACCOUNT_SELF)
def second_factor():
    """Enrol an authenticator: the page shows the same secret until a valid code confirms it."""
    user = auth.current()
    session = db_session()
    if totp.enrolled(session, user):
        flash(_("Your second factor is already set up."), "info")
        return redirect(url_for("account.index"))
    row = totp.begin_enrolment(session, user)
    session.commit()
    form = EnrolForm()
    if form.validate_on_submit():
        try:
            codes = totp.confirm_enrolment(runtime(), session, user, form.code.data, access_context())
        except ServiceError as exc:
            session.commit()
            flash(_(exc.message), "error")
        else:
            session.commit()
            sessions.second_factor_done()
            return render_template("account/recovery_codes.html", codes=codes,
                                   next_url=sessions.continue_url(user), enrolled_now=True)
    uri = totp.provisioning_uri(runtime(), user, row.secret)
    return render_template("account/enrol.html", form=form, qr=totp.qr_data_uri(uri), secret=row.secret,
                           required=totp.required(user), pending=auth.step_owed() == "enrol")


@bp.route("/second-factor/remove", methods=["POST"])
@permission(Action.ACCOUNT_SELF)
def second_factor_remove():
    user = auth.current()
    form = ReauthForm()
    session = db_session()
    if totp.required(user):
        flash(_("Your roles require a second factor; it cannot be removed."), "error")
        return redirect(url_for("account.index"))
    if not form.validate_on_submit():
        return redirect(url_for("account.index"))
    try:
        accounts.confirm_password(runtime(), session, user, form.password.data, access_context(),
                                  action="totp:remove")
    except ServiceError as exc:
        session.commit()
        flash(_(exc.message), "error")
        return redirect(url_for("account.index"))
    totp.remove(runtime(), session, user, actor=user, ctx=access_context(), action="totp:remove")
    session.commit()
    flash(_("Your second factor is removed."), "success")
    return redirect(url_for("account.index"))


@bp.route("/recovery-codes", methods=["POST"])
@permission(Action.ACCOUNT_SELF)
def recovery_codes():
    user = auth.current()
    form = ReauthForm()
    session = db_session()
    if not form.validate_on_submit():
        return redirect(url_for("account.index"))
    try:
        accounts.confirm_password(runtime(), session, user, form.password.data, access_context(),
                                  action="totp:recovery_codes")
        codes = totp.new_recovery_codes(runtime(), session, user, access_context())
    except ServiceError as exc:
        session.commit()
        flash(_(exc.message), "error")
        return redirect(url_for("account.index"))
    session.commit()
    return render_template("account/recovery_codes.html", codes=codes, next_url=url_for("account.index"),
                           enrolled_now=False)


@bp.route("/logout-everywhere", methods=["POST"])
@permission(Action.ACCOUNT_SELF)
def logout_everywhere():
    user = auth.current()
    form = ConfirmForm()
    if form.validate_on_submit():
        session = db_session()
        accounts.log_out_everywhere(runtime(), session, user, access_context())
        session.commit()
        auth.sign_out()
        flash(_("Every session of yours, this one included, is signed out."), "info")
        return redirect(url_for("auth.login"))
    return redirect(url_for("account.index"))
