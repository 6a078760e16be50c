"""`GET /api/v1/audit/events`: the auditor's desk for scripts. The desk's filters, keyset pages both ways
within bounds, each record checkable with the audit key, auditors only, and read as the desk reads."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import func, select

from tests.api.conftest import assert_error, events
from tests.conftest import login
from tests.support.factories import make_document
from vault.audit.chain import compute_mac
from vault.core.context import AccessContext
from vault.models import AuditEvent, Document
from vault.web.pipeline import MAINTENANCE_KEY

URL = "/api/v1/audit/events"
CTX = AccessContext(client_addr="10.0.0.9", named_place="Head office", user_agent="pytest", request_id="req-events-1")


def _record(rt: Any, action: str, **fields: Any) -> int:
    """One real append, as the application makes it; returns its sequence number."""
    ctx = fields.pop("ctx", CTX)
    with rt.db.session() as session:
        return rt.audit.record(session, action=action, ctx=ctx, **{"actor": None, **fields}).seq


def _seqs(api: Any, **query: Any) -> list[int]:
    response = api.get(URL, "aud", query_string=query)
    assert response.status_code == 200, response.get_json()
    return [event["seq"] for event in response.get_json()["events"]]


def _log_size(rt: Any) -> int:
    with rt.db.session() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent))


def test_filters_names_and_each_record_checkable(api, rt, cast):
    document = make_document(rt, compiler_id=cast["carl"].id, grade=2, title="Price list")
    with rt.db.session() as session:
        found = session.get(Document, document)
        customer, customer_name = found.customer_id, found.customer.name
    request = _record(rt, "loan:request", actor=cast["bob"], customer_id=customer, document_id=document, loan_id=77,
                      reason_text="Visit on Monday", ctx=CTX.declaring("Hamburg"))
    approve = _record(rt, "loan:approve", actor=cast["ann"], loan_id=77, subject_user_id=cast["bob"].id,
                      detail={"comment": "ok", "note": "équipe \"nord\""})
    refused = _record(rt, "auth:login", actor_name="mallory", outcome="denied", reason_code="bad_credentials",
                      ctx=AccessContext(client_addr="203.0.113.5"))
    # The desk's filters, one by one and combined; names are looked up as the desk does.
    assert _seqs(api, action="loan:*") == [approve, request]
    assert _seqs(api, action="loan:request") == [request]
    assert _seqs(api, loan="77") == [approve, request]
    assert _seqs(api, actor="mallory") == [refused]
    assert _seqs(api, actor=str(cast["ann"].id), action="loan:*") == [approve]
    assert _seqs(api, user="Bob", action="loan:*") == [approve, request]
    assert _seqs(api, customer=customer_name, action="loan:*") == [request]
    assert _seqs(api, customer=str(customer), document="price list", action="loan:*") == [request]
    assert _seqs(api, place="Hamburg") == [request]
    assert _seqs(api, place="Head office", action="loan:*") == [approve, request]
    assert _seqs(api, outcome="denied", action="auth:*") == [refused]
    assert _seqs(api, since="2000-01-01", until="2000-12-31") == []
    assert refused in _seqs(api, since="2000-01-01")
    body = api.get(URL, "aud", query_string={"loan": "77"}).get_json()
    shown_approve, shown_request = body["events"]
    assert (body["newer"], body["older"], body["limit"]) == (None, None, 50)
    assert shown_request["names"] == {"actor": "Bob", "customer": customer_name, "document": "Price list",
                                      "subject_user": None}
    assert shown_approve["names"]["subject_user"] == "Bob" and shown_approve["names"]["actor"] == "Ann"
    assert (shown_request["declared_place"], shown_request["named_place"], shown_request["reason_text"]) == (
        "Hamburg", "Head office", "Visit on Monday")
    assert shown_approve["detail"] == {"comment": "ok", "note": "équipe \"nord\""}
    # Each record as served is the one the chain MAC'd: a script holding the audit key checks it alone.
    for shown in body["events"]:
        record = {key: value for key, value in shown.items() if key not in ("mac", "prev_mac", "names")}
        assert compute_mac(rt.audit.key, record, shown["prev_mac"]) == shown["mac"]
    # The desk's timeline of a customer is the customer filter: the same records.
    browser = api.app.test_client()
    login(browser, "aud")
    html = browser.get(f"/audit/trail/customer/{customer}").get_data(as_text=True)
    desk = [int(seq) for seq in re.findall(r'<td class="num">(\d+)</td>', html)]
    assert desk and desk == _seqs(api, customer=str(customer))


def test_pages_both_ways_within_bounds(api, rt, cast):
    made = [_record(rt, "key:rewrap", actor_name=f"tester{i}") for i in range(23)]
    newest_first = list(reversed(made))
    # Older and older, ten at a time, to the end...
    pages, query = [], {"action": "key:rewrap", "limit": "10"}
    while True:
        body = api.get(URL, "aud", query_string=query).get_json()
        pages.append(body)
        if body["older"] is None:
            break
        query = {"action": "key:rewrap", "limit": "10", "before": str(body["older"])}
    assert [[e["seq"] for e in p["events"]] for p in pages] == [newest_first[:10], newest_first[10:20],
                                                                 newest_first[20:]]
    assert pages[0]["newer"] is None and pages[1]["newer"] == newest_first[10]
    # ...and back: each newer page is the one seen before, newest first again.
    back = api.get(URL, "aud", query_string={"action": "key:rewrap", "limit": "10", "after": pages[2]["newer"]})
    assert [e["seq"] for e in back.get_json()["events"]] == newest_first[10:20]
    assert back.get_json()["older"] == newest_first[19] and back.get_json()["newer"] == newest_first[10]
    top = api.get(URL, "aud", query_string={"action": "key:rewrap", "limit": "10",
                                             "after": back.get_json()["newer"]}).get_json()
    assert [e["seq"] for e in top["events"]] == newest_first[:10] and top["newer"] is None
    # Bounds past either end answer an empty page that points nowhere.
    for bound in ({"before": "1"}, {"after": str(2**63 - 1)}, {"before": "0"}):
        body = api.get(URL, "aud", query_string={"action": "key:rewrap", **bound}).get_json()
        assert (body["events"], body["newer"], body["older"]) == ([], None, None), bound
    assert len(_seqs(api, limit="200")) <= 200
    # Bad bounds, parameters and filters are 422s naming the parameter; nothing is a server error.
    for query, field in (({"limit": "0"}, "limit"), ({"limit": "201"}, "limit"), ({"limit": "ten"}, "limit"),
                         ({"before": "-1"}, "before"), ({"before": str(2**63)}, "before"), ({"after": "1e3"}, "after"),
                         ({"before": "5", "after": "2"}, "after"), ({"page": "2"}, "page"),
                         ({"since": "last tuesday"}, "since"), ({"user": "nobody"}, "user"),
                         ({"outcome": "maybe"}, "outcome"), ({"loan": str(2**31)}, "loan"),
                         ({"action": "loan:**"}, "action"), ({"place": "x\x00y"}, "place"),
                         ({"customer": "No Such Customer"}, "customer")):
        body = assert_error(api.get(URL, "aud", query_string=query), 422, "invalid_request")
        assert field in body["fields"], (query, body)


def test_auditors_only_and_read_as_the_desk_reads(api, rt, cast):
    refused = ("carl", "bob", "ann", "kim", "adm")
    for name in refused:
        assert_error(api.get(URL, name), 403, "not_permitted")
    assert_error(api.get(URL), 401, "not_authenticated")
    assert_error(api.get(URL, headers={"Authorization": "Bearer vt_not-a-token"}), 401, "not_authenticated")
    # Every refusal is recorded under the desk's permission, with who was refused and where.
    denials = events(rt, "audit:read", "denied")
    assert sorted(e.actor_name for e in denials) == sorted(refused)
    assert {e.detail for e in denials} == {'{"method":"GET","path":"/api/v1/audit/events"}'}
    # A read is recorded exactly as the desk's browsing is: one "audit:read" per page, with what was asked
    # and how many records were shown; the record is never among the records it reports.
    browser = api.app.test_client()
    login(browser, "aud")
    api.get(URL, "aud")  # the first request of the minute may run the maintenance sweep: not a read's doing
    size = _log_size(rt)
    assert browser.get("/audit/", query_string={"action": "loan:*"}).status_code == 200
    assert _log_size(rt) == size + 1
    answer = api.get(URL, "aud", query_string={"action": "audit:*", "limit": 2})
    assert answer.status_code == 200 and _log_size(rt) == size + 2
    reads = [e for e in events(rt, "audit:read") if e.outcome == "allowed"]
    assert [e.actor_name for e in reads] == ["aud"] * 3
    desk, script = (json.loads(e.detail) for e in reads[-2:])
    assert (desk["filters"]["action"], desk["before"], desk["after"]) == ("loan:*", None, None)
    assert (script["filters"]["action"], script["shown"], script["before"], script["after"]) == ("audit:*", 2, None,
                                                                                              None)
    assert reads[-1].seq not in [event["seq"] for event in answer.get_json()["events"]]


def test_a_refused_filter_is_recorded_too(api, rt, cast):
    """A filter that names nobody, or several, or is malformed, answered without a record: a name could be
    probed ("is there a customer Foo?", and an ambiguous title lists the customers holding it), and the
    desk's answer to it showed the directory's names and the latest exports, with nothing in the log. Each
    refusal is recorded as the act it refused (`audit:read` or `audit:export`, failed), with what was asked."""
    api.get(URL, "aud")  # the first request of the minute may run the maintenance sweep
    probes = ((URL, {"customer": "No Such Customer"}, "audit:read", "customer"),
              (URL, {"outcome": "maybe", "action": "loan:*"}, "audit:read", "outcome"),
              ("/api/v1/audit", {"user": "nobody\x00", "format": "csv"}, "audit:export", "user"))
    for path, query, action, field in probes:
        size = _log_size(rt)
        assert_error(api.get(path, "aud", query_string=query), 422, "invalid_request")
        assert _log_size(rt) == size + 1, (path, query)
        [record] = events(rt, action, "failed")[-1:]
        assert (record.actor_name, record.reason_code) == ("aud", "invalid_filter")
        detail = json.loads(record.detail)
        assert detail["field"] == field and set(detail["given"]) == set(query) - {"format"}, detail
    assert json.loads(events(rt, "audit:export", "failed")[-1].detail)["given"]["user"] == "nobody\ufffd"
    # The desk: its filter form, a trail's own filters and a download refused alike.
    browser = api.app.test_client()
    login(browser, "aud")
    for path, query in (("/audit/", {"customer": "Nobody Ltd"}),
                        (f"/audit/trail/user/{cast['bob'].id}", {"since": "last tuesday"})):
        size = _log_size(rt)
        assert browser.get(path, query_string=query).status_code == 400
        assert _log_size(rt) == size + 1, path
        record = events(rt, "audit:read", "failed")[-1]
        assert record.actor_name == "aud" and set(json.loads(record.detail)["given"]) >= set(query)
    # Refusals of the role are recorded as before (denied), not as a refused filter.
    assert_error(api.get(URL, "bob", query_string={"customer": "No Such Customer"}), 403, "not_permitted")
    assert events(rt, "audit:read", "failed")[-1].actor_name == "aud"


def test_a_head_of_the_export_records_nothing(api, rt, cast):
    """An export is an act, recorded and checkpointed before its first byte: a HEAD, which sends no byte,
    recorded an export whose manifest was never saved. It answers 405 and leaves the log as it was."""
    api.token("aud")  # made (and recorded) before counting
    api.app.extensions[MAINTENANCE_KEY] = float("inf")  # the once-a-minute sweep is not the HEAD's
    before = _log_size(rt)
    head = api.call("HEAD", "/api/v1/audit", "aud", check=False)
    assert head.status_code == 405
    assert _log_size(rt) == before
    assert not events(rt, "audit:export")
    assert api.get("/api/v1/audit", "aud").status_code == 200  # the GET still exports
    assert len(events(rt, "audit:export")) == 1


def test_a_filter_value_too_long_is_refused_not_cut(api, rt, cast):
    """A value longer than a filter may be was cut to 200 characters on the desk, so the auditor got the
    records of a filter they did not type (an actor's name of 250 characters read as its first 200). The
    desk, the API and the command line refuse it alike, recorded as any refused filter."""
    api.get(URL, "aud")  # the first request of the minute may run the maintenance sweep
    name = "x" * 200
    _record(rt, "auth:login", actor_name=name, outcome="denied")  # what the cut value would have found
    browser = api.app.test_client()
    login(browser, "aud")
    for field in ("actor", "user", "customer", "place"):
        size = _log_size(rt)
        answer = browser.get("/audit/", query_string={field: name + "y" * 50})
        assert answer.status_code == 400, field
        assert f"{field} is at most 200 characters" in answer.get_data(as_text=True), field
        assert _log_size(rt) == size + 1, field
        record = events(rt, "audit:read", "failed")[-1]
        detail = json.loads(record.detail)
        assert (record.reason_code, detail["field"], detail["given"][field]) == ("invalid_filter", field, name)
        body = assert_error(api.get(URL, "aud", query_string={field: name + "y"}), 422, "invalid_request")
        assert body["fields"] == {field: f"{field} is at most 200 characters"}
    assert browser.get("/audit/", query_string={"actor": name}).status_code == 200  # as long as it may be
