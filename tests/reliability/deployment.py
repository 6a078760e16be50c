"""A whole deployment on one machine, for fault, multi-server, restore and soak runs.

The product runs as in production: gunicorn application servers (each in a process group of its own, so
one can be killed without the others), on PostgreSQL (or SQLite) and SeaweedFS (or a local folder),
configured only through `VAULT_*` variables, with the `vault` command line run as a separate process
against the same database, store and keyring. The tests and the soak drive it over real HTTP.

``Deployment`` knows nothing about pytest, so ``bench/soak.py`` uses it too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
from sqlalchemy import func, select

from crypto import Keyring
from tests.fixtures.seaweed import SeaweedServer
from vault.config.settings import load_settings
from vault.db import schema
from vault.db.engine import Database
from vault.models import AuditEvent, DocumentView
from vault.models.views import ViewStatus
from vault.runtime import Runtime

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60.0
# The secret that signs session cookies: shared by every application server of one deployment.
SECRET_KEY = "deployment-wide-secret-key-for-tests"
_CLI = "import sys; from vault.cli import main; sys.exit(main())"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class AppServer:
    """One gunicorn (gthread) serving the product on a loopback port, in a process group of its own."""

    def __init__(self, env: dict[str, str], log_path: Path, *, workers: int = 2, threads: int = 4,
                 timeout: int = 60, keep_alive: int = 2) -> None:
        self.env = env
        self.keep_alive = keep_alive
        self.log_path = log_path
        self.workers = workers
        self.threads = threads
        self.timeout = timeout
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AppServer:
        self.launch()
        self.wait_ready()
        return self

    def launch(self) -> AppServer:
        """Start gunicorn without waiting for it (``wait_ready`` waits), so several start side by side."""
        self.port = free_port()
        command = [
            sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}", "--worker-class", "gthread",
            "--workers", str(self.workers), "--threads", str(self.threads), "--timeout", str(self.timeout),
            "--graceful-timeout", "2", "--keep-alive", str(self.keep_alive), "--log-level", "warning",
            "vault:create_app()",
        ]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn on {self.url} did not answer within {READY_TIMEOUT:.0f} s:\n{self.log_tail()}")

    def worker_pids(self) -> list[int]:
        """The worker processes (children of the gunicorn master), from /proc."""
        assert self.process is not None
        master = self.process.pid
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                # Field 4 of /proc/PID/stat is the parent; the command name (field 2) may hold spaces.
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == master:
                    pids.append(int(entry.name))
        return sorted(pids)

    def wait_workers(self, count: int, *, timeout: float = 30.0) -> list[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.worker_pids()
            if len(pids) >= count:
                return pids
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn has {len(self.worker_pids())} workers, not {count}")

    def terminate(self) -> None:
        """Ask the server to stop (SIGTERM to its group); ``stop`` waits for it."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)

    def stop(self) -> None:
        self.terminate()
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Accounts:
    """What the invariants count in the database."""

    audit_records: int
    views_by_status: dict[str, int]

    @property
    def spent(self) -> int:
        return sum(self.views_by_status.get(s, 0) for s in ("reserved", "delivering", "delivered", "partial"))


class Deployment:
    """One instance of the product: database, object store, keyring, policy file; servers on demand.

    Args:
        work: a private folder (data folder, keyring, policy file, logs).
        database_url: SQLAlchemy URL; ``None`` puts SQLite in the data folder.
        seaweed: the S3 server; ``None`` keeps objects in the data folder.
        data_dir: where the data folder lives (a small filesystem for disk-full tests).
        policy: TOML policy text.
        extra: further `VAULT_*` settings.
    """

    def __init__(self, work: Path, *, database_url: str | None = None, seaweed: SeaweedServer | None = None,
                 data_dir: Path | None = None, policy: str = "", extra: dict[str, str] | None = None) -> None:
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        config = work / "vault.toml"
        config.write_text(policy)
        self.keyring_path = work / "keyring.json"
        env = {
            "VAULT_DATA_DIR": str(data_dir or work / "data"),
            "VAULT_KEYRING": str(self.keyring_path),
            "VAULT_SECRET_KEY": SECRET_KEY,
            "VAULT_CONFIG": str(config),
            "VAULT_ARGON2_TIME_COST": "1",
            "VAULT_ARGON2_MEMORY_KIB": "1024",
            "VAULT_LOG_LEVEL": "WARNING",
        }
        if database_url:
            env["VAULT_DATABASE_URL"] = database_url
        if seaweed is not None:
            env.update({
                "VAULT_STORAGE": "s3", "VAULT_S3_ENDPOINT": seaweed.endpoint,
                "VAULT_S3_ACCESS_KEY": seaweed.access_key, "VAULT_S3_SECRET_KEY": seaweed.secret_key,
                "VAULT_S3_BUCKET": seaweed.bucket, "VAULT_S3_SECURE": "false",
            })
        env.update(extra or {})
        self.settings_env = env
        clean = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
        # As the README's production command runs gunicorn: two malloc arenas per worker, not eight per
        # core, so memory a thread frees is reused by the others instead of held (see "memory" there).
        self.env = {"MALLOC_ARENA_MAX": "2", **clean, **env, "PYTHONPATH": str(ROOT)}
        self.servers: list[AppServer] = []
        self._rt: Runtime | None = None

    def init(self) -> Deployment:
        """Keyring, schema and bucket, as `vault init` would make them."""
        if not self.keyring_path.exists():
            Keyring.create(self.keyring_path)
        settings = load_settings(environ=self.settings_env)
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        db = Database(settings.database)
        schema.upgrade(db)
        db.dispose()
        self.runtime().store.ensure_ready()
        return self

    def runtime(self) -> Runtime:
        """An in-process runtime on the same database, store and keyring (for seeding and counting)."""
        if self._rt is None:
            self._rt = Runtime.build(load_settings(environ=self.settings_env))
        return self._rt

    def serve(self, *, workers: int = 2, threads: int = 4, timeout: int = 60, count: int = 1,
              keep_alive: int = 2) -> list[AppServer]:
        """Start `count` application servers side by side and wait until each answers."""
        servers = [AppServer(self.env, self.work / f"gunicorn-{len(self.servers) + n}.log", workers=workers,
                             threads=threads, timeout=timeout, keep_alive=keep_alive).launch()
                   for n in range(count)]
        self.servers.extend(servers)
        for server in servers:
            server.wait_ready()
        return servers

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run `vault ARGS` in a separate process against this deployment."""
        return subprocess.run([sys.executable, "-c", _CLI, *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=timeout, check=False)

    def accounts(self) -> Accounts:
        with self.runtime().db.session() as session:
            audit = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
            rows = session.execute(select(DocumentView.status, func.count()).group_by(DocumentView.status)).all()
        return Accounts(audit_records=audit, views_by_status={str(ViewStatus(s).value): n for s, n in rows})

    def close(self) -> None:
        for server in self.servers:
            server.terminate()
        for server in self.servers:
            server.stop()
        self.servers.clear()
        if self._rt is not None:
            self._rt.close()
            self._rt = None

    @contextlib.contextmanager
    def running(self, **options: int) -> Iterator[AppServer]:
        [server] = self.serve(**options)
        try:
            yield server
        finally:
            server.stop()
