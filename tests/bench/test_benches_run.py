"""Every benchmark in bench/ runs in CI, in its smallest form, so a product change that breaks one fails the
build instead of waiting for the next person to run it.

Each bench runs as `make bench` runs it (a subprocess from the repository root, the root on the path) with
the fewest rounds, pages, clients and seconds that still take every step of its full run: its own `--smoke`
flag where it has one, small parameters where its command line has them. The test checks that it exits 0
and prints its table with the goal columns; the figures are not judged (benchmarks are measured on a quiet
machine, not timed in tests). Each bench starts its own PostgreSQL and SeaweedFS with the same helpers as
the suite's fixtures (tests/fixtures), as its full run does.

Databases: audit_bench runs both, since its code differs by backend (COPY and the database's JSON export
on PostgreSQL, a cursor on SQLite) and both cost a few seconds. view_bench runs on PostgreSQL only, the
production database: its own code differs between the two only in the URL it builds, and the product's
behaviour on SQLite is what the rest of the suite tests; a second database would double its cost.
soak runs on PostgreSQL, the only database it has.

peer_bench needs the peer's recipe, which CI does not have (and must not install): the test checks that
it says clearly what is missing, that every name it takes from view_bench still exists there, and that a
failure of its vault side (made with a stand-in client that fails) is no exit 0, nor are views refused or
cut short under load (a stand-in client, tests/bench/standin_loadclient.py, against vault's real side).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
BENCH = ROOT / "bench"
# Far above a smoke run's time (each takes seconds), far below a full run's, so a bench that has lost its
# small form fails here rather than holding a worker for an hour.
TIMEOUT = 240

pytestmark = pytest.mark.slow


def run_bench(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `bench/<script> ARGS` as `make bench` does; its result, with how long it took on stderr."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BASELINE_", "PEER_"))}
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(BENCH / script), *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=TIMEOUT, check=False,
                            env={**clean, "PYTHONPATH": str(ROOT), **(env or {})})
    print(f"{script} {' '.join(args)}: {time.monotonic() - started:.1f} s", file=sys.stderr)
    return result


def assert_ran(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    """Exit 0, and every expected piece of the table (column titles, goal cells) in what it printed."""
    said = f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"
    assert result.returncode == 0, f"the bench exited with {result.returncode}\n{said}"
    missing = [text for text in expected if text not in result.stdout]
    assert not missing, f"the table lacks {missing}\n{said}"


def test_crypto_bench() -> None:
    assert_ran(run_bench("crypto_bench.py", "--quick"),
               "measure", "result", "limit / detail", "ratio", "goal",
               "stream encrypt (EncryptingReader, hashes)", "stream decrypt (decrypt_stream)", ">= 0.5:",
               "peak RSS, 128 MiB put+get via LocalStore", "sha ok", "<= 100 MiB:")


def test_store_bench() -> None:
    assert_ran(run_bench("store_bench.py", "--smoke"),
               "operation", "plaintext", "best of", "ours (S3Store+crypto)", "plain minio", "ratio", "goal",
               "plain, length unknown", "encrypt + PUT", "GET + decrypt", ">= 0.9:", ">= 0.85:")


def test_marking_bench() -> None:
    result = run_bench("marking_bench.py", "--pages", "1")
    assert_ran(result, "step", "p50", "max", "visible stamp (cached masks)", "embed invisible mark",
               "decode mark (unattacked)", "stamp_pdf", "Robustness", "False reads", "(goal 0)")
    # Robustness is a count of the bench's own pages, not a timing: the unattacked page gives its id back.
    assert "  none                       1 / 1" in result.stdout


def test_rendition_bench() -> None:
    assert_ran(run_bench("rendition_bench.py", "--smoke"),
               "measure", "result", "detail", "stored", "draw + encode", "peak RSS, 2-page PDF, fresh process",
               "goal <= 20 MiB:", "text fonts, first use in a process", "PDF, 10 text pages", "TIFF, 3 frames",
               "CSV, 300 rows", "docx")


def test_audit_bench_on_both_databases() -> None:
    result = run_bench("audit_bench.py", "--rows", "1000", "--writers", "2", "--shards", "2", "--appends", "5",
                       "--repeats", "1")
    assert_ran(result, "backend", "measure", "ours/s", "baseline", "base/s", "ratio", "goal", "met",
               "COPY TO STDOUT CSV", "COPY row_to_json", "plain cursor -> csv", ">= 0.5 x", ">= 0.3 x", ">= 0.8 x")
    for backend in ("postgresql", "sqlite"):
        for measure in ("export CSV", "export JSON Lines", "verify, 1 process", "appends, 2 writers"):
            assert any(line.startswith(backend) and measure in line for line in result.stdout.splitlines()), \
                (backend, measure, result.stdout)


def test_viewer_bench() -> None:
    assert_ran(run_bench("viewer_bench.py", "--smoke"),
               "measure", "value", "rendition at upload", "open POST → first stamped page, p50",
               "stamped pages/s, 8 clients", "ratio stamped / bare", "goal <= 2x:", "goal <= 3x:",
               "trace decode, JPEG q75 page, p50")


def test_soak() -> None:
    # 3 s of load: each client's acts are drawn from a generator seeded with its number, and the first seven
    # acts of the two clients already hold every kind; they make dozens in that time.
    result = run_bench("soak.py", "--smoke", "--minutes", "0.05", "--connections", "2", "--workers", "1",
                       "--threads", "2")
    # The soak's exit status is its invariants (every act audited, quota accounted, fsck and the chain
    # clean): correctness, not speed, so it is judged here; only memory drift is not, in a run of seconds.
    assert_ran(result, "invariant", "result", "ok", "audit document:download:allowed = client acts",
               "quota spent = delivered + partial + open readers", "vault fsck", "vault audit verify",
               "RSS drift worker", "All invariants hold.")
    acts = next(line for line in result.stdout.splitlines() if line.startswith("requests:"))
    for act in ("loan_cycle", "refusal", "upload", "view_1m", "view_4k", "viewer_page"):
        assert f"{act} " in acts, f"no {act} in the smoke run: {acts}"


def test_view_bench_on_postgresql() -> None:
    assert_ran(run_bench("view_bench.py", "--smoke", "--database", "postgresql", "--clients", "2", "--workers", "1",
                         "--threads", "2"),
               "SeaweedFS, PostgreSQL", "A p50", "B p50", "C p50", "C/B p50", "goal C/B", "met", "T p50",
               "4 KiB", "1 MiB", "T split", "goal >= 0.35:", "(T) views/s in two steps",
               "goal <= 150 MiB per worker under load:", "flat from 4 KiB to 1 MiB",
               "stamped download of the 1 MiB PDF", "goal <= 3x:", "stamped viewer page", "goal <= 2x:", "Goals ")


def test_peer_bench_says_the_peer_is_missing(tmp_path: Path) -> None:
    """Without the peer's recipe (as in CI) the bench stops at once and says what is missing and where to
    put it; `PEER_RECIPE` names an empty folder, so a checkout with the recipe beside it does not start
    the half-hour peer set-up here."""
    result = run_bench("peer_bench.py", "--quick", "--skip-mayan", env={"PEER_RECIPE": str(tmp_path)})
    assert result.returncode != 0
    assert "no peer recipe (loadclient.py)" in result.stderr
    assert str(tmp_path) in result.stderr and "PEER_RECIPE" in result.stderr
    assert "Traceback" not in result.stderr


def test_peer_bench_uses_only_what_view_bench_has() -> None:
    """peer_bench seeds and serves vault through view_bench (`vb.…`), code CI cannot run without the peer:
    every name it takes from there must still exist, or its vault side breaks unseen."""
    tree = ast.parse((BENCH / "peer_bench.py").read_text())
    used = {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "vb"}
    defined = {name for node in ast.parse((BENCH / "view_bench.py").read_text()).body
               for name in _names(node)}
    assert used, "peer_bench no longer uses view_bench: update this test"
    assert used <= defined, f"peer_bench uses {sorted(used - defined)} from view_bench, which has no such names"


def _names(node: ast.stmt) -> list[str]:
    """The module-level names a statement defines."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [target.id for target in node.targets if isinstance(target, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def test_peer_bench_fails_when_its_vault_side_fails(tmp_path: Path) -> None:
    """A run whose vault side broke has no figures of vault to compare: it says why, still prints the table
    (the peer's columns are worth having), and exits non-zero so that no one takes it for a measurement.

    The fault: a measuring client that cannot read the load average, which vault's side asks first (the
    peer is skipped, so nothing of it starts, and neither do vault's servers)."""
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    (recipe / "loadclient.py").write_text(
        "def wait_quiet(below, wait):\n"
        "    raise OSError('no load average here')\n"
    )
    result = run_bench("peer_bench.py", "--quick", "--skip-mayan", "--quiet-wait", "0",
                       env={"PEER_RECIPE": str(recipe), "PEER_DIR": str(tmp_path / "state")})
    assert result.returncode == 1, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert "views/s, 8 clients, 4 KiB" in result.stdout  # the table, vault's column empty
    assert "NOT MEASURED — vault:\n  OSError: no load average here" in result.stdout
    assert "vault's side failed" in result.stderr
    assert "OSError: no load average here" in result.stderr  # with where it broke
    saved = json.loads(next((tmp_path / "state" / "results").glob("peer_bench_*.json")).read_text())
    assert saved["vault"] == {} and saved["failures"]["vault"] == "OSError: no load average here"


