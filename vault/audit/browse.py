"""Reading the log a page at a time, newest first: the auditor's desk and the API's `audit/events` share it.

Paging is keyset on the sequence number (`before`/`after` are exclusive bounds), so the hundredth page
costs what the first does, and a page stays put while new records are appended above it. Names of the
people, customers and documents a page mentions are read as they are today (the records keep the ids).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from vault.audit.filters import AuditFilter
from vault.models import AuditEvent, Customer, Document, User

# The range of the sequence column: a larger bound is past every record, and the databases refuse to
# compare with it rather than answer "nothing", so bounds are held to it.
SEQ_LIMIT = 2**63 - 1
# The most records one page may hold: a script asks for more pages, not for an unbounded answer.
MAX_PAGE_SIZE = 200


@dataclass
class Page:
    events: list[AuditEvent]  # newest first
    newer: int | None  # the `after` bound of the newer page, if there is one
    older: int | None  # the `before` bound of the older page, if there is one


@dataclass(frozen=True)
class Names:
    """Today's names of what the page's records mention, by id."""

    user: dict[int, str]
    customer: dict[int, str]
    document: dict[int, str]


def clamp_seq(value: int | None) -> int | None:
    """A keyset bound held to the range of the sequence column."""
    return None if value is None else max(-SEQ_LIMIT, min(value, SEQ_LIMIT))


def _exists(session: Session, filters: AuditFilter, *bound: object) -> bool:
    return session.scalar(select(AuditEvent.seq).where(*filters.conditions(), *bound).limit(1)) is not None


def page(session: Session, filters: AuditFilter, *, size: int, before: int | None = None,
         after: int | None = None) -> Page:
    """At most `size` matching records, newest first: the newest of all, those just older than `before`,
    or (when `after` is given, which wins over `before`) those just newer than `after`.

    `newer` and `older` are set only when a record lies beyond the page in that direction, so a reader
    (or a script walking the log) knows where to stop.
    """
    before, after = clamp_seq(before), clamp_seq(after)
    query = select(AuditEvent).where(*filters.conditions())
    if after is not None:
        found = list(session.scalars(query.where(AuditEvent.seq > after).order_by(AuditEvent.seq).limit(size + 1)))
        events = list(reversed(found[:size]))
        newer = events[0].seq if len(found) > size and events else None
        older = events[-1].seq if events and _exists(session, filters, AuditEvent.seq < events[-1].seq) else None
        return Page(events, newer, older)
    if before is not None:
        query = query.where(AuditEvent.seq < before)
    found = list(session.scalars(query.order_by(AuditEvent.seq.desc()).limit(size + 1)))
    events = found[:size]
    older = events[-1].seq if len(found) > size else None
    newer = events[0].seq if before is not None and events and _exists(
        session, filters, AuditEvent.seq > events[0].seq) else None
    return Page(events, newer, older)


def names(session: Session, events: list[AuditEvent]) -> Names:
    """Current names of the actors, subjects, customers and documents of `events`, for readable output."""
    customers = {e.customer_id for e in events if e.customer_id}
    documents = {e.document_id for e in events if e.document_id}
    users = {e.subject_user_id for e in events if e.subject_user_id} | {e.actor_id for e in events if e.actor_id}
    return Names(
        user={i: n for i, n in session.execute(select(User.id, User.display_name).where(User.id.in_(users)))}
        if users else {},
        customer={i: n for i, n in session.execute(select(Customer.id, Customer.name)
                                                   .where(Customer.id.in_(customers)))} if customers else {},
        document={i: n for i, n in session.execute(select(Document.id, Document.title)
                                                   .where(Document.id.in_(documents)))} if documents else {},
    )


def previous_macs(session: Session, events: list[AuditEvent]) -> dict[int, str | None]:
    """seq → the MAC each record chains from: "" for the first of its chain, None when the record before
    it is missing (as an export says it), so a reader holding the audit key can check each record alone."""
    wanted = {(e.shard, e.shard_seq - 1) for e in events if e.shard_seq > 1}
    found: dict[tuple[int, int], str] = {}
    if wanted:
        rows = session.execute(select(AuditEvent.shard, AuditEvent.shard_seq, AuditEvent.mac).where(
            tuple_(AuditEvent.shard, AuditEvent.shard_seq).in_(sorted(wanted))))
        found = {(shard, place): mac for shard, place, mac in rows}
    return {e.seq: "" if e.shard_seq <= 1 else found.get((e.shard, e.shard_seq - 1)) for e in events}
