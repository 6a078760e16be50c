"""vault beside its closest peer, Mayan EDMS 4.12.2: same machine, same client, one run.

Run ``python bench/peer_bench.py`` (``--quick`` for a short run). The peer's recipe and the measuring
client shared by both products live beside the checkout in ``../shared/peers/mayan/``, or in the folder
named by ``PEER_RECIPE`` (``loadclient.py``: stdlib ``http.client``, one keep-alive connection per client
thread, nearest-rank percentiles, RSS and CPU sampling of the server processes). Everything runs one step
after the other, never in parallel, and each step starts once the 1-minute load average has dropped
(bounded wait):

1. Mayan EDMS: set up by the recipe's ``mayan_setup.sh`` unless its state folder (``$PEER_DIR``, by
   default ``vault-peer`` in the temp directory) already holds a finished set-up; then the recipe's
   ``bench_mayan.py`` on its plain file storage and on its encrypted storage (``EncryptedPassthroughStorage``),
   reading as its admin (a superuser: Mayan skips its ACL checks). Each run starts Mayan's own PostgreSQL,
   seeds through its REST API and measures 8 clients downloading distinct 4 KiB files for 20 s, 1 MiB
   single-client downloads and 1 MiB single-client uploads.
2. vault, with the same client: PostgreSQL and SeaweedFS from the test fixtures, users, tokens and files
   seeded by ``bench/view_bench.py``, served by gunicorn as there (gthread, 2 workers x 4 threads); 8
   clients for 20 s on distinct 4 KiB files with a view in one request (``POST
   /api/v1/documents/{id}/content``) and, beside it, the browsers' two-step flow (``POST …/views`` then
   the ``GET`` of its content URL); 1 MiB single-client views; 1 MiB single-client uploads (``POST
   /api/v1/customers/{id}/documents``, multipart); RSS of the server's process tree under load.
3. One table: the figures of the three columns, the ratios vault/Mayan-plain and vault/Mayan-encrypted,
   and the goals on views per second at 8 clients (at least 3x Mayan plain, at least 10x Mayan encrypted).

Every vault view is decided by policy, counted against the quota, recorded and audited; a Mayan download
as admin is a permission-free file read. If Mayan cannot be set up or measured here (a package that does
not install, a run that fails), the bench says what failed and still prints vault's side. If vault's side
fails, it says why, still prints the peer's figures and exits with 1. Failing includes a load whose views
were not all whole: an answer other than 200 (201 then 200 in two steps), or a 200 whose body is not the
file's every byte, as view_bench checks them. A rate counted over the views that went right, beside
refusals that cost next to nothing, is not a rate of views.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# Run as a script from a checkout: the project's packages, the sibling benches and the shared peer recipe
# (beside the checkout; PEER_RECIPE names another folder holding it).
ROOT = Path(__file__).resolve().parent.parent
PEERS = Path(os.environ.get("PEER_RECIPE") or ROOT.parent / "shared" / "peers" / "mayan").resolve()
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(PEERS)]

if not (PEERS / "loadclient.py").is_file():
    sys.exit(f"peer_bench: no peer recipe (loadclient.py) in {PEERS}: put ../shared/peers/mayan/ beside the "
             "checkout or name its folder in PEER_RECIPE")

import loadclient as lc  # noqa: E402  (the client shared with the peer's side)
import view_bench as vb  # noqa: E402  (seeding, settings, gunicorn and readiness wait)

from tests.fixtures.postgres import PostgresCluster  # noqa: E402
from tests.fixtures.seaweed import SeaweedServer  # noqa: E402
from vault.config.settings import load_settings  # noqa: E402
from vault.core.context import AccessContext  # noqa: E402
from vault.runtime import Runtime  # noqa: E402
from vault.services import accounts, agreement, customers  # noqa: E402

KIB = 1024
MIB = 1024 * KIB
CLIENTS = 8
GOAL_PLAIN = 3.0
GOAL_ENC = 10.0
STORAGES = ("plain", "enc")
STORAGE_LABEL = {"plain": "Mayan plain", "enc": "Mayan encrypted"}
PEER_DIR = Path(os.environ.get("PEER_DIR", Path(tempfile.gettempdir()) / "vault-peer"))
MAYAN = PEER_DIR / "mayan"


@dataclass
class Settings:
    """What this run does, from the command line."""

    quick: bool
    duration: float
    rounds: int
    upload_rounds: int
    workers: int
    threads: int
    quiet_below: float
    quiet_wait: float
    skip_mayan: bool


@dataclass
class Outcome:
    """The measured figures of every column, and what could not be measured, with why."""

    mayan: dict[str, dict[str, Any]] = field(default_factory=dict)
    vault: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


def machine() -> str:
    """The machine as view_bench prints it: CPU count and load average."""
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return f"{os.cpu_count()} CPUs, load average {load}"


def wait_quiet(settings: Settings, step: str) -> None:
    """Start `step` only once the 1-minute load average is below the limit, or after the bounded wait."""
    print(f"[{time.strftime('%H:%M:%S')}] {step}: waiting for the load average to drop below "
          f"{settings.quiet_below} (at most {settings.quiet_wait:.0f} s) ...", file=sys.stderr, flush=True)
    load = lc.wait_quiet(settings.quiet_below, settings.quiet_wait)
    print(f"[{time.strftime('%H:%M:%S')}] {step}: starting ({os.cpu_count()} CPUs, load average "
          f"{', '.join(str(x) for x in load)})", file=sys.stderr, flush=True)


# -- Mayan EDMS: the recipe's own scripts --------------------------------------------------------------


def mayan_ready() -> bool:
    """A finished set-up left its venv, its database cluster and both storages' environment files."""
    return all(path.exists() for path in (
        MAYAN / "venv" / "bin" / "mayan-edms.py", MAYAN / "pg" / "data" / "PG_VERSION",
        MAYAN / "env.sh", MAYAN / "env_plain.sh", MAYAN / "env_enc.sh",
    )) and all((MAYAN / f"media_{s}").exists() or (MAYAN / f"media_{s}_tpl").exists() for s in STORAGES)


