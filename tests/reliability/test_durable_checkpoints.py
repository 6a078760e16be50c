"""A signed checkpoint never vouches for a record that a crash of the database can still take away.

PostgreSQL with `synchronous_commit = off` (a common tuning, and this suite's own) acknowledges a commit
before its WAL reaches the disk; a crash loses the last ones. The acts are lost with their records, which
the log survives. But a checkpoint is write-once and kept outside the database: one that signed a head
the crash then took away would accuse this honest log of tampering forever ("the chain was recomputed").
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.audit.conftest import append
from tests.fixtures.postgres import SUPERUSER, PostgresCluster
from tests.reliability.deployment import Deployment
from vault.audit.checkpoints import PREFIX
from vault.audit.verify import verify_chain

pytestmark = [pytest.mark.slow]


def test_postgresql_crash_loses_no_record_a_checkpoint_vouches_for(tmp_path: Path) -> None:
    # The WAL writer sleeps ten seconds between rounds: what the commits wrote stays in PostgreSQL's
    # memory until something flushes it, so the crash below reliably takes the last ones.
    cluster = PostgresCluster(max_connections=20, settings={"wal_writer_delay": "10000"}).start()
    deployment = None
    try:
        cluster.create_database("vault")
        deployment = Deployment(tmp_path, database_url=cluster.url("vault"),
                                extra={"VAULT_AUDIT_CHECKPOINT_EVERY": "10", "VAULT_AUDIT_SHARDS": "1"}).init()
        rt = deployment.runtime()
        with psycopg.connect(host=str(cluster.directory), user=SUPERUSER, dbname="vault",
                             autocommit=True) as admin:
            admin.execute("CHECKPOINT")  # the schema is on disk: only the appends below are at risk
        append(rt, 10)  # the tenth crosses the threshold and signs the head
        assert [info.key[len(PREFIX):] for info in rt.store.list(PREFIX)] == [f"{10:020d}.json"]
        rt.db.engine.dispose()
        cluster.stop_only()  # immediate: a crash, whatever was not flushed is gone
        cluster.start_again()

        report = verify_chain(rt.db, rt.audit.key, rt.audit.checkpoints)
        assert report.ok, [damage.message for damage in report.damage]
        assert report.checked >= 10
        append(rt, 12)  # the log goes on past the crash, and its next checkpoint signs as before
        report = verify_chain(rt.db, rt.audit.key, rt.audit.checkpoints)
        assert report.ok, [damage.message for damage in report.damage]
    finally:
        if deployment is not None:
            deployment.close()
        cluster.stop()
