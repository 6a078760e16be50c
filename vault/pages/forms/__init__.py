"""Forms shared by the pages (Flask-WTF: every form carries a CSRF token)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from vault.pages.forms.text import SafeForm


class LoginForm(SafeForm):
    username = StringField(_l("User name"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])
    next = HiddenField()


class ConfirmForm(SafeForm):
    """A form with nothing but its CSRF token, for one-click POST buttons."""
