"""Verification split over worker processes reports exactly what one process reports: on an intact log,
for damage anywhere (at a range boundary above all) in any chain, and on a log that grows meanwhile.

Ranges are forced tiny (`min_records=1`) so that a few dozen real appends cross them."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tests.audit.conftest import CTX, attack, drop_append_only
from vault.audit import range_workers, rows
from vault.audit.chain import compute_mac, record_dict
from vault.audit.verify import VerifyReport, verify_chain
from vault.cli import cli
from vault.core.context import AccessContext
from vault.models import AuditEvent, User
from vault.services import audit as audit_service

SHARDS = 3
COUNT = 36  # records; 2 workers split them at 18 | 19


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"audit_checkpoint_every": 12, "audit_shards": SHARDS}


@pytest.fixture
def log(rt):
    # Five people take turns, so the three chains interleave in record order as real appends make them.
    for i in range(COUNT):
        with rt.db.session() as session:
            rt.audit.record(session, action="document:view", actor=User(id=1 + i % 5, username=f"p{i % 5}"),
                            ctx=CTX, document_id=i + 1, detail={"i": i})
    return rt


def _content(report: VerifyReport) -> dict[str, Any]:
    """Everything a report says, apart from how long it took and how many processes it used."""
    return {name: value for name, value in vars(report).items() if name not in ("seconds", "processes")}


def _both(rt, jobs: int = 2, **options: Any) -> tuple[VerifyReport, VerifyReport]:
    serial = verify_chain(rt.db, rt.audit.key, rt.audit.checkpoints, **options)
    parallel = verify_chain(rt.db, rt.audit.key, rt.audit.checkpoints, jobs=jobs, min_records=1, **options)
    assert serial.processes == 1 and parallel.processes == jobs
    assert _content(parallel) == _content(serial)
    assert parallel.as_dict() | {"seconds": 0} == serial.as_dict() | {"seconds": 0}
    return serial, parallel


def _events(rt) -> list[AuditEvent]:
    with rt.db.session() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def _boundary() -> tuple[int, int]:
    """(last record of the first range, first of the second) with two workers."""
    (_first, last), (second, _end) = range_workers.split(1, COUNT, 2, 1)
    return last, second


def test_ranges_cover_the_records_once_and_stay_whole_below_the_threshold():
    assert range_workers.split(1, COUNT, 2, 1) == [(1, 18), (19, 36)]
    assert range_workers.split(5, 104, 3, 10) == [(5, 38), (39, 72), (73, 104)]
    assert range_workers.split(1, 99_999, 8, 50_000) == []  # one range of 50,000 or more only
    assert range_workers.split(1, 100_000, 8, 50_000) == [(1, 50_000), (50_001, 100_000)]
    assert range_workers.split(1, 10, 1, 1) == [] and range_workers.split(1, 0, 4, 1) == []


@pytest.mark.parametrize("jobs", [2, 3, 5])
def test_an_intact_log_reports_the_same_in_any_number_of_workers(log, jobs):
    _serial, parallel = _both(log, jobs)
    assert parallel.ok and parallel.checked == COUNT and parallel.last_seq == COUNT
    assert parallel.shards == SHARDS and len(parallel.last_heads) == SHARDS and parallel.checkpoints >= 2


def test_from_a_sequence_number_the_same(log):
    _serial, parallel = _both(log, 2, from_seq=10)
    assert parallel.ok and parallel.checked == COUNT - 9


def test_progress_counts_every_record_once(log):
    seen: list[int] = []
    report = verify_chain(log.db, log.audit.key, log.audit.checkpoints, jobs=2, min_records=1,
                          progress=seen.append)
    assert report.processes == 2 and sum(seen) == COUNT


def test_the_first_verification_of_the_command_line_uses_workers_and_signs_what_it_verified(log):
    with log.db.session() as session:
        report = audit_service.verify(log, session, actor=None, actor_name="cli:tester", ctx=AccessContext.cli(),
                                      jobs=2, min_records=1)
    assert report.ok and report.processes == 2
    signed = max(log.audit.checkpoints.stored_checkpoints(), key=lambda c: c.seq)
    assert signed.seq == COUNT and signed.heads == report.last_heads


def _at(rt, seq: int) -> AuditEvent:
    return next(e for e in _events(rt) if e.seq == seq)


def _first_in_second_range(rt, shard: int) -> AuditEvent:
    _last, second = _boundary()
    return next(e for e in _events(rt) if e.shard == shard and e.seq >= second)


def _edit_detail(rt, seq: int) -> None:
    attack(rt, "UPDATE audit_events SET detail = :detail WHERE seq = :seq", detail='{"i":999}', seq=seq)


def _forge_mac(rt, seq: int) -> None:
    attack(rt, "UPDATE audit_events SET mac = :mac WHERE seq = :seq", mac="ab" * 32, seq=seq)


def _delete(rt, seq: int) -> None:
    attack(rt, "DELETE FROM audit_events WHERE seq = :seq", seq=seq)


def _swap_across(rt, seq: int) -> None:
    """The record `seq` swaps places with the next record of its chain after it."""
    victim = _at(rt, seq)
    other = next(e for e in _events(rt) if e.shard == victim.shard and e.shard_seq == victim.shard_seq + 1)
    attack(rt, "UPDATE audit_events SET shard_seq = -1 WHERE seq = :a",
           "UPDATE audit_events SET shard_seq = :place WHERE seq = :b",
           "UPDATE audit_events SET shard_seq = :place + 1 WHERE seq = :a",
           a=victim.seq, b=other.seq, place=victim.shard_seq)


def _duplicate_place(rt, seq: int) -> None:
    """The record `seq` claims its predecessor's place too (the unique index dropped first)."""
    attack(rt, "DROP INDEX ux_audit_events_shard_seq",
           "UPDATE audit_events SET shard_seq = shard_seq - 1 WHERE seq = :seq", seq=seq)


