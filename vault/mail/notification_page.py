"""The account page's "Notifications" section: the form filled in from the stored choices, and saving it.

Kept here rather than in the account view so that view only routes: the rules (valid address, unique,
security alerts never off) live in `accounts` and `preferences`, shared with the command line.
"""

from __future__ import annotations

from flask import Response, flash, redirect, url_for
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from vault.core.context import AccessContext
from vault.core.errors import ServiceError
from vault.mail.accounts import set_email
from vault.mail.forms import NotificationForm
from vault.mail.preferences import all_for, set_modes
from vault.models import User
from vault.runtime import Runtime


def form_for(session: Session, user: User) -> NotificationForm:
    form = NotificationForm(formdata=None, email=user.email or "")
    for kind, mode in all_for(session, user).items():
        form[f"mode_{kind}"].data = str(mode)
    return form


def save(rt: Runtime, session: Session, user: User, ctx: AccessContext) -> Response:
    form = NotificationForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
        return redirect(url_for("account.index"))  # type: ignore[return-value]
    try:
        # One transaction: an address refused after the choices (taken by another account) undoes them and
        # their record too.
        set_modes(rt, session, user, {str(kind): field.data for kind, field in form.mode_fields()}, ctx=ctx)
        set_email(rt, session, user, form.email.data, actor=user, ctx=ctx)
    except ServiceError as exc:
        session.rollback()
        flash(_(exc.message), "error")
        return redirect(url_for("account.index"))  # type: ignore[return-value]
    flash(_("Your notification settings are saved."), "success")
    return redirect(url_for("account.index"))  # type: ignore[return-value]