@pytest.mark.parametrize("faults", ["", "1=no_token,2=cut"], ids=["whole", "refused_and_cut_short"])
def test_peer_bench_fails_when_views_under_load_fail(tmp_path: Path, faults: str) -> None:
    """Was: only an exception failed vault's side; views refused or cut short under load were left out of
    the rate, and the run exited 0 as a measurement. Now a load whose views are not all whole (200 with
    the file's every byte) fails vault's side, saying how many and how, as an exception does.

    vault's side runs for real (PostgreSQL, SeaweedFS, the seeding, gunicorn) under a stand-in of the
    recipe's client that injects the faults: client 1 sends no token (vault answers 401), client 2 gets
    half of each body. The control, with no fault, exits 0."""
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    (recipe / "loadclient.py").write_text((Path(__file__).parent / "standin_loadclient.py").read_text())
    result = run_bench("peer_bench.py", "--quick", "--skip-mayan", "--quiet-wait", "0",
                       env={"PEER_RECIPE": str(recipe), "PEER_DIR": str(tmp_path / "state"), "PEER_FAULTS": faults})
    said = f"--- stdout ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-3000:]}"
    if not faults:
        assert result.returncode == 0, said
        assert "NOT MEASURED — vault" not in result.stdout, said
        return
    assert result.returncode == 1, said
    # Three views a client, eight clients: client 1's three refused, client 2's three cut short.
    assert ("NOT MEASURED — vault:\n  RuntimeError: 6 of 24 views under load (one-request flow) were not whole: "
            "answers by status {200: 21, 401: 3}, 3 of them 200 with a short body") in result.stdout, said
    assert "vault's side failed" in result.stderr
    saved = json.loads(next((tmp_path / "state" / "results").glob("peer_bench_*.json")).read_text())
    assert saved["vault"] == {} and "were not whole" in saved["failures"]["vault"]
