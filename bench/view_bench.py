"""What a view costs, next to the bare GET + decrypt it is built on, measured in the same run.

Run ``python bench/view_bench.py`` (``--quick`` for a short run; ``--database postgresql`` or ``sqlite``
for one of the two, both by default; ``--smoke``, two sizes, two rounds and half-second loads, is how the
test suite checks that the bench still runs: its figures mean nothing). It starts a private SeaweedFS (and
PostgreSQL), uploads files of 4 KiB, 1 MiB and 64 MiB through the product's upload service, serves the product and
``bench/baseline_app.py`` with gunicorn (same worker class, worker and thread counts) on loopback ports,
then prints, per database:

* latency, interleaved round by round so that drift hits every path alike, of
  (A) an in-process ``minio`` GET + our streaming decrypt,
  (B) the same GET + decrypt served by the bare baseline WSGI app over loopback HTTP,
  (C) a view in one request through the product with a bearer token: ``POST`` the document's
      ``/content`` (policy, quota, view, audit, commit) and receive every byte in the same response,
  (T) the two-step flow browsers use, beside it: ``POST`` a view, then ``GET`` its content URL;
  with p50, p99 and the ratios C/B, C/A and T/B (goals on the p50 ratio C/B: at most 2.0 at 4 KiB,
  1.25 at 1 MiB, 1.05 at 64 MiB);
* throughput with 16 concurrent clients (separate processes, one document each): views per second
  through the product (one request, and two steps) beside the baseline's requests per second (goal for
  the one-request flow: at least 0.35 of the baseline);
* memory: the largest resident set of one product worker, sampled every 20 ms, under the 16-client load
  and during one-request views of each size, up to 1 GiB (not with ``--quick``); goals: at most
  150 MiB per worker under load, and flat in file size (a 1 GiB view at most 16 MiB above a 4 KiB one);
* stamped copies, one request at a time and interleaved as above: a one-request view of a 1 MiB PDF
  (four photo-like pages) at a grade whose originals stay in, so what leaves is the stamped copy, beside
  the baseline's GET + decrypt of the original (goal: at most 3x at p50); and a stamped viewer page
  (page 1 of a three-page text PDF, by its page URL) beside the baseline's GET + decrypt of the same
  stored page image (goal: at most 2x at p50).

Grade-1 files with a very large view quota are used (grade 2, without loans, for the stamped copies), and
the policy file lets grade 1's original bytes leave (``download_original``), so quotas and loans never
stop the bench and the bytes compared are the same; every view is still decided, counted and audited as
in production. Every hour of every day is a
working hour in the bench's policy, so the time of day a run starts does not change what a view does (at
night the outside-hours rule would add to an alert at every view).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import io
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# Run as a script from a checkout: make the project's packages importable without installing them.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minio import Minio

from bench._source import photo_pdf
from crypto import Keyring, associated_data, decrypt_stream
from tests.fixtures.postgres import PostgresCluster
from tests.fixtures.seaweed import SeaweedServer
from tests.rendering.inputs import pdf_bytes
from vault.config.settings import load_settings
from vault.core.context import AccessContext
from vault.db import schema
from vault.db.engine import Database
from vault.models import Customer, DocumentVersion, Role, User
from vault.runtime import Runtime
from vault.services import accounts, agreement, customers, documents
from vault.services.renditions import page_context, read_page

ROOT = Path(__file__).resolve().parent.parent
KIB = 1024
MIB = 1024 * KIB
SIZES = (4 * KIB, 1 * MIB, 64 * MIB)
GOALS = {4 * KIB: 2.0, 1 * MIB: 1.25, 64 * MIB: 1.05}
STAMPED_GOALS = {"pdf": 3.0, "page": 2.0}  # stamped copy / bare GET + decrypt, p50
THROUGHPUT_GOAL = 0.35
RSS_GOAL_MIB = 150.0  # per worker, under load
FLAT_MIB = 16.0  # "flat in file size": a 1 GiB view may cost a worker at most this much more than a 4 KiB one
HUGE = 1024 * MIB
ROUNDS = {4 * KIB: 300, 1 * MIB: 60, 64 * MIB: 10}
QUICK_ROUNDS = {4 * KIB: 60, 1 * MIB: 15, 64 * MIB: 3}
# --smoke: that the bench still runs (the test suite's check), every step taken once or twice; its figures
# mean nothing. The 64 MiB file takes no step the 1 MiB one does not, so it is left out.
SMOKE_SIZES = (4 * KIB, 1 * MIB)
SMOKE_ROUNDS = {4 * KIB: 2, 1 * MIB: 2}
CLIENTS = 16
THROUGHPUT_SIZE = 4 * KIB
HUGE_QUOTA = 10_000_000
VIEW_BODY = json.dumps({"reason": "Benchmark reading of the file", "place": "Bench", "download": True})
CONTENT_BODY = json.dumps({"reason": "Benchmark reading of the file", "place": "Bench"})
READ_BUFFER = 1 * MIB


def label(size: int) -> str:
    return f"{size // MIB} MiB" if size >= MIB else f"{size // KIB} KiB"


# -- files ---------------------------------------------------------------------------------------------


class PdfSource(io.RawIOBase):
    """``size`` bytes that sniff as a PDF, produced on demand: the file never exists whole in memory."""

    def __init__(self, size: int, seed: int) -> None:
        super().__init__()
        header = b"%PDF-1.7\n"
        self._header = header
        self._block = random.Random(seed).randbytes(MIB + 13)
        self._remaining = size
        self._position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        count = min(len(view), self._remaining)
        filled = 0
        while filled < count:
            if self._position < len(self._header):
                part = min(count - filled, len(self._header) - self._position)
                view[filled:filled + part] = self._header[self._position:self._position + part]
            else:
                start = (self._position - len(self._header)) % len(self._block)
                part = min(count - filled, len(self._block) - start)
                view[filled:filled + part] = self._block[start:start + part]
            filled += part
            self._position += part
        self._remaining -= count
        return count


@dataclass(frozen=True)
class Stored:
    """One uploaded file: its document id and what the baseline needs to read it without the product."""

    name: str
    document_id: int
    size: int
    sha256: str
    object_name: str
    key: bytes
    ad: bytes

    def manifest(self) -> dict[str, Any]:
        return {"object": self.object_name, "key": self.key.hex(), "ad": self.ad.hex(), "size": self.size}


# -- the product's set-up ------------------------------------------------------------------------------


def product_settings(work: Path, database_url: str, seaweed: SeaweedServer) -> dict[str, str]:
    """The `VAULT_*` environment of the product, also used to build the seeding runtime."""
    config = work / "vault.toml"
    # Grade 1 needs no loan; a quota this large never runs out during the bench. Every hour is a working
    # hour, so that a run at night measures the same work as one by day (the outside-hours rule would add
    # to an alert at every view of a night run, and only then).
    every_day = '["mon", "tue", "wed", "thu", "fri", "sat", "sun"]'
    # Grade 2 without loans and with its originals kept in: what leaves is the stamped copy.
    config.write_text(f"[grades.1]\nviews = {HUGE_QUOTA}\ndownload_original = true\n\n"
                      f"[grades.2]\nviews = {HUGE_QUOTA}\nloan_required = false\napprovals = 0\n"
                      f"download = true\ndownload_original = false\n\n"
                      f"[working_hours]\ndays = {every_day}\nstart = 0\nend = 24\n")
    return {
        "VAULT_DATA_DIR": str(work / "data"),
        "VAULT_DATABASE_URL": database_url,
        "VAULT_KEYRING": str(work / "keyring.json"),
        "VAULT_SECRET_KEY": "bench-secret-key-not-for-production",
        "VAULT_CONFIG": str(config),
        "VAULT_STORAGE": "s3",
        "VAULT_S3_ENDPOINT": seaweed.endpoint,
        "VAULT_S3_ACCESS_KEY": seaweed.access_key,
        "VAULT_S3_SECRET_KEY": seaweed.secret_key,
        "VAULT_S3_BUCKET": seaweed.bucket,
        "VAULT_S3_SECURE": "false",
        "VAULT_LOG_LEVEL": "WARNING",
        "VAULT_MAX_UPLOAD_MB": "2048",  # the memory check views a 1 GiB file
    }


def seed(env: dict[str, str], clients: int, extra_sizes: tuple[int, ...] = (), *, with_stamped: bool = True,
         sizes: tuple[int, ...] = SIZES) -> tuple[dict[int, Stored], list[Stored], str, list[str], dict[str, Stored]]:
    """Users, one customer, one document per size, one small document per concurrent client, and the two
    grade-2 PDFs of the stamped copies.

    Returns the latency documents by size, the throughput documents, the latency reader's token, one
    token per concurrent client, and the stamped copies' files ("pdf": the original; "page": the stored
    image of page 1 of the text PDF, its ``document_id`` that PDF's; none without ``with_stamped``).
    """
    Keyring.create(env["VAULT_KEYRING"])
    settings = load_settings(environ=env)
    db = Database(settings.database)
    schema.upgrade(db)
    db.dispose()
    rt = Runtime.build(settings)
    rt.store.ensure_ready()
    ctx = AccessContext.cli()
    try:
        with rt.db.session() as session:
            compiler = accounts.create_user(rt, session, username="compiler", password="bench password 1",
                                            roles=(Role.COMPILER,), ctx=ctx)
            readers = [accounts.create_user(rt, session, username=f"reader{n:02d}", password="bench password 1",
                                            roles=(Role.BORROWER,), ctx=ctx) for n in range(clients + 1)]
            tokens = []
            for reader in readers:
                agreement.accept(rt, session, reader, ctx)
                tokens.append(accounts.create_token(rt, session, reader, name="bench").secret)
            # Need to know: each reader works (owns) the customer whose files they read.
            owned = [customers.create_customer(rt, session, compiler, name=f"Bench customer {n:02d}",
                                               segment="ordinary", owner=reader, ctx=ctx)
                     for n, reader in enumerate(readers)]
        by_size = {size: upload(rt, compiler, owned[0], f"latency-{size}", size) for size in (*sizes, *extra_sizes)}
        spread = [upload(rt, compiler, owned[n + 1], f"spread-{n:02d}", THROUGHPUT_SIZE) for n in range(clients)]
        stamped = {"pdf": upload_pdf(rt, compiler, owned[0], "stamped-pdf", photo_pdf()),
                   "page": upload_pdf(rt, compiler, owned[0], "stamped-page", pdf_bytes(3), page=1)
                   } if with_stamped else {}
    finally:
        rt.close()
    return by_size, spread, tokens[0], tokens[1:], stamped


def attached(session: Any, compiler: Any, customer: Any) -> tuple[User, Customer]:
    """The compiler and customer as rows of `session`: the upload's policy asks whether the compiler works the
    customer through the customer's own session, which a row left over from the seeding session has not."""
    user, row = session.get(User, compiler.id), session.get(Customer, customer.id)
    assert user is not None and row is not None
    return user, row


