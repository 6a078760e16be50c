"""Forms of the departure, handover and alert pages.

They only parse (types, lengths); whether a date, a successor or a note is acceptable is decided by
the services and the policy, so the pages and the command line refuse the same input the same way.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, DateField, SelectField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from vault.pages.forms.text import SafeForm

MAX_TEXT = 2000
NOBODY = 0  # the "no successor" choice: customers go to the reassignment list
TO_POOL = -1  # a handover item's "return to the shared pool" choice


class DepartureForm(SafeForm):
    user = SelectField(_l("Person giving notice"), coerce=int, validators=[InputRequired()])
    notice_date = DateField(_l("Notice given on"), validators=[Optional()])
    last_day = DateField(_l("Last working day"), validators=[InputRequired(_l("Enter the last working day."))])
    successor = SelectField(_l("Successor (receives the customers)"), coerce=int, default=NOBODY)
    note = TextAreaField(_l("Note"), validators=[Length(max=MAX_TEXT)])


class DepartureUpdateForm(SafeForm):
    last_day = DateField(_l("Last working day"), validators=[Optional()])
    successor = SelectField(_l("Successor"), coerce=int, default=NOBODY)
    note = TextAreaField(_l("Note"), validators=[Length(max=MAX_TEXT)])


class ReassignForm(SafeForm):
    to_user = SelectField(_l("Hand this customer to"), coerce=int, validators=[InputRequired()])


class ContactForm(SafeForm):
    contact_date = DateField(_l("Date of the contact"), validators=[InputRequired(_l("Enter the date."))])
    note = TextAreaField(_l("What was discussed"), validators=[Length(max=MAX_TEXT)])


class OverrideForm(SafeForm):
    reason = TextAreaField(_l("Why the confirmations are waived"), validators=[Length(max=MAX_TEXT)])


class WithdrawForm(SafeForm):
    reason = TextAreaField(_l("Why the notice is withdrawn"), validators=[Length(max=MAX_TEXT)])


class LeaverRevokeForm(SafeForm):
    reason = TextAreaField(_l("Reason"), validators=[Length(max=MAX_TEXT)])


class ResolveForm(SafeForm):
    note = TextAreaField(_l("What was found"), validators=[Length(max=MAX_TEXT)])


class CompleteForm(SafeForm):
    """Completing a departure ends the person's access for good: the box is checked by the server, not
    by a script, so a stray click or a replayed form does not complete anything."""

    confirm = BooleanField(_l("I understand: the person becomes departed, and their loans, tokens and sessions end."),
                           validators=[DataRequired(_l("Tick the box to confirm."))])
