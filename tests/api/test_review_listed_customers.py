"""A list or a search shows customers too (names, owners, segments), on both databases: a manager on
notice paging through the team's customers was neither noticed nor named in the departure report. (On
notice a manager no longer sees the team's customers at all, only what a look-up shows.) Now each customer
shown counts for the departure report ("listed") and for a leaver's reach outside their
book; a directory sweep still counts only records opened, looked up or revealed, so an account manager
browsing their own book raises nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from tests.api.test_review_notice_deciders import give_notice
from tests.conftest import login
from vault.models import Alert, CustomerAccess, Role
from vault.services import accounts, managers, report


def _alerts(rt: Any, name: str) -> list[str]:
    with rt.db.session() as session:
        person = accounts.get_user(session, name)
        return sorted(a.rule for a in session.scalars(select(Alert).where(Alert.user_id == person.id)))


def _listed(rt: Any, name: str) -> dict[int, int]:
    with rt.db.session() as session:
        built = report.build_report(rt, session, accounts.get_user(session, name))
        return {c.customer_id: c.listed for c in built.customers}


def test_a_manager_on_notice_reaching_the_team_s_customers_is_noticed_and_reported(
        api: Any, rt: Any, org: dict[str, int]) -> None:
    """On notice a manager's standing sight narrows to their own book (`policy.visibility.sees_team`): the
    team's customers are no longer listed or searched at all (this test used to page through all thirty).
    What a look-up still shows them counts for the departure report and raises `outside_book`."""
    team = [api.customer(f"Team Customer {i:02d}", owner="eva", shared=False) for i in range(30)]
    give_notice(rt, "hana")
    seen: set[int] = set()
    for page in (1, 2):
        seen |= {c["id"] for c in api.get(f"/api/v1/customers?page={page}", "hana").get_json()["customers"]}
    seen |= {c["id"] for c in api.get("/api/v1/search?q=team", "hana").get_json()["customers"]}
    assert not set(team) & seen
    found = api.get("/api/v1/customers/lookup?q=Team Customer", "hana").get_json()["customers"]
    assert found and {c["id"] for c in found} <= set(team)
    looked_up = {c["id"] for c in found}
    listed = {c["id"] for c in api.get("/api/v1/customers", "hana").get_json()["customers"]}
    listed |= {c["id"] for c in api.get("/api/v1/search?q=team", "hana").get_json()["customers"]}
    assert listed == looked_up
    counted = _listed(rt, "hana")
    assert all(counted.get(customer, 0) >= 2 for customer in looked_up)  # a page of the list, and the search
    assert "outside_book" in _alerts(rt, "hana") and "directory_sweep" not in _alerts(rt, "hana")


def test_browsing_one_s_own_book_raises_no_directory_sweep(api: Any, rt: Any, org: dict[str, int],
                                                          clock: Any) -> None:
    for i in range(60):
        api.customer(f"Eva Customer {i:02d}", owner="eva", shared=False)
    for _ in range(3):
        for page in (1, 2):
            assert api.get(f"/api/v1/customers?page={page}", "eva").status_code == 200
        clock.advance(timedelta(minutes=5))
    assert _alerts(rt, "eva") == []
    assert sum(_listed(rt, "eva").values()) >= 60 * 3


def test_a_contact_changed_by_the_leaver_before_notice_is_flagged_in_the_report(api: Any, rt: Any, app: Any,
                                                                               org: dict[str, int]) -> None:
    """The successor's letter goes to the main contact's address as the record holds it: a leaver who put
    their own mailbox there the week before notice would hear instead of the customer. The report now
    says which customers' contacts they changed, in its CSV, on its page and in its PDF."""
    customer = org["bob"]
    edited = api.call("PATCH", f"/api/v1/customers/{customer}", "bob", json={"contacts": [
        {"name": "Jana Novak", "emails": ["jana.novak@mail-box.example"], "main": True}]})
    assert edited.status_code == 200, edited.get_json()
    api.call("PATCH", f"/api/v1/customers/{customer}", "bob", json={"city": "Kiel"})  # not the contacts
    departure = give_notice(rt, "bob")
    auditor = app.test_client()
    login(auditor, "aud")
    page = auditor.get(f"/departures/{departure}/report").get_data(as_text=True)
    assert "1 edit of its contacts" in page
    with rt.db.session() as session:
        built = report.build_report(rt, session, accounts.get_user(session, "bob"))
        [line] = [c for c in built.customers if c.customer_id == customer]
        assert line.contacts_edited == 1
        assert [row["contacts_edited"] for row in report.csv_rows(built) if row.get("customer_id") == customer
                and row["kind"] == "customer"] == [1]


def test_the_upload_form_s_list_of_customers_counts_like_any_other_list(api: Any, rt: Any, app: Any, users: Any,
                                                                       org: dict[str, int]) -> None:
    """The upload form names every customer the compiler works (their team's down the chain too), like
    the customers page. It was recorded (`customer:list`, "upload") but not counted, so a compiler opening
    it again and again was not named "listed" in the departure report. On notice a manager's sight narrows
    to their own book (`policy.visibility.sees_team`): the form then names the team's customer no more, and
    what it names still counts."""
    users.make("cora", Role.COMPILER)
    users.make("dora", Role.BORROWER)
    with rt.db.session() as session:
        managers.set_manager(rt, session, accounts.get_user(session, "dora"), accounts.get_user(session, "cora"),
                             actor=None)
    own = api.customer("Cora Own Account", owner="cora", shared=False)
    team = api.customer("Dora Team Account", owner="dora", shared=False)
    browser = app.test_client()
    login(browser, "cora")
    form = browser.get("/documents/new")
    assert form.status_code == 200
    page = form.get_data(as_text=True)
    assert "Cora Own Account" in page and "Dora Team Account" in page
    assert org["eva"] not in _listed(rt, "cora")  # a customer the form does not name is not counted
    listed = _listed(rt, "cora")
    assert (listed.get(own), listed.get(team)) == (1, 1)
    give_notice(rt, "cora")
    login(browser, "cora")
    page = browser.get("/documents/new").get_data(as_text=True)
    assert "Cora Own Account" in page and "Dora Team Account" not in page
    listed = _listed(rt, "cora")
    assert (listed.get(own), listed.get(team)) == (2, 1)
    with rt.db.session() as session:
        kinds = {(a.customer_id, a.kind) for a in session.scalars(
            select(CustomerAccess).where(CustomerAccess.user_id == accounts.get_user(session, "cora").id))}
    assert kinds == {(own, "list"), (team, "list")}
