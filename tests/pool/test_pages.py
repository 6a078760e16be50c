"""The pool's pages through real forms: the menu link, a claim button, a manager's assignment, returning a
customer from its page, and the ownership history; the pool page shows names and segments only."""

from __future__ import annotations

import html as html_text
import json
import re

import pytest
from sqlalchemy import select

from tests.api.test_review_notice_deciders import give_notice
from tests.conftest import login
from tests.pool.scene import audited, owner_of, pooled
from vault.core.context import AccessContext
from vault.models import AuditEvent, Customer, Role, Segment, User
from vault.services import customers, records


def _manager(rt, username: str, manager_id: int) -> None:
    with rt.db.session() as session:
        session.query(User).filter_by(username=username).one().manager_id = manager_id
        session.commit()


def test_a_seller_claims_from_the_pool_page_and_returns_the_customer_from_its_page(app, rt, users):
    bob = users.make("bob", Role.BORROWER)
    users.make("kim", Role.CUSTODIAN)
    lead = pooled(rt, Segment.KEY, "Initech Lead")
    with rt.db.session() as session:  # a record the pool must not show
        records.edit(rt, session, None, session.get(Customer, lead), {"city": "Springfield"}, ctx=AccessContext.cli())
        session.commit()
    client = app.test_client()
    token = login(client, "bob")
    home = client.get("/").get_data(as_text=True)
    assert 'href="/pool/"' in home
    page = client.get("/pool/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Initech Lead" in html and "Springfield" not in html
    assert f'action="/pool/{lead}/claim"' in html and "/assign" not in html  # bob manages nobody

    claimed = client.post(f"/pool/{lead}/claim", data={"csrf_token": token})
    assert claimed.status_code == 302 and claimed.headers["Location"].endswith(f"/customers/{lead}")
    assert owner_of(rt, lead) == bob.id
    shown = client.get(f"/customers/{lead}").get_data(as_text=True)
    assert f'action="/pool/{lead}/release"' in shown

    short = client.post(f"/pool/{lead}/release", data={"csrf_token": token, "rel-reason": "no"})
    assert short.status_code == 400 and owner_of(rt, lead) == bob.id  # shown again (see the tests below)
    released = client.post(f"/pool/{lead}/release", data={"csrf_token": token,
                                                          "rel-reason": "Moved to the northern region"})
    assert released.status_code == 302 and owner_of(rt, lead) is None

    # A custodian has no pool: no menu link, and the page is refused.
    other = app.test_client()
    login(other, "kim")
    assert 'href="/pool/"' not in other.get("/").get_data(as_text=True)
    assert other.get("/pool/").status_code == 403


def test_a_manager_assigns_from_the_pool_page_and_the_history_shows_it(app, rt, users):
    max_ = users.make("max", Role.BORROWER)
    bob = users.make("bob", Role.BORROWER)
    users.make("bea", Role.BORROWER)
    _manager(rt, "bob", max_.id)
    lead = pooled(rt, Segment.VIP, "Umbrella Lead")
    client = app.test_client()
    token = login(client, "max")
    html = client.get("/pool/").get_data(as_text=True)
    options = re.findall(r'<option value="(\d+)"', html)
    assert options == [str(bob.id)]  # only max's own people
    refused = client.post(f"/pool/{lead}/assign", data={"csrf_token": token, "as-owner": str(max_.id)})
    assert refused.status_code == 302 and owner_of(rt, lead) is None  # not a valid choice: nothing given
    done = client.post(f"/pool/{lead}/assign", data={"csrf_token": token, "as-owner": str(bob.id)})
    assert done.status_code == 302 and owner_of(rt, lead) == bob.id

    seller = app.test_client()
    login(seller, "bob")
    history = seller.get(f"/customers/{lead}/history")
    assert history.status_code == 200
    text = history.get_data(as_text=True)
    assert "Assigned from the pool" in text and bob.display_name in text
    with rt.db.session() as session:
        assert session.get(Customer, lead).owner_id == bob.id


def test_a_compiler_enters_a_new_lead_into_the_pool_from_the_new_customer_page(app, rt, users):
    users.make("carl", Role.COMPILER)
    client = app.test_client()
    token = login(client, "carl")
    form = client.get("/customers/new").get_data(as_text=True)
    assert '<option value="0">' in form
    created = client.post("/customers/new", data={"csrf_token": token, "name": "Massive Dynamic",
                                                  "segment": "ordinary", "owner": "0", "notes": ""})
    assert created.status_code == 302, created.get_data(as_text=True)[:300]
    with rt.db.session() as session:
        customer = session.query(Customer).filter_by(name="Massive Dynamic").one()
        assert customer.owner_id is None


def test_the_menu_offers_no_pool_to_someone_on_notice(app, rt, users):
    """On notice, a person neither claims nor is assigned: the link led only to a refusal."""
    users.make("bob", Role.BORROWER)
    client = app.test_client()
    login(client, "bob")
    assert 'href="/pool/"' in client.get("/").get_data(as_text=True)
    give_notice(rt, "bob")
    assert 'href="/pool/"' not in client.get("/").get_data(as_text=True)
    assert client.get("/pool/").status_code == 403  # the page itself still refuses, and says why


def _request_records(rt, request_id: str) -> list[tuple[str, str, str | None, dict]]:
    with rt.db.session() as session:
        return [(e.action, e.outcome, e.reason_code, json.loads(e.detail or "{}")) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.request_id == request_id).order_by(AuditEvent.seq))]


