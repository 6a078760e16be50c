"""A chain head claimed by the caller's own statement (PostgreSQL): the record that follows takes that
place in the chain, a claim behind an act that did not happen claims nothing, and a claim is used only by
the record it was made for, in its own transaction."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import literal, select, text

from tests.audit.conftest import CTX
from vault.audit.log import ClaimedHead, claim_head, claimed_columns
from vault.audit.verify import verify_chain
from vault.models import AuditEvent, AuditHead, User

# A statement of the caller's: its act is a CTE that returns one row (`:act` true) or none, and the claim
# runs only behind it, as the spend of a view claims its record's head.
_ACT = select(literal(1).label("done")).where(text(":act")).cte("act")
_AFTER_ACT = claim_head(after=_ACT)
_ACT_AND_CLAIM = select(*claimed_columns(_AFTER_ACT)).add_cte(_ACT).add_cte(_AFTER_ACT)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"audit_shards": 8}


# A claim inside another statement is PostgreSQL's (data-modifying CTEs); SQLite claims as it appends.
pytestmark = pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)


def _person(number: int) -> User:
    return User(id=number, username=f"writer{number}")


def _head(rt, shard: int) -> int:
    with rt.db.session() as session:
        return session.scalar(select(AuditHead.seq).where(AuditHead.id == shard)) or 0


def _claim(rt, session, actor: User, *, act: bool) -> ClaimedHead | None:
    shard = rt.audit.shard_of(session, actor)
    row = session.execute(_ACT_AND_CLAIM, {"shard_id": shard, "act": act}).one()
    return ClaimedHead.of(session, shard, row)


def test_a_record_takes_the_place_its_caller_claimed_and_the_chain_verifies(rt):
    writer = _person(3)
    with rt.db.session() as session:  # the chain's first record creates its head
        rt.audit.record(session, action="document:view", actor=writer, ctx=CTX, detail={"n": 0})
    shard = 1 + writer.id % rt.audit.shards
    for n in range(1, 4):
        with rt.db.session() as session:
            head = _claim(rt, session, writer, act=True)
            assert head is not None and head.shard == shard
            event = rt.audit.record(session, action="document:view", actor=writer, ctx=CTX, detail={"n": n},
                                    head=head)
            assert (event.shard, event.shard_seq) == (shard, n + 1)
    with rt.db.session() as session:
        places = session.execute(select(AuditEvent.shard, AuditEvent.shard_seq).order_by(AuditEvent.seq)).all()
    assert places == [(shard, n) for n in range(1, 5)]
    report = verify_chain(rt.db, rt.audit.key, rt.audit.checkpoints)
    assert report.ok and report.checked == 4, report.summary()


def test_no_act_no_claim_and_a_chain_without_a_head_is_claimed_by_its_record(rt):
    writer = _person(5)
    shard = 1 + writer.id % rt.audit.shards
    with rt.db.session() as session:
        assert _claim(rt, session, writer, act=True) is None  # no head yet: nothing claimed
        rt.audit.record(session, action="document:view", actor=writer, ctx=CTX)
    assert _head(rt, shard) == 1
    with rt.db.session() as session:
        assert _claim(rt, session, writer, act=False) is None  # the act did not happen
        rt.audit.record(session, action="document:view", actor=writer, ctx=CTX)
    assert _head(rt, shard) == 2  # the head moved once, by the record's own claim
    report = verify_chain(rt.db, rt.audit.key, rt.audit.checkpoints)
    assert report.ok and report.checked == 2, report.summary()


def test_a_claim_is_used_only_by_its_own_record_in_its_own_transaction(rt):
    writer, other = _person(2), _person(3)  # chains 3 and 4
    with rt.db.session() as session:
        rt.audit.record(session, action="document:view", actor=writer, ctx=CTX)
    with rt.db.session() as session:
        rt.audit.record(session, action="document:view", actor=other, ctx=CTX)
    with pytest.raises(RuntimeError, match="not used by its record"), rt.db.session() as session:
        head = _claim(rt, session, writer, act=True)  # and never recorded: not committed
    assert head is not None
    with pytest.raises(RuntimeError, match="claimed head"), rt.db.session() as session:
        rt.audit.record(session, action="document:view", actor=writer, ctx=CTX, head=head)  # another transaction
    with pytest.raises(RuntimeError, match="claimed head"), rt.db.session() as session:
        _claim(rt, session, writer, act=True)
        rt.audit.record(session, action="document:view", actor=writer, ctx=CTX)  # claims a place of its own
    with pytest.raises(RuntimeError, match="claimed head"), rt.db.session() as session:
        head = _claim(rt, session, writer, act=True)
        session.info.pop("vault_audit_shard")  # as if nothing had been appended yet in this transaction
        rt.audit.record(session, action="document:view", actor=other, ctx=CTX, head=head)  # another chain
    with rt.db.session() as session:
        count = len(session.scalars(select(AuditEvent.seq)).all())
        heads = session.scalars(select(AuditHead.seq).order_by(AuditHead.id)).all()
    assert count == 2 and sum(heads) == 2  # nothing refused was written, no claim stayed
    report = verify_chain(rt.db, rt.audit.key, rt.audit.checkpoints)
    assert report.ok and report.checked == 2, report.summary()
