"""The whole story through the API alone, as an integration would drive it."""

from __future__ import annotations

import hashlib
import io

from tests.api.conftest import assert_error, events
from tests.rendering.inputs import pdf_bytes


def test_upload_request_approve_read_three_times_then_quota_exhausted(api, rt):
    content = pdf_bytes(2)
    customer = {"id": api.customer("Acme", segment="vip")}
    uploaded = api.post(f"/api/v1/customers/{customer['id']}/documents", "carl",
                        data={"file": (io.BytesIO(content), "contract.pdf"), "title": "Contract", "grade": "2"},
                        content_type="multipart/form-data")
    assert uploaded.status_code == 201
    document_id = uploaded.get_json()["id"]

    listed = api.get(f"/api/v1/customers/{customer['id']}", "bob").get_json()["documents"]
    assert [d["id"] for d in listed] == [document_id]
    document = api.get(f"/api/v1/documents/{document_id}", "bob").get_json()
    assert document["versions"][0]["sha256"] == hashlib.sha256(content).hexdigest()
    assert document["remaining_views"] == 3

    requested = api.post("/api/v1/loans", "bob", json={
        "document_id": document_id, "reason": "Renewal meeting on Thursday", "category": "contract_renewal",
        "place": "Customer site", "days": 3})
    assert requested.status_code == 201
    loan_id = requested.get_json()["id"]
    queue = api.get("/api/v1/loans?status=requested", "ann").get_json()["loans"]
    assert [loan["id"] for loan in queue] == [loan_id]
    approved = api.post(f"/api/v1/loans/{loan_id}/approve", "ann", json={"comment": "Go ahead"})
    assert approved.get_json()["status"] == "active"

    for expected_remaining in (2, 1, 0):
        opened = api.post(f"/api/v1/documents/{document_id}/views", "bob",
                          json={"reason": "Preparing the renewal", "place": "Customer site", "download": False})
        assert opened.status_code == 201
        body = opened.get_json()
        assert body["remaining"] == expected_remaining and body["pages"] == 2 and "content_url" not in body
        for number in (1, 2):
            delivered = api.get(body["page_url"].replace("{n}", str(number)), "bob")
            assert delivered.status_code == 200 and delivered.mimetype == "image/jpeg"
            assert delivered.headers["Cache-Control"] == "no-store"
            assert delivered.get_data() != content

    refused = api.post(f"/api/v1/documents/{document_id}/views", "bob",
                       json={"reason": "Preparing the renewal", "place": "Customer site"})
    assert_error(refused, 403, "quota_exhausted")
    assert api.get(f"/api/v1/documents/{document_id}", "bob").get_json()["remaining_views"] == 0

    # The trail: one upload, one request, one approval, three views, one refusal; no record per page.
    assert [e.actor_name for e in events(rt, "document:upload")] == ["carl"]
    assert [e.actor_name for e in events(rt, "loan:request")] == ["bob"]
    assert [e.actor_name for e in events(rt, "loan:approve")] == ["ann"]
    views = events(rt, "document:view")
    assert [(e.actor_name, e.document_id, e.loan_id) for e in views] == [("bob", document_id, loan_id)] * 3
    assert events(rt, "content:delivered") == []
    assert [e.reason_code for e in events(rt, "document:view", "denied")] == ["quota_exhausted"]
