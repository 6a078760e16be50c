"""`vault user manager` and `vault user add --manager` on the operator's command line: trusted with the
two-person rule (the manager is named at once), not with the notice. A manager on notice, or below someone
who is, would see the person's customers in their last days, so the operator is refused as an administrator
is (`manager_departing`), with a clear message, a non-zero exit and a denied `user:manage` record."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from tests.departure.conftest import OFFICE, days_from_today, run_cli
from vault.core.context import operator_name
from vault.models import Customer, Role, User
from vault.policy import visibility
from vault.services import departures


def _notice(rt, company, leaver: str = "sam") -> int:
    with rt.db.session() as session:
        return departures.start_departure(
            rt, session, company.user(session, "adm"), company.user(session, leaver), last_day=days_from_today(10),
            successor=company.user(session, "sue"), ctx=OFFICE).id


def _sees(rt, company, who: str, customer_id: int) -> bool:
    with rt.db.session() as session:
        return bool(visibility.customer_visible(company.user(session, who), session.get(Customer, customer_id)))


@pytest.mark.parametrize("named", ["sam", "tom"])
def test_the_operator_names_no_manager_on_notice_or_below_one(rt, company, tmp_path, named):
    """Sam is on notice; Tom reports to Sam. Naming either above Bea opened Bea's book to Sam on the way out:
    the command said "bea reports to sam" and recorded `user:manager`. Now it is refused and recorded, Bea's
    line is unchanged, and naming someone who is not leaving, or nobody, still happens at once."""
    company.users.make("bea", Role.BORROWER)
    company.users.manage("sam", "tom")
    book = company.customer("Bea's Best Customer", owner="bea")
    _notice(rt, company)
    mark = company.head()
    refused = run_cli(rt, tmp_path, "user", "manager", "bea", named)
    assert refused.exit_code == 1, refused.output
    assert "refused:" in refused.output and "(manager_departing)" in refused.output
    assert f"bea reports to {named}" not in refused.output
    assert company.refresh("bea").manager_id is None and not _sees(rt, company, "sam", book)
    assert company.events("user:manager", after=mark) == []
    (denied,) = company.events(outcome="denied", after=mark)
    assert (denied.action, denied.reason_code, denied.actor_name, denied.user_agent, denied.subject_user_id) == (
        "user:manage", "manager_departing", operator_name(), "vault-cli", company.refresh("bea").id)
    assert json.loads(denied.detail) == {"command": "vault user manager"}

    # Sue is not on notice, nor below anyone who is: named at once, as before.
    named_sue = run_cli(rt, tmp_path, "user", "manager", "bea", "sue")
    assert named_sue.exit_code == 0 and "bea reports to sue" in named_sue.output
    assert company.refresh("bea").manager_id == company.ids["sue"]
    # Taking a manager away narrows a reach: never refused.
    cleared = run_cli(rt, tmp_path, "user", "manager", "bea", "--none")
    assert cleared.exit_code == 0 and "bea reports to nobody" in cleared.output
    assert [e.outcome for e in company.events("user:manager", after=mark)] == ["allowed", "allowed"]
    assert len(company.events(outcome="denied", after=mark)) == 1


def test_a_new_account_is_not_made_below_a_leaver(rt, company, tmp_path):
    """`vault user add --manager` named the manager through the same step: the account is refused whole (no
    account, no `user:create`), and the refusal's record names no account that never came to be."""
    _notice(rt, company)
    mark = company.head()
    refused = run_cli(rt, tmp_path, "user", "add", "newbie", "--link", "--role", "borrower", "--manager", "sam")
    assert refused.exit_code == 1 and "(manager_departing)" in refused.output, refused.output
    assert "one-time link" not in refused.output
    with rt.db.session() as session:
        assert session.scalar(select(User).where(User.username == "newbie")) is None
    assert company.events("user:create", after=mark) == [] and company.events("user:manager", after=mark) == []
    (denied,) = company.events(outcome="denied", after=mark)
    assert (denied.action, denied.reason_code, denied.actor_name, denied.subject_user_id) == (
        "user:manage", "manager_departing", operator_name(), None)
    assert json.loads(denied.detail) == {"command": "vault user add"}
    made = run_cli(rt, tmp_path, "user", "add", "newbie", "--link", "--role", "borrower", "--manager", "sue")
    assert made.exit_code == 0 and "reporting to sue" in made.output, made.output
    assert company.refresh("newbie").manager_id == company.ids["sue"]


def test_a_withdrawn_notice_lets_the_operator_name_them_again(rt, company, tmp_path):
    company.users.make("bea", Role.BORROWER)
    departure_id = _notice(rt, company)
    assert run_cli(rt, tmp_path, "user", "manager", "bea", "sam").exit_code == 1
    with rt.db.session() as session:
        departures.withdraw(rt, session, company.user(session, "adm"), departures.get_departure(session, departure_id),
                            reason="Sam accepted the counter-offer", ctx=OFFICE)
    named = run_cli(rt, tmp_path, "user", "manager", "bea", "sam")
    assert named.exit_code == 0 and "bea reports to sam" in named.output
    assert company.refresh("bea").manager_id == company.ids["sam"]
