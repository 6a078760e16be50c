"""The account page's notification form: one e-mail address and one choice per kind."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, Field, RadioField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length

from vault.mail.kinds import CHOOSABLE, LABELS, MODE_LABELS, Kind, allowed_modes
from vault.models import MailMode


class NotificationForm(FlaskForm):
    email = EmailField(_l("E-mail address"), validators=[Length(max=254)])

    def mode_fields(self) -> list[tuple[Kind, Field]]:
        return [(kind, self[f"mode_{kind}"]) for kind in CHOOSABLE]


for _kind in CHOOSABLE:
    setattr(NotificationForm, f"mode_{_kind}", RadioField(
        _l(LABELS[_kind]),
        choices=[SelectChoice(str(mode), _l(MODE_LABELS[mode])) for mode in allowed_modes(_kind)],
        default=str(MailMode.IMMEDIATE),
    ))