def upload(rt: Runtime, compiler: Any, customer: Any, name: str, size: int) -> Stored:
    with rt.db.session() as session:
        compiler, customer = attached(session, compiler, customer)
        document = documents.upload_document(
            rt, session, compiler, customer, title=name, grade=1, stream=PdfSource(size, seed=size + len(name)),
            filename=f"{name}.pdf", content_type="application/pdf", ctx=AccessContext.cli(),
        )
        version = session.get(DocumentVersion, document.versions[0].id)
        assert version is not None
        context = associated_data(document.id, version.number)
        key = rt.keyring.unwrap(version.key_id, version.wrapped_dek, context)
        return Stored(name=name, document_id=document.id, size=version.size, sha256=version.sha256,
                      object_name=version.object_key, key=key, ad=context)


def upload_pdf(rt: Runtime, compiler: Any, customer: Any, name: str, data: bytes, page: int | None = None) -> Stored:
    """A real PDF at grade 2 (the stamped copy leaves, not the original), drawn into viewer pages at
    upload; what the baseline needs to read the original, or with ``page`` that stored page image."""
    with rt.db.session() as session:
        compiler, customer = attached(session, compiler, customer)
        document = documents.upload_document(
            rt, session, compiler, customer, title=name, grade=2, stream=io.BytesIO(data), filename=f"{name}.pdf",
            content_type="application/pdf", ctx=AccessContext.cli(),
        )
        version = session.get(DocumentVersion, document.versions[0].id)
        assert version is not None
        context = associated_data(document.id, version.number)
        key = rt.keyring.unwrap(version.key_id, version.wrapped_dek, context)
        if page is None:
            return Stored(name=name, document_id=document.id, size=version.size, sha256=version.sha256,
                          object_name=version.object_key, key=key, ad=context)
        stored = next(p for p in version.pages if p.number == page)
        image = read_page(rt, key, document.id, version.number, stored.object_key, page)
        return Stored(name=name, document_id=document.id, size=len(image), sha256=hashlib.sha256(image).hexdigest(),
                      object_name=stored.object_key, key=key, ad=page_context(document.id, version.number, page))


