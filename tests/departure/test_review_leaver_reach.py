"""A leaver's reach widened by a colleague who is not leaving: a team's customers through a manager named
after the notice."""

from __future__ import annotations

import json

import pytest

from tests.departure.conftest import OFFICE, days_from_today
from vault import policy
from vault.models import Customer, Role
from vault.policy import visibility
from vault.services import departures, managers


def _notice(rt, company, leaver: str = "sam") -> int:
    with rt.db.session() as session:
        return departures.start_departure(
            rt, session, company.user(session, "adm"), company.user(session, leaver), last_day=days_from_today(10),
            successor=company.user(session, "sue"), ctx=OFFICE).id


def _name_manager(rt, company, person: str, manager: str) -> int:
    with rt.db.session() as session:
        request = managers.set_manager(rt, session, company.user(session, person), company.user(session, manager),
                                       actor=company.user(session, "adm"), ctx=OFFICE)
        assert request is not None
        return request.id


def _decide(rt, company, request_id: int, *, approve: bool) -> None:
    with rt.db.session() as session:
        managers.decide_manager_request(rt, session, managers.get_manager_request(session, request_id),
                                        approve=approve, actor=company.user(session, "adm2"), ctx=OFFICE)


def _sees(rt, company, who: str, customer_id: int) -> bool:
    with rt.db.session() as session:
        return bool(visibility.customer_visible(company.user(session, who), session.get(Customer, customer_id)))


@pytest.mark.parametrize("named", ["sam", "tom"])
def test_a_manager_named_after_the_notice_opens_no_team_to_the_leaver(rt, company, named):
    """Two administrators, neither leaving, put Sam (on notice) above a colleague with a book of customers,
    directly (Sam named) or through someone who reports to Sam (Tom named): Sam then saw, revealed and could
    copy every one of those customers in the last days. A request named before the notice and approved after
    it is the same decision. Refusing it stays open, and so does a manager who is not below the leaver."""
    company.users.make("adm2", Role.ADMIN)
    company.users.make("bea", Role.BORROWER)
    company.users.manage("sam", "tom")
    book = company.customer("Bea's Best Customer", owner="bea")
    early = _name_manager(rt, company, "bea", named)
    _notice(rt, company)
    assert not _sees(rt, company, "sam", book)
    with pytest.raises(policy.Denied) as refused:
        _decide(rt, company, early, approve=True)
    assert refused.value.decision.code == "manager_departing"
    with pytest.raises(policy.Denied) as asked:
        _name_manager(rt, company, "bea", named)
    assert asked.value.decision.code == "manager_departing"
    assert company.refresh("bea").manager_id is None and not _sees(rt, company, "sam", book)
    _decide(rt, company, early, approve=False)
    assert [json.loads(e.detail)["request_id"] for e in company.events("manager:refuse")] == [early]
    # Sue is not on notice, nor below anyone who is: naming her is the usual two-person decision.
    _decide(rt, company, _name_manager(rt, company, "bea", "sue"), approve=True)
    assert company.refresh("bea").manager_id == company.ids["sue"]
    assert _sees(rt, company, "sue", book) and not _sees(rt, company, "sam", book)