def run_logged(command: list[str], timeout: float, log: Path) -> tuple[int, str, list[str]]:
    """Run `command`, echoing its standard error as it comes; returns (code, stdout, last stderr lines)."""
    tail: deque[str] = deque(maxlen=40)
    env = {**os.environ, "PEER_DIR": str(PEER_DIR)}
    with open(log, "w") as log_file:
        process = subprocess.Popen(command, cwd=PEERS, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, errors="replace")

        def echo() -> None:
            assert process.stderr is not None
            for line in process.stderr:
                tail.append(line.rstrip())
                log_file.write(line)
                log_file.flush()
                print("   ", line.rstrip(), file=sys.stderr, flush=True)

        reader = threading.Thread(target=echo, daemon=True)
        reader.start()
        try:
            stdout, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, _ = process.communicate()
            tail.append(f"(stopped after {timeout:.0f} s)")
            reader.join(5)
            return -1, stdout, list(tail)
        reader.join(5)
    return process.returncode, stdout, list(tail)


def set_up_mayan(settings: Settings, outcome: Outcome) -> bool:
    """Run the recipe's set-up unless a finished one is already in $PEER_DIR; record why it failed."""
    if mayan_ready():
        print(f"Mayan EDMS: reusing the set-up in {MAYAN}", file=sys.stderr, flush=True)
        return True
    wait_quiet(settings, "Mayan set-up")
    MAYAN.mkdir(parents=True, exist_ok=True)
    log = PEER_DIR / "peer_bench_setup.log"
    print(f"Mayan EDMS: setting up with mayan_setup.sh (log: {log}) ...", file=sys.stderr, flush=True)
    with open(log, "w") as log_file:
        try:
            done = subprocess.run(["bash", str(PEERS / "mayan_setup.sh")], cwd=PEERS, stdout=log_file,
                                  stderr=subprocess.STDOUT, env={**os.environ, "PEER_DIR": str(PEER_DIR)},
                                  timeout=1800)
            code = done.returncode
        except subprocess.TimeoutExpired:
            code = -1
    if code == 0 and mayan_ready():
        return True
    lines = log.read_text(errors="replace").splitlines()
    steps = (MAYAN / "setup_timings.txt")
    timings = steps.read_text(errors="replace").strip() if steps.exists() else "(no step finished)"
    outcome.failures["Mayan EDMS set-up"] = (
        f"mayan_setup.sh {'timed out' if code == -1 else f'exited with code {code}'}; steps finished:\n"
        f"{timings}\nlast lines of its output ({log}):\n" + "\n".join(lines[-15:])
    )
    return False


