"""Forms of the customer and document pages (Flask-WTF: every form carries a CSRF token).

The forms only check shape (required, lengths, one of the offered choices); the rules about names,
owners, grades and files live in the services, so the API and the command line obey the same ones.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from vault.config.policy_file import GradeRule
from vault.core import grades
from vault.models import Segment
from vault.pages.forms.text import SafeForm
from vault.policy import grades as policy_grades

SEGMENT_CHOICES = [
    SelectChoice(str(Segment.ORDINARY), _l("Ordinary")),
    SelectChoice(str(Segment.KEY), _l("Key account")),
    SelectChoice(str(Segment.VIP), _l("VIP")),
]
NO_CUSTODIAN = 0


def grade_choices(rules: dict[int, GradeRule]) -> list[SelectChoice]:
    """The grades offered for upload, each named as the banner and the stamp name it and followed by what
    the loaded policy (`rules`, the settings' grades) asks of a reader, in the reader's language now."""
    return [choice(grade, policy_grades.grade_choice(grade, rules[grade])) for grade in grades.GRADES]


def choice(value: object, label: object) -> SelectChoice:
    """One option of a select filled at request time (people, customers)."""
    return SelectChoice(value, label)  # type: ignore[arg-type]


class CustomerForm(SafeForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    segment = SelectField(_l("Segment"), choices=SEGMENT_CHOICES, default=str(Segment.ORDINARY))
    owner = SelectField(_l("Account manager"), coerce=int)
    notes = TextAreaField(_l("Notes"), validators=[Length(max=4000)])


class UploadForm(SafeForm):
    customer = SelectField(_l("Customer"), coerce=int)
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)])
    # Its choices say what this deployment's policy asks of each grade: filled per request (`grade_choices`).
    grade = SelectField(_l("Grade"), coerce=int, default=2)
    custodian = SelectField(_l("Custodian"), coerce=int, default=NO_CUSTODIAN)
    file = FileField(_l("File"), validators=[FileRequired(_l("Choose a file to upload."))])


class VersionForm(SafeForm):
    file = FileField(_l("New version"), validators=[FileRequired(_l("Choose a file to upload."))])
