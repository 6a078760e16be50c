"""The early-warning rules one by one: when each fires, when it does not, one alert per window, and a
broken rule never breaking the view it watches."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from tests.conftest import csrf_from, login
from tests.departure.conftest import HOME, OFFICE, REASON, TRUSTED, ApiCaller, days_from_today, evening_policy
from vault.alerts import rules
from vault.alerts.raising import Finding, raise_alert
from vault.config.settings import ConfigError, load_settings
from vault.models import Alert, AuditEvent, Customer, Document, DocumentView, Loan, Severity, ViewStatus, utcnow
from vault.policy import SLIPS
from vault.services import customers, departures, loans, view_alerts
from vault.services.view_facts import FACTS, ViewFacts

ALL_HOURS = {"timezone": "UTC", "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": 0, "end": 24}


@pytest.fixture
def settings_overrides(request) -> dict[str, Any]:
    marker = request.node.get_closest_marker("policy")
    policy = marker.args[0] if marker else {"working_hours": ALL_HOURS}
    return {"trusted_places": TRUSTED, "policy": policy}


policy = pytest.mark.policy


def _start(rt, company, user: str = "sam") -> None:
    with rt.db.session() as session:
        departures.start_departure(rt, session, None, company.user(session, user), last_day=days_from_today(20),
                                   successor=company.user(session, "sue"), ctx=OFFICE)


def test_views_inside_working_hours_from_the_usual_place_raise_nothing(rt, company):
    doc = company.document(company.customer("Acme"))
    for _ in range(3):
        company.view(doc, ctx=OFFICE)
    assert company.alerts() == []


def test_a_new_place_is_reported_once_a_baseline_exists(rt, company):
    first, second = (company.document(company.customer(name)) for name in ("Acme", "Bolt"))
    company.view(first, ctx=HOME, place="Home")  # no earlier view: nothing to compare with
    assert company.rules() == []
    company.view(first, ctx=HOME, place="Home")  # the same place again
    assert company.rules() == []
    company.view(second, ctx=OFFICE, place="Head office")
    (alert,) = company.alerts()
    assert alert.rule == "new_place" and alert.severity == "medium"
    assert alert.evidence["places"] == ["address: 10.1.2.3", "named place: Head office",
                                        "declared place: Head office"]
    company.view(second, ctx=OFFICE, place="head office ")  # known now, whatever the case and spaces
    assert len(company.alerts()) == 1 and company.alerts()[0].occurrences == 1


@policy({"working_hours": ALL_HOURS, "alerts": {"customers_per_day": 3}})
def test_many_customers_in_a_day_is_one_high_alert_with_its_evidence(rt, company):
    docs = [company.document(company.customer(f"Customer {n}")) for n in range(5)]
    for doc in docs[:3]:
        company.view(doc)
    assert company.rules() == []
    company.view(docs[3])
    company.view(docs[4])
    (alert,) = company.alerts()
    assert (alert.rule, alert.severity, alert.occurrences) == ("many_customers", "high", 2)
    assert alert.evidence["value"] == 5 and alert.evidence["threshold"] == 3
    assert len(alert.evidence["customers"]) == 5 and alert.evidence["documents"] == docs[3:]
    assert [json.loads(e.detail)["rule"] for e in company.events("alert:raise")] == ["many_customers"]


@policy({"working_hours": ALL_HOURS, "alerts": {"median_factor": 3, "median_min_views": 2, "new_place": False}})
def test_a_volume_spike_is_measured_against_the_persons_own_median(rt, company):
    doc = company.document(company.customer("Acme"))
    company.view(doc)
    # a month of history: one view a day (the views table as it would be after thirty working days)
    with rt.db.session() as session:
        view = session.scalar(select(DocumentView))
        noon = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
        for day in range(1, 31):
            session.add(DocumentView(
                document_id=view.document_id, version_id=view.version_id, user_id=view.user_id, reason="history",
                declared_place="Head office", client_addr="10.1.2.3", named_place="Head office",
                status=ViewStatus.DELIVERED, token_hash=f"{day:064x}", opened_at=noon - timedelta(days=day),
                expires_at=noon - timedelta(days=day)))
    company.view(doc)
    assert company.rules() == []  # two today, the median is one: below three times the median
    company.view(doc)
    (alert,) = company.alerts()
    assert alert.rule == "volume_spike" and alert.evidence["median"] == 1 and alert.evidence["value"] == 3


@policy({"working_hours": {"timezone": "UTC", "days": []}})
def test_outside_hours_escalates_to_medium_for_important_files(rt, company):
    plain = company.document(company.customer("Acme"), grade=1)
    graded = company.document(company.customer("Bolt"), grade=2)
    company.view(plain)
    (alert,) = company.alerts()
    assert (alert.rule, alert.severity) == ("outside_hours", "low")
    company.loan(graded)
    company.view(graded)
    (alert,) = company.alerts()
    assert (alert.severity, alert.occurrences) == ("medium", 2)
    assert [json.loads(e.detail)["severity"] for e in company.events("alert:escalate")] == ["medium"]


@policy({"working_hours": ALL_HOURS, "alerts": {"refusals_per_hour": 3}})
def test_repeated_refusals_are_probing(rt, app, company, users):
    graded = [company.document(company.customer(f"Graded {n}", owner="tom"), grade=2) for n in range(4)]
    api = ApiCaller(app, users.token("tom"), HOME.client_addr)
    assert [api.open_view(doc).status_code for doc in graded[:2]] == [403, 403]
    assert company.alerts("tom") == []
    assert api.open_view(graded[2]).status_code == 403
    (alert,) = company.alerts("tom")
    assert (alert.rule, alert.severity, alert.evidence["value"]) == ("probing", "high", 3)
    assert alert.evidence["codes"] == ["no_active_loan"] and sorted(alert.evidence["documents"]) == graded[:3]
    assert api.open_view(graded[3]).status_code == 403
    (alert,) = company.alerts("tom")
    assert alert.occurrences == 2 and alert.evidence["value"] == 4
    # refusals without a known person (no or a bad token) count for nobody
    stranger = ApiCaller(app, "vt_not-a-token", HOME.client_addr)
    for _ in range(4):
        assert stranger.open_view(graded[0]).status_code == 401
    assert len(company.alerts()) == 0 and len(company.alerts("tom")) == 1
    # The English summary is the record; its values show it to the auditor in their language.
    assert alert.summary == "4 refused attempts within an hour (the limit is 3)."
    assert alert.params == {"id": "probing", "n": 4, "limit": 3}
    auditor = app.test_client()
    login(auditor, "aud")
    page = auditor.get(f"/alerts/{alert.id}", headers={"Accept-Language": "ru"}).get_data(as_text=True)
    assert "4 отказа в доступе за час (предел — 3)." in page and alert.summary not in page


@policy({"working_hours": ALL_HOURS, "alerts": {"refusals_per_hour": 3}})
def test_probing_ids_through_the_api_is_probing_too(rt, app, company, users):
    """A missing or hidden id on the API is the same audited `not_found` as on the pages, so enumerating
    ids through the API is counted like any other probing."""
    hidden = company.document(company.customer("Not Tom's"), grade=1)  # owned by Sam: Tom does not see it
    api = ApiCaller(app, users.token("tom"), HOME.client_addr)
    for path in (f"/api/v1/documents/{hidden}", "/api/v1/documents/987654", "/api/v1/loans/987654"):
        assert api.call("GET", path).status_code == 404
    (alert,) = company.alerts("tom")
    assert (alert.rule, alert.evidence["value"], alert.evidence["codes"]) == ("probing", 3, ["not_found"])


def _slips(api: ApiCaller, company, n: int, start: int = 0) -> list[str]:
    """`n` refusals of what was typed (from the `start`th), each a different slip, from views and loan requests
    through the API: the codes they were refused with."""
    plain = company.document(company.customer(f"Tom's plain one {start}", owner="tom"), grade=1)
    graded = company.document(company.customer(f"Tom's graded one {start}", owner="tom"), grade=2)
    view = f"/api/v1/documents/{plain}/views"
    attempts = [
        ("POST", view, {"reason": "short", "place": "Home"}),
        ("POST", view, {"reason": "...............", "place": "Home"}),
        ("POST", view, {"reason": "Visit preparation", "place": "Home"}),
        ("POST", view, {"reason": REASON, "place": "  -  "}),
        ("POST", view, {"reason": REASON, "place": "Home", "category": "not_a_category"}),
        ("POST", "/api/v1/loans", {"document_id": graded, "reason": REASON, "category": "visit_preparation",
                                   "place": "Home", "days": 3000}),
    ][start:start + n]
    codes = []
    for method, path, body in attempts:
        response = api.call(method, path, json=body)
        assert response.status_code == 403, response.get_json()
        codes.append(response.get_json()["code"])
    return codes


@policy({"working_hours": ALL_HOURS, "alerts": {"refusals_per_hour": 5}})
def test_typing_slips_are_not_probing(rt, app, company, users):
    """A form fumbled six times in an hour (a reason too short, filler, a category's name, no place, a
    category not on the list, too many days) is six slips, corrected at once: none counts toward probing,
    as none counts against the person in a requester's history (`policy.SLIPS`)."""
    api = ApiCaller(app, users.token("tom"), HOME.client_addr)
    codes = _slips(api, company, 6)
    assert codes == ["reason_too_short", "reason_not_meaningful", "reason_copies_category", "place_required",
                     "invalid_category", "days_too_long"]
    assert set(codes) <= SLIPS
    assert [e.reason_code for e in company.events(outcome="denied") if e.actor_name == "tom"] == codes
    assert company.alerts("tom") == []


