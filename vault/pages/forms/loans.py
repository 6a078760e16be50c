"""Forms of the loan and view pages.

They only parse (types, lengths); whether a reason, a place or a number of days is acceptable is the
policy's decision, so that a page, the API and the command line refuse the same input the same way.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from vault.models import Category
from vault.pages.forms.text import SafeForm

CATEGORY_LABELS = {
    Category.VISIT_PREPARATION.value: _l("Visit preparation"),
    Category.CONTRACT_RENEWAL.value: _l("Contract renewal"),
    Category.COMPLAINT.value: _l("Complaint"),
    Category.HANDOVER.value: _l("Handover"),
    Category.QUOTATION.value: _l("Quotation"),
    Category.OTHER.value: _l("Other"),
}
CATEGORY_CHOICES = [SelectChoice(value, label) for value, label in CATEGORY_LABELS.items()]

MAX_TEXT = 2000
MAX_PLACE = 200


class WholeNumberField(IntegerField):
    """An integer field whose parse error says, in the page's words, what to type."""

    def __init__(self, label: object = None, *, message: object, optional: bool = False, **kwargs: object) -> None:
        kwargs["validators"] = [Optional()] if optional else [InputRequired(message)]
        super().__init__(label, **kwargs)
        self.message = message

    def process_formdata(self, valuelist: list[object]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(str(self.message)) from None


class _Purpose(SafeForm):
    reason = TextAreaField(_l("Why do you need it?"), validators=[Length(max=MAX_TEXT)])
    category = SelectField(_l("Category"), choices=CATEGORY_CHOICES, validate_choice=False)
    place = StringField(_l("Where will you read it?"), validators=[Length(max=MAX_PLACE)])


class LoanRequestForm(_Purpose):
    days = WholeNumberField(_l("For how many days?"), message=_l("Enter a whole number of days."))


class ExtensionForm(_Purpose):
    extra_views = WholeNumberField(_l("How many more views?"), message=_l("Enter a whole number of views."))


class OpenViewForm(SafeForm):
    reason = TextAreaField(_l("Why are you reading it now?"), validators=[Length(max=MAX_TEXT)])
    place = StringField(_l("Where are you?"), validators=[Length(max=MAX_PLACE)])
    download = BooleanField(_l("Download the file instead of viewing it"))
    # Asked of people on notice for files needing no loan (see `policy.views`).
    category = SelectField(_l("Kind of need"), choices=[SelectChoice("", "—"), *CATEGORY_CHOICES],
                           validate_choice=False)


class DecisionForm(SafeForm):
    comment = TextAreaField(_l("Comment"), validators=[Length(max=MAX_TEXT)])
    next = HiddenField()


def confirmation(label: object) -> BooleanField:
    """A box the person ticks to say they mean it; the server refuses the act without it (a script
    in the page is no confirmation: a stray click or a replayed form would not pass through it)."""
    return BooleanField(label, validators=[DataRequired(_l("Tick the box to confirm."))])


class RevokeForm(SafeForm):
    reason = TextAreaField(_l("Why is the loan revoked?"), validators=[Length(max=MAX_TEXT)])
    confirm = confirmation(_l("I understand the borrower loses access at once."))
    next = HiddenField()


class ReleaseForm(SafeForm):
    confirm = confirmation(_l("I have read the reason and hand the file out now."))
    next = HiddenField()


MAX_BATCH = 50  # one queue page


class LoanIdsField(SelectMultipleField):
    """Loan ids ticked in a queue: whole numbers, at most a page of them, whatever the choices."""

    def pre_validate(self, form: object) -> None:
        if self.process_errors:
            return  # what was sent is not a list of ids: that error says it
        if not self.data:
            raise ValidationError(str(_l("Tick at least one request.")))
        if len(self.data) > MAX_BATCH:
            raise ValidationError(str(_l("Choose at most %(n)d requests at once.", n=MAX_BATCH)))

    def process_formdata(self, valuelist: list[str]) -> None:
        try:
            self.data = [int(value) for value in valuelist]
        except ValueError:
            self.data = []
            raise ValueError(str(_l("Choose requests from the list."))) from None
        if any(not 1 <= value <= 2**31 - 1 for value in self.data):
            self.data = []
            raise ValueError(str(_l("Choose requests from the list.")))


class BatchApprovalForm(SafeForm):
    """Several requests approved with one comment; each is still the policy's decision on its own."""

    loan = LoanIdsField(_l("Requests"), validate_choice=False)
    comment = TextAreaField(_l("Comment for all of them (optional)"), validators=[Length(max=MAX_TEXT)])


class QuotaForm(SafeForm):
    views = WholeNumberField(_l("Views per person (empty: the grade's number)"),
                             message=_l("Enter a whole number of views, or nothing."), optional=True)
    # Whose quota: a user name; empty means everyone's (an approver's decision).
    person = StringField(_l("For whom (user name; empty: everyone, approvers only)"), validators=[Length(max=64)])
    next = HiddenField()