def measure_mayan(storage: str, settings: Settings, outcome: Outcome) -> None:
    """The recipe's bench_mayan.py on one storage, read by the admin; its JSON result or why it failed."""
    wait_quiet(settings, f"Mayan EDMS, {storage} storage")
    command = [sys.executable, str(PEERS / "bench_mayan.py"), "--storage", storage, "--readers", "admin",
               "--threads", str(CLIENTS), "--duration", str(settings.duration),
               "--rounds", str(settings.rounds), "--upload-rounds", str(settings.upload_rounds)]
    (PEER_DIR / "results").mkdir(parents=True, exist_ok=True)
    log = PEER_DIR / "results" / f"peer_bench_mayan_{storage}.log"
    code, stdout, tail = run_logged(command, 900, log)
    if code == 0:
        try:
            outcome.mayan[storage] = json.loads(stdout)
            return
        except json.JSONDecodeError as error:
            tail.append(f"its output is not the JSON result: {error}")
    outcome.failures[f"Mayan EDMS, {storage} storage"] = (f"bench_mayan.py --storage {storage} "
                                 f"{'timed out' if code == -1 else f'exited with code {code}'}; last lines:\n"
                                 + "\n".join(tail[-15:]))


# -- vault: the same client against the product --------------------------------------------------------


@dataclass
class ShortBodies:
    """Views answered 200 whose body was not the file's every byte (a connection cut mid-body, a stream
    that stopped): the shared client counts only failed operations, this says how many of those were
    these, across the load's threads."""

    count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self) -> None:
        with self.lock:
            self.count += 1


def whole(status: int, count: int, size: int, short: ShortBodies | None) -> bool:
    """A view that delivered: 200, and as many bytes as the file holds."""
    if status == 200 and count != size and short is not None:
        short.add()
    return status == 200 and count == size


def content_op(token: str, document_id: int, size: int, digest_box: list[str] | None = None,
               short: ShortBodies | None = None) -> lc.Op:
    """A view in one request: ``POST /api/v1/documents/{id}/content``, the file's `size` bytes in the answer."""
    path = f"/api/v1/documents/{document_id}/content"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    body = vb.CONTENT_BODY.encode()

    def op(conn: lc.Conn) -> tuple[bool, int]:
        digest = hashlib.sha256() if digest_box is not None else None
        status, _, count = conn.request("POST", path, body, headers, keep_body=False, digest=digest)
        if digest_box is not None and digest is not None:
            digest_box.append(digest.hexdigest())
        return whole(status, count, size, short), count
    return op


def two_step_op(token: str, document_id: int, size: int, short: ShortBodies | None = None) -> lc.Op:
    """The browsers' flow: ``POST …/views`` (201 with a content URL), then ``GET`` that URL: `size` bytes."""
    headers = {"Authorization": f"Bearer {token}"}
    post_headers = {**headers, "Content-Type": "application/json"}
    body = vb.VIEW_BODY.encode()

    def op(conn: lc.Conn) -> tuple[bool, int]:
        status, answer, _ = conn.request("POST", f"/api/v1/documents/{document_id}/views", body, post_headers)
        if status != 201 or answer is None:
            return False, 0
        path = urlsplit(json.loads(answer)["content_url"]).path
        status, _, count = conn.request("GET", path, headers=headers, keep_body=False)
        return whole(status, count, size, short), count
    return op


def check_load(flow: str, result: dict[str, Any], short: ShortBodies) -> None:
    """Raise unless every view of the load was whole (see the module's docstring): the failed views
    counted, the answers by status, the short bodies and the client's first errors, in the message.

    Raises:
        RuntimeError: some view under load failed; vault's side of the run then failed.
    """
    failed, errors = result["ops_failed"], result.get("exceptions") or []
    if not failed and not errors:
        return
    statuses = ", ".join(f"{status}: {count}" for status, count in result["status_counts"].items())
    raise RuntimeError(
        f"{failed} of {failed + result['ops_ok']} views under load ({flow.replace('_', '-')} flow) were not "
        f"whole: answers by status {{{statuses}}}, {short.count} of them 200 with a short body"
        + (f"; client errors: {'; '.join(errors[:3])}" if errors else ""))


def uploader(env: dict[str, str]) -> tuple[str, int]:
    """A token for the seeded compiler and a customer of their own to upload to (view_bench seeds neither)."""
    rt = Runtime.build(load_settings(environ=env))
    ctx = AccessContext.cli()
    try:
        with rt.db.session() as session:
            compiler = accounts.get_user(session, "compiler")
            agreement.accept(rt, session, compiler, ctx)
            token = accounts.create_token(rt, session, compiler, name="peer-bench-upload").secret
            customer = customers.create_customer(rt, session, compiler, name="Peer bench uploads",
                                                 segment="ordinary", ctx=ctx)
            return token, customer.id
    finally:
        rt.close()


