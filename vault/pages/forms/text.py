"""The base of every page form: text fields never carry control characters.

NUL and the other C0 controls (except tab, line feed and carriage return, which a text area sends)
have no place in a name, a reason or a note: SQLite stored them as given and PostgreSQL refuses NUL
in text with a server error. They are refused here, once for every form, with a form error that
names the field, so nothing with them reaches a service or the database.
"""

from __future__ import annotations

import re
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MESSAGE = _l("Remove the control characters (such as NUL) from this field.")


def has_control(value: Any) -> bool:
    return isinstance(value, str) and CONTROL.search(value) is not None


class SafeForm(FlaskForm):
    """FlaskForm whose validation refuses control characters in every text field (and its subclasses:
    text areas, passwords, hidden fields)."""

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        for field in self:
            if isinstance(field, StringField) and has_control(field.data):
                field.errors = [*field.errors, MESSAGE]
                valid = False
        return valid
