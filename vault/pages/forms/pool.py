"""Forms of the shared pool: claiming (a button), a manager's assignment, and returning a customer to the pool."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import SelectField, TextAreaField
from wtforms.validators import DataRequired, Length

from vault.pages.forms.text import SafeForm


class ClaimForm(SafeForm):
    """Nothing but the CSRF token: the customer is in the URL."""


class AssignForm(SafeForm):
    owner = SelectField(_l("Give to"), coerce=int, validators=[DataRequired()])


class ReleaseForm(SafeForm):
    reason = TextAreaField(_l("Why it goes back to the pool"), validators=[DataRequired(), Length(min=5, max=2000)])
