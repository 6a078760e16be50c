"""Finding 11 of the attack review: someone on notice pulled every grade-1 file in one evening, and
auto-suspend revoked only loans. Now grade-1 opens count against a daily cap on notice, and a high
alert with auto-suspend stops all content access until the alert is resolved."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from tests.departure.conftest import OFFICE, TRUSTED, days_from_today
from tests.support.locks import meanwhile
from vault import policy as vault_policy
from vault.alerts import desk
from vault.models import Alert
from vault.services import departures

ALL_HOURS = {"timezone": "UTC", "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": 0, "end": 24}


@pytest.fixture
def settings_overrides(request) -> dict[str, Any]:
    marker = request.node.get_closest_marker("policy")
    return {"trusted_places": TRUSTED, "policy": marker.args[0] if marker else {"working_hours": ALL_HOURS}}


def _notice(rt, company) -> None:
    with rt.db.session() as session:
        departures.start_departure(rt, session, None, company.user(session, "sam"), last_day=days_from_today(20),
                                   successor=company.user(session, "sue"), ctx=OFFICE)


def _refused(company, document: int) -> str:
    with pytest.raises(vault_policy.Denied) as refused:
        company.view(document)
    return refused.value.decision.code


@pytest.mark.policy({"working_hours": ALL_HOURS, "departure": {"notice_grade1_daily_cap": 2}})
def test_on_notice_grade_1_files_count_against_a_daily_cap(rt, company):
    files = [company.document(company.customer(f"Shop {n}"), grade=1) for n in range(4)]
    company.view(files[0])  # before the notice: not counted against anything
    _notice(rt, company)
    company.view(files[1])
    company.view(files[2])
    assert _refused(company, files[3]) == "notice_daily_cap"
    company.view(files[3], user="tom")  # nobody else is capped


@pytest.mark.policy({"working_hours": ALL_HOURS, "departure": {"notice_grade1_daily_cap": 5}})
def test_on_notice_grade_1_files_need_a_kind_of_need(rt, company):
    document = company.document(company.customer("Shop"), grade=1)
    company.view(document, category=None)  # before the notice: not asked
    _notice(rt, company)
    assert _refused_without_category(company, document) == "category_required"
    company.view(document, category="quotation")
    [*_, last] = company.events("document:view")
    assert json.loads(last.detail)["category"] == "quotation"


def _refused_without_category(company, document: int) -> str:
    with pytest.raises(vault_policy.Denied) as refused:
        company.view(document, category=None)
    return refused.value.decision.code


@pytest.mark.policy({"working_hours": ALL_HOURS, "alerts": {"auto_suspend": True}})
def test_a_high_alert_with_auto_suspend_stops_every_view_until_it_is_resolved(rt, company):
    plain = company.document(company.customer("Shop"), grade=1)
    graded = company.document(company.customer("Graded"), grade=2)
    company.loan(graded)
    _notice(rt, company)
    company.view(graded)  # a view on notice: the high alert, loans revoked, access suspended
    [alert] = [a for a in company.alerts() if a.severity == "high"]
    assert alert.evidence["access_suspended"] is True
    assert [e.subject_user_id for e in company.events("access:suspend")] == [company.ids["sam"]]
    assert _refused(company, plain) == "access_suspended"
    with rt.db.session() as session:
        with pytest.raises(vault_policy.Denied):  # nobody lifts their own
            desk.resolve(rt, session, company.user(session, "sam"), session.get(Alert, alert.id),
                         note="I was only preparing visits", ctx=OFFICE)
        desk.resolve(rt, session, company.user(session, "ann"), session.get(Alert, alert.id),
                     note="Talked to Sam: visits were planned", ctx=OFFICE)
    assert [e.actor_name for e in company.events("access:resume")] == ["ann"]
    company.view(plain)
    with rt.db.session() as session:
        assert session.scalar(select(Alert).where(Alert.id == alert.id)).status == "resolved"


@pytest.mark.policy({"working_hours": ALL_HOURS, "alerts": {"auto_suspend": True}})
def test_acknowledging_a_suspending_alert_records_no_resumption(rt, company):
    """Acknowledging an alert that suspended Sam's access recorded `access:resume` while his access stayed
    suspended (only resolving lifts it): the log said access came back when it had not, and said it again at
    the resolution. Now the one `access:resume` is the resolution's, when access comes back."""
    plain = company.document(company.customer("Shop"), grade=1)
    graded = company.document(company.customer("Graded"), grade=2)
    company.loan(graded)
    _notice(rt, company)
    company.view(graded)
    [alert] = [a for a in company.alerts() if a.severity == "high"]
    with rt.db.session() as session:
        desk.acknowledge(rt, session, company.user(session, "ann"), session.get(Alert, alert.id), ctx=OFFICE)
    assert company.events("access:resume") == []
    assert _refused(company, plain) == "access_suspended"
    with rt.db.session() as session:
        desk.resolve(rt, session, company.user(session, "abe"), session.get(Alert, alert.id),
                     note="Talked to Sam: visits were planned", ctx=OFFICE)
    assert [e.actor_name for e in company.events("access:resume")] == ["abe"]
    company.view(plain)


@pytest.mark.policy({"working_hours": ALL_HOURS, "alerts": {"auto_suspend": True}})
@pytest.mark.parametrize("db_backend", ["postgresql"])
def test_two_resolutions_at_once_leave_the_first_standing(rt, company, db_backend):
    """Ann and Abe resolved the same alert at once: the second read it unresolved, waited for the first's
    write, then wrote its own note over Ann's and recorded a second resolution and a second resumption. The
    desk now reads the alert locked: Abe's is refused as resolved already."""
    graded = company.document(company.customer("Graded"), grade=2)
    company.loan(graded)
    _notice(rt, company)
    company.view(graded)
    [alert] = [a for a in company.alerts() if a.severity == "high"]
    outcome: list[str] = []

    def abe() -> None:
        with rt.db.session() as session:
            found = session.get(Alert, alert.id)
            assert found.status != "resolved"  # read before the wait
            try:
                desk.resolve(rt, session, company.user(session, "abe"), found, note="Abe looked too", ctx=OFFICE)
                outcome.append("resolved")
            except vault_policy.Denied as exc:
                outcome.append(exc.decision.code)

    meanwhile(rt, lambda session: desk.resolve(rt, session, company.user(session, "ann"), session.get(Alert, alert.id),
                                               note="Talked to Sam: visits were planned", ctx=OFFICE), abe)
    assert outcome == ["alert_resolved"]
    assert [e.actor_name for e in company.events("alert:resolve")] == ["ann"]
    assert [e.actor_name for e in company.events("access:resume")] == ["ann"]
    with rt.db.session() as session:
        assert session.get(Alert, alert.id).resolution_note == "Talked to Sam: visits were planned"
