"""A person's own language and time zone: what they choose on their account page, checked and audited.

Stored on the person (`users.locale`, `users.timezone`); empty means "follow the browser's language"
and "the company's time zone" (VAULT_TIMEZONE). Mail uses the stored language too, so a person who
chose Russian gets Russian mail whatever browser sent the last request.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from vault.core import languages
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.core.errors import ServiceError
from vault.models import User
from vault.runtime import Runtime


def set_language(rt: Runtime, session: Session, user: User, *, locale: str | None, timezone: str | None,
                 ctx: AccessContext) -> bool:
    """Store `user`'s choice; True when something changed (then an `account:language` record is written).

    Raises:
        ServiceError: `invalid_language` for a language vault has no catalogue for, `invalid_timezone`
            for a name that is not an IANA zone.
    """
    locale = (locale or "").strip() or None
    timezone = (timezone or "").strip() or None
    if locale is not None and locale not in languages.LANGUAGES:
        raise ServiceError("invalid_language", _l("Choose one of the languages offered."))
    if timezone is not None and not languages.valid_timezone(timezone):
        raise ServiceError("invalid_timezone", _l("Choose a time zone such as Europe/Moscow or Asia/Shanghai."))
    if (locale, timezone) == (user.locale, user.timezone):
        return False
    before = {"locale": user.locale, "timezone": user.timezone}
    user.locale, user.timezone = locale, timezone
    session.flush()
    rt.audit.record(session, action=AuditAction.ACCOUNT_LANGUAGE, actor=user, ctx=ctx, subject_user_id=user.id,
                    detail={"from": before, "to": {"locale": locale, "timezone": timezone}})
    return True