def gunicorn_master(port: int) -> int:
    """The pid of the gunicorn master this process started on `port` (its tree is what RSS covers)."""
    for pid in lc.children_map().get(os.getpid(), []):
        with contextlib.suppress(OSError):
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if "gunicorn" in command and f"127.0.0.1:{port}" in command:
                return pid
    raise RuntimeError(f"no gunicorn master of ours listens on port {port}")


def under_load(port: int, make_op: Callable[[int], lc.Op], roots: dict[str, int], duration: float) -> dict[str, Any]:
    """`CLIENTS` clients for `duration` s with the shared client, sampling the servers' RSS and CPU."""
    lc.PORT[0] = port
    cpu_before = {name: lc.cpu_s(lc.tree(pid)) for name, pid in roots.items()}
    with lc.Sampler(roots) as sampler:
        result = lc.throughput(make_op, CLIENTS, duration)
        result["loadavg_end_of_load"] = lc.loadavg()
    cpu_after = {name: lc.cpu_s(lc.tree(pid)) for name, pid in roots.items()}
    result["rss_under_load"] = sampler.summary()
    result["server_cpu_ms_per_op"] = {name: round(1e3 * (cpu_after[name] - cpu_before[name])
                                                  / max(1, result["ops_ok"]), 2) for name in roots}
    return result


@contextlib.contextmanager
def vault_services() -> Iterator[tuple[Path, PostgresCluster, SeaweedServer]]:
    """A work folder, SeaweedFS and PostgreSQL with an empty database, as view_bench runs them."""
    with tempfile.TemporaryDirectory(prefix="vault-peer-bench-") as temp, \
            SeaweedServer(bucket="vault-bench") as seaweed, PostgresCluster() as postgres:
        postgres.create_database("bench")
        yield Path(temp), postgres, seaweed


def measure_vault(settings: Settings, outcome: Outcome) -> None:
    """vault's side: seed as view_bench does, serve it as view_bench does, measure with the shared client."""
    wait_quiet(settings, "vault")
    result: dict[str, Any] = {"server": f"gunicorn gthread {settings.workers} workers x {settings.threads} threads",
                              "loadavg_start": lc.loadavg()}
    upload_bytes = b"%PDF-1.7\n" + os.urandom(MIB - 9)  # the type is judged by content: it must sniff as a PDF
    with vault_services() as (work, postgres, seaweed):
        env = vb.product_settings(work, postgres.url("bench"), seaweed)
        print("vault: seeding through the product's upload service ...", file=sys.stderr, flush=True)
        # Only the 1 MiB file is read one at a time here: view_bench's 4 KiB and 64 MiB ones would be seeded
        # (the latter encrypted and stored) for nothing.
        by_size, spread, token, tokens, _stamped = vb.seed(env, CLIENTS, with_stamped=False, sizes=(MIB,))
        upload_token, customer_id = uploader(env)
        pg_pid = int((postgres.data_dir / "postmaster.pid").read_text().split()[0])
        weed_pid = seaweed._process.pid if seaweed._process is not None else os.getpid()
        with vb.gunicorn("vault:create_app()", env, settings.workers, settings.threads, "/healthz") as port:
            roots = {"app": gunicorn_master(port), "postgres": pg_pid, "seaweedfs": weed_pid}
            lc.PORT[0] = port
            for i in range(CLIENTS):  # every client's operations once in each flow: warm workers, warm caches
                conn = lc.Conn(port)
                for make in (content_op, two_step_op):
                    if not make(tokens[i], spread[i].document_id, spread[i].size)(conn)[0]:
                        raise RuntimeError(f"vault: warm-up {make.__name__} failed for client {i}")
                conn.close()
            time.sleep(2)
            result["rss_idle"] = lc.mem_snapshot(roots)
            for flow, make in (("one_request", content_op), ("two_step", two_step_op)):
                wait_quiet(settings, f"vault, {CLIENTS} clients, {flow.replace('_', '-')} flow")
                result[f"loadavg_before_{flow}"] = lc.loadavg()
                short = ShortBodies()
                result[f"throughput_{flow}"] = under_load(
                    port, lambda i, make=make, short=short: make(tokens[i], spread[i].document_id, spread[i].size,
                                                                  short=short),
                    roots, settings.duration)
                check_load(flow, result[f"throughput_{flow}"], short)
                print(f"vault: {flow} {result[f'throughput_{flow}']['ops_per_s']} views/s", file=sys.stderr,
                      flush=True)
            conn = lc.Conn(port)
            document = by_size[MIB]
            box: list[str] = []
            if not content_op(token, document.document_id, document.size, box)(conn)[0]:
                raise RuntimeError("vault: the 1 MiB view failed")
            if box[0] != document.sha256:
                raise RuntimeError("vault: the 1 MiB view delivered other bytes than were uploaded")
            result["latency_view_1MiB"] = lc.latency(content_op(token, document.document_id, document.size), conn,
                                                     settings.rounds, 2)
            result["latency_view_1MiB"]["sha256_ok"] = True
            result["latency_two_step_1MiB"] = lc.latency(two_step_op(token, document.document_id, document.size),
                                                         conn, settings.rounds, 2)
            body, content_type = lc.multipart({"title": "Peer bench upload", "grade": "1"}, "file", "upload.pdf",
                                              upload_bytes, "application/pdf")
            upload_headers = {"Authorization": f"Bearer {upload_token}", "Content-Type": content_type}

            def upload_op(c: lc.Conn) -> tuple[bool, int]:
                status, answer, _ = c.request("POST", f"/api/v1/customers/{customer_id}/documents", body,
                                              upload_headers)
                if status != 201:
                    print("vault: upload answered", status, (answer or b"")[:300], file=sys.stderr, flush=True)
                return status == 201, 0
            result["latency_upload_1MiB"] = lc.latency(upload_op, conn, settings.upload_rounds, 1)
            conn.close()
    result["loadavg_end"] = lc.loadavg()
    outcome.vault = result


