"""An auditor on notice, on both databases: the audit log names customers (a creation's details, every list
and read with the customers' ids, today's names beside each record), and an auditor on notice still read,
browsed, exported and traced it in their last days, as the departure report they may no longer read
(`reporter_departing`). Now every audit route that shows records, pages and API, is refused to anyone on
notice (403 `reader_departing`, each refusal recorded); verifying the chain, which names no customer, stays
open; another auditor who is not leaving reads on; the operator's command line is unchanged; a withdrawn
notice gives the log back."""

from __future__ import annotations

import io
from typing import Any

from click.testing import CliRunner

from tests.api.conftest import assert_error, events
from tests.api.test_review_notice_deciders import give_notice
from tests.conftest import login
from vault.cli import cli
from vault.core.context import AccessContext
from vault.models import Departure, Role
from vault.services import departures

CODE = "reader_departing"


def _api_reads(api: Any, who: str, customer: int, manifest: str) -> dict[str, Any]:
    """Every audit route of the API that shows records, as `who`."""
    return {
        "export": api.get("/api/v1/audit?format=jsonl", who),
        "events": api.get("/api/v1/audit/events", who, query_string={"customer": str(customer)}),
        "manifest": api.get(manifest, who),
        "trace": api.post("/api/v1/audit/trace", who, data={"file": (io.BytesIO(b"%PDF-1.4 leaked"), "leak.pdf")},
                          content_type="multipart/form-data"),
    }


def _page_reads(app: Any, who: str, customer: int, manifest: str) -> dict[str, Any]:
    """Every audit page that shows records, as `who`, signed in through the forms."""
    client = app.test_client()
    csrf = login(client, who)
    return {
        "desk": client.get("/audit/"),
        "trail": client.get(f"/audit/trail/customer/{customer}"),
        "trace form": client.get("/audit/trace"),
        "trace": client.post("/audit/trace", data={"csrf_token": csrf, "file": (io.BytesIO(b"%PDF-1.4 leaked"),
                                                                                 "leak.pdf")},
                             content_type="multipart/form-data"),
        "export": client.post("/audit/export", data={"csrf_token": csrf, "format": "jsonl"}),
        "manifest": client.get(manifest.removeprefix("/api/v1")),
        "verify": client.post("/audit/verify", data={"csrf_token": csrf}),
    }


def test_an_auditor_on_notice_reads_no_audit_log(api: Any, rt: Any, app: Any, users: Any, tmp_path: Any) -> None:
    users.make("aud2", Role.AUDITOR)
    customer = api.customer("Nordlicht Handel", owner="bob", shared=False)
    exported = api.get("/api/v1/audit?format=jsonl", "aud2")
    assert exported.status_code == 200 and b"customer:create" in exported.get_data()  # the manifest follows
    manifest = exported.headers["X-Vault-Export-Manifest"]
    assert api.get(manifest, "aud2").status_code == 200
    departure = give_notice(rt, "aud")
    exports_before = len(events(rt, "audit:export"))

    for name, answer in _api_reads(api, "aud", customer, manifest).items():
        assert_error(answer, 403, CODE)
        assert b"Nordlicht" not in answer.data, name
    for name, answer in _page_reads(app, "aud", customer, manifest).items():
        if name == "verify":  # the chain's integrity names no customer: still theirs to check
            assert answer.status_code == 200, name
            continue
        assert answer.status_code == 403, (name, answer.status_code)
        assert b"Nordlicht" not in answer.data, name
    assert api.get("/api/v1/audit/verify", "aud").status_code == 200
    refused = [(e.action, e.actor_name, e.reason_code) for e in events(rt, "audit:read", "denied")
               + events(rt, "audit:export", "denied")]
    assert sorted(refused) == sorted([("audit:read", "aud", CODE)] * 6 + [("audit:export", "aud", CODE)] * 4)
    assert [e.actor_name for e in events(rt, "audit:read")] == []
    assert len(events(rt, "audit:export")) == exports_before

    # Another auditor reads on; the operator's command line is unchanged.
    for name, answer in _api_reads(api, "aud2", customer, manifest).items():
        assert answer.status_code in (200, 400), (name, answer.status_code)  # the trace: not a traceable copy
    assert "Nordlicht" in api.get("/api/v1/audit/events", "aud2").get_data(as_text=True)
    env = {"VAULT_DATA_DIR": str(rt.settings.data_dir), "VAULT_DATABASE_URL": rt.settings.database_url,
           "VAULT_KEYRING": str(rt.settings.keyring), "VAULT_SECRET_KEY": "test-secret-key"}
    out = tmp_path / "audit.jsonl"
    printed = CliRunner().invoke(cli, ["audit", "export", "--out", str(out)], env=env, catch_exceptions=False)
    assert printed.exit_code == 0 and "customer:create" in out.read_text(), printed.output

    with rt.db.session() as session:
        departures.withdraw(rt, session, None, session.get(Departure, departure),
                            reason="Stays after all: a counter-offer", ctx=AccessContext.cli())
    assert api.get("/api/v1/audit/events", "aud").status_code == 200
