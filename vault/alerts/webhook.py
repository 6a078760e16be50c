"""The optional alert webhook: a JSON POST per new alert, sent after the transaction commits, retried
with back-off by one background thread.

The request that raised the alert never waits for the receiving server: it only hands the message to
a queue, and only once its transaction has committed (an alert rolled back with its request must not
be announced). A receiver that is down gets the message on a later attempt; one that stays down
loses it after the configured attempts, and the alert is still on the alerts page.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

log = logging.getLogger(__name__)

_PENDING = "vault_pending_webhooks"
QUEUE_SIZE = 1000


@dataclass(frozen=True)
class Message:
    url: str
    payload: dict[str, Any]
    attempts: int
    backoff: float
    timeout: float



def post(message: Message) -> int:
    """One attempt; returns the HTTP status (raises on a network error)."""
    body = json.dumps(message.payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked at start-up: http or https only)
        message.url, data=body, method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "vault-alerts"},
    )
    try:
        with urllib.request.urlopen(request, timeout=message.timeout) as response:  # noqa: S310
            response.read(1024)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


class Sender:
    """One daemon thread draining a bounded queue, started on the first message."""

    def __init__(self) -> None:
        self._queue: queue.Queue[Message] = queue.Queue(maxsize=QUEUE_SIZE)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.delivered = 0
        self.failed = 0

    def submit(self, message: Message) -> None:
        self._start()
        try:
            self._queue.put_nowait(message)
        except queue.Full:
            self.failed += 1
            log.error("alert webhook queue full: alert %s not sent", message.payload.get("alert_id"))

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="vault-alert-webhook", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            message = self._queue.get()
            try:
                self._deliver(message)
            except Exception:  # the thread must outlive any one message
                log.exception("alert webhook: unexpected error")
            finally:
                self._queue.task_done()

    def _deliver(self, message: Message) -> None:
        delay = message.backoff
        for attempt in range(1, message.attempts + 1):
            try:
                status = post(message)
                if 200 <= status < 300:
                    self.delivered += 1
                    return
                problem = f"HTTP {status}"
            except (OSError, ValueError) as exc:
                problem = type(exc).__name__
            log.warning("alert webhook attempt %d/%d failed: %s", attempt, message.attempts, problem)
            if attempt < message.attempts:
                time.sleep(delay)
                delay *= 2
        self.failed += 1
        log.error("alert webhook: alert %s not delivered after %d attempts", message.payload.get("alert_id"),
                  message.attempts)

    def wait(self, timeout: float) -> bool:
        """Wait until every queued message is delivered or given up (a command line does before it exits)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True


SENDER = Sender()


def send_after_commit(session: Session, message: Message) -> None:
    """Queue `message` to be sent once `session`'s transaction commits (dropped if it rolls back)."""
    session.info.setdefault(_PENDING, []).append(message)


def pending(session: Session) -> list[Message]:
    return session.info.setdefault(_PENDING, [])


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    for message in session.info.pop(_PENDING, []):
        SENDER.submit(message)


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: SessionTransaction) -> None:
    # After a commit the list is already gone; after a rollback (or a close without commit) the alerts
    # were never stored, so they are not announced.
    if transaction.parent is None and not transaction.nested:
        session.info.pop(_PENDING, None)
