"""Customer notes are never kept in clear: given at creation they open the sealed record, and upgrade 0014
seals the old clear notes (with the keyring `vault init` holds), drops the column and folds record cities.
Both databases: the upgrade runs on a schema at 0013 holding customers written by the old code."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select, text

from tests.api.conftest import events
from tests.conftest import make_runtime
from vault.core.context import AccessContext
from vault.core.errors import ServiceError
from vault.db import schema
from vault.db.engine import Database
from vault.models import Customer, CustomerRecord, CustomerRecordVersion, Role
from vault.runtime import Runtime
from vault.services import audit, customers, legacy_notes, records

OLD_NOTES = "Via Roma 12, Torino. Customer since 2011. Payment: 90 days end of month."
_names = itertools.count()


@pytest.fixture
def old_url(db_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database at revision 0013 with two customers: one with clear notes and a record, one with none."""
    if db_backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        cluster = request.getfixturevalue("postgres_cluster")
        name = f"old{os.getpid()}_{next(_names)}"
        cluster.create_database(name)
        url = cluster.url(name)
    db = Database(url)
    schema.upgrade(db, "0013")
    with db.engine.begin() as connection:
        for number, (name, notes) in enumerate([("Torino Tessili", f"  {OLD_NOTES}\r\n"), ("Plain Co", "")], 1):
            connection.execute(text(
                "INSERT INTO customers (id, name, name_key, segment, notes, created_at)"
                " VALUES (:id, :name, :key, 'ordinary', :notes, '2026-01-01 00:00:00')"),
                {"id": number, "name": name, "key": name.lower(), "notes": notes})
        # A record the old code made (no sealed field yet), in München.
        connection.execute(text(
            "INSERT INTO customer_records (customer_id, legal_name, address, city, industry, size, status, key_id,"
            " wrapped_key, version) VALUES (2, '', '', 'München', '', '', '', 'none', :key, 0)"), {"key": b"x"})
    db.dispose()
    yield url
    if db_backend != "sqlite":
        request.getfixturevalue("postgres_cluster").drop_database(url.rsplit("/", 1)[1].split("?")[0])


def test_upgrade_seals_the_clear_notes_and_drops_the_column(old_url: str, tmp_path: Path,
                                                            keyring_path: Path) -> None:
    rt = make_runtime(tmp_path / "data", old_url, keyring_path)
    try:
        schema.upgrade(rt.db, seal_notes=legacy_notes.sealer(rt))
        assert schema.is_current(rt.db)
        assert "notes" not in {c["name"] for c in inspect(rt.db.engine).get_columns("customers")}
        with rt.db.session() as session:
            record = session.get(CustomerRecord, 1)
            assert record is not None and record.version == 1
            assert records.snapshot(rt, record)["notes"] == OLD_NOTES
            assert OLD_NOTES.encode() not in record.notes
            versions = list(session.scalars(select(CustomerRecordVersion).where(
                CustomerRecordVersion.customer_id == 1)))
            assert [(v.number, v.changed, v.author_id) for v in versions] == [(1, "notes", None)]
            # The customer without notes gets no version; its city is folded for search.
            other = session.get(CustomerRecord, 2)
            assert other is not None and other.version == 0 and other.city_key == "munchen"
        assert [(e.actor_id, e.customer_id) for e in events(rt, "customer:edit")] == [(None, 1)]
        # The sealer audited before the log was sharded: its record is now in shard 0 as the single chain
        # wrote it, and the whole log verifies.
        assert [(e.shard, e.shard_seq) for e in events(rt, "customer:edit")] == [(0, 1)]
        rt.store.ensure_ready()
        with rt.db.session() as session:
            report = audit.verify(rt, session, actor=None, ctx=AccessContext.cli())
            session.commit()
        assert report.ok, report.summary()
        assert report.checked == 1
        # A second pass checks the verifier's own record (a new shard) and its signed checkpoint too.
        with rt.db.session() as session:
            again = audit.verify(rt, session, actor=None, ctx=AccessContext.cli())
        assert again.ok and again.checked == 2 and again.checkpoints == 1, again.summary()
    finally:
        rt.close()


def test_upgrade_without_the_keyring_refuses_and_keeps_the_notes(old_url: str) -> None:
    db = Database(old_url)
    try:
        with pytest.raises(RuntimeError, match=r"1 customer\(s\) have notes in clear"):
            schema.upgrade(db)
        assert schema.current_revision(db) == "0013"  # nothing half-done
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT notes FROM customers WHERE id = 1")).scalar() == (
                f"  {OLD_NOTES}\r\n")
            assert "city_key" not in {c["name"] for c in inspect(connection).get_columns("customer_records")}
    finally:
        db.dispose()


def test_notes_given_at_creation_open_the_sealed_record(rt: Runtime, users: Any) -> None:
    carl = users.make("carl", Role.COMPILER)
    bob = users.make("bob", Role.BORROWER)
    with rt.db.session() as session:
        carl, bob = session.merge(carl), session.merge(bob)
        customer = customers.create_customer(rt, session, carl, name="Acme", segment="key", owner=bob,
                                             notes=" Payment: 60 days net. ", ctx=AccessContext.cli())
        record = session.get(CustomerRecord, customer.id)
        assert record is not None and record.version == 1 and record.updated_by_id == carl.id
        assert records.snapshot(rt, record)["notes"] == "Payment: 60 days net."
        assert records.masked_view(rt, session, customer).notes != "Payment: 60 days net."
        plain = customers.create_customer(rt, session, carl, name="Plain", segment="key", owner=bob,
                                          ctx=AccessContext.cli())
        assert session.get(CustomerRecord, plain.id) is None
        session.commit()
    assert [(e.actor_name, e.customer_id) for e in events(rt, "customer:edit")] == [("carl", customer.id)]


def test_bad_notes_at_creation_create_nothing(rt: Runtime, users: Any) -> None:
    carl = users.make("carl", Role.COMPILER)
    with rt.db.session() as session:
        carl = session.merge(carl)
        with pytest.raises(ServiceError) as refused:
            customers.create_customer(rt, session, carl, name="Acme", segment="key", notes="x" * 4001,
                                      ctx=AccessContext.cli())
        assert refused.value.code == "invalid_record"
        assert session.scalar(select(Customer).where(Customer.name == "Acme")) is None
