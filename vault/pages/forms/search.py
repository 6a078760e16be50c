"""The search form: a GET form (no CSRF token: searching changes nothing, though it is audited)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, StringField
from wtforms.validators import Length

from vault.pages.forms.text import SafeForm


class SearchForm(SafeForm):
    class Meta:
        csrf = False

    q = StringField(_l("Customer, file title or account manager"), validators=[Length(max=200)])
    mine = BooleanField(_l("Only my customers"))