# -- servers -------------------------------------------------------------------------------------------


SERVERS: dict[int, int] = {}  # port -> gunicorn master pid, for the memory sampler


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def gunicorn(app: str, env: dict[str, str], workers: int, threads: int, ready_path: str,
             chdir: Path | None = None) -> Iterator[int]:
    """Serve `app` on a free loopback port until the block ends; yields the port."""
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread",
        "--workers", str(workers), "--threads", str(threads), "--keep-alive", "120", "--timeout", "300",
        "--log-level", "warning",
    ]
    if chdir is not None:
        command += ["--chdir", str(chdir)]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BASELINE_"))}
    process = subprocess.Popen([*command, app], cwd=ROOT, env={**clean, **env}, start_new_session=True)
    SERVERS[port] = process.pid
    try:
        wait_ready(port, ready_path, process)
        yield port
    finally:
        # Quick shutdown (SIGQUIT): nothing is in flight by now, and a graceful one waits out each worker's
        # poll of its kept-alive connections, seconds per server for nothing.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGQUIT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_ready(port: int, path: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with code {process.returncode} while starting")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
                if answer.status == 200:
                    answer.read()
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn on port {port} did not answer {path} within 60 s")


# -- the three ways of reading a file --------------------------------------------------------------------


def drain(response: http.client.HTTPResponse, buffer: memoryview, digest: Any = None) -> int:
    total = 0
    while True:
        count = response.readinto(buffer)
        if not count:
            return total
        if digest is not None:
            digest.update(buffer[:count])
        total += count