@policy({"working_hours": ALL_HOURS, "alerts": {"refusals_per_hour": 5}})
def test_refusals_of_what_one_may_reach_are_probing_whatever_slips_came_with_them(rt, app, company, users):
    """Slips mixed with refusals of who may reach what: only the latter count, and only they are named in the
    alert's evidence; the alert comes with the fifth of them, not with the fifth refusal."""
    api = ApiCaller(app, users.token("tom"), HOME.client_addr)
    graded = [company.document(company.customer(f"Graded {n}", owner="tom"), grade=2) for n in range(3)]
    hidden = company.document(company.customer("Not Tom's"), grade=1)  # owned by Sam: Tom does not see it
    real = [lambda: api.open_view(graded[0]), lambda: api.call("GET", f"/api/v1/documents/{hidden}"),
            lambda: api.open_view(graded[1]), lambda: api.call("GET", "/api/v1/loans/987654"),
            lambda: api.open_view(graded[2])]
    slips = _slips(api, company, 4)
    assert [call().status_code for call in real[:2]] == [403, 404]
    slips += _slips(api, company, 2, start=4)
    assert real[2]().status_code == 403 and real[3]().status_code == 404
    assert set(slips) <= SLIPS and len(slips) == 6
    # Ten refusals within the hour, four of them of who may reach what: below the limit of five.
    assert len([e for e in company.events(outcome="denied") if e.actor_name == "tom"]) == 10
    assert company.alerts("tom") == []
    assert real[4]().status_code == 403
    (alert,) = company.alerts("tom")
    assert (alert.rule, alert.severity, alert.evidence["value"]) == ("probing", "high", 5)
    assert alert.evidence["codes"] == ["no_active_loan", "not_found"]
    assert alert.params == {"id": "probing", "n": 5, "limit": 5}


