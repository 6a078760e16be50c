"""Forms of the rotation page: a manager's approval (perhaps naming someone else) or skip of a proposal,
and the new owner's confirmation of having reached the customer."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import SelectField, TextAreaField
from wtforms.validators import DataRequired, Length

from vault.pages.forms.loans import confirmation
from vault.pages.forms.text import SafeForm

MAX_TEXT = 2000


class ApproveForm(SafeForm):
    to_user = SelectField(_l("New owner"), coerce=int, validate_choice=False)
    reason = TextAreaField(_l("Note (optional)"), validators=[Length(max=MAX_TEXT)])
    confirm = confirmation(_l("I understand the customer, its record and files move to the new owner, and the "
                              "current owner's loans on its files end."))


class SkipForm(SafeForm):
    reason = TextAreaField(_l("Why does the customer stay with its owner?"),
                           validators=[DataRequired(_l("Say why the customer stays.")), Length(max=MAX_TEXT)])
    confirm = confirmation(_l("I keep the customer with its owner for another interval."))


class RotationContactForm(SafeForm):
    note = TextAreaField(_l("Note (optional)"), validators=[Length(max=MAX_TEXT)])
