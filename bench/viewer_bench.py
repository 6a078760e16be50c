"""What the secure viewer costs: renditions at upload, the first stamped page, stamped pages under load,
and tracing a leaked copy.

Run ``python bench/viewer_bench.py`` (``--quick`` for a short run; ``--smoke``, the fewest pages, rounds and
seconds that take every step, is how the test suite checks that the bench still runs: its figures mean
nothing). Everything runs on this machine with
SQLite and a local-folder store in a temporary folder, and prints one table:

* rendition speed at upload: a 200-page PDF uploaded through the upload service (render, encode, encrypt,
  store each page), in pages per second;
* peak RSS of a fresh process uploading a 20-page and a 500-page PDF the same way, and of the process its
  pages are drawn in (memory must stay flat);
* open → first stamped page: ``POST`` the view (policy, quota, audit), follow the redirect to the viewer
  (claim, window) and ``GET`` page 1 (stamp, mark, JPEG), p50 and p90 (goal: p50 at most 150 ms for an A4
  page at 150 dpi);
* stamped pages per second with 8 concurrent clients, beside a bare GET + decrypt of the same stored page
  served by the same kind of threaded server (goal: at least 0.5 of it);
* trace decode time per image (a stamped page re-saved as JPEG q75);
* the two latency goals, measured in the same run, one client at a time over HTTP (p50 of each):
  a stamped viewer page against a bare GET + decrypt of the same stored page image (goal: at most 2x),
  and a stamped download of a 1 MiB PDF (a grade that does not give out the original) against a bare
  GET + decrypt of that original (goal: at most 3x). Each line says whether its goal is met.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import math
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Run as a script from a checkout: make the project's packages importable without installing them.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image
from werkzeug.serving import WSGIRequestHandler, make_server

from bench._source import photo_pdf
from crypto import Keyring, decrypt_stream
from tests.api.conftest import accept_agreement
from tests.conftest import FAST_HASH, Users, login
from tests.rendering.inputs import pdf_bytes
from tests.support.factories import everyone_works
from vault.app import create_app
from vault.config.settings import load_settings
from vault.core.context import AccessContext
from vault.db import schema
from vault.models import Customer, Document, Role, User, VersionPage
from vault.runtime import Runtime
from vault.services import documents
from vault.services.documents import version_context
from vault.services.marking_key import marking_secret
from vault.services.renditions import read_page

CTX = AccessContext.cli()


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmHWM not found")


def drawing_peak_rss_mib() -> float:
    """The largest peak of the drawing processes this one forked and reaped (`vault.rendering.isolated`):
    the upload's pages are drawn there, not in the uploading process."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


@contextlib.contextmanager
def runtime(folder: Path) -> Iterator[Runtime]:
    keyring = Keyring.create(folder / "keyring.json")
    # Every hour a working hour, as in view_bench: a run at night does the same work as one by day.
    every_hour = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": 0, "end": 24}
    settings = load_settings({"data_dir": folder / "data", "keyring": folder / "keyring.json",
                              "secret_key": "bench-secret-key", "policy": {"working_hours": every_hour},
                              **FAST_HASH}, environ={})
    (folder / "data").mkdir(exist_ok=True)
    rt = Runtime.build(settings, keyring)
    schema.upgrade(rt.db)
    rt.store.ensure_ready()
    try:
        yield rt
    finally:
        rt.close()


def upload(rt: Runtime, data: bytes, name: str, grade: int = 1) -> int:
    """Upload through the upload service as carl, with a quota no bench run uses up."""
    with rt.db.session() as session:
        carl = session.query(User).filter_by(username="carl").one()
        customer = Customer(name=f"Bench {time.monotonic_ns()}", owner_id=carl.id, created_by_id=carl.id)
        session.add(customer)
        session.flush()
        document = documents.upload_document(rt, session, carl, customer, title="Bench", grade=grade,
                                             stream=io.BytesIO(data), filename=name, content_type=None, ctx=CTX)
        document.view_quota = 1_000_000
        customer_id, document_id = customer.id, document.id
    everyone_works(rt, customer_id)  # the bench's readers see the customer
    return document_id


def latencies(port: int, method: str, path: str, headers: dict[str, str], rounds: int,
              body: bytes | None = None) -> list[float]:
    """Seconds per request, sorted, of ``rounds`` requests one after another on one kept-alive connection
    (the whole body read each time)."""
    connection = http.client.HTTPConnection("127.0.0.1", port)
    times = []
    try:
        for _ in range(rounds + 2):
            start = time.perf_counter()
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            if response.status not in (200, 201) or not data:
                raise RuntimeError(f"{method} {path}: {response.status} {data[:200]!r}")
            times.append(time.perf_counter() - start)
    finally:
        connection.close()
    return sorted(times[2:])  # the first two warm caches and the connection


def p50_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000


def goal(ratio: float, limit: float) -> str:
    return f"{ratio:.1f}x (goal <= {limit:g}x: {'met' if ratio <= limit else 'NOT met'})"