ATTACKS = {"edited detail": _edit_detail, "forged MAC": _forge_mac, "deleted": _delete,
           "reordered": _swap_across, "duplicated place": _duplicate_place}


@pytest.mark.parametrize("side", ["last of the first range", "first of the second range"])
@pytest.mark.parametrize("attack_name", list(ATTACKS))
def test_damage_at_the_range_boundary_is_named_as_one_process_names_it(log, attack_name, side):
    last, second = _boundary()
    victim = _at(log, last if side.startswith("last") else second)
    drop_append_only(log)
    ATTACKS[attack_name](log, victim.seq)
    _serial, parallel = _both(log)
    assert not parallel.ok
    assert victim.shard in {damage.shard for damage in parallel.damage}


@pytest.mark.parametrize("shard", range(1, SHARDS + 1))
def test_an_edited_record_in_any_chain_is_named_as_one_process_names_it(log, shard):
    victim = _first_in_second_range(log, shard)
    drop_append_only(log)
    _edit_detail(log, victim.seq)
    _serial, parallel = _both(log, 3)
    assert (parallel.first.seq, parallel.first.kind, parallel.first.shard, parallel.first.shard_seq) == (
        victim.seq, "modified", shard, victim.shard_seq)


def test_history_rewritten_with_the_key_across_the_boundary_is_caught_by_the_checkpoints(log):
    """The attacker recomputes every MAC after the change: every range fits on its own, and only the
    checkpointed places, handed to each worker, give the rewrite away."""
    last, _second = _boundary()
    shard = _at(log, last).shard
    with log.db.session() as session:
        chain = list(session.scalars(select(AuditEvent).where(AuditEvent.shard == shard)
                                     .order_by(AuditEvent.shard_seq)))
        previous, rewritten = "", []
        for event in chain:
            record = record_dict(event)
            if event.seq == last:
                record["actor_name"] = "someone innocent"
            previous = compute_mac(log.audit.key, record, previous)
            rewritten.append((event.seq, record["actor_name"], previous))
    drop_append_only(log)
    for seq, name, mac in rewritten:
        attack(log, "UPDATE audit_events SET actor_name = :name, mac = :mac WHERE seq = :seq", name=name, mac=mac,
               seq=seq)
    attack(log, "UPDATE audit_head SET mac = :mac WHERE id = :shard", mac=rewritten[-1][2], shard=shard)
    _serial, parallel = _both(log)
    assert parallel.first.kind == "modified" and "no longer carries the MAC signed" in parallel.first.message


def test_a_truncated_chain_and_a_record_beyond_the_head_the_same(log):
    drop_append_only(log)
    attack(log, "DELETE FROM audit_events WHERE seq > :seq", seq=COUNT - 4)
    _serial, parallel = _both(log)
    assert parallel.first.kind == "truncated"


