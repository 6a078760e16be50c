"""The unit of work: the one place a transaction is committed.

Every change vault makes happens inside a unit of work that commits when the work ends normally and
rolls back on any exception. The web pipeline opens one per request and commits it when the handler
has returned a successful answer (`vault.web.pipeline`); commands and the maintenance sweep open their
own with `unit_of_work(db)`. Services never commit: an act and its audit record either both happen or
neither does, whoever called the service.

Streaming responses are the one planned exception: their bytes leave after the request's unit has
committed, so the closing record of a delivery is written in a short unit of its own
(`unit_of_work(db)` again), after the last byte.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from vault.core.errors import Refusal

if TYPE_CHECKING:
    from vault.db.engine import Database


_KEEP_ON_REFUSAL = "vault_keep_on_refusal"


def keep_on_refusal(session: Session) -> None:
    """Mark the work done so far as standing even if the act is then refused: settling what fell due
    (a loan past its due time expired, a stale reservation refunded) is true whatever the act's fate,
    and the refusal usually follows from it."""
    session.info[_KEEP_ON_REFUSAL] = True


def kept_on_refusal(session: Session) -> bool:
    """Whether a refusal should commit the work done so far (and forget the mark)."""
    return bool(session.info.pop(_KEEP_ON_REFUSAL, False))


def commit(session: Session) -> None:
    """Commit the work of a finished unit (the request pipeline's and `unit_of_work`'s only commit)."""
    session.commit()


@contextmanager
def unit_of_work(db: Database) -> Iterator[Session]:
    """A unit of work on a new session: commits if the block ends normally, rolls back otherwise."""
    session = db.sessions()
    try:
        yield session
        session.info.pop(_KEEP_ON_REFUSAL, None)
        commit(session)
    except Refusal as exc:
        # A refusal keeps what was settled before it (see `keep_on_refusal`); anything else rolls back.
        if kept_on_refusal(session) or exc.keep_work:
            commit(session)
        else:
            session.rollback()
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
