"""Forms of the customer pages: looking a customer up, and who works it."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from vault.pages.forms.text import SafeForm


class LookupForm(SafeForm):
    """A GET form (no CSRF token: looking up changes nothing but is audited)."""

    class Meta:
        csrf = False

    q = StringField(_l("Customer name"), validators=[DataRequired(), Length(min=4, max=200)])


class OwnerForm(SafeForm):
    owner = SelectField(_l("New account manager"), coerce=int)
    reason = TextAreaField(_l("Why"), validators=[Length(max=2000)])


class CoOwnerForm(SafeForm):
    person = SelectField(_l("Co-owner"), coerce=int)


class RemoveCoOwnerForm(SafeForm):
    person = SelectField(_l("Co-owner"), coerce=int, validators=[DataRequired()])
