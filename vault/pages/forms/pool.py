"""Forms of the shared pool: claiming (a button), a manager's assignment, and returning a customer to the pool."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import SelectField, TextAreaField
from wtforms.validators import DataRequired, Length

from vault.pages.forms.text import SafeForm
from vault.services.pool import MAX_REASON, MIN_REASON


class ClaimForm(SafeForm):
    """Nothing but the CSRF token: the customer is in the URL."""


class AssignForm(SafeForm):
    owner = SelectField(_l("Give to"), coerce=int, validators=[DataRequired()])


# The service's own words for a reason missing or too short, so the form and the service say the same beside it.
REASON_REQUIRED = _l("Say why the customer goes back to the pool (at least %(n)s characters).", n=MIN_REASON)


class ReleaseForm(SafeForm):
    reason = TextAreaField(_l("Why it goes back to the pool"),
                           validators=[DataRequired(message=REASON_REQUIRED),
                                       Length(min=MIN_REASON, message=REASON_REQUIRED), Length(max=MAX_REASON)])
