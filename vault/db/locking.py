"""Reading a row for a decision: locked until the transaction ends, and read again.

Two decisions on one row at once (two approvers, two tabs, a person and the system) each read the row
before writing it. Under PostgreSQL's READ COMMITTED the second one's UPDATE waits for the first, then
writes over it with what it had read before the wait: a request rejected meanwhile is approved, a proposal
decided meanwhile is decided again. A decision therefore reads its row with `SELECT ... FOR UPDATE` first,
and the rows it gets back must replace what the session holds: `populate_existing` refreshes a loaded
object only from rows actually fetched, so a lock taken without reading its row left the object stale.
SQLite takes one writer at a time, its transaction holding the database, so there the lock is implied.

Two decisions that take the same locks in other orders can each hold what the other waits for, and the
database then ends one of them. So every decision takes its locks in one order, from the thing decided
to the people and customers it touches:

- a loan's decisions: the loan (several in the order of their ids), then its borrower, shared
  (`quota.hold_notice`); the last day's steps (every loan they end, at once) and a suspension also take
  loans before the person;
- the recording of a notice: the person's open loans, the person (exclusive), then the customers they own,
  in the order of their ids; moving a last day into the past: the departure, the loans, then the person;
- a rotation proposal's decision: the proposal, the owner's open loans on the customer's files, the owner
  (shared), then the customer;
- who works a customer (owner, co-owners): the people it names and the actor (shared, in id order), then
  the customer;
- a departure's steps: the departure, then the customers they move, in the order of their ids;
- a role or manager request's decision: the request, then the person (a role), or the chain's turn and
  then the person (a manager: `take_turn`).

And all of them before the decision's first audit record: a record holds the head of its chain
(`vault.audit.log`) until the commit, and another decision holding one of those rows writes its own
record next, perhaps to the same chain; a decision that recorded and then waited for the row held
what the other waited for.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, inspect, select, text
from sqlalchemy.orm import Session

T = TypeVar("T")


def locked(session: Session, model: type[T], key: Any, *, shared: bool = False) -> T | None:
    """Row `key` of `model`, locked (`shared`: FOR SHARE, which other readers may hold too, and a writer
    waits for) and read again into the session's object for it; None when there is no such row."""
    (column,) = inspect(model).primary_key
    query = select(model).where(column == key).with_for_update(read=shared)
    return session.execute(query.execution_options(populate_existing=True)).scalar_one_or_none()


def locked_rows(session: Session, query: Select[tuple[T]], *, of: Any = None) -> list[T]:
    """The rows `query` selects, each locked as it is read (FOR UPDATE, of `of` when it joins other tables)
    and read again into the session's objects, in the query's order: several rows locked in one statement,
    in one order, before anything is recorded."""
    query = query.with_for_update(of=of).execution_options(populate_existing=True)
    return list(session.scalars(query))


def take_turn(session: Session, name: bytes) -> None:
    """Until this transaction ends, keep every other transaction that takes the turn of `name` waiting.

    For a decision that reads many rows and writes one of them, where locking the rows it reads would
    deadlock two decisions reading each other's (two changes of the chain of managers, each walking the
    chain above the other's person). `name` is at most 8 bytes, the advisory lock's 64-bit id (no other
    lock of the database may use it; `vault.db.key_lock` uses "vaultkek"). Taken again in the same
    transaction it is already held. SQLite: every transaction already holds the one write lock.
    """
    if len(name) > 8:
        raise ValueError("a turn's name is at most 8 bytes")
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": int.from_bytes(name, "big", signed=True)})
