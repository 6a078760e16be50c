"""Sign in (password, then the authenticator code), the confidentiality agreement, sign out, and setting
one's first password through a one-time link."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional

from vault.core.actions import Action
from vault.core.errors import Conflict, NotFound, ServiceError
from vault.pages.forms import ConfirmForm, LoginForm
from vault.pages.forms.text import SafeForm
from vault.services import accounts, agreement, signin
from vault.web import auth, sessions
from vault.web.guard import permission
from vault.web.pipeline import access_context, db_session, runtime
from vault.web.redirects import safe_next

bp = Blueprint("auth", __name__)


def failed_sign_in_message() -> str:
    # One message for an unknown name, a wrong password, a locked account and a throttled address:
    # anything more precise would tell a guesser which names exist.
    return _("Wrong user name or password. After repeated failures, signing in is paused for a while.")


class CodeForm(SafeForm):
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=40)])


class SetPasswordForm(SafeForm):
    new = PasswordField(_l("Your new password"), validators=[DataRequired(), Length(max=1024)])
    confirm = PasswordField(_l("The same again"),
                            validators=[DataRequired(), EqualTo("new", message=_l("The two passwords differ."))])


class AgreementForm(SafeForm):
    accept = BooleanField(_l("I have read this agreement and accept it."), validators=[DataRequired()])
    # The version the page showed: an acceptance covers only a text the person has seen (`agreement.accept`).
    version = HiddenField(validators=[Optional(), Length(max=64)])


@bp.route("/login", methods=["GET", "POST"])
@permission(Action.PUBLIC)
def login():
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        session = db_session()
        result = signin.check_password(runtime(), session, form.username.data, form.password.data,
                                       access_context())
        if result.user is not None:
            auth.sign_in(result.user, sessions.PENDING if result.second_factor else sessions.NONE)
            target = safe_next(form.next.data, url_for("home.index"))
            # The page asked for; the guard sends the person through any step still owed first.
            return redirect(target)
        flash(failed_sign_in_message(), "error")
    return render_template("login.html", form=form)


@bp.route("/login/code", methods=["GET", "POST"])
@permission(Action.ACCOUNT_SELF)
def second_factor():
    if auth.step_owed() != "second_factor":
        return redirect(url_for("home.index"))
    user = auth.current()
    form = CodeForm()
    if form.validate_on_submit():
        session = db_session()
        outcome = signin.check_second_factor(runtime(), session, user, form.code.data, access_context())
        if outcome == "ok":
            sessions.second_factor_done()
            return redirect(sessions.continue_url(user))
        if outcome in {"locked", "throttled"}:
            auth.sign_out()
            flash(failed_sign_in_message(), "error")
            return redirect(url_for("auth.login"))
        if outcome == "code_reused":
            flash(_("This code has already been used; wait for the next one."), "error")
        else:
            flash(_("The code is not valid."), "error")
    return render_template("auth/second_factor.html", form=form)


@bp.route("/agreement", methods=["GET", "POST"], endpoint="agreement")
@permission(Action.ACCOUNT_SELF)
def agreement_page():
    user = auth.current()
    settings = runtime().settings
    session = db_session()
    form = AgreementForm()
    status = 200
    if form.validate_on_submit():
        try:
            agreement.accept(runtime(), session, user, access_context(), version=form.version.data or None)
        except Conflict as exc:  # the text changed while the page was open: show the current one
            flash(str(exc.message), "error")
            status = 409
        else:
            sessions.agreed(settings.agreement_version)
            flash(_("Thank you: your acceptance is recorded."), "success")
            return redirect(sessions.continue_url(user))
    form.version.data = settings.agreement_version
    return render_template(
        "auth/agreement.html",
        form=form,
        blocks=agreement.blocks(agreement.text(settings, str(get_locale()))),
        version=settings.agreement_version,
        accepted=agreement.accepted(session, user, settings.agreement_version),
        pending=auth.step_owed() == "agreement",
    ), status


@bp.route("/logout", methods=["POST"])
@permission(Action.ACCOUNT_SELF)
def logout():
    form = ConfirmForm()
    if form.validate_on_submit():
        session = db_session()
        signin.sign_out(runtime(), session, auth.current(), access_context())
        auth.sign_out()
        flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/password/set/<string(maxlength=100):secret>", methods=["GET", "POST"], endpoint="set_password")
@permission(Action.PUBLIC)
def set_password(secret: str):
    """The one-time link an administrator handed over: the person chooses their own password here."""
    session = db_session()
    try:
        link = accounts.password_link(session, secret)
    except NotFound:
        return render_template("auth/set_password.html", form=None, username=None), 404
    form = SetPasswordForm()
    if form.validate_on_submit():
        try:
            accounts.set_password_with_link(runtime(), session, secret, form.new.data, access_context())
        except ServiceError as exc:
            flash(_(exc.message), "error")
        else:
            flash(_("Your password is set; sign in with it."), "success")
            return redirect(url_for("auth.login"))
    return render_template("auth/set_password.html", form=form, username=link.user.username)
