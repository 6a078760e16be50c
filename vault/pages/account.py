"""My account: password, second factor, recovery codes, API tokens, and signing out of every session."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import available_timezones

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import refresh
from wtforms import IntegerField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, NumberRange, Optional

from vault import policy
from vault.core import languages
from vault.core.actions import Action
from vault.core.audit_actions import AuditAction
from vault.core.errors import NotFound, ServiceError
from vault.core.passwords import MIN_LENGTH
from vault.mail import notification_page
from vault.models import utcnow
from vault.pages.forms import ConfirmForm
from vault.pages.forms.text import SafeForm
from vault.services import accounts, language, totp
from vault.web import auth, navigation, sessions
from vault.web.guard import permission
from vault.web.pipeline import access_context, db_session, runtime

bp = Blueprint("account", __name__, url_prefix="/account")

navigation.add("account.index", Action.ACCOUNT_SELF, "My account")


class PasswordForm(SafeForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=1024)])
    new = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=1024)])
    confirm = PasswordField(_l("New password again"),
                            validators=[DataRequired(), EqualTo("new", message=_l("The two new passwords differ."))])


class ReauthForm(SafeForm):
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])


class TokenForm(SafeForm):
    name = StringField(_l("Name (what the token is for)"), validators=[DataRequired(), Length(max=100)])
    scope = SelectField(_l("Scope"), choices=[SelectChoice("read", _l("read: lists and look-ups only")),
                                              SelectChoice("write", _l("write: everything you may do"))],
                        default="read")
    hours = IntegerField(_l("Expires after (hours)"), validators=[Optional(), NumberRange(min=1, max=24 * 3650)])
    code = StringField(_l("Code from your authenticator"), validators=[Length(max=40)])


# Zones a person may pick: the IANA names of places (not the Etc/ offsets and old aliases).
_NOT_PLACES = ("Etc/", "SystemV/", "US/", "posix/", "right/")
ZONES: tuple[str, ...] = tuple(sorted(z for z in available_timezones() if "/" in z and not z.startswith(_NOT_PLACES)))


class LanguageForm(SafeForm):
    locale = SelectField(_l("Language"), choices=[SelectChoice("", _l("As my browser asks"))]
                         + [SelectChoice(code, languages.NATIVE_NAMES[code]) for code in languages.LANGUAGES],
                         default="")
    timezone = SelectField(_l("Time zone"), choices=[SelectChoice("", _l("The company's time zone"))]
                           + [SelectChoice(zone, zone) for zone in ZONES], default="")


class EnrolForm(SafeForm):
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
        token_form=TokenForm(),
        tokens=[(token, accounts.token_expires_at(runtime().settings, token))
                for token in accounts.list_tokens(session, user)],
        now=utcnow(),  # an expired token stays listed until revoked, marked as the API and the CLI mark it
        duty=accounts.has_duty_role(user),
        token_cap_hours=int(accounts.token_cap(runtime().settings, user).total_seconds() // 3600),
        notification_form=notification_page.form_for(session, user),
        language_form=LanguageForm(formdata=None, locale=user.locale or "", timezone=user.timezone or ""),
    )


@bp.route("/language", methods=["POST"])
@permission(Action.ACCOUNT_SELF)
def language_choice():
    """Store the person's language and time zone; the next page is already in the chosen language."""
    user = auth.current()
    form = LanguageForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
        return redirect(url_for("account.index"))
    try:
        changed = language.set_language(runtime(), db_session(), user, locale=form.locale.data,
                                        timezone=form.timezone.data, ctx=access_context())
    except ServiceError as exc:
        flash(exc.message, "error")
        return redirect(url_for("account.index"))
    if changed:
        refresh()  # this answer's own message in the language just chosen
        flash(_("Your language and time zone are saved."), "success")
    return redirect(url_for("account.index"))


@bp.route("/tokens", methods=["POST"])
@permission(Action.ACCOUNT_SELF)
def token_create():
    """Make one's own API token; the secret is shown on this answer only. Duty roles give a fresh code."""
    user = auth.current()
    form = TokenForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
        return redirect(url_for("account.index"))
    expires_at = utcnow() + timedelta(hours=form.hours.data) if form.hours.data else None
    try:
        new = accounts.create_token(runtime(), db_session(), user, name=form.name.data, scope=form.scope.data,
                                    expires_at=expires_at, code=(form.code.data or "").strip() or None,
                                    actor=user, ctx=access_context())
    except ServiceError as exc:
        flash(_(exc.message), "error")
        return redirect(url_for("account.index"))  # a refused code is counted and recorded (302 commits)
    return render_template("account/token_created.html", token=new.token, secret=new.secret)


@bp.route("/tokens/<int(max=2147483647):token_id>/revoke", methods=["POST"])
@permission(Action.ACCOUNT_SELF)
def token_revoke(token_id: int):
    user = auth.current()
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            accounts.revoke_tokens(runtime(), db_session(), user, token_id=token_id, actor=user,
                                   ctx=access_context())
        except NotFound:
            # Someone else's token is as unknown as one that never existed.
            raise policy.Denied(policy.deny("not_found")) from None
        flash(_("The token is revoked."), "success")
    return redirect(url_for("account.index"))


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
        flash(_(exc.message), "error")
        return redirect(url_for("account.index"))
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
    secret = totp.begin_enrolment(runtime(), session, user)
    form = EnrolForm()
    if form.validate_on_submit():
        try:
            codes = totp.confirm_enrolment(runtime(), session, user, form.code.data, access_context())
        except ServiceError as exc:
            flash(_(exc.message), "error")
        else:
            sessions.second_factor_done()
            return render_template("account/recovery_codes.html", codes=codes,
                                   next_url=sessions.continue_url(user), enrolled_now=True)
    uri = totp.provisioning_uri(runtime(), user, secret)
    return render_template("account/enrol.html", form=form, qr=totp.qr_data_uri(uri), secret=secret,
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
                                  action=AuditAction.TOTP_REMOVE)
    except ServiceError as exc:
        flash(_(exc.message), "error")
        return redirect(url_for("account.index"))
    totp.remove(runtime(), session, user, actor=user, ctx=access_context(), action=AuditAction.TOTP_REMOVE)
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
                                  action=AuditAction.TOTP_RECOVERY_CODES)
        codes = totp.new_recovery_codes(runtime(), session, user, access_context())
    except ServiceError as exc:
        flash(_(exc.message), "error")
        return redirect(url_for("account.index"))
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
        auth.sign_out()
        flash(_("Every session of yours, this one included, is signed out."), "info")
        return redirect(url_for("auth.login"))
    return redirect(url_for("account.index"))
