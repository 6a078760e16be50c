"""Files only the service account may read: the SQLite database, audit exports, departure reports.

They hold customer names, who read what, and (the database) everything else; a umask of 022 would
leave them world-readable. Each is created with mode 0600 from the start (never created and then
narrowed, which leaves a window) and narrowed as well if it already existed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

PRIVATE_MODE = 0o600


def open_private(path: Path, mode: str = "wb") -> IO[bytes]:
    """Open `path` for writing (truncated), mode 0600 whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_MODE)
    os.fchmod(fd, PRIVATE_MODE)
    return os.fdopen(fd, mode)


def write_private(path: Path, content: bytes) -> None:
    with open_private(path) as handle:
        handle.write(content)


def ensure_private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 if it does not exist (before a library creates it 0644)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_MODE)
    os.close(fd)