def test_a_chain_idle_for_long_is_found_on_its_own(log, monkeypatch):
    """A chain whose last record lies far before a range's start is looked up by its own index."""
    _last, second = _boundary()
    starts = {shard: (1, "") for shard in range(1, SHARDS + 1)}
    with rows.read_snapshot(log.db) as connection:
        scanned = range_workers.chain_starts(connection, 1, second, starts)
        assert scanned == {e.shard: (e.shard_seq + 1, e.mac) for e in _events(log) if e.seq < second}
        monkeypatch.setattr(range_workers, "SCAN_LIMIT", 1)
        assert range_workers.chain_starts(connection, 1, second, starts) == scanned
        assert range_workers.chain_starts(connection, 1, second, {7: (1, "")}) == {7: (1, "")}
        assert range_workers.chain_starts(connection, second - 1, second, {7: (4, "m3")}) == {7: (4, "m3")}
    _both(log, 3)


def test_a_log_that_grows_meanwhile_is_verified_up_to_the_snapshot(log, monkeypatch):
    before = verify_chain(log.db, log.audit.key, log.audit.checkpoints)
    started = range_workers.run

    def append_first(tasks, progress):
        # Records committed after the parent's snapshot, before any worker reads.
        for i in range(5):
            with log.db.session() as session:
                log.audit.record(session, action="document:view", actor=User(id=1 + i, username=f"p{i}"), ctx=CTX)
        return started(tasks, progress)

    monkeypatch.setattr(range_workers, "run", append_first)
    during = verify_chain(log.db, log.audit.key, log.audit.checkpoints, jobs=2, min_records=1)
    assert during.processes == 2 and _content(during) == _content(before)
    assert during.ok and during.last_seq == COUNT
    monkeypatch.undo()
    assert _both(log)[1].checked == COUNT + 5


@pytest.mark.parametrize("db_backend", ["postgresql"])
def test_workers_see_the_parents_snapshot_on_postgresql(log, monkeypatch):
    """A record changed after the snapshot is not seen by any worker: they imported the parent's."""
    last, second = _boundary()
    drop_append_only(log)
    started = range_workers.run

    def tamper_first(tasks, progress):
        assert tasks[0].snapshot is not None
        _edit_detail(log, second)
        _edit_detail(log, last)
        return started(tasks, progress)

    monkeypatch.setattr(range_workers, "run", tamper_first)
    report = verify_chain(log.db, log.audit.key, log.audit.checkpoints, jobs=2, min_records=1)
    assert report.processes == 2 and report.ok, report.summary()
    monkeypatch.undo()
    assert verify_chain(log.db, log.audit.key, log.audit.checkpoints, jobs=2, min_records=1).first.seq == last


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_with_another_thread_running_workers_come_from_the_fork_server(log):
    # A fork copies only the calling thread; with another one alive the workers are forked from a clean
    # single-threaded server process instead.
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not range_workers._may_fork()
        _both(log)
    finally:
        stop.set()
        other.join()


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_a_worker_that_cannot_open_the_database_sends_the_parent_back_to_one_process(log, monkeypatch, caplog,
                                                                                      tmp_path):
    started = range_workers.run

    def unreachable(tasks, progress):
        return started([tasks[0], dataclasses.replace(tasks[1], url=f"sqlite:///{tmp_path}/no/such/folder.db")],
                       progress)

    monkeypatch.setattr(range_workers, "run", unreachable)
    serial = verify_chain(log.db, log.audit.key, log.audit.checkpoints)
    with caplog.at_level(logging.WARNING, logger=range_workers.__name__):
        report = verify_chain(log.db, log.audit.key, log.audit.checkpoints, jobs=2, min_records=1)
    assert report.processes == 1 and _content(report) == _content(serial)
    assert "failed" in caplog.text and "verifying in one process" in caplog.text


@pytest.mark.parametrize("db_backend", ["sqlite"])
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")  # on purpose, see below
def test_a_worker_that_dies_sends_the_parent_back_to_one_process(log, monkeypatch, caplog):
    # A fault no real database produces on demand: the workers are gone without a word, as if killed. The
    # fault is planted in this process, so the workers are forked from it even beside the test runner's own
    # threads; they end at once, before touching anything those threads may hold.
    def dies(task, progress=None):
        os._exit(3)

    monkeypatch.setattr(range_workers, "_may_fork", lambda: True)
    monkeypatch.setattr(range_workers, "verify_range", dies)
    serial = verify_chain(log.db, log.audit.key, log.audit.checkpoints)
    with caplog.at_level(logging.WARNING, logger=range_workers.__name__):
        report = verify_chain(log.db, log.audit.key, log.audit.checkpoints, jobs=2, min_records=1)
    assert report.processes == 1 and _content(report) == _content(serial)
    assert "died" in caplog.text


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_sqlite_readers_run_beside_a_writer_in_wal_mode(log):
    with log.db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"


