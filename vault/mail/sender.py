"""Sending the outbox: claim due rows, commit, talk to the SMTP server, record the outcome.

No database transaction is open while the server is being talked to: a slow server must not hold row
locks (PostgreSQL) or the write lock (SQLite) that every request needs. The price is that a claim must
survive without a transaction, so claiming writes `status = sending` with `next_attempt_at` set to the
end of the claim (a lease); rows of a sender that died mid-batch become due again when it runs out.

Two senders at once (cron overlapping a request's after-commit send, two cron hosts) never claim the
same row: on PostgreSQL the claim query skips rows another transaction has locked
(`FOR UPDATE SKIP LOCKED`); on SQLite every transaction begins IMMEDIATE (see `vault.db`), so the
second claim waits for the first to commit and then sees the rows as claimed.

Delivery is at least once: if the process dies after the server accepted a message and before the
outcome is recorded, the message is sent again when the lease ends. Every message carries a stable
Message-ID (`<vault-mail-ID@domain>`) so a receiving system can recognise the repeat.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session, SessionTransaction

from vault.db.engine import Database
from vault.mail.audience import withheld as withheld_now
from vault.mail.outbox import NEW_IDS
from vault.mail.retention import FORGET_ON_FAILURE, forgotten
from vault.mail.transport import Transport, TransportError
from vault.models import MailStatus
from vault.models.mail import MailOutbox

log = logging.getLogger(__name__)

BASE_DELAY = timedelta(minutes=1)
MAX_DELAY = timedelta(hours=24)
MAX_ATTEMPTS = 10
LEASE = timedelta(minutes=15)
# A batch stops taking new messages after this long, so it always ends well within its lease.
BATCH_SECONDS = LEASE.total_seconds() / 3
DEFAULT_BATCH = 50
MAX_ERROR_CHARS = 1000

_COMMITTED = "vault_mail_committed"


@dataclass
class SendResult:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    released: int = 0  # claimed but not tried before the batch's time ran out; due again at once
    withheld: int = 0  # due, but its recipient may no longer be told: never sent, its text forgotten

    @property
    def claimed(self) -> int:
        return self.sent + self.retrying + self.failed + self.released + self.withheld


@dataclass(frozen=True)
class _Claimed:
    id: int
    attempts: int
    recipient: str
    subject: str
    text: str
    html: str
    created_at: datetime
    kind: str


def backoff(attempts: int, rng: random.Random | None = None) -> timedelta:
    """Delay before attempt `attempts + 1`: doubling from one minute, ±25 % jitter (so mails that failed
    together do not retry together), never more than a day."""
    rng = rng or random.Random()  # noqa: S311 (jitter spreads retries; nothing secret)
    base = min(MAX_DELAY.total_seconds(), BASE_DELAY.total_seconds() * 2 ** max(0, attempts - 1))
    return timedelta(seconds=min(MAX_DELAY.total_seconds(), base * (0.75 + 0.5 * rng.random())))


def build_message(sender: str, row: _Claimed) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = row.recipient
    message["Subject"] = row.subject
    message["Date"] = format_datetime(row.created_at)
    message["Message-ID"] = f"<vault-mail-{row.id}@{sender.rpartition('@')[2]}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    message.set_content(row.text)
    message.add_alternative(row.html, subtype="html")
    return message


def _claim(db: Database, now: datetime, batch: int,
           ids: Sequence[int] | None) -> tuple[list[_Claimed], int, str]:
    """Claim due rows; those whose recipient may no longer be told are withheld instead (and counted)."""
    withheld = 0
    with db.session() as session:
        settings = session.info.get("vault_settings")
        sender = settings.mail_from if settings else ""
        query = (select(MailOutbox)
                 .where(MailOutbox.status.in_([MailStatus.QUEUED, MailStatus.SENDING]),
                        MailOutbox.next_attempt_at <= now)
                 .order_by(MailOutbox.next_attempt_at, MailOutbox.id).limit(batch))
        if ids is not None:
            query = query.where(MailOutbox.id.in_(list(ids)))
        if db.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        claimed = []
        for row in session.scalars(query).all():
            if withheld_now(session, row, now):
                withheld += 1
                continue
            row.status = MailStatus.SENDING
            row.attempts += 1
            row.next_attempt_at = now + LEASE
            claimed.append(_Claimed(row.id, row.attempts, row.recipient, row.subject, row.body_text,
                                    row.body_html, row.created_at, row.kind))
    return claimed, withheld, sender


def _record(db: Database, row: _Claimed, **values: object) -> None:
    # Only while the claim is still ours: a sender whose lease ran out must not overwrite a newer claim.
    with db.session() as session:
        session.execute(update(MailOutbox).where(MailOutbox.id == row.id, MailOutbox.attempts == row.attempts,
                                                 MailOutbox.status == MailStatus.SENDING).values(**values))


def send_pending(db: Database, transport: Transport, now: datetime, batch: int = DEFAULT_BATCH, *,
                 ids: Sequence[int] | None = None, rng: random.Random | None = None,
                 clock: Callable[[], float] = time.monotonic, max_seconds: float = BATCH_SECONDS) -> SendResult:
    """Send up to `batch` due messages (only those in `ids`, if given) and record each outcome.

    A message whose recipient may no longer be told (`vault.mail.audience`: a request to decide, to
    someone since put on notice) becomes `withheld` unsent. A message the server refuses for good, or
    that fails its `MAX_ATTEMPTS`-th attempt, becomes `failed` (kept, with its last error, for `vault
    mail status`; a password link's text and address are forgotten even then, see `FORGET_ON_FAILURE`); any
    other failure puts it back in the queue with an exponential back-off.
    """
    claimed, withheld, sender = _claim(db, now, batch, ids)
    result = SendResult(withheld=withheld)
    if not claimed:
        return result
    started = clock()
    try:
        for row in claimed:
            if clock() - started > max_seconds:
                # Out of time: hand the rest back untouched (the attempt is not counted).
                _record(db, row, status=MailStatus.QUEUED, attempts=row.attempts - 1, next_attempt_at=now)
                result.released += 1
                continue
            try:
                if not sender:
                    raise TransportError("no sender address (VAULT_MAIL_FROM)")
                transport.send(sender, row.recipient, build_message(sender, row))
            except Exception as exc:  # a transport bug must not strand the claimed rows for a whole lease
                error = (str(exc) if isinstance(exc, TransportError) else f"{type(exc).__name__}: {exc}")
                error = error[:MAX_ERROR_CHARS]
                if getattr(exc, "permanent", False) or row.attempts >= MAX_ATTEMPTS:
                    kept = forgotten(row.recipient) if row.kind in FORGET_ON_FAILURE else {}
                    _record(db, row, status=MailStatus.FAILED, last_error=error, **kept)
                    result.failed += 1
                    log.error("mail %s to %s failed for good: %s", row.id, row.recipient, error)
                else:
                    _record(db, row, status=MailStatus.QUEUED, last_error=error,
                            next_attempt_at=now + backoff(row.attempts, rng))
                    result.retrying += 1
                    log.warning("mail %s to %s: attempt %d failed: %s", row.id, row.recipient, row.attempts, error)
            else:
                _record(db, row, status=MailStatus.SENT, sent_at=now, last_error=None, **forgotten(row.recipient))
                result.sent += 1
    finally:
        transport.close()
    return result


# -- after a request's commit ---------------------------------------------------------------------------


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    # Releasing a savepoint fires after_commit too; only the outermost commit makes the rows real.
    if session.in_nested_transaction():
        return
    ids = session.info.pop(NEW_IDS, None)
    if ids:
        session.info.setdefault(_COMMITTED, []).extend(ids)


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: SessionTransaction) -> None:
    # After a rollback the rows were never stored: nothing to send.
    if transaction.parent is None and not transaction.nested:
        session.info.pop(NEW_IDS, None)


class Background:
    """One daemon thread that tries just-committed mail at once, so people need not wait for cron.

    Best effort by design: a full queue, a server that is down or a crash only leaves the rows
    queued, where `vault mail send-pending` finds them.
    """

    def __init__(self, size: int = 100) -> None:
        self._queue: queue.Queue[Callable[[], object]] = queue.Queue(maxsize=size)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, job: Callable[[], object]) -> bool:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="vault-mail", daemon=True)
                self._thread.start()
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            log.warning("mail: background queue full; the mail waits for `vault mail send-pending`")
            return False
        return True

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                job()
            except Exception:  # the thread must outlive any one batch; the rows stay queued
                log.exception("mail: background send failed")
            finally:
                self._queue.task_done()

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True


BACKGROUND = Background()


def committed_ids(session: Session) -> list[int]:
    """Ids of the mail queued by `session`'s committed transactions and not yet handed over (removes them)."""
    return session.info.pop(_COMMITTED, [])


def send_committed(db: Database, session: Session, transport_factory: Callable[[], Transport] | None,
                   *, now: Callable[[], datetime], max_seconds: float) -> bool:
    """Try the mail `session` committed in a background thread, bounded by `max_seconds`.

    For the web layer, after its commit. Returns whether a job was handed over (False: nothing to
    send, sending is off, or the queue is full: the rows stay queued either way).
    """
    ids = committed_ids(session)
    if not ids or transport_factory is None:
        return False
    return BACKGROUND.submit(lambda: send_pending(db, transport_factory(), now(), batch=len(ids), ids=ids,
                                                  max_seconds=max_seconds))
