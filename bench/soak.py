"""Soak: the product under steady mixed load for minutes, then every invariant checked.

Run ``python bench/soak.py`` (``--minutes 3`` for a short run). It starts a private PostgreSQL and
SeaweedFS, one gunicorn (gthread), seeds a small company, and runs ``--connections`` clients, each a
loop of weighted random acts over its own keep-alive connection:

* 4 KiB and 1 MiB downloads (open the view, receive every byte, compare its SHA-256 with the upload's);
* viewer pages (open a reading view, fetch its first stamped page);
* uploads of a small text file;
* loan transitions on a grade-2 file (request, approve by an approver, return);
* refusals (opening the grade-2 file without a loan: 403 expected).

At the end it checks and prints: 0 unexpected non-2xx answers; audit records equal to the acts and
refusals the clients saw, action by action; quota units spent equal to the views that delivered
(whole, partial, or an open reader's window) with nothing left reserved; `vault fsck` clean (every
object decrypts to its recorded SHA-256); `vault audit verify` clean; the resident memory of each
worker drifting less than 10 % between minute 2 and the end. Exit status 0 only if all hold.

``--smoke`` with a short ``--minutes`` (the test suite runs ``--smoke --minutes 0.05``) checks that the soak
still runs and that every count still agrees; the drift row is shown but not judged in so short a run.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

# Run as a script from a checkout: make the project's packages importable without installing them.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests
from sqlalchemy import func, select

from tests.fixtures.postgres import PostgresCluster
from tests.fixtures.seaweed import SeaweedServer
from tests.reliability.deployment import AppServer, Deployment, rss_kib
from tests.support.factories import Users, make_document
from vault.core.context import AccessContext
from vault.models import AuditEvent, Document, DocumentView, QuotaUsage, Role
from vault.services import accounts, agreement, maintenance

KIB = 1024
MIB = 1024 * KIB
POLICY = "[grades.1]\nviews = 100000000\ndownload_original = true\n"
REASON = "Prepare the visit to the customer"
PLACE = "Head office"
# Weighted mix of one client's acts.
MIX = {"view_4k": 40, "view_1m": 10, "viewer_page": 15, "upload": 8, "loan_cycle": 7, "refusal": 20}
RSS_FROM = 120.0  # seconds: the first sample of the drift check (minute 2)
RSS_LIMIT = 0.10
RSS_EVERY = 5.0  # seconds between samples of the workers' resident memory
# How long a content URL lives; the settle waits one more second for the last ones to expire.
CONTENT_URL_SECONDS = 10
# --smoke: that the soak still runs and its counts still agree (the test suite's check). Content URLs that
# expire sooner, a shorter settle, samples every second, and a large file of 64 KiB rather than 1 MiB (every
# act is the same; the 1 MiB file's ~290 laid-out pages take some 20 s to draw at seeding). A run of seconds
# says nothing about memory drift, so that row is shown but not judged.
SMOKE_CONTENT_URL_SECONDS = 3
SMOKE_RSS_EVERY = 1.0


def text_of(size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    line = f"order {rng.randrange(10**6)}; Example Industries; {rng.randrange(100)} units; net 30 days.\n".encode()
    return (line * (size // len(line) + 1))[:size]


@dataclass
class Tally:
    """What the clients saw, shared by every client thread."""

    ops: Counter[str] = field(default_factory=Counter)
    answers: Counter[int] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    refusal_codes: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, op: str, *statuses: int) -> None:
        with self.lock:
            self.ops[op] += 1
            for status in statuses:
                self.answers[status] += 1

    def bad(self, what: str) -> None:
        with self.lock:
            self.unexpected.append(what)


class Company:
    """The seeded scene: documents, tokens and the expected bytes."""

    def __init__(self, deployment: Deployment, connections: int, big_size: int = 1 * MIB + 3 * KIB) -> None:
        rt = deployment.runtime()
        users = Users(rt)
        ctx = AccessContext.cli()
        users.make("carl", Role.COMPILER)
        users.make("alma", Role.APPROVER)
        names = [f"reader{n}" for n in range(connections)]
        for name in names:
            users.make(name, Role.BORROWER)
        with rt.db.session() as session:
            for name in ["carl", "alma", *names]:
                agreement.accept(rt, session, accounts.get_user(session, name), ctx)
            carl = accounts.get_user(session, "carl").id
        self.tokens = {name: users.token(name) for name in ["carl", "alma", *names]}
        self.readers = names
        self.small_text = text_of(4 * KIB, 1)
        # Over 1 MiB (a partial read would show); as text under the layout limit it is drawn into pages at upload.
        self.big_text = text_of(big_size, 2)
        self.small = make_document(rt, compiler_id=carl, grade=1, content=self.small_text, name="small.txt")
        self.big = make_document(rt, compiler_id=carl, grade=1, content=self.big_text, name="big.txt")
        self.graded = make_document(rt, compiler_id=carl, grade=2, content=self.small_text, name="terms.txt")
        self.sha = {self.small: hashlib.sha256(self.small_text).hexdigest(),
                    self.big: hashlib.sha256(self.big_text).hexdigest()}
        with rt.db.session() as session:
            small = session.get(Document, self.small)
            assert small is not None
            self.customer = small.customer_id


class Client(threading.Thread):
    """One connection's loop of random acts until `deadline`."""

    def __init__(self, n: int, server: AppServer, company: Company, tally: Tally, deadline: float) -> None:
        super().__init__(daemon=True)
        self.n = n
        self.base = server.url
        self.company = company
        self.tally = tally
        self.deadline = deadline
        self.rng = random.Random(n)
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {company.tokens[company.readers[n]]}"
        self.approver = requests.Session()
        self.approver.headers["Authorization"] = f"Bearer {company.tokens['alma']}"
        self.compiler = requests.Session()
        self.compiler.headers["Authorization"] = f"Bearer {company.tokens['carl']}"

    def run(self) -> None:
        ops, weights = zip(*MIX.items(), strict=True)
        while time.monotonic() < self.deadline:
            op = self.rng.choices(ops, weights)[0]
            try:
                getattr(self, op)()
            except requests.RequestException as error:
                self.tally.bad(f"{op}: {error!r}")

    def _expect(self, op: str, answer: requests.Response, status: int) -> bool:
        if answer.status_code != status:
            self.tally.bad(f"{op}: {answer.status_code} {answer.text[:200]}")
            return False
        return True

    def _open(self, document: int, download: bool) -> requests.Response:
        return self.http.post(f"{self.base}/api/v1/documents/{document}/views", timeout=120,
                              json={"reason": REASON, "place": PLACE, "download": download})

    def _download(self, op: str, document: int) -> None:
        opened = self._open(document, True)
        if not self._expect(op, opened, 201):
            self.tally.add(op, opened.status_code)
            return
        content = self.http.get(opened.json()["content_url"], timeout=120)
        self.tally.add(op, opened.status_code, content.status_code)
        if self._expect(op, content, 200) and hashlib.sha256(content.content).hexdigest() != self.company.sha[document]:
            self.tally.bad(f"{op}: delivered bytes differ from the upload")

    def view_4k(self) -> None:
        self._download("view_4k", self.company.small)

    def view_1m(self) -> None:
        self._download("view_1m", self.company.big)

    def viewer_page(self) -> None:
        opened = self._open(self.company.small, False)
        if not self._expect("viewer_page", opened, 201):
            self.tally.add("viewer_page", opened.status_code)
            return
        page = self.http.get(opened.json()["page_url"].replace("{n}", "1"), timeout=120)
        self.tally.add("viewer_page", opened.status_code, page.status_code)
        if self._expect("viewer_page", page, 200) and not page.headers["Content-Type"].startswith("image/"):
            self.tally.bad("viewer_page: not an image")

    def upload(self) -> None:
        answer = self.compiler.post(f"{self.base}/api/v1/customers/{self.company.customer}/documents", timeout=120,
                                    data={"title": f"Visit notes {self.n}-{self.rng.randrange(10**9)}", "grade": "1"},
                                    files={"file": ("notes.txt", text_of(2 * KIB, self.rng.randrange(10**6)),
                                                    "text/plain")})
        self.tally.add("upload", answer.status_code)
        self._expect("upload", answer, 201)

    def loan_cycle(self) -> None:
        requested = self.http.post(f"{self.base}/api/v1/loans", timeout=120, json={
            "document_id": self.company.graded, "reason": REASON, "category": "visit_preparation",
            "place": PLACE, "days": 5})
        if not self._expect("loan_cycle", requested, 201):
            self.tally.add("loan_request", requested.status_code)
            return
        loan = requested.json()["id"]
        approved = self.approver.post(f"{self.base}/api/v1/loans/{loan}/approve", json={}, timeout=120)
        returned = self.http.post(f"{self.base}/api/v1/loans/{loan}/return", json={}, timeout=120)
        self.tally.add("loan_cycle", requested.status_code, approved.status_code, returned.status_code)
        self._expect("loan_cycle", approved, 200)
        self._expect("loan_cycle", returned, 200)

    def refusal(self) -> None:
        answer = self._open(self.company.graded, True)
        self.tally.add("refusal", answer.status_code)
        if self._expect("refusal", answer, 403):
            with self.tally.lock:
                self.tally.refusal_codes[answer.json().get("code", "")] += 1


