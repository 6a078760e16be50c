"""The alert list through the API as the alerts desk shows it: the severity filter and the open counts by
severity (never counting or listing alerts about the caller); a bad filter and the wrong role are refused."""

from __future__ import annotations

from tests.api.conftest import assert_error
from vault.alerts import desk
from vault.alerts.raising import Finding, raise_alert
from vault.models import Alert, AlertStatus, Severity
from vault.services import accounts

ALERTS = "/api/v1/alerts"


def _raise(rt, username: str, rule: str, severity: Severity, status: AlertStatus = AlertStatus.OPEN) -> int:
    with rt.db.session() as session:
        alert_id = raise_alert(rt, session, accounts.get_user(session, username),
                               Finding(rule, severity, "2026-12-01T10", f"{rule} by {username}", {}))
        session.get(Alert, alert_id).status = status
        return alert_id


def test_the_severity_filter_and_the_open_counts_match_the_desk(api, rt):
    bob_high = _raise(rt, "bob", "probing", Severity.HIGH)
    bob_low = _raise(rt, "bob", "new_place", Severity.LOW)
    carl_medium = _raise(rt, "carl", "outside_hours", Severity.MEDIUM, AlertStatus.ACKNOWLEDGED)
    ann_high = _raise(rt, "ann", "probing", Severity.HIGH)
    _raise(rt, "carl", "volume_spike", Severity.HIGH, AlertStatus.RESOLVED)

    def ids(path: str, who: str) -> list[int]:
        response = api.get(path, who)
        assert response.status_code == 200, response.get_json()
        return sorted(a["id"] for a in response.get_json()["alerts"])

    assert ids(f"{ALERTS}?severity=high", "aud") == sorted([bob_high, ann_high])
    assert ids(f"{ALERTS}?severity=high", "ann") == [bob_high]  # never the caller's own
    assert ids(f"{ALERTS}?severity=medium", "aud") == [carl_medium]  # acknowledged is still active
    assert ids(f"{ALERTS}?severity=low&rule=probing", "aud") == []
    assert len(ids(f"{ALERTS}?severity=high&status=all", "aud")) == 3
    assert ids(f"{ALERTS}?severity=low&user={_id(rt, 'bob')}", "ann") == [bob_low]

    # Open alerts only (not acknowledged or resolved), whatever the filters, each severity named.
    for who, expected in (("aud", {"high": 2, "medium": 0, "low": 1}), ("ann", {"high": 1, "medium": 0, "low": 1})):
        for query in ("", "?severity=low", "?status=resolved"):
            assert api.get(f"{ALERTS}{query}", who).get_json()["open_counts"] == expected, (who, query)
        with rt.db.session() as session:  # the same figures as the desk's badges
            assert {k: v for k, v in expected.items() if v} == desk.count_open(
                session, accounts.get_user(session, who))

    for query in ("?severity=critical", "?severity=HIGH", "?severity=", "?severity=high&colour=red"):
        assert_error(api.get(f"{ALERTS}{query}", "aud"), 422, "invalid_request")
    for who in ("bob", "carl", "kim", "adm"):
        assert_error(api.get(f"{ALERTS}?severity=high", who), 403, "not_permitted")


def _id(rt, username: str) -> int:
    with rt.db.session() as session:
        return accounts.get_user(session, username).id


def test_a_since_at_the_calendars_ends_is_a_clear_refusal_not_a_server_error(api, rt):
    """An instant whose offset carries it past year 1 or 9999 cannot be put in UTC: a 422 naming `since`."""
    seen = _raise(rt, "bob", "probing", Severity.HIGH)
    for since in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:30+00:45"):
        body = assert_error(api.get(ALERTS, "aud", query_string={"since": since}), 422, "invalid_request")
        assert "since" in body["fields"], since
    # The calendar's ends themselves are instants like any other.
    for since, expected in (("0001-01-01", [seen]), ("2000-01-01T00:00:00+14:00", [seen]),
                            ("9999-12-31T23:59:59Z", [])):
        answer = api.get(ALERTS, "aud", query_string={"since": since})
        assert answer.status_code == 200, (since, answer.get_json())
        assert [a["id"] for a in answer.get_json()["alerts"]] == expected, since
