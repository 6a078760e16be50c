"""The database's own tools for a backup: SQLite's online backup API, `pg_dump` and `pg_restore`.

Kept apart from `services.backup`, which decides what goes into a backup and checks a restore: here is
only how a dump is taken and loaded, with the connection details taken from the SQLAlchemy URL (the
password passed in the environment, never on a command line that `ps` shows).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from vault.core.errors import ServiceError
from vault.core.private_files import ensure_private_file


def sqlite_copy(source: str | Path, target: Path, *, read_only: bool = False) -> None:
    """Copy a whole SQLite database with the backup API: consistent while others read and write the
    source, and safe into a target in WAL mode (unlike a copy of the file). The target is made 0600."""
    ensure_private_file(target)
    origin = sqlite3.connect(f"file:{source}?mode=ro", uri=True) if read_only else sqlite3.connect(source, timeout=60)
    copy = sqlite3.connect(target, timeout=60)
    try:
        origin.backup(copy)
    finally:
        copy.close()
        origin.close()


def sqlite_file(url: str) -> str:
    """The database file a SQLite URL names; an in-memory database has nothing to back up."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise ServiceError("backup_unsupported", "an in-memory SQLite database cannot be backed up or restored")
    return database


def pg_tool(name: str) -> str:
    """The PostgreSQL client tool from the PATH (the package of the server's version puts it there)."""
    found = shutil.which(name)
    if found is None:
        raise ServiceError("backup_tool_missing",
                           f"`{name}` is not on the PATH; install the PostgreSQL client tools of the server's "
                           "major version (or newer)")
    return found


def libpq(database_url: str) -> tuple[list[str], dict[str, str]]:
    """Command-line arguments and environment for a libpq tool from the SQLAlchemy URL (the password in
    the environment, never on the command line)."""
    url = make_url(database_url)
    host = url.host or url.query.get("host")
    args = ["-d", url.database or ""]
    if isinstance(host, tuple):
        host = host[0]
    if host:
        args += ["-h", str(host)]
    if url.port:
        args += ["-p", str(url.port)]
    if url.username:
        args += ["-U", url.username]
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return args, env


def run(command: list[str], env: dict[str, str], what: str) -> None:
    """Run a tool; its own error message, not a traceback, when it fails."""
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ServiceError(f"{what.replace('_', '')}_failed",
                           f"{what} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")


def pg_dump(database_url: str, path: Path, *, snapshot: str) -> None:
    """`pg_dump -Fc` of the URL's database into `path` (0600), in the exported `snapshot`."""
    args, env = libpq(database_url)
    ensure_private_file(path)
    run([pg_tool("pg_dump"), "-Fc", "--no-owner", f"--snapshot={snapshot}", "-f", str(path), *args], env, "pg_dump")


def pg_restore(database_url: str, dump: Path) -> None:
    """`pg_restore` in one transaction, dropping what an empty `vault init` made first (so nothing half
    loaded is left when it fails)."""
    args, env = libpq(database_url)
    run([pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction", "--exit-on-error",
         *args, str(dump)], env, "pg_restore")