@policy({"working_hours": ALL_HOURS, "alerts": {"refusals_per_hour": 5}})
def test_five_refusals_of_what_one_may_reach_are_probing(rt, app, company, users):
    """The control: five refusals of who may reach what in an hour still raise the HIGH alert."""
    api = ApiCaller(app, users.token("tom"), HOME.client_addr)
    graded = [company.document(company.customer(f"Graded {n}", owner="tom"), grade=2) for n in range(5)]
    assert [api.open_view(doc).status_code for doc in graded[:4]] == [403] * 4
    assert company.alerts("tom") == []
    assert api.open_view(graded[4]).status_code == 403
    (alert,) = company.alerts("tom")
    assert (alert.rule, alert.severity, alert.evidence["value"]) == ("probing", "high", 5)


@policy({"working_hours": ALL_HOURS, "alerts": {"quotas_per_day": 2}})
def test_several_quotas_used_up_in_a_day(rt, company):
    docs = [company.document(company.customer(f"C{n}"), grade=1) for n in range(2)]
    with rt.db.session() as session:
        for doc in docs:
            session.get(Document, doc).view_quota = 1
    company.view(docs[0])
    assert company.rules() == []
    company.view(docs[1])
    (alert,) = company.alerts()
    assert alert.rule == "quotas_exhausted" and sorted(alert.evidence["documents"]) == docs