# -- report --------------------------------------------------------------------------------------------


def figures(result: dict[str, Any], product: str) -> dict[str, float | None]:
    """The compared figures of one column, from vault's result or bench_mayan.py's JSON."""
    load = result["throughput_one_request"] if product == "vault" else result["throughput_4KiB"]
    latency = result["latency_view_1MiB"] if product == "vault" else result["latency_download_1MiB"]
    return {
        "rate": load["ops_per_s"],
        "latency": latency["p50_ms"],
        "upload": result["latency_upload_1MiB"]["p50_ms"],
        "rss": load["rss_under_load"]["app"]["rss_max_mib"],
        "non_2xx": load["non_2xx"],
    }


ROWS = (
    ("rate", f"views/s, {CLIENTS} clients, 4 KiB"),
    ("latency", "1 MiB single-client view p50, ms"),
    ("upload", "1 MiB upload p50, ms"),
    ("rss", "server RSS under load, max MiB"),
    ("non_2xx", "non-2xx answers under load"),
)


def cell(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"


def report(outcome: Outcome, settings: Settings, started: float) -> bool:
    """Print the one table; returns whether both goals are met."""
    columns = {storage: figures(outcome.mayan[storage], "mayan") if storage in outcome.mayan else None
               for storage in STORAGES}
    ours = figures(outcome.vault, "vault") if outcome.vault else None
    print()
    print(f"vault beside Mayan EDMS 4.12.2 (same machine, same client, one run, steps one after the other; "
          f"{'quick run, ' if settings.quick else ''}{settings.duration:.0f} s under load; {machine()})")
    header = (f"{'measure':<36} {'Mayan plain':>12} {'Mayan enc':>12} {'vault':>12} | {'vault/plain':>11} "
              f"{'goal':>7} {'met':>7} | {'vault/enc':>9} {'goal':>7} {'met':>7}")
    print(header)
    print("-" * len(header))
    all_met = True
    for key, title in ROWS:
        values = [columns[s][key] if columns[s] else None for s in STORAGES]
        mine = ours[key] if ours else None
        line = f"{title:<36} {cell(values[0]):>12} {cell(values[1]):>12} {cell(mine):>12} |"
        for value, goal, width in ((values[0], GOAL_PLAIN, 11), (values[1], GOAL_ENC, 9)):
            ratio = mine / value if mine is not None and value else None
            text = f"{ratio:.2f}" if ratio is not None and key != "non_2xx" else ""
            if key == "rate":
                met = ratio is not None and ratio >= goal
                all_met &= met
                verdict = ("met" if met else "NOT met") if ratio is not None else "n/a"
                line += f" {text or '-':>{width}} {'>= ' + format(goal, 'g') + 'x':>7} {verdict:>7} |"
            else:
                line += f" {text:>{width}} {'':>7} {'':>7} |"
        print(line.rstrip(" |"))
    if ours is not None:
        two = outcome.vault["throughput_two_step"]
        print(f"{'  vault two-step flow (POST + GET)':<36} {'':>12} {'':>12} {cell(two['ops_per_s']):>12} |"
              f"   (views/s; 1 MiB p50 {outcome.vault['latency_two_step_1MiB']['p50_ms']:.1f} ms)")
    print()
    loads = [f"{STORAGE_LABEL[s]} {outcome.mayan[s]['loadavg_before_load'][0]}" for s in STORAGES
             if s in outcome.mayan]
    if outcome.vault:
        loads.append(f"vault {outcome.vault['loadavg_before_one_request'][0]}")
    print("Load average (1 min) before each measured load: " + ", ".join(loads))
    print("Mayan: GET /api/v4/documents/{id}/files/{file_id}/download/ as admin (a superuser: no ACL checks);")
    print("       upload POST /api/v4/documents/upload/; gunicorn gevent 3 workers (its production flags), its own")
    print("       PostgreSQL; encrypted = EncryptedPassthroughStorage.")
    print("vault: POST /api/v1/documents/{id}/content (policy, quota, view, audit, commit, then the bytes); upload")
    print(f"       POST /api/v1/customers/{{id}}/documents (encrypt + store); gunicorn gthread "
          f"{settings.workers} workers x {settings.threads} threads, PostgreSQL + SeaweedFS.")
    print("Server RSS: the app server's process tree (master + workers), databases and object store not included.")
    for what, why in outcome.failures.items():
        print()
        print(f"NOT MEASURED — {what}:")
        for line in why.splitlines():
            print(f"  {line}")
    print()
    print(f"Goals {'all met' if all_met else 'NOT all met'}. Whole run {(time.monotonic() - started) / 60:.1f} min.")
    return all_met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 s under load and fewer rounds")
    parser.add_argument("--workers", type=int, default=2, help="vault's gunicorn workers (view_bench's default)")
    parser.add_argument("--threads", type=int, default=4,
                        help="threads per vault gunicorn worker (view_bench's default)")
    parser.add_argument("--quiet-below", type=float, default=1.0,
                        help="start each step once the 1-minute load average is below this")
    parser.add_argument("--quiet-wait", type=float, default=None,
                        help="but wait at most this many seconds (default 180, quick 20)")
    parser.add_argument("--skip-mayan", action="store_true", help="vault's side only")
    args = parser.parse_args(argv)
    settings = Settings(
        quick=args.quick, duration=5.0 if args.quick else 20.0, rounds=5 if args.quick else 15,
        upload_rounds=3 if args.quick else 9, workers=args.workers, threads=args.threads,
        quiet_below=args.quiet_below,
        quiet_wait=args.quiet_wait if args.quiet_wait is not None else (20.0 if args.quick else 180.0),
        skip_mayan=args.skip_mayan,
    )
    started = time.monotonic()
    print(f"peer bench: {machine()}; peer state in {PEER_DIR}", file=sys.stderr, flush=True)
    outcome = Outcome()
    if settings.skip_mayan:
        outcome.failures["Mayan EDMS"] = "skipped (--skip-mayan)"
    elif set_up_mayan(settings, outcome):
        for storage in STORAGES:
            measure_mayan(storage, settings, outcome)
    try:
        measure_vault(settings, outcome)
    except Exception as error:  # the peer's figures are still worth printing
        outcome.vault = {}
        outcome.failures["vault"] = f"{type(error).__name__}: {error}"
        traceback.print_exc()  # where it broke: the table has room for what, not where
    report(outcome, settings, started)
    results = PEER_DIR / "results"
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"peer_bench_{time.strftime('%Y%m%d_%H%M%S')}.json"
    path.write_text(json.dumps({"mayan": outcome.mayan, "vault": outcome.vault, "failures": outcome.failures},
                               indent=1, default=str))
    print(f"results: {path}", file=sys.stderr)
    if "vault" in outcome.failures:
        # A run without vault's figures measured nothing of vault: a script or a make target that
        # runs it must not take it for a measurement. A peer that could not be set up is the peer's
        # affair (this machine's packages), and vault's column still stands.
        print("peer_bench: vault's side failed (see NOT MEASURED above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
