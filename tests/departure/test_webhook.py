"""The alert webhook against a real HTTP server on 127.0.0.1 that fails its first attempts."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.departure.conftest import HOME, TRUSTED, ApiCaller, days_from_today, evening_policy
from vault.alerts import webhook
from vault.alerts.raising import Finding, raise_alert
from vault.models import Severity
from vault.services import departures


class Receiver:
    """Answers 500 to the first `failures` posts, then 200; the first post waits until released."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts: list[dict[str, Any]] = []
        self.release = threading.Event()
        self.first_waited_in_vain = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.attempts.append({"path": self.path, "type": self.headers["Content-Type"],
                                          "body": json.loads(body)})
                if len(receiver.attempts) == 1 and not receiver.release.wait(10):
                    receiver.first_waited_in_vain = True
                ok = len(receiver.attempts) > receiver.failures and self.path != "/down"
                self.send_response(200 if ok else 500)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(failures=2)
    server.thread.start()
    yield server
    server.release.set()
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def settings_overrides(receiver: Receiver) -> dict[str, Any]:
    policy = evening_policy(webhook_backoff_seconds=0.05, webhook_attempts=4, webhook_timeout_seconds=15)
    return {"trusted_places": TRUSTED, "policy": policy, "webhook_url": receiver.url}


def test_a_new_alert_is_posted_after_commit_retried_and_never_blocks_the_request(app, company, users, receiver):
    doc = company.document(company.customer("Acme"))
    api = ApiCaller(app, users.token("sam"), HOME.client_addr)
    opened = api.open_view(doc)  # outside working hours: an alert
    # The request has answered while the receiver still holds the first attempt.
    assert opened.status_code == 201
    assert not receiver.release.is_set()
    receiver.release.set()
    assert webhook.SENDER.wait(20)
    assert not receiver.first_waited_in_vain
    assert len(receiver.attempts) == 3  # two failures, then delivered
    payloads = [attempt["body"] for attempt in receiver.attempts]
    assert all(p == payloads[0] for p in payloads)
    (alert,) = company.alerts()
    assert payloads[0]["alert_id"] == alert.id and payloads[0]["rule"] == "outside_hours"
    assert payloads[0]["event"] == "alert.raised" and payloads[0]["user"]["username"] == "sam"
    assert receiver.attempts[0]["type"].startswith("application/json")
    # The same alert seen again in its window is not announced again.
    assert api.open_view(doc).status_code == 201
    assert webhook.SENDER.wait(20) and len(receiver.attempts) == 3


def test_an_alert_rolled_back_is_never_announced(rt, company, receiver):
    receiver.release.set()
    with rt.db.sessions() as session:
        raise_alert(rt, session, company.user(session, "sam"),
                    Finding("probing", Severity.HIGH, "w1", "rolled back", {}))
        assert len(webhook.pending(session)) == 1
        session.rollback()
    assert webhook.SENDER.wait(20)
    assert receiver.attempts == []
    with rt.db.session() as session:
        departures.start_departure(rt, session, None, company.user(session, "sam"), last_day=days_from_today(5),
                                   successor=None, ctx=HOME)
    assert webhook.SENDER.wait(20)
    assert [a["body"]["rule"] for a in receiver.attempts] == ["notice"] * 3


def test_a_receiver_that_stays_down_costs_nothing_but_the_message(rt, company, receiver):
    receiver.release.set()
    failed = webhook.SENDER.failed
    message = webhook.Message(url=receiver.url.replace("/hook", "/down"), payload={"alert_id": 0}, attempts=2,
                              backoff=0.01, timeout=5)
    webhook.SENDER.submit(message)
    assert webhook.SENDER.wait(20)
    assert [a["path"] for a in receiver.attempts] == ["/down", "/down"]
    assert webhook.SENDER.failed == failed + 1