def test_a_record_before_the_first_verified_one_is_no_range_start(log):
    """Verifying from a record number trusts what lies before it; a worker must not start a chain from a
    record there (here one moved beyond its chain's end) when that chain has none in the earlier ranges."""
    from_seq, jobs = 30, 4
    ranges = range_workers.split(from_seq, COUNT, jobs, 1)
    events = _events(log)
    in_first = {e.shard for e in events if ranges[0][0] <= e.seq <= ranges[0][1]}
    shard = next(s for s in range(1, SHARDS + 1) if s not in in_first)
    chain = [e for e in events if e.shard == shard]
    start = min(e.shard_seq for e in chain if e.seq >= from_seq)
    before = next(e for e in chain if e.shard_seq == start - 1)
    moved = next(e for e in chain if e.shard_seq < start - 1)
    drop_append_only(log)
    # The moved record takes the number of the last one before `from_seq`, which takes its number.
    attack(log, "UPDATE audit_events SET seq = -1 WHERE seq = :a", "UPDATE audit_events SET seq = :a WHERE seq = :b",
           "UPDATE audit_events SET seq = :b, shard_seq = :place WHERE seq = -1", a=moved.seq, b=before.seq,
           place=len(chain) + 1)
    _serial, parallel = _both(log, jobs, from_seq=from_seq)
    assert parallel.processes == jobs


def test_a_range_that_does_not_start_where_the_one_before_ended_is_not_accepted():
    fitting = range_workers.Piece((3, "m2"), (5, "m4"), 2, 20, True)
    assert range_workers.stitch({1: (3, "m2")}, [{1: fitting}, {1: range_workers.Piece((5, "m4"), (6, "m5"), 1, 31,
                                                                                       True)}], 1) == {1: (6, "m5", 31)}
    for later in (range_workers.Piece((5, "other"), (6, "m5"), 1, 31, True),  # another MAC before it
                  range_workers.Piece((4, "m3"), (6, "m5"), 2, 31, True),  # another place
                  range_workers.Piece((5, "m4"), (5, "m4"), 0, -1, False)):  # misfit within
        assert range_workers.stitch({1: (3, "m2")}, [{1: fitting}, {1: later}], 1) == {}
    # A chain without records in a range passes through it; its last record number is the earlier one.
    idle = range_workers.Piece((5, "m4"), (5, "m4"), 0, -1, True)
    assert range_workers.stitch({1: (3, "m2")}, [{1: fitting}, {1: idle}], 1) == {1: (5, "m4", 20)}
    assert range_workers.stitch({1: (1, "")}, [{1: range_workers.Piece((1, ""), (1, ""), 0, -1, True)}], 7) == {
        1: (1, "", 6)}


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_the_command_takes_a_number_of_workers(log, monkeypatch):
    env = {"VAULT_DATA_DIR": str(log.settings.data_dir), "VAULT_DATABASE_URL": log.settings.database_url,
           "VAULT_KEYRING": str(log.settings.keyring), "VAULT_SECRET_KEY": "test-secret-key",
           "VAULT_AUDIT_SHARDS": str(SHARDS)}
    runner = CliRunner()
    refused = runner.invoke(cli, ["audit", "verify", "--jobs", "0"], env=env)
    assert refused.exit_code == 2 and "--jobs" in refused.output
    small = runner.invoke(cli, ["audit", "verify", "--jobs", "2"], env=env, catch_exceptions=False)
    assert small.exit_code == 0 and "by 1 process(es)" in small.output  # below the size that pays
    monkeypatch.setattr(range_workers, "MIN_RECORDS", 1)
    split = runner.invoke(cli, ["audit", "verify", "--jobs", "2"], env=env, catch_exceptions=False)
    assert split.exit_code == 0 and "by 2 process(es)" in split.output
    assert f"audit log intact: {COUNT + 1} records verified" in split.output  # and the first verification's record
