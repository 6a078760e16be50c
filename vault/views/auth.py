"""Sign in and sign out."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..forms import ConfirmForm, LoginForm
from ..permissions import Action
from ..services import signin
from ..web import auth
from ..web.guard import permission
from ..web.pipeline import access_context, db_session, runtime
from ..web.redirects import safe_next

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
@permission(Action.PUBLIC)
def login():
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        session = db_session()
        user = signin.authenticate(runtime(), session, form.username.data, form.password.data, access_context())
        session.commit()
        if user is not None:
            auth.sign_in(user)
            return redirect(safe_next(form.next.data, url_for("home.index")))
        flash(_("Wrong user name or password."), "error")
    return render_template("login.html", form=form)


@bp.route("/logout", methods=["POST"])
@permission(Action.ACCOUNT_SELF)
def logout():
    form = ConfirmForm()
    if form.validate_on_submit():
        session = db_session()
        signin.sign_out(runtime(), session, auth.current(), access_context())
        session.commit()
        auth.sign_out()
        flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"))