def test_a_person_on_notice_touching_important_files(rt, company):
    plain = company.document(company.customer("Acme"), grade=1)
    graded = company.document(company.customer("Bolt"), grade=2)
    core = company.customer("Core")  # given before the notice: nobody on notice gains a customer
    loan_id = company.loan(graded)
    _start(rt, company)
    company.view(plain)
    assert company.rules() == ["notice"]
    company.view(graded)
    assert company.rules() == ["departing_access", "notice"]
    other = company.document(core, grade=3)
    company.request(other)
    alert = next(a for a in company.alerts() if a.rule == "departing_access")
    assert alert.occurrences == 2 and sorted(alert.evidence["grades"]) == [2, 3]
    with rt.db.session() as session:
        assert session.get(Loan, loan_id).status == "active"  # no automatic suspension unless configured


@policy({"working_hours": ALL_HOURS, "alerts": {"auto_suspend": True}})
def test_automatic_suspension_on_a_high_alert(rt, app, company, users):
    graded = [company.document(company.customer(f"Graded {n}"), grade=2) for n in range(2)]
    loans = [company.loan(doc) for doc in graded]
    _start(rt, company)
    mark = company.head()
    opened = company.view(graded[0])
    with rt.db.session() as session:
        assert [session.get(Loan, loan).status for loan in loans] == ["revoked", "revoked"]
        assert {session.get(Loan, loan).close_reason for loan in loans} == {"suspended by early warning"}
        assert session.get(DocumentView, opened.view.id).status == "refunded"  # nothing was delivered
    revokes = company.events("loan:revoke", after=mark)
    assert [(e.actor_name, e.loan_id, e.reason_text) for e in revokes] == [
        ("system", loan, "suspended by early warning") for loan in loans]
    alert = next(a for a in company.alerts() if a.rule == "departing_access")
    assert alert.evidence["suspended_loans"] == loans
    api = ApiCaller(app, users.token("sam"), OFFICE.client_addr)
    fetched = api.call("GET", f"/api/v1/content/{opened.secret}")
    assert fetched.status_code == 410 and fetched.get_json()["code"] == "content_url_used"  # nothing to read


def test_a_failing_rule_never_breaks_the_view(rt, company, monkeypatch, caplog):
    def broken(*_args: Any) -> Any:
        raise RuntimeError("rule bug")

    doc = company.document(company.customer("Acme"))
    monkeypatch.setattr(rules, "VIEW_RULES", (rules.outside_hours, broken))
    opened = company.view(doc)
    assert opened.remaining == 9
    assert company.alerts() == []
    # The evaluation in its own unit rolled back whole: the view is left to the maintenance sweep.
    assert "not evaluated now; the maintenance sweep will" in caplog.text
    with rt.db.session() as session:
        view = session.scalar(select(DocumentView))
        assert view.status == "reserved" and view.alerts_at is None
    # The sweep evaluates rule by rule: the broken one is logged and undone, the view marked done.
    with rt.db.session() as session:
        assert view_alerts.sweep(rt, session, now=utcnow() + view_alerts.SWEEP_GRACE) == 1
    assert "evaluating a view failed" in caplog.text
    with rt.db.session() as session:
        assert session.scalar(select(DocumentView)).alerts_at is not None


@pytest.mark.parametrize(("policy_sections", "message"), [
    ({"alerts": {"customer_per_day": 5}}, "unknown key"),
    ({"alerts": {"customers_per_day": -1}}, "at least 0"),
    ({"alerts": {"auto_suspend": "yes"}}, "true or false"),
    ({"alerts": {"reveals_outside_book": -1}}, "reveals_outside_book must be a whole number of at least 0"),
    ({"alerts": {"reveals_outside_book_days": 0}}, "at least 1"),
    ({"alerts": {"reveals_outside_book_days": 366}}, "at most 365"),
    ({"alerts": {"reveals_outside_book_days": 7.5}}, "whole number"),
    ({"working_hours": {"start": "25:00"}}, "start"),
    ({"working_hours": {"start": 18, "end": 8}}, "before end"),
    ({"working_hours": {"days": ["monday", "funday"]}}, "funday"),
    ({"working_hours": {"timezone": "Mars/Olympus"}}, "unknown timezone"),
    ({"departure": {"lookback_days": 0}}, "lookback_days"),
    ({"departure": {"key_segments": ["gold"]}}, "key_segments"),
    ({"departure": {"on_notice": "shrug"}}, "on_notice"),
    ({"departure": {"lookback": 30}}, "unknown key"),
])
def test_a_malformed_policy_stops_the_start_up(tmp_path, keyring_path, policy_sections, message):
    # Parsed once, when the settings are loaded: nothing starts with a policy it cannot read.
    with pytest.raises(ConfigError, match=message):
        load_settings({"data_dir": tmp_path, "keyring": keyring_path, "policy": policy_sections}, environ={})


