"""The PostgreSQL harness: databases cloned from a template, reached through SQLAlchemy and psycopg."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from tests.fixtures.postgres import PostgresCluster, PostgresError, database_name

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