def sample_rss(server: AppServer, stop: threading.Event, samples: dict[int, list[tuple[float, int]]],
               started: float, every: float = RSS_EVERY) -> None:
    while not stop.wait(every):
        for pid in server.worker_pids():
            samples.setdefault(pid, []).append((time.monotonic() - started, rss_kib(pid)))


def rss_by_minute(series: list[tuple[float, int]]) -> list[str]:
    """The last sample of each whole minute, to tell growth that levels off from growth that goes on."""
    marks: dict[int, int] = {}
    for at, kib in series:
        marks[int(at // 60) + 1] = kib
    return [f"{minute}: {kib / 1024:.0f}" for minute, kib in sorted(marks.items())]


def audit_counts(deployment: Deployment, since: int) -> tuple[Counter[str], int]:
    with deployment.runtime().db.session() as session:
        rows = session.execute(select(AuditEvent.action, AuditEvent.outcome, func.count())
                               .where(AuditEvent.seq > since)
                               .group_by(AuditEvent.action, AuditEvent.outcome)).all()
    allowed: Counter[str] = Counter()
    denied = 0
    for action, outcome, count in rows:
        if outcome == "denied":
            denied += count
        else:
            allowed[f"{action}:{outcome}"] += count
    return allowed, denied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the load runs (default 10)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--smoke", action="store_true",
                        help="with a short --minutes: that the soak runs and its counts agree (drift not judged)")
    args = parser.parse_args(argv)
    content_url_seconds = SMOKE_CONTENT_URL_SECONDS if args.smoke else CONTENT_URL_SECONDS

    with tempfile.TemporaryDirectory(prefix="vault-soak-") as temp, PostgresCluster() as postgres, \
            SeaweedServer(bucket="vault-soak") as seaweed:
        postgres.create_database("soak")
        deployment = Deployment(Path(temp), database_url=postgres.url("soak"), seaweed=seaweed, policy=POLICY,
                                extra={"VAULT_CONTENT_URL_SECONDS": str(content_url_seconds)}).init()
        try:
            return soak(deployment, args, content_url_seconds)
        finally:
            deployment.close()


def soak(deployment: Deployment, args: argparse.Namespace, content_url_seconds: int) -> int:
    print("seeding ...", file=sys.stderr, flush=True)
    company = Company(deployment, args.connections, 64 * KIB + 3 * KIB if args.smoke else 1 * MIB + 3 * KIB)
    with deployment.runtime().db.session() as session:
        first_seq = session.scalar(select(func.max(AuditEvent.seq))) or 0
    # Idle keep-alive connections outlive gunicorn's 2-second default here (a load balancer's would too):
    # otherwise a request sent as the server closes an idle connection is reset, a client-side race.
    [server] = deployment.serve(workers=args.workers, threads=args.threads, timeout=120, keep_alive=120)
    server.wait_workers(args.workers)
    tally = Tally()
    duration = args.minutes * 60
    started = time.monotonic()
    samples: dict[int, list[tuple[float, int]]] = {}
    stop = threading.Event()
    sampler = threading.Thread(target=sample_rss, daemon=True,
                               args=(server, stop, samples, started, SMOKE_RSS_EVERY if args.smoke else RSS_EVERY))
    sampler.start()
    clients = [Client(n, server, company, tally, started + duration) for n in range(args.connections)]
    print(f"load: {args.connections} connections for {args.minutes:g} min ...", file=sys.stderr, flush=True)
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    elapsed = time.monotonic() - started
    stop.set()
    sampler.join()

    # Settle: reservations whose content URL expired are given back by the sweep, as cron does.
    time.sleep(content_url_seconds + 1)
    with deployment.runtime().db.session() as session:
        maintenance.run(deployment.runtime(), session, ctx=AccessContext.cli())
    allowed, denied = audit_counts(deployment, first_seq)
    with deployment.runtime().db.session() as session:
        by_status = dict(session.execute(select(DocumentView.status, func.count()).group_by(DocumentView.status)).all())
        spent = session.scalar(select(func.coalesce(func.sum(QuotaUsage.used), 0))) or 0
    fsck = deployment.cli("fsck", "--min-age-minutes", "0")
    verify = deployment.cli("audit", "verify")

    ops = tally.ops
    downloads = ops["view_4k"] + ops["view_1m"]
    expected = {
        "document:view:allowed": ops["viewer_page"],
        "document:download:allowed": downloads,
        "content:delivered:allowed": downloads,
        "document:upload:allowed": ops["upload"],
        "loan:request:allowed": ops["loan_cycle"],
        "loan:approve:allowed": ops["loan_cycle"],
        "loan:return:allowed": ops["loan_cycle"],
    }
    requests_made = sum(tally.answers.values())
    # The last field: whether the invariant holds, or None for a row shown but not judged.
    rows: list[tuple[str, str, bool | None]] = []
    rows.append(("unexpected non-2xx answers (403 refusals expected)", f"{len(tally.unexpected)}",
                 not tally.unexpected))
    for action, count in expected.items():
        rows.append((f"audit {action} = client acts", f"{allowed[action]} = {count}", allowed[action] == count))
    rows.append(("audit denied records = 403 refusals seen", f"{denied} = {tally.answers[403]}",
                 denied == tally.answers[403]))
    delivered = by_status.get("delivered", 0) + by_status.get("partial", 0)
    reading = by_status.get("delivering", 0)
    rows.append(("quota spent = delivered + partial + open readers",
                 f"{spent} = {by_status.get('delivered', 0)} + {by_status.get('partial', 0)} + {reading}",
                 spent == delivered + reading))
    rows.append(("downloads delivered (whole) = client downloads", f"{allowed['content:delivered:allowed']} = "
                 f"{downloads}", allowed["content:delivered:allowed"] == downloads))
    rows.append(("reservations left after the sweep", str(by_status.get("reserved", 0)),
                 by_status.get("reserved", 0) == 0))
    rows.append(("vault fsck (every object decrypts to its SHA-256)", fsck.stdout.strip().splitlines()[-1]
                 if fsck.stdout.strip() else fsck.stderr.strip()[-100:], fsck.returncode == 0))
    rows.append(("vault audit verify", verify.stdout.strip().splitlines()[-1] if verify.stdout.strip()
                 else verify.stderr.strip()[-100:], verify.returncode == 0))
    # From minute 2 (for runs too short for that: from the middle) to the end.
    rss_from = RSS_FROM if elapsed >= RSS_FROM + 30 else elapsed / 2
    for pid, series in sorted(samples.items()):
        later = [kib for at, kib in series if at >= rss_from]
        if len(later) < 2:
            rows.append((f"RSS drift worker {pid}", "too few samples", None if args.smoke else False))
            continue
        drift = (later[-1] - later[0]) / later[0]
        rows.append((f"RSS drift worker {pid} (minute {rss_from / 60:.1f} to end)",
                     f"{later[0] / 1024:.0f} -> {later[-1] / 1024:.0f} MiB ({drift:+.1%})",
                     None if args.smoke else drift < RSS_LIMIT))

    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print()
    print(f"Soak: {elapsed / 60:.1f} min, {args.connections} connections, gunicorn gthread {args.workers} x "
          f"{args.threads}, PostgreSQL + SeaweedFS; {os.cpu_count()} CPUs, load average at the end {load}")
    print(f"requests: {requests_made} ({requests_made / elapsed:.1f}/s); acts: "
          + ", ".join(f"{op} {count}" for op, count in sorted(ops.items()))
          + f"; answers: {dict(sorted(tally.answers.items()))}; refusal codes: {dict(tally.refusal_codes)}")
    width = max(len(name) for name, _, _ in rows)
    print(f"{'invariant':<{width}} | {'result':<40} | ok")
    print("-" * (width + 50))
    for name, value, ok in rows:
        print(f"{name:<{width}} | {value:<40} | {'-' if ok is None else 'yes' if ok else 'NO'}")
    for line in tally.unexpected[:10]:
        print(f"  unexpected: {line}")
    for pid, series in sorted(samples.items()):
        print(f"RSS of worker {pid}, MiB at each minute: " + ", ".join(rss_by_minute(series)))
    all_ok = all(ok is not False for _, _, ok in rows)
    print(f"All invariants {'hold' if all_ok else 'DO NOT hold'}.")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