@pytest.mark.parametrize("sections", [{"security": {"anything": 1}}, {"alert": {}}, {"alerts": 5}])
def test_unknown_or_malformed_sections_are_errors(tmp_path, keyring_path, sections):
    with pytest.raises(ConfigError, match=r"unknown section|must be a table"):
        load_settings({"data_dir": tmp_path, "keyring": keyring_path, "policy": sections}, environ={})


def test_a_webhook_url_must_be_http(tmp_path, keyring_path):
    with pytest.raises(ConfigError, match="http"):
        load_settings({"data_dir": tmp_path, "keyring": keyring_path, "webhook_url": "file:///etc/passwd"},
                      environ={})


def test_the_evening_policy_helper_is_outside_working_hours_now():
    hours = load_settings({"policy": evening_policy()}, environ={}).working_hours
    assert not hours.contains(datetime.now(UTC)) and not hours.contains(datetime.now(UTC) + timedelta(hours=23))
    assert load_settings({"policy": {"working_hours": ALL_HOURS}}, environ={}).working_hours.contains(
        datetime.now(UTC))


def test_alert_rows_are_unique_per_rule_person_and_window(rt, company):
    from sqlalchemy.exc import IntegrityError

    with rt.db.session() as session:
        session.add(Alert(user_id=company.ids["sam"], rule="probing", window_key="w", severity="high", summary="x"))
    with pytest.raises(IntegrityError), rt.db.session() as session:
        session.add(Alert(user_id=company.ids["sam"], rule="probing", window_key="w", severity="low", summary="y"))


def test_a_finding_adds_to_its_windows_alert_in_one_statement_once_its_lists_stop_growing(rt, company):
    def finding(severity: Severity, documents: list[int]) -> Finding:
        return Finding("volume_spike", severity, "2026-12-06", f"{len(documents)} views", {"documents": documents})

    def add(found: Finding) -> list[str]:
        statements: list[str] = []

        def record(_conn, _cursor, statement, *_args) -> None:
            statements.append(statement)

        event.listen(rt.db.engine, "before_cursor_execute", record)
        try:
            with rt.db.session() as session:
                raise_alert(rt, session, company.user(session, "sam"), found)
        finally:
            event.remove(rt.db.engine, "before_cursor_execute", record)
        return [s for s in statements if s.lstrip().upper().startswith(("UPDATE ALERTS", "SELECT ALERTS", "INSERT"))]

    def alert() -> Alert:
        with rt.db.session() as session:
            return session.scalars(select(Alert).where(Alert.rule == "volume_spike")).one()

    add(finding(Severity.MEDIUM, [1]))
    # The same severity with new evidence: counted and the evidence merged.
    written = add(finding(Severity.MEDIUM, [2]))
    assert len(written) == 2, written
    assert (alert().occurrences, alert().evidence["documents"]) == (2, [1, 2])
    # A lower severity adding nothing new: counted in one statement, the evidence left as it is.
    written = add(finding(Severity.LOW, [2, 1]))
    assert len(written) == 1 and written[0].lstrip().upper().startswith("UPDATE ALERTS"), written
    assert (alert().occurrences, alert().severity, alert().evidence["documents"]) == (3, "medium", [1, 2])
    # A new count and nothing new in the lists (a bulk reader's every view): one statement, the count
    # taken into the evidence by the database.
    written = add(Finding("volume_spike", Severity.MEDIUM, "2026-12-06", "7 views", {"documents": [1], "value": 7}))
    assert len(written) == 1, written
    assert (alert().occurrences, alert().evidence) == (4, {"documents": [1, 2], "value": 7})
    # A value that is null is written by the general merge (SQLite's would take it for "remove").
    add(Finding("volume_spike", Severity.MEDIUM, "2026-12-06", "views", {"documents": [2], "value": None}))
    assert (alert().occurrences, alert().evidence) == (5, {"documents": [1, 2], "value": None})
    # A higher severity is no mere addition: the alert escalates, and the escalation is recorded.
    add(finding(Severity.HIGH, [3]))
    assert (alert().occurrences, alert().severity, alert().evidence["documents"]) == (6, "high", [1, 2, 3])
    with rt.db.session() as session:
        assert session.scalar(select(AuditEvent.seq).where(AuditEvent.action == "alert:escalate")) is not None