def _release_form(page: str, lead: int) -> str:
    match = re.search(rf'<form[^>]*action="/pool/{lead}/release".*?</form>', page, re.S)
    assert match, "no release form"
    return html_text.unescape(match.group(0))


@pytest.mark.parametrize(("reason", "message"), [
    ("no", "Say why the customer goes back to the pool (at least 5 characters)."),  # the form's own check
    ("", "Say why the customer goes back to the pool (at least 5 characters)."),
    ("a      b", "Say why the customer goes back to the pool (at least 5 characters)."),  # the service's
    ("x" * 2001, "Field cannot be longer than 2000 characters."),
])
def test_a_release_refused_for_its_reason_shows_the_customer_again_with_the_reason(app, rt, users, reason,
                                                                                  message):
    """Before, a reason too short answered a flash and a redirect: the typed reason was lost. Now the customer
    page is shown again, 400, the reason as typed in its field and the message beside it; nothing is released
    and nothing decided (no refusal to record: the policy was not asked), and the page's read of the customer
    is recorded, marked `again`, and kept though the answer is an error."""
    bob = users.make("bob", Role.BORROWER)
    lead = pooled(rt, Segment.KEY, "Initech Lead")
    with rt.db.session() as session:
        customers.set_owner(rt, session, None, session.get(Customer, lead), session.get(User, bob.id),
                            ctx=AccessContext.cli())
        session.commit()
    client = app.test_client()
    token = login(client, "bob")
    answer = client.post(f"/pool/{lead}/release", data={"csrf_token": token, "rel-reason": reason})
    assert answer.status_code == 400
    page = answer.get_data(as_text=True)
    assert "Initech Lead" in page
    form = _release_form(page, lead)
    typed = re.search(r'<textarea[^>]*name="rel-reason"[^>]*>\r?\n?(.*?)</textarea>', form, re.S)
    assert typed and typed.group(1) == reason
    assert 'aria-invalid="true"' in form and message in form
    assert owner_of(rt, lead) == bob.id and audited(rt, "pool:release") == []
    assert _request_records(rt, answer.headers["X-Request-ID"]) == [
        ("customer:read", "allowed", None, {"again": True})]


def test_a_release_refused_for_who_asks_is_still_a_refusal_page(app, rt, users):
    """The control: a co-owner may read the customer but not release it; with a reason too short as well, the
    refusal of who they are stands on its own (403, recorded), and the customer page is not shown again."""
    bob = users.make("bob", Role.BORROWER)
    bea = users.make("bea", Role.BORROWER)
    lead = pooled(rt, Segment.KEY, "Initech Lead")
    with rt.db.session() as session:
        customers.set_owner(rt, session, None, session.get(Customer, lead), session.get(User, bob.id),
                            ctx=AccessContext.cli())
        customers.add_co_owner(rt, session, None, session.get(Customer, lead), session.get(User, bea.id),
                               ctx=AccessContext.cli())
        session.commit()
    client = app.test_client()
    token = login(client, "bea")
    answer = client.post(f"/pool/{lead}/release", data={"csrf_token": token, "rel-reason": "no"})
    assert answer.status_code == 403
    assert 'action="/pool/' not in answer.get_data(as_text=True)
    records_ = _request_records(rt, answer.headers["X-Request-ID"])
    assert [(action, outcome) for action, outcome, _code, _detail in records_] == [("pool:release", "denied")]
    assert owner_of(rt, lead) == bob.id
