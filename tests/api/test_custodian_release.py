"""The custodian named on a file is the one who releases its loans; when they are away an approver
designates another custodian for that one release (audited)."""

from __future__ import annotations

import json

from tests.api.conftest import assert_error, events
from vault.models import Role


def _waiting_release(api, users) -> int:
    users.make("kit", Role.CUSTODIAN)
    users.make("abe", Role.APPROVER)
    document = api.upload(api.customer(), grade=3, custodian="kim")
    loan_id = api.loan(document)
    for approver in ("ann", "abe"):
        answer = api.post(f"/api/v1/loans/{loan_id}/approve", approver, json={"comment": "ok"})
        assert answer.status_code == 200, answer.get_json()
        if answer.get_json()["status"] != "requested":
            break
    assert answer.get_json()["status"] == "approved"
    return loan_id


def test_only_the_files_custodian_releases(api, rt, users):
    loan_id = _waiting_release(api, users)
    assert_error(api.post(f"/api/v1/loans/{loan_id}/release", "kit"), 403, "not_the_custodian")
    released = api.post(f"/api/v1/loans/{loan_id}/release", "kim")
    assert released.status_code == 200 and released.get_json()["status"] == "active"


def test_an_approver_designates_another_custodian_for_one_release(api, rt, users):
    loan_id = _waiting_release(api, users)
    path = f"/api/v1/loans/{loan_id}/designate"
    reason = "Kim is on holiday until the end of the month"
    assert_error(api.post(path, "kit", json={"custodian": "kit", "reason": reason}), 403, "not_permitted")
    assert_error(api.post(path, "ann", json={"custodian": "bob", "reason": reason}), 403, "invalid_custodian")
    assert_error(api.post(path, "ann", json={"custodian": "nobody", "reason": reason}), 403, "invalid_custodian")
    assert_error(api.post(path, "ann", json={"custodian": "kit", "reason": "away"}), 403, "reason_too_short")
    designated = api.post(path, "ann", json={"custodian": "kit", "reason": reason})
    assert designated.status_code == 200, designated.get_json()
    [record] = events(rt, "loan:designate")
    assert record.actor_name == "ann" and record.reason_text == reason
    assert json.loads(record.detail)["custodian_id"] != json.loads(record.detail)["file_custodian_id"]
    released = api.post(f"/api/v1/loans/{loan_id}/release", "kit")
    assert released.status_code == 200 and released.get_json()["released_by"]["username"] == "kit"
