"""The account page's notification settings: an address and a choice per kind, with refusals that
change nothing."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from tests.loans.helpers import Browser
from vault.core.context import AccessContext
from vault.core.errors import ServiceError
from vault.mail import preferences
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


def _notification_records(rt) -> list[tuple[str | None, int | None, dict]]:
    with rt.db.session() as session:
        return [(e.actor_name, e.subject_user_id, json.loads(e.detail)) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action == "account:notifications").order_by(AuditEvent.seq))]


def test_a_change_of_one_s_choices_is_recorded_with_each_kind_s_old_and_new_mode(app, rt, cast) -> None:
    """Finding: choosing to hear nothing of the loans one should decide, or of a leaver's handover, left no
    trace in the audit log. Now `account:notifications` names each kind changed, from and to."""
    browser = Browser(app, "ann")
    assert browser.post("/account/notifications", _form(mode_loan_decided="digest", mode_loan_requested="off",
                                                        mode_security_alert="digest")).status_code == 302
    assert _notification_records(rt) == [("ann", cast["ann"], {"changes": {
        "loan_requested": {"from": "immediate", "to": "off"},
        "loan_decided": {"from": "immediate", "to": "digest"},
        "security_alert": {"from": "immediate", "to": "digest"}}})]
    # The same choices again change nothing and record nothing; one kind back records that kind alone.
    same = _form(mode_loan_decided="digest", mode_loan_requested="off", mode_security_alert="digest")
    assert browser.post("/account/notifications", same).status_code == 302
    assert len(_notification_records(rt)) == 1
    assert browser.post("/account/notifications", {**same, "mode_loan_requested": "immediate"}).status_code == 302
    assert _notification_records(rt)[1] == ("ann", cast["ann"], {"changes": {
        "loan_requested": {"from": "off", "to": "immediate"}}})


def test_a_refused_save_records_no_change_of_choices(app, rt, cast) -> None:
    """The choices and their record are one transaction with the rest of the form: an address another
    account uses refuses the whole save, the choices typed with it and their record too; security alerts
    are never turned off, by the form or by the service."""
    browser = Browser(app, "ann")
    before = _state(rt, "ann")
    for data in (_form(email="paula@example.com", mode_loan_requested="off"),
                 _form(mode_security_alert="off", mode_loan_requested="off")):
        response = browser.post("/account/notifications", data, follow_redirects=True)
        assert "flash flash-error" in response.get_data(as_text=True), data
    assert _state(rt, "ann") == before and _notification_records(rt) == []
    with rt.db.session() as session:
        ann = session.get(User, cast["ann"])
        with pytest.raises(ServiceError, match="cannot be turned off"):
            preferences.set_modes(rt, session, ann, {"loan_requested": "off", "security_alert": "off"},
                                  ctx=AccessContext.cli())
    assert _state(rt, "ann") == before and _notification_records(rt) == []
