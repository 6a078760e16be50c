"""Search over customers and files: accents and case ignored on both databases, never past need to know.

The scene is need to know's (tests/api/test_need_to_know.py): Vera runs sales, Hana leads a team under
her, Eva and Bob sell in Hana's team, Bea sells on her own and co-owns Eva's customer; Carl compiles every
file, Ann approves, Kim keeps one file, Aud audits, Adm administers. Each role gets its own test of what
a search returns, the refusals included.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import select

from tests.api.conftest import assert_error, events
from tests.conftest import login
from vault.models import Document, User
from vault.services import accounts

TEXT = b"Visit notes, prices and contacts.\n"


@pytest.fixture
def scene(api: Any, rt: Any, org: dict[str, int]) -> dict[str, int]:
    """The need-to-know organisation (`org`), with an accented display name and three files."""
    with rt.db.session() as session:
        accounts.get_user(session, "eva").display_name = "Éva Kowalska"
        session.commit()
    ids = dict(org)
    ids["contract"] = api.upload(ids["eva"], grade=2, title="Contrato Marco Ibérica", content=TEXT,
                                 filename="contrato.txt")
    # A file whose title names Ibérica, of a customer Eva does not work: her search must not return it.
    ids["route"] = api.upload(ids["bob"], grade=2, title="Ruta IBERICA norte", content=TEXT, filename="ruta.txt",
                              custodian="kim")
    ids["foods"] = api.upload(ids["bea"], grade=1, title="Price list", content=TEXT, filename="prices.txt")
    return ids


def _search(api: Any, who: str, q: str, **params: str) -> dict[str, Any]:
    answer = api.get("/api/v1/search", who, query_string={"q": q, **params})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def _found(api: Any, who: str, q: str, **params: str) -> tuple[set[str], set[str]]:
    body = _search(api, who, q, **params)
    return {c["name"] for c in body["customers"]}, {f["title"] for f in body["files"]}


def test_accents_and_case_are_ignored_for_names_and_titles(api, scene):
    for query in ("iberica", "IBÉRICA", "Ibérica  Logística", "logistica"):
        customers, _files = _found(api, "eva", query)
        assert customers == {"Ibérica Logística"}, query
    _customers, files = _found(api, "eva", "contrato marco")
    assert files == {"Contrato Marco Ibérica"}
    body = _search(api, "eva", "CONTRATO")
    [hit] = body["files"]
    assert (hit["grade"], hit["content_type"], hit["customer"]) == (2, "text/plain", "Ibérica Logística")


def test_a_borrower_finds_only_the_customers_and_files_she_works(api, rt, scene):
    customers, files = _found(api, "eva", "iberica")
    assert customers == {"Ibérica Logística"}
    assert files == {"Contrato Marco Ibérica"}  # never Bob's "Ruta IBERICA norte"
    customers, files = _found(api, "bob", "iberica")
    assert customers == set() and files == {"Ruta IBERICA norte"}
    # The search is recorded like the list, with the query and exactly the ids returned.
    [event] = events(rt, "customer:search")[-1:]
    detail = json.loads(event.detail)
    assert (event.actor_name, detail["query"], detail["ids"], detail["documents"]) == (
        "bob", "iberica", [], [scene["route"]])


def test_a_co_owner_and_the_managers_up_the_chain(api, scene):
    assert _found(api, "bea", "iberica") == ({"Ibérica Logística"}, {"Contrato Marco Ibérica"})
    both = ({"Ibérica Logística"}, {"Contrato Marco Ibérica", "Ruta IBERICA norte"})
    assert _found(api, "hana", "iberica") == both
    assert _found(api, "vera", "iberica") == both


def test_by_account_manager_folded_like_names(api, scene):
    # Éva Kowalska owns Ibérica Logística: "eva kowal" finds it (and its file) for those who see it.
    assert _found(api, "hana", "eva kowal") == ({"Ibérica Logística"}, {"Contrato Marco Ibérica"})
    assert _found(api, "bob", "eva kowal") == (set(), set())


def test_my_customers_keeps_the_ones_owned_or_co_owned(api, scene):
    assert _found(api, "hana", "iberica", mine="1") == (set(), set())  # her team's, not hers
    assert _found(api, "bea", "a", mine="1")[0] == {"Ibérica Logística", "Adriatic Foods"}
    assert _found(api, "bea", "price", mine="1")[1] == {"Price list"}


def test_the_compiler_finds_what_he_compiled(api, scene):
    customers, files = _found(api, "carl", "i")
    assert customers == {"Ibérica Logística", "Nordlicht Handel", "Adriatic Foods", "Carl Direct"}
    assert files == {"Contrato Marco Ibérica", "Ruta IBERICA norte", "Price list"}


def test_the_custodian_finds_only_the_files_she_keeps(api, scene):
    assert _found(api, "kim", "iberica") == (set(), {"Ruta IBERICA norte"})
    assert _found(api, "kim", "nordlicht")[0] == {"Nordlicht Handel"}
    assert _found(api, "kim", "contrato") == (set(), set())


def test_the_approver_finds_a_file_only_while_a_request_for_it_waits(api, scene):
    assert _found(api, "ann", "iberica") == (set(), set())
    api.loan(scene["contract"], "eva")
    assert _found(api, "ann", "iberica") == ({"Ibérica Logística"}, {"Contrato Marco Ibérica"})


@pytest.mark.parametrize("who", ["aud", "adm"])
def test_auditors_and_administrators_are_refused(api, rt, scene, who):
    assert_error(api.get("/api/v1/search", who, query_string={"q": "iberica"}), 403, "not_permitted")
    refusal = events(rt, "customer:read", "denied")[-1]
    assert (refusal.actor_name, json.loads(refusal.detail)["path"]) == (who, "/api/v1/search")
    assert events(rt, "customer:search") == []


def test_suspended_customer_access_finds_nothing(api, rt, scene):
    with rt.db.session() as session:
        eva = session.scalar(select(User).where(User.username == "eva"))
        eva.customers_suspended_at = eva.created_at
    assert_error(api.get("/api/v1/search", "eva", query_string={"q": "iberica"}), 403, "access_suspended")
    assert events(rt, "customer:search") == []


def test_bad_queries_are_refused_and_nothing_is_recorded(api, rt, scene):
    assert_error(api.get("/api/v1/search", "eva", query_string={"q": "   "}), 400, "query_required")
    assert_error(api.get("/api/v1/search", "eva"), 400, "query_required")
    assert api.get("/api/v1/search", "eva", query_string={"q": "ib\x00"}).status_code == 422
    assert api.get("/api/v1/search", "eva", query_string={"q": "x", "page": "2"}).status_code == 422
    # LIKE's wildcards are text, not patterns.
    assert _found(api, "carl", "%") == (set(), set())
    assert _found(api, "carl", "_") == (set(), set())
    assert events(rt, "customer:search")[-1].actor_name == "carl"


def test_titles_are_folded_when_they_change(api, rt, scene):
    with rt.db.session() as session:
        document = session.get(Document, scene["foods"])
        document.title = "Lista de PRECIÓS"
    assert _found(api, "bea", "precios")[1] == {"Lista de PRECIÓS"}


def _set_city(api: Any, who: str, customer_id: int, city: str) -> None:
    response = api.call("PATCH", f"/api/v1/customers/{customer_id}", who, json={"city": city})
    assert response.status_code == 200, response.get_json()


def test_the_city_is_found_folded_and_only_within_visible_customers(api, rt, scene):
    _set_city(api, "bob", scene["bob"], "München")
    for query in ("munchen", "MÜNCHEN", "Münch", "unche"):
        customers, files = _found(api, "bob", query)
        assert customers == {"Nordlicht Handel"}, query
        assert files == set()  # a city finds the customer, not its files
    # Hana leads Bob's team and sees the customer; Eva and Bea do not, and find nothing by its city.
    assert _found(api, "hana", "munchen")[0] == {"Nordlicht Handel"}
    for who in ("eva", "bea"):
        assert _found(api, who, "munchen") == (set(), set()), who
    [event] = [e for e in events(rt, "customer:search") if e.actor_name == "eva"]
    assert json.loads(event.detail)["ids"] == []
    # A city no customer has finds nothing; the old city stops matching once the record moves.
    assert _found(api, "bob", "hamburg") == (set(), set())
    _set_city(api, "bob", scene["bob"], "Hamburg")
    assert _found(api, "bob", "munchen")[0] == set()
    assert _found(api, "bob", "hamburg")[0] == {"Nordlicht Handel"}


def test_city_wildcards_are_literal(api, scene):
    _set_city(api, "bob", scene["bob"], "Saint_Étienne 100%")
    assert _found(api, "bob", "saint_etienne")[0] == {"Nordlicht Handel"}
    assert _found(api, "bob", "saint%")[0] == set()
    assert _found(api, "bob", "100%")[0] == {"Nordlicht Handel"}
    assert _found(api, "bob", "t_e")[0] == {"Nordlicht Handel"}
    assert _found(api, "bob", "sa_nt")[0] == set()


def test_the_search_page_shows_grade_and_type_and_refuses_like_the_api(app, api, rt, scene):
    client = app.test_client()
    login(client, "eva")
    assert client.get("/search/").status_code == 200  # the form alone: nothing searched, nothing recorded
    assert events(rt, "customer:search") == []
    page = client.get("/search/", query_string={"q": "IBERICA", "mine": "1"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Ibérica Logística" in html and "Contrato Marco Ibérica" in html and "Ruta IBERICA" not in html
    assert "Grade 2" in html and '<span class="file-type">Text</span>' in html
    assert 'name="mine" value="1" checked' in html
    assert '<a href="/search/">Search</a>' in html  # in the menu
    bad = client.get("/search/", query_string={"q": "ib\x01"})
    assert bad.status_code == 400 and "control characters" in bad.get_data(as_text=True)
    auditor = app.test_client()
    login(auditor, "aud")
    refused = auditor.get("/search/", query_string={"q": "iberica"})
    menu = re.findall(r'<nav id="main-menu"[^>]*>(.*?)</nav>', refused.get_data(as_text=True), re.S)[0]
    assert refused.status_code == 403 and "Search" not in menu
    assert [e.actor_name for e in events(rt, "customer:search")] == ["eva"]


def test_the_customer_list_keeps_my_customers_across_pages(app, api, scene):
    client = app.test_client()
    login(client, "bea")
    html = client.get("/customers/", query_string={"mine": "1"}).get_data(as_text=True)
    assert "Ibérica Logística" in html and "Adriatic Foods" in html
    assert 'name="mine" value="1" checked' in html
