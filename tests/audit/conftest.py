"""Helpers for the audit tests: appending real events, and acting as an attacker with database access."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from vault.core.context import AccessContext
from vault.runtime import Runtime

CTX = AccessContext(client_addr="10.0.0.7", named_place="Head office", user_agent="pytest", request_id="req-12345678")


def append(rt: Runtime, count: int, *, action: str = "storage:fsck", **fields: Any) -> list[int]:
    """`count` real appends, one transaction each, as the application makes them; returns their seqs."""
    seqs = []
    for i in range(count):
        with rt.db.session() as session:
            event = rt.audit.record(session, action=action, actor=None, actor_name=f"tester{i % 3}", ctx=CTX,
                                    detail={"i": i, "note": "équipe \"nord\""}, **fields)
            seqs.append(event.seq)
    return seqs


def drop_append_only(rt: Runtime) -> None:
    """What an attacker with database access does first."""
    with rt.db.engine.begin() as connection:
        if rt.db.dialect == "postgresql":
            connection.exec_driver_sql("DROP TRIGGER audit_events_append_only ON audit_events")
        else:
            connection.exec_driver_sql("DROP TRIGGER audit_events_no_update")
            connection.exec_driver_sql("DROP TRIGGER audit_events_no_delete")


def attack(rt: Runtime, *statements: str, **params: Any) -> None:
    """Run raw SQL as the attacker, in one transaction."""
    with rt.db.engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement), params)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # Small checkpoint interval so tests see several checkpoints; one chain, so that record numbers and
    # places in the chain coincide and each test can name the record it damages (test_shards.py runs
    # the same attacks on many chains).
    return {"audit_checkpoint_every": 10, "audit_shards": 1}