@policy({"working_hours": {**ALL_HOURS, "timezone": "Europe/Berlin"}})
def test_the_facts_count_the_last_24_hours_and_the_local_day_apart_even_on_a_25_hour_day(rt, company):
    # Berlin's clocks go back on 31 October 2027: that local day lasts 25 hours, so at 23:30 its midnight
    # (22:00 UTC the day before) lies before "24 hours ago" (22:30 UTC the day before).
    acme, bolt = company.customer("Acme"), company.customer("Bolt")
    early, plan, terms = company.document(acme), company.document(bolt), company.document(bolt, title="Terms")
    company.view(early)  # today: long before both windows
    with rt.db.session() as session:
        template = session.scalar(select(DocumentView))
        versions = {doc: session.get(Document, doc).latest.id for doc in (early, plan, terms)}

        def at(document_id: int, moment: datetime) -> DocumentView:
            row = DocumentView(
                document_id=document_id, version_id=versions[document_id], user_id=template.user_id,
                reason="history", declared_place="Head office", client_addr="10.1.2.3", named_place="Head office",
                status=ViewStatus.DELIVERED, token_hash=f"{moment.timestamp():064.0f}", opened_at=moment,
                expires_at=moment)
            session.add(row)
            return row

        history = [at(early, datetime(2027, 10, 30, 22, 15, tzinfo=UTC)),  # after local midnight, before 24 hours ago
                   at(plan, datetime(2027, 10, 31, 12, 0, tzinfo=UTC))]
        evaluated = at(terms, datetime(2027, 10, 31, 22, 30, tzinfo=UTC))  # 23:30 local
        session.flush()
        for row in history:  # claimed and tallied, as after their own openings
            assert view_alerts.evaluate(rt, session, row.id, exhausted=False)
        facts = ViewFacts.of_row(session.execute(FACTS, ViewFacts.parameters(rt.settings.working_hours,
                                                                             evaluated)).one())
    # Bolt's two documents are one customer; Acme's view at 22:15 is of today but not of the last 24 hours.
    assert (facts.customers_24h, facts.views_today, facts.any_earlier) == (1, 3, True)
    assert facts.seen == {"address": True, "named place": True, "declared place": True}


def test_evidence_holding_a_nul_escape_is_still_counted_and_merged(rt, company):
    # A NUL character is written as "\u0000" in the evidence's JSON, which PostgreSQL's jsonb refuses.
    found = Finding("volume_spike", Severity.MEDIUM, "2026-12-06", "views", {"places": ["a\x00b"], "value": 1})
    with rt.db.session() as session:
        sam = company.user(session, "sam")
        raise_alert(rt, session, sam, found)
        raise_alert(rt, session, sam, Finding("volume_spike", Severity.MEDIUM, "2026-12-06", "views",
                                              {"places": ["c"], "value": 2}))
    with rt.db.session() as session:
        alert = session.scalars(select(Alert).where(Alert.rule == "volume_spike")).one()
        assert (alert.occurrences, alert.evidence) == (2, {"places": ["a\x00b", "c"], "value": 2})


def _handover_slips(app, rt, company) -> tuple[int, list[str]]:
    """Five slips on the handover's confirmation form, by Sue, the successor of Sam's notice: a contact
    dated tomorrow, one dated before the notice, and three notes that say nothing (too short, filler, a
    category's name). Each is refused by the policy and shown again beside its field. The customer, and the
    codes the refusals were recorded with."""
    plain = company.customer("Plain Shop")
    with rt.db.session() as session:
        departure = departures.start_departure(
            rt, session, company.user(session, "adm"), company.user(session, "sam"), last_day=days_from_today(10),
            successor=company.user(session, "sue"), notice_date=days_from_today(-1), ctx=OFFICE)
        item = next(i.id for i in departure.items if i.customer_id == plain)
    sue = app.test_client()
    token = login(sue, "sue")
    attempts = [(1, "Visited them in person"), (-5, "Visited them in person"), (0, "ok"), (0, ".............."),
                (0, "Visit preparation")]
    for day, note in attempts:
        refused = sue.post(f"/departures/handover/items/{item}/confirm", data={
            "csrf_token": token, f"i{item}-contact_date": days_from_today(day).isoformat(), f"i{item}-note": note})
        assert refused.status_code == 403, refused.get_data(as_text=True)[:300]
    return plain, [e.reason_code for e in company.events("handover:confirm", "denied")]


