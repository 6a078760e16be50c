"""The PostgreSQL harness: databases cloned from a template, reached through SQLAlchemy and psycopg, and
emptied for the next test only while their schema is the template's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from tests.fixtures.postgres import PostgresCluster, PostgresError, database_name
from tests.fixtures.reused_databases import ReusedDatabases

pytestmark = pytest.mark.postgres


def test_database_from_template_is_a_copy_and_can_be_dropped(postgres_cluster: PostgresCluster) -> None:
    template = database_name("infrastructure template")
    copy = database_name("Infrastructure Copy!")
    assert (template, copy) == ("infrastructure_template", "infrastructure_copy")

    postgres_cluster.create_database(template)
    engine = sa.create_engine(postgres_cluster.url(template))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE customer (id int PRIMARY KEY, name text NOT NULL)"))
        conn.execute(sa.text("INSERT INTO customer VALUES (1, 'Rossi Srl')"))
    engine.dispose()  # PostgreSQL refuses to copy a template someone is connected to.

    postgres_cluster.create_database(copy, template=template)
    engine = sa.create_engine(postgres_cluster.url(copy))
    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT name FROM customer")).scalars().all() == ["Rossi Srl"]
        assert conn.execute(sa.text("SHOW server_encoding")).scalar() == "UTF8"
        conn.execute(sa.text("INSERT INTO customer VALUES (2, 'Bianchi SpA')"))

    # The copy is independent of its template.
    template_engine = sa.create_engine(postgres_cluster.url(template))
    with template_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM customer")).scalar() == 1
    template_engine.dispose()

    # Dropping works even while a connection to the database is still open.
    held = engine.connect()
    postgres_cluster.drop_database(copy)
    postgres_cluster.drop_database(template)
    assert {copy, template}.isdisjoint(postgres_cluster.databases())
    held.invalidate()
    engine.dispose()
    with pytest.raises(OperationalError, match="does not exist"):
        sa.create_engine(postgres_cluster.url(copy)).connect()


def test_server_allows_fifty_concurrent_sessions(postgres_cluster: PostgresCluster) -> None:
    name = database_name("infrastructure concurrency")
    postgres_cluster.create_database(name)
    engine = sa.create_engine(postgres_cluster.url(name), pool_size=50, max_overflow=0)
    connections = [engine.connect() for _ in range(50)]
    try:
        busy = connections[0].execute(
            sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = :name"), {"name": name}
        ).scalar()
        assert busy == 50
    finally:
        for conn in connections:
            conn.close()
        engine.dispose()
        postgres_cluster.drop_database(name)


def test_failed_start_reports_the_server_log() -> None:
    cluster = PostgresCluster(settings={"shared_buffers": "not-a-size"})
    with pytest.raises(PostgresError, match="shared_buffers") as raised:
        cluster.start()
    assert "server log" in str(raised.value)
    folder = cluster.directory
    assert folder is not None and folder.exists()
    cluster.stop()
    assert cluster.directory is None
    assert not folder.exists()


@pytest.fixture
def reused(postgres_cluster: PostgresCluster) -> Iterator[ReusedDatabases]:
    """A pool over a small template of its own: a table with a row, a sequence used once, a trigger."""
    template = database_name("infrastructure reuse template")
    postgres_cluster.create_database(template)
    with postgres_cluster.connect(template) as conn:
        conn.execute("CREATE TABLE customer (id serial PRIMARY KEY, name text NOT NULL)")
        conn.execute("CREATE TABLE note (id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES customer,"
                     " body text NOT NULL)")
        conn.execute("INSERT INTO customer (name) VALUES ('Rossi Srl')")
        conn.execute("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
                     " $$ BEGIN RAISE EXCEPTION 'append only'; END $$")
        conn.execute("CREATE TRIGGER note_append_only BEFORE DELETE ON note FOR EACH ROW EXECUTE FUNCTION refuse()")
    databases = ReusedDatabases(postgres_cluster, template, prefix="reuse")
    yield databases
    databases.close()
    postgres_cluster.drop_database(template)


def _state(cluster: PostgresCluster, name: str) -> tuple[list[Any], list[Any], int]:
    with cluster.connect(name) as conn:
        customers = conn.execute("SELECT id, name FROM customer ORDER BY id").fetchall()
        notes = conn.execute("SELECT id, body FROM note ORDER BY id").fetchall()
        next_id = conn.execute("INSERT INTO customer (name) VALUES ('probe') RETURNING id").fetchone()[0]
        conn.execute("DELETE FROM customer WHERE id = %s", [next_id])
        return customers, notes, next_id


def test_a_database_handed_back_is_as_the_template_left_it(reused: ReusedDatabases) -> None:
    cluster = reused.cluster
    first = reused.take()
    fresh = _state(cluster, first)
    assert fresh == ([(1, "Rossi Srl")], [], 2)  # the template's row took 1
    with cluster.connect(first) as conn:
        conn.execute("INSERT INTO customer (name) VALUES ('Bianchi SpA'), ('Verdi')")
        conn.execute("INSERT INTO note (customer_id, body) VALUES (1, 'kept?')")
        conn.execute("UPDATE customer SET name = 'Renamed' WHERE id = 1")
    # A session left open (in a transaction, holding a lock) is ended, as DROP DATABASE ... WITH (FORCE) did.
    held = cluster.connect(first)
    held.execute("BEGIN; LOCK TABLE note IN ACCESS EXCLUSIVE MODE")
    reused.give_back(first)
    assert held.closed or held.broken or _cut(held)

    again = reused.take()
    assert again == first and (reused.copied, reused.reused) == (1, 1)
    # The same rows (the trigger on note did not stop the reset), and the sequences as fresh.
    assert _state(cluster, again) == fresh
    reused.give_back(again)


def _cut(conn: Any) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False


@pytest.mark.parametrize("change", [
    "ALTER TABLE note DISABLE TRIGGER note_append_only",
    "DROP TRIGGER note_append_only ON note",
    "ALTER TABLE customer ADD COLUMN city text",
    "CREATE TABLE extra (id int)",
    "CREATE INDEX customer_name ON customer (name)",
    "GRANT SELECT ON customer TO PUBLIC",
    "ALTER SEQUENCE customer_id_seq RESTART WITH 50",
    "CREATE OR REPLACE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$",
    "ALTER DATABASE {name} SET work_mem = '8MB'",
])
def test_a_database_whose_schema_changed_is_dropped_not_reused(reused: ReusedDatabases, change: str) -> None:
    name = reused.take()
    with reused.cluster.connect(name) as conn:
        conn.execute(change.format(name=name))
    reused.give_back(name)
    assert (reused.dropped, name in reused.cluster.databases()) == (1, False)
    fresh = reused.take()
    assert fresh != name and reused.copied == 2
    assert _state(reused.cluster, fresh) == ([(1, "Rossi Srl")], [], 2)
    reused.give_back(fresh)


def test_a_transaction_rolled_back_leaves_the_database_reusable(reused: ReusedDatabases) -> None:
    name = reused.take()
    with reused.cluster.connect(name) as conn:
        conn.execute("BEGIN; ALTER TABLE customer ADD COLUMN city text; CREATE TABLE extra (id int); ROLLBACK")
    reused.give_back(name)
    assert (reused.dropped, reused.take()) == (0, name)
    reused.give_back(name)