def child(pages: int) -> None:
    """Upload a ``pages``-page PDF in a fresh process; print seconds and peak RSS as JSON."""
    data = pdf_bytes(pages)
    with tempfile.TemporaryDirectory(prefix="vault-viewer-bench-") as folder, runtime(Path(folder)) as rt:
        users = Users(rt)
        users.make("carl", Role.COMPILER)
        start = time.perf_counter()
        upload(rt, data, "bench.pdf")
        seconds = time.perf_counter() - start
    print(json.dumps({"pages": pages, "seconds": seconds, "peak_rss_mib": peak_rss_mib(),
                      "drawing_peak_rss_mib": drawing_peak_rss_mib()}))


def measure_child(pages: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", str(pages)], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class Server:
    """A threaded WSGI server on a loopback port, in a thread of this process."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()


def hammer(port: int, path: str, headers: dict[str, str], clients: int, seconds: float) -> float:
    """Requests per second of ``clients`` threads fetching ``path`` for ``seconds``."""
    done = [0] * clients
    errors: list[str] = []
    stop = time.perf_counter() + seconds

    def run(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port)
        while time.perf_counter() < stop:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            if response.status != 200 or not body:
                errors.append(f"{response.status} {body[:200]!r}")
                return
            done[index] += 1
        connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, e.g. {errors[0]}")
    return sum(done) / (time.perf_counter() - start)


def latency_goals(rt: Runtime, app: Any, document_id: int, page_path: str, headers: dict[str, str],
                  rounds: int) -> list[tuple[str, str]]:
    """The two must-show ratios (p50 latency over HTTP, the same run, the same kind of server)."""
    pdf = photo_pdf()
    pdf_id = upload(rt, pdf, "bench-1mib.pdf", grade=1)  # grade 1 gives a stamped copy, not the original
    with rt.db.session() as session:
        version = session.get(Document, document_id).versions[0]
        page = session.query(VersionPage).filter_by(version_id=version.id, number=1).one()
        page_args = (page.object_key, page.number, version.document_id, version.number)
        page_dek = rt.keyring.unwrap(version.key_id, version.wrapped_dek, version_context(version))
        original = session.get(Document, pdf_id).versions[0]
        pdf_key, pdf_context = original.object_key, version_context(original)
        pdf_dek = rt.keyring.unwrap(original.key_id, original.wrapped_dek, pdf_context)

    def bare(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] == "/page":
            key, number, doc_id, version_number = page_args
            data = read_page(rt, page_dek, doc_id, version_number, key, number)
            kind = "image/png"
        else:
            source = rt.store.open(pdf_key)
            try:
                data = b"".join(decrypt_stream(pdf_dek, pdf_context, source))
            finally:
                source.close()
            kind = "application/pdf"
        start_response("200 OK", [("Content-Type", kind), ("Content-Length", str(len(data)))])
        return [data]

    body = json.dumps({"reason": "Preparing the visit on Monday", "place": "Head office"}).encode()
    json_headers = {**headers, "Content-Type": "application/json"}
    product, baseline = Server(app), Server(bare)
    try:
        stamped_page = latencies(product.port, "GET", page_path, headers, rounds)
        bare_page = latencies(baseline.port, "GET", "/page", {}, rounds)
        download = latencies(product.port, "POST", f"/api/v1/documents/{pdf_id}/content", json_headers,
                             max(5, rounds // 3), body)
        bare_pdf = latencies(baseline.port, "GET", "/pdf", {}, max(5, rounds // 3))
    finally:
        product.close()
        baseline.close()
    page_ratio = p50_ms(stamped_page) / p50_ms(bare_page)
    pdf_ratio = p50_ms(download) / p50_ms(bare_pdf)
    return [
        ("stamped page, 1 client, p50", f"{p50_ms(stamped_page):.1f} ms"),
        ("bare GET + decrypt of the same page image, p50", f"{p50_ms(bare_page):.1f} ms"),
        ("stamped page / bare page (p50)", goal(page_ratio, 2)),
        (f"stamped download of a {len(pdf) / 1048576:.1f} MiB PDF, p50", f"{p50_ms(download):.1f} ms"),
        ("bare GET + decrypt of the original PDF, p50", f"{p50_ms(bare_pdf):.1f} ms"),
        ("stamped PDF download / bare (p50)", goal(pdf_ratio, 3)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--smoke", action="store_true",
                        help="the fewest pages, rounds and seconds that take every step: that the bench runs, "
                             "its figures meaningless")
    parser.add_argument("--child", type=int)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    rounds = 2 if args.smoke else 10 if args.quick else 30
    load_seconds = 0.5 if args.smoke else 5.0 if args.quick else 15.0
    # Pages of the small and large memory uploads, and of the rendition-speed upload.
    small_pages, large_pages, speed_pages = (1, 2, 2) if args.smoke else (20, 500, 200)
    rows: list[tuple[str, str]] = []

    small, large = measure_child(small_pages), measure_child(large_pages)
    rendition = large if speed_pages == large_pages else measure_child(speed_pages)
    rows.append((f"rendition at upload, {speed_pages}-page PDF",
                 f"{speed_pages / rendition['seconds']:.0f} pages/s"))
    rows.append((f"peak RSS, upload of a {small_pages}-page PDF", f"{small['peak_rss_mib']:.0f} MiB "
                 f"(its drawing process {small['drawing_peak_rss_mib']:.0f} MiB)"))
    rows.append((f"peak RSS, upload of a {large_pages}-page PDF", f"{large['peak_rss_mib']:.0f} MiB "
                 f"({large['peak_rss_mib'] - small['peak_rss_mib']:+.0f} MiB; its drawing process "
                 f"{large['drawing_peak_rss_mib']:.0f} MiB, "
                 f"{large['drawing_peak_rss_mib'] - small['drawing_peak_rss_mib']:+.0f} MiB)"))

    with tempfile.TemporaryDirectory(prefix="vault-viewer-bench-") as folder, runtime(Path(folder)) as rt:
        users = Users(rt)
        users.make("carl", Role.COMPILER)
        users.make("ann", Role.BORROWER)
        document_id = upload(rt, pdf_bytes(3), "bench.pdf")
        app = create_app(runtime=rt)
        client = app.test_client()
        token = login(client, "ann")
        form = {"csrf_token": token, "reason": "Preparing the visit on Monday", "place": "Head office"}
        first_page: list[float] = []
        page_path = ""
        for _ in range(rounds):
            start = time.perf_counter()
            opened = client.post(f"/documents/{document_id}/view", data=form)
            assert opened.status_code == 303, opened.get_data(as_text=True)[:300]
            viewer = client.get(opened.headers["Location"]).get_data(as_text=True)
            page_path = re.search(r'data-src="([^"]+)"', viewer).group(1).replace("&amp;", "&")
            image = client.get(page_path)
            assert image.status_code == 200
            first_page.append(time.perf_counter() - start)
        first_page.sort()
        rows.append(("open POST → first stamped page, p50",
                     f"{statistics.median(first_page) * 1000:.0f} ms (p90 "
                     f"{first_page[math.ceil(len(first_page) * 0.9) - 1] * 1000:.0f} ms)"))

        # Under load: the product's stamped page, and a bare GET + decrypt of the same stored page.
        # The load runs over HTTP with a bearer token, as an integration would (the API's page URL).
        accept_agreement(rt, "ann")
        headers = {"Authorization": f"Bearer {users.token('ann')}"}
        api_view = client.post(f"/api/v1/documents/{document_id}/views", headers=headers,
                               json={"reason": "Preparing the visit on Monday", "place": "Head office"}).get_json()
        page_path = "/" + api_view["page_url"].replace("{n}", "1").split("/", 3)[3]
        with rt.db.session() as session:
            version = session.get(Document, document_id).versions[0]
            page = session.query(VersionPage).filter_by(version_id=version.id, number=1).one()
            key, number, doc_id, version_number = page.object_key, page.number, version.document_id, version.number
            dek = rt.keyring.unwrap(version.key_id, version.wrapped_dek, version_context(version))

        def bare(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
            data = read_page(rt, dek, doc_id, version_number, key, number)
            start_response("200 OK", [("Content-Type", "image/png"), ("Content-Length", str(len(data)))])
            return [data]

        product, baseline = Server(app), Server(bare)
        try:
            stamped_rate = hammer(product.port, page_path, headers, 8, load_seconds)
            bare_rate = hammer(baseline.port, "/", {}, 8, load_seconds)
        finally:
            product.close()
            baseline.close()
        rows.append(("stamped pages/s, 8 clients", f"{stamped_rate:.1f}"))
        rows.append(("bare GET + decrypt of the same page/s, 8 clients", f"{bare_rate:.1f}"))
        rows.append(("ratio stamped / bare", f"{stamped_rate / bare_rate:.2f}"))

        # The latency goals, one request at a time: a stamped page and the same stored page bare; a stamped
        # download of a 1 MiB PDF and the same original bare.
        rows.extend(latency_goals(rt, app, document_id, page_path, headers, rounds * 3))

        # Tracing: a delivered page re-saved at JPEG q75.
        from vault.marking import trace

        delivered = client.get(page_path, headers=headers).get_data()
        leak = io.BytesIO()
        Image.open(io.BytesIO(delivered)).convert("RGB").save(leak, format="JPEG", quality=75)
        times = []
        for _ in range(max(3, rounds // 3)):
            start = time.perf_counter()
            found = trace(leak.getvalue(), marking_secret(rt.settings))
            times.append(time.perf_counter() - start)
            assert found is not None
        rows.append(("trace decode, JPEG q75 page, p50", f"{statistics.median(times) * 1000:.0f} ms"))
        size = len(delivered)
        rows.append(("delivered page size (JPEG q85, 1240 px)", f"{size / 1024:.0f} KiB"))

    width = max(len(label) for label, _ in rows)
    print(f"{'measure'.ljust(width)} | value")
    print(f"{'-' * width}-|------")
    for label, value in rows:
        print(f"{label.ljust(width)} | {value}")


if __name__ == "__main__":
    main()
