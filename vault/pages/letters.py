"""The page a customer's contact reaches from the letter introducing their new account manager (no sign-in),
and revoking a letter's link (the new owner, their managers, an administrator).

The link page is public by design: the signed, single-use link is the credential. It shows the company's name
and the new manager's name and nothing else of the customer's record, takes one answer and a short comment
(the usual session-bound CSRF token guards the form, as on the sign-in page), and is paused per client address
after repeated bad links like the sign-in page (`services.throttle`). Every refusal is a 4xx page.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import SubmitField, TextAreaField
from wtforms.validators import Length, Optional

from vault.core.actions import Action
from vault.models import CustomerLetter, LetterAnswer
from vault.pages.forms import ConfirmForm
from vault.pages.forms.text import SafeForm
from vault.services import letters, throttle
from vault.web import auth, locale
from vault.web.guard import permission
from vault.web.pipeline import access_context, db_session, keep_work, runtime
from vault.web.redirects import safe_next

bp = Blueprint("letters", __name__)

# Used, expired and revoked links existed: "gone". A forged or unknown one never did: "not found".
_STATUS = {"forged": 404, "used": 410, "expired": 410, "revoked": 410}


class AnswerForm(SafeForm):
    comment = TextAreaField(_l("Comment (optional)"), validators=[Optional(), Length(max=letters.MAX_COMMENT)])
    contacted = SubmitField(_l("Yes, I have been contacted"))
    not_contacted = SubmitField(_l("No, nobody has contacted me yet"))


def _refused(link: str, code: str) -> Any:
    """Count the bad link against the address, audit it, and keep both though the answer is an error."""
    session = db_session()
    ctx = access_context()
    throttle.count_address_failure(session, runtime().settings, ctx.client_addr)
    letters.refuse_link(runtime(), session, link, code, ctx=ctx)
    keep_work()
    return render_template("letters/confirm.html", state=code, form=None, letter=None,
                           company=runtime().settings.company_name), _STATUS.get(code, 404)


@bp.route("/letter/<string(maxlength=100):link>", methods=["GET", "POST"], endpoint="confirm")
@permission(Action.PUBLIC)
def confirm(link: str) -> Any:
    session = db_session()
    rt = runtime()
    company = rt.settings.company_name
    if throttle.address_blocked(session, access_context().client_addr):
        return render_template("letters/confirm.html", state="throttled", form=None, letter=None,
                               company=company), 429
    try:
        letter = letters.open_link(rt, session, link)
    except letters.LinkRefused as exc:
        return _refused(link, exc.code)
    locale.speak(letter.language)
    form = AnswerForm()
    if form.validate_on_submit():
        reply = LetterAnswer.NOT_CONTACTED if form.not_contacted.data else LetterAnswer.CONTACTED
        if not (form.contacted.data or form.not_contacted.data):
            flash(_("Choose one of the two answers."), "error")
        else:
            try:
                letters.answer(rt, session, link, reply, form.comment.data, ctx=access_context())
            except letters.LinkRefused as exc:
                return _refused(link, exc.code)
            return render_template("letters/confirm.html", state="thanks", form=None, letter=letter,
                                   answer=str(reply), company=company)
    return render_template("letters/confirm.html", state="open", form=form, letter=letter, company=company)


@bp.route("/letters/<int:letter_id>/revoke", methods=["POST"], endpoint="revoke")
@permission(Action.LETTER_REVOKE)
def revoke(letter_id: int) -> Any:
    session = db_session()
    letter: CustomerLetter = letters.get_letter(session, letter_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        letters.revoke(runtime(), session, auth.current(), letter, ctx=access_context())
        flash(_("The letter's link is revoked: it can no longer be answered."), "success")
    fallback = url_for("customers.show", customer_id=letter.customer_id)
    return redirect(safe_next(request.form.get("next", ""), fallback))