@policy({"working_hours": ALL_HOURS, "alerts": {"refusals_per_hour": 5}})
def test_slips_on_the_handover_form_are_not_probing(rt, app, company, users):
    """Before, a contact dated tomorrow or before the notice counted toward probing and the histories (the
    departure page treated it as a slip, the alert rule did not): a successor fumbling the confirmation form
    came three refusals of reach away from a HIGH alert. Now every slip is one list (`policy.SLIPS`): none
    counts, while five refusals of what one may reach still raise it, the slips named nowhere in it."""
    plain, codes = _handover_slips(app, rt, company)
    assert codes == ["contact_date_future", "contact_before_notice", "reason_too_short", "reason_not_meaningful",
                     "reason_copies_category"]
    assert set(codes) <= SLIPS
    assert company.alerts("sue") == []
    # Nor does an approver or a custodian weighing Sue's next request see them held against her.
    loan_id = company.request(company.document(plain, grade=2), borrower="sue")
    with rt.db.session() as session:
        loan = session.get(Loan, loan_id)
        assert loans.requester_history(session, loan).refusals == 0
        assert loans.customer_history(session, loan).refusals == 0
    api = ApiCaller(app, users.token("sue"), HOME.client_addr)
    graded = [company.document(company.customer(f"Graded {n}", owner="sue"), grade=2) for n in range(5)]
    assert [api.open_view(doc).status_code for doc in graded[:4]] == [403] * 4
    assert company.alerts("sue") == []
    assert api.open_view(graded[4]).status_code == 403
    (alert,) = company.alerts("sue")
    assert (alert.rule, alert.severity, alert.evidence["value"]) == ("probing", "high", 5)
    assert alert.evidence["codes"] == ["no_active_loan"]


@policy({"working_hours": ALL_HOURS, "alerts": {"refusals_per_hour": 2}})
def test_a_failed_sign_in_counts_neither_for_probing_nor_in_the_histories(rt, app, company, users):
    """Before, the histories an approver and a custodian weigh counted refused sign-ins (a mistyped password)
    while the probing rule left them out: three typos made a borrower look like someone who had been refused
    three times. One rule now (`loans.counted_refusals`): refusals of reach count in both, sign-ins in neither."""
    theirs = company.customer("Not Tom's Yet")  # Sam's: Tom may not read it
    graded = company.document(theirs, grade=2)
    browser = app.test_client()
    for _ in range(3):
        page = browser.get("/login")
        answer = browser.post("/login", data={"username": "tom", "password": "not the password",
                                              "csrf_token": csrf_from(page.get_data(as_text=True))})
        assert answer.status_code == 200
    signins = [e for e in company.events("auth:login", outcome="denied") if e.actor_id == company.ids["tom"]]
    assert len(signins) == 3
    assert company.alerts("tom") == []
    api = ApiCaller(app, users.token("tom"), HOME.client_addr)
    assert api.call("GET", f"/api/v1/customers/{theirs}").status_code == 404
    assert company.alerts("tom") == []
    assert api.call("GET", f"/api/v1/customers/{theirs}").status_code == 404
    (alert,) = company.alerts("tom")  # the second refused read, not the fifth refusal, reaches the limit
    assert (alert.rule, alert.evidence["value"]) == ("probing", 2)
    with rt.db.session() as session:
        customers.add_co_owner(rt, session, None, session.get(Customer, theirs), company.user(session, "tom"),
                               ctx=OFFICE)
    loan_id = company.request(graded, borrower="tom")
    with rt.db.session() as session:
        loan = session.get(Loan, loan_id)
        assert loans.requester_history(session, loan).refusals == 2
        assert loans.customer_history(session, loan).refusals == 2