def open_view(connection: http.client.HTTPConnection, headers: dict[str, str], document_id: int,
              body: str) -> dict[str, Any]:
    """POST a view of the document through the API; its JSON answer."""
    connection.request("POST", f"/api/v1/documents/{document_id}/views", body,
                       {**headers, "Content-Type": "application/json"})
    answer = connection.getresponse()
    data = answer.read()
    if answer.status != 201:
        raise RuntimeError(f"opening a view answered {answer.status}: {data[:300]!r}")
    return json.loads(data)


class ProductClient:
    """(T): a view in two steps through the product's API over one keep-alive connection, with a bearer token."""

    def __init__(self, port: int, token: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.headers = {"Authorization": f"Bearer {token}"}
        self.buffer = memoryview(bytearray(READ_BUFFER))
        self.open_times: list[float] = []  # the POST part of each read, to split C in the report

    def read(self, document: Stored, digest: Any = None) -> int:
        start = time.perf_counter()
        path = urlsplit(open_view(self.connection, self.headers, document.document_id, VIEW_BODY)["content_url"]).path
        self.open_times.append(time.perf_counter() - start)
        self.connection.request("GET", path, headers=self.headers)
        answer = self.connection.getresponse()
        if answer.status != 200:
            raise RuntimeError(f"the content URL answered {answer.status}: {answer.read()[:300]!r}")
        return drain(answer, self.buffer, digest)


class OneRequestClient:
    """(C): a view in one request through the product's API, over one keep-alive connection."""

    def __init__(self, port: int, token: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.buffer = memoryview(bytearray(READ_BUFFER))

    def read(self, document: Stored, digest: Any = None) -> int:
        self.connection.request("POST", f"/api/v1/documents/{document.document_id}/content", CONTENT_BODY,
                                self.headers)
        answer = self.connection.getresponse()
        if answer.status != 200:
            raise RuntimeError(f"the one-request view answered {answer.status}: {answer.read()[:300]!r}")
        return drain(answer, self.buffer, digest)


class PageClient:
    """(C page): a stamped viewer page, fetched again and again by its page URL from one view opened
    through the API, over one keep-alive connection."""

    def __init__(self, port: int, token: str, document_id: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.headers = {"Authorization": f"Bearer {token}"}
        self.buffer = memoryview(bytearray(READ_BUFFER))
        opened = open_view(self.connection, self.headers, document_id, CONTENT_BODY)
        self.path = urlsplit(opened["page_url"].replace("{n}", "1")).path

    def read(self, document: Stored, digest: Any = None) -> int:
        self.connection.request("GET", self.path, headers=self.headers)
        answer = self.connection.getresponse()
        if answer.status != 200 or answer.getheader("Content-Type") != "image/jpeg":
            raise RuntimeError(f"the stamped page answered {answer.status}: {answer.read()[:300]!r}")
        return drain(answer, self.buffer, digest)


class BaselineClient:
    """(B): the bare GET + decrypt app over one keep-alive connection."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.buffer = memoryview(bytearray(READ_BUFFER))

    def read(self, document: Stored, digest: Any = None) -> int:
        self.connection.request("GET", f"/objects/{document.name}")
        answer = self.connection.getresponse()
        if answer.status != 200:
            raise RuntimeError(f"the baseline answered {answer.status}")
        return drain(answer, self.buffer, digest)


class InProcess:
    """(A): ``minio`` GET + our decrypt in this process: the floor under both servers."""

    def __init__(self, seaweed: SeaweedServer) -> None:
        self.client = Minio(endpoint=seaweed.endpoint, access_key=seaweed.access_key,
                            secret_key=seaweed.secret_key, secure=False)
        self.bucket = seaweed.bucket

    def read(self, document: Stored, digest: Any = None) -> int:
        response = self.client.get_object(self.bucket, document.object_name)
        total = 0
        try:
            for chunk in decrypt_stream(document.key, document.ad, response):
                if digest is not None:
                    digest.update(chunk)
                total += len(chunk)
        finally:
            response.close()
            response.release_conn()
        return total


# -- measurements --------------------------------------------------------------------------------------


# -- memory ----------------------------------------------------------------------------------------------


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def workers_of(master: int) -> list[int]:
    with open(f"/proc/{master}/task/{master}/children", encoding="ascii") as children:
        return [int(pid) for pid in children.read().split()]


class RssSampler:
    """The largest resident set of any one worker of a gunicorn, sampled every 20 ms while a block runs."""

    def __init__(self, master: int) -> None:
        self.master = master
        self.peaks: dict[str, float] = {}

    def now(self) -> float:
        return max((_rss_mib(pid) for pid in workers_of(self.master)), default=0.0)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        stop = threading.Event()
        peak = [self.now()]

        def sample() -> None:
            while not stop.wait(0.02):
                with contextlib.suppress(OSError, ValueError):
                    peak[0] = max(peak[0], self.now())

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            self.peaks[name] = max(peak[0], self.now())


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile: with few samples p99 is the slowest one, never an interpolation."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def check_bytes(readers: dict[str, Any], document: Stored) -> None:
    """Every path delivers exactly the uploaded file (so the bench measures correct transfers)."""
    for name, reader in readers.items():
        digest = hashlib.sha256()
        count = reader.read(document, digest)
        if count != document.size or digest.hexdigest() != document.sha256:
            raise RuntimeError(f"({name}) delivered {count} bytes that do not match the upload of {document.name}")


def latency(readers: dict[str, Any], documents: dict[int, Stored], rounds: dict[int, int],
            warmup: int) -> dict[int, dict[str, list[float]]]:
    results: dict[int, dict[str, list[float]]] = {}
    shuffler = random.Random(7)
    for size, document in documents.items():
        check_bytes(readers, document)
        for _ in range(warmup if size < 64 * MIB else 1):
            for reader in readers.values():
                reader.read(document)
        times: dict[str, list[float]] = {name: [] for name in readers}
        readers["T"].open_times.clear()
        order = list(readers)
        for _ in range(rounds[size]):
            shuffler.shuffle(order)  # interleaved, in a different order each round
            for name in order:
                start = time.perf_counter()
                count = readers[name].read(document)
                times[name].append(time.perf_counter() - start)
                if count != document.size:
                    raise RuntimeError(f"({name}) delivered {count} of {document.size} bytes")
        times["T open"] = list(readers["T"].open_times)
        results[size] = times
        print(f"  {label(size):>6}: {rounds[size]} rounds done", file=sys.stderr, flush=True)
    return results


def stamped_latency(readers: dict[str, Any], stamped: dict[str, Stored], rounds: int,
                    warmup: int) -> dict[str, list[float]]:
    """p50 material for the stamped copies: (C pdf) one-request views of the grade-2 PDF, which leave as
    stamped copies, against (B) the original's GET + decrypt; (C page) a stamped viewer page against (B)
    the same stored page image's GET + decrypt. Interleaved round by round, in a shuffled order."""
    pairs = {"C pdf": (readers["C"], stamped["pdf"]), "B pdf": (readers["B"], stamped["pdf"]),
             "C page": (readers["P"], stamped["page"]), "B page": (readers["B"], stamped["page"])}
    for name, (reader, document) in pairs.items():
        for _ in range(warmup):
            count = reader.read(document)
        if name.startswith("B") and count != document.size:
            raise RuntimeError(f"({name}) delivered {count} of {document.size} bytes")
        if name.startswith("C") and count < 1000:
            raise RuntimeError(f"({name}) delivered {count} bytes: not a stamped copy")
    times: dict[str, list[float]] = {name: [] for name in pairs}
    order = list(pairs)
    shuffler = random.Random(11)
    for _ in range(rounds):
        shuffler.shuffle(order)
        for name in order:
            reader, document = pairs[name]
            start = time.perf_counter()
            reader.read(document)
            times[name].append(time.perf_counter() - start)
    print(f"  stamped copies: {rounds} rounds done", file=sys.stderr, flush=True)
    return times


def _client_loop(kind: str, port: int, token: str, document: Stored, start_at: float, duration: float) -> int:
    """One concurrent client (in its own process): complete reads between start_at and start_at + duration."""
    reader: Any = {"one": OneRequestClient, "two": ProductClient}[kind](port, token) if kind != "baseline" \
        else BaselineClient(port)
    reader.read(document)  # its connection is open and its worker warm before the clock starts
    time.sleep(max(0.0, start_at - time.time()))
    done = 0
    end = start_at + duration
    while time.time() < end:
        reader.read(document)
        done += 1
    return done


def throughput(kind: str, port: int, tokens: list[str], spread: list[Stored], duration: float,
               lead: float = 2.0) -> float:
    """Reads per second of one client process per document for `duration` s, all starting `lead` s from now
    (time for every process to start, connect and warm its worker before the clock)."""
    context = get_context("fork")
    with ProcessPoolExecutor(max_workers=len(spread), mp_context=context) as pool:
        start_at = time.time() + lead
        futures = [pool.submit(_client_loop, kind, port, token, document, start_at, duration)
                   for token, document in zip(tokens, spread, strict=True)]
        total = sum(future.result() for future in futures)
    return total / duration


# -- report --------------------------------------------------------------------------------------------


def report(title: str, results: dict[int, dict[str, list[float]]], rates: dict[str, float],
           memory: dict[str, float], stamped: dict[str, list[float]], args: argparse.Namespace) -> bool:
    print()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"View latency, ms ({title}; gunicorn gthread {args.workers} workers x {args.threads} threads for "
          f"both servers; {os.cpu_count()} CPUs, load average {load})")
    header = (f"{'size':>7} {'rounds':>6} | {'A p50':>8} {'B p50':>8} {'B p99':>8} | {'C p50':>8} {'C p99':>8} | "
              f"{'C/B p50':>7} {'C/A p50':>7} | {'goal C/B':>8} {'met':>4} | {'T p50':>8} {'T/B p50':>7}")
    print(header)
    print("-" * len(header))
    all_met = True
    for size, times in results.items():
        p50 = {name: percentile(values, 0.50) for name, values in times.items()}
        p99 = {name: percentile(values, 0.99) for name, values in times.items()}
        ratio = p50["C"] / p50["B"]
        met = ratio <= GOALS[size]
        all_met &= met
        print(f"{label(size):>7} {len(times['A']):>6} | {p50['A'] * 1e3:8.2f} {p50['B'] * 1e3:8.2f} "
              f"{p99['B'] * 1e3:8.2f} | {p50['C'] * 1e3:8.2f} {p99['C'] * 1e3:8.2f} | "
              f"{ratio:7.2f} {p50['C'] / p50['A']:7.2f} | {'<= ' + format(GOALS[size], '.2f'):>8} "
              f"{'yes' if met else 'NO':>4} | {p50['T'] * 1e3:8.2f} {p50['T'] / p50['B']:7.2f}")
    print()
    print("T split, p50 ms: opening the view (POST) / receiving the content (GET)")
    for size, times in results.items():
        opening = percentile(times["T open"], 0.50)
        print(f"{label(size):>7}: {opening * 1e3:8.2f} / {(percentile(times['T'], 0.50) - opening) * 1e3:8.2f}")
    print()
    share = rates["one"] / rates["baseline"]
    met = share >= THROUGHPUT_GOAL
    all_met &= met
    print(f"Throughput, {len(args.spread)} concurrent clients on distinct {label(THROUGHPUT_SIZE)} documents, "
          f"{args.duration:g} s each")
    print(f"  (B) baseline requests/s (GET+decrypt):     {rates['baseline']:8.1f}")
    print(f"  (C) views/s in one request:                {rates['one']:8.1f}   C/B {share:.2f}   "
          f"goal >= {THROUGHPUT_GOAL:.2f}: {'met' if met else 'NOT met'}")
    two = rates["two"]
    print(f"  (T) views/s in two steps (open + content): {two:8.1f}   T/B {two / rates['baseline']:.2f}")
    print()
    print(f"Server memory: the largest worker's resident set, MiB (gunicorn {args.workers} x {args.threads}, "
          "MALLOC_ARENA_MAX=2)")
    for name, value in memory.items():
        shown = f"one-request views of {name}" if name[0].isdigit() else name
        print(f"  {shown:<40} {value:8.1f}")
    loaded = max(value for name, value in memory.items() if name != "idle after the latency rounds"
                 and "no goal" not in name)
    met = loaded <= RSS_GOAL_MIB
    all_met &= met
    print(f"  goal <= {RSS_GOAL_MIB:.0f} MiB per worker under load: {'met' if met else 'NOT met'} ({loaded:.1f})")
    sized = [name for name in memory if name[0].isdigit()]
    growth = memory[sized[-1]] - memory[sized[0]]
    met = growth <= FLAT_MIB
    all_met &= met
    print(f"  flat from {sized[0]} to {sized[-1]} (at most {FLAT_MIB:.0f} MiB more): "
          f"{'met' if met else 'NOT met'} ({growth:+.1f} MiB)")
    print()
    print(f"Stamped copies, ms (one request at a time, {len(stamped['C pdf'])} interleaved rounds)")
    for kind, what, bare in (("pdf", "stamped download of the 1 MiB PDF (one-request view)",
                              "bare GET + decrypt of the original"),
                             ("page", "stamped viewer page (page 1 of a text PDF)",
                              "bare GET + decrypt of the stored page image")):
        mine, base = percentile(stamped[f"C {kind}"], 0.50), percentile(stamped[f"B {kind}"], 0.50)
        met = mine / base <= STAMPED_GOALS[kind]
        all_met &= met
        print(f"  {what:<55} p50 {mine * 1e3:8.2f}")
        print(f"  {bare:<55} p50 {base * 1e3:8.2f}   ratio {mine / base:5.1f}x   "
              f"goal <= {STAMPED_GOALS[kind]:.0f}x: {'met' if met else 'NOT met'}")
    print()
    print("A: in-process minio GET + decrypt; B: the same served by bench/baseline_app.py over loopback HTTP;")
    print("C: POST /api/v1/documents/{id}/content (policy, quota, view, audit, commit, then the bytes);")
    print("T: POST /api/v1/documents/{id}/views then GET its content URL (the browsers' two-step flow).")
    print(f"Goals {'all met' if all_met else 'NOT all met'}.")
    return all_met


def run(database: str, args: argparse.Namespace, rounds: dict[int, int], warmup: int) -> None:
    """One whole measurement against `database` ("postgresql" or "sqlite"); prints its table."""
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vault-view-bench-")))
        seaweed = stack.enter_context(SeaweedServer(bucket="vault-bench"))
        if database == "postgresql":
            postgres = stack.enter_context(PostgresCluster())
            postgres.create_database("bench")
            url = postgres.url("bench")
        else:
            url = f"sqlite:///{work / 'vault.db'}"
        env = product_settings(work, url, seaweed)
        print(f"{database}: seeding: uploading the files through the product ...", file=sys.stderr, flush=True)
        by_size, spread, token, tokens, stamped = seed(env, args.clients, () if args.quick or args.smoke else (HUGE,),
                                                       sizes=args.sizes)
        args.spread = spread
        manifest = work / "manifest.json"
        manifest.write_text(json.dumps({d.name: d.manifest() for d in [*by_size.values(), *spread,
                                                                      *stamped.values()]}))
        baseline_env = {
            "BASELINE_S3_ENDPOINT": seaweed.endpoint,
            "BASELINE_S3_ACCESS_KEY": seaweed.access_key,
            "BASELINE_S3_SECRET_KEY": seaweed.secret_key,
            "BASELINE_S3_BUCKET": seaweed.bucket,
            "BASELINE_MANIFEST": str(manifest),
        }
        first = by_size[args.sizes[0]].name
        # As the production command runs it (README, Deployment): two malloc arenas per process.
        product_env = {**env, "MALLOC_ARENA_MAX": "2"}
        with gunicorn("vault:create_app()", product_env, args.workers, args.threads, "/healthz") as product_port, \
                gunicorn("baseline_app:app", baseline_env, args.workers, args.threads, f"/objects/{first}",
                         chdir=ROOT / "bench") as baseline_port:
            readers: dict[str, Any] = {
                "A": InProcess(seaweed),
                "B": BaselineClient(baseline_port),
                "C": OneRequestClient(product_port, token),
                "T": ProductClient(product_port, token),
            }
            print(f"{database}: latency ...", file=sys.stderr, flush=True)
            results = latency(readers, {size: by_size[size] for size in args.sizes}, rounds, warmup)
            print(f"{database}: throughput ...", file=sys.stderr, flush=True)
            sampler = RssSampler(SERVERS[product_port])
            memory = {"idle after the latency rounds": sampler.now()}
            lead = 0.5 if args.smoke else 2.0
            rates = {"baseline": throughput("baseline", baseline_port, tokens, spread, args.duration, lead)}
            with sampler.phase("under load"):
                rates["one"] = throughput("one", product_port, tokens, spread, args.duration, lead)
            rates["two"] = throughput("two", product_port, tokens, spread, args.duration, lead)
            print(f"{database}: memory ...", file=sys.stderr, flush=True)
            for size, document in by_size.items():
                with sampler.phase(label(size)):
                    for _ in range(1 if size >= 64 * MIB or args.smoke else 10):
                        if readers["C"].read(document) != document.size:
                            raise RuntimeError(f"a view of {label(size)} was cut short")
            memory.update(sampler.peaks)
            # Last, so that the memory measured above is that of views of originals, as in earlier runs; the
            # worker's size after the stamped copies (their libraries and per-view masks) is shown beside it.
            print(f"{database}: stamped copies ...", file=sys.stderr, flush=True)
            readers["P"] = PageClient(product_port, token, stamped["page"].document_id)
            with sampler.phase("after the stamped copies (no goal)"):
                stamped_times = stamped_latency(readers, stamped, rounds[1 * MIB], warmup)
            memory.update(sampler.peaks)
    title = "SeaweedFS, PostgreSQL" if database == "postgresql" else "SeaweedFS, SQLite"
    report(title, results, rates, memory, stamped_times, args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and a shorter throughput run")
    parser.add_argument("--smoke", action="store_true",
                        help="two sizes, two rounds, half-second loads: that the bench runs, its figures meaningless")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers for both servers")
    parser.add_argument("--threads", type=int, default=4,
                        help="threads per gunicorn worker for both servers (the README's advice for 2 CPUs)")
    parser.add_argument("--clients", type=int, default=CLIENTS, help="concurrent clients for the throughput run")
    parser.add_argument("--database", choices=("both", "postgresql", "sqlite"), default="both",
                        help="the product's database (PostgreSQL is production's)")
    args = parser.parse_args(argv)
    rounds = SMOKE_ROUNDS if args.smoke else QUICK_ROUNDS if args.quick else ROUNDS
    args.sizes = SMOKE_SIZES if args.smoke else SIZES
    args.duration = 0.5 if args.smoke else 5.0 if args.quick else 20.0
    warmup = 1 if args.smoke else 10 if args.quick else 30

    for database in (("postgresql", "sqlite") if args.database == "both" else (args.database,)):
        run(database, args, rounds, warmup)
    return 0


if __name__ == "__main__":
    sys.exit(main())
