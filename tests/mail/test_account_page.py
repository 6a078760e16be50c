"""The account page's notification settings: an address and a choice per kind, with refusals that
change nothing."""

from __future__ import annotations

from sqlalchemy import select

from tests.loans.helpers import Browser
from vault.mail.kinds import CHOOSABLE
from vault.models import AuditEvent, MailPreference, User


def _form(**changes: str) -> dict[str, str]:
    data = {"email": "ann@example.com", **{f"mode_{kind}": "immediate" for kind in CHOOSABLE}}
    data.update(changes)
    return data


def _state(rt, username: str) -> tuple[str | None, dict[str, str]]:
    with rt.db.session() as session:
        user = session.scalar(select(User).where(User.username == username))
        modes = {p.kind: str(p.mode) for p in session.scalars(select(MailPreference)
                                                               .where(MailPreference.user_id == user.id))}
        return user.email, modes


def test_set_address_and_choices(app, rt, cast) -> None:
    browser = Browser(app, "ann")
    page = browser.get("/account").get_data(as_text=True)
    assert 'id="notifications"' in page and 'value="ann@example.com"' in page
    assert 'name="mode_security_alert" type="radio" value="off"' not in page  # not even offered
    response = browser.post("/account/notifications", _form(email="Ann.B@Example.com", mode_loan_decided="digest",
                                                             mode_loan_requested="off"))
    assert response.status_code == 302
    email, modes = _state(rt, "ann")
    assert email == "ann.b@example.com"
    assert modes["loan_decided"] == "digest" and modes["loan_requested"] == "off"
    page = browser.get("/account").get_data(as_text=True)
    assert 'value="ann.b@example.com"' in page
    with rt.db.session() as session:
        assert session.scalar(select(AuditEvent).where(AuditEvent.action == "user:email")) is not None


def test_refusals_change_nothing(app, rt, cast) -> None:
    browser = Browser(app, "ann")
    before = _state(rt, "ann")
    for data in (_form(mode_security_alert="off"), _form(email="not an address"), _form(email="paula@example.com"),
                 _form(mode_loan_decided="hourly"), _form(email="x" * 300 + "@example.com")):
        response = browser.post("/account/notifications", data, follow_redirects=True)
        assert response.status_code == 200
        assert "flash flash-error" in response.get_data(as_text=True), data
        assert _state(rt, "ann") == before, data


def test_an_empty_address_stops_mail(app, rt, cast) -> None:
    browser = Browser(app, "ann")
    assert browser.post("/account/notifications", _form(email="")).status_code == 302
    assert _state(rt, "ann")[0] is None


def test_without_csrf_nothing_changes(app, rt, cast) -> None:
    browser = Browser(app, "ann")
    before = _state(rt, "ann")
    response = browser.client.post("/account/notifications", data=_form(email="new@example.com"))
    assert response.status_code in (302, 400)
    assert _state(rt, "ann") == before
