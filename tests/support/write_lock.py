"""Whether another writer could start a transaction at once: SQLite's one write lock, seen from outside.

On SQLite every transaction of the product begins IMMEDIATE and holds the database's write lock until it
ends, so long work inside one (drawing pages, reading an upload) makes every other writer wait. Tests of
such work call `writer_free` while it runs. PostgreSQL has no such lock: there it is always True.
"""

from __future__ import annotations

import sqlite3
from typing import Any


def writer_free(rt: Any) -> bool:
    """True when a new writing transaction could begin now without waiting."""
    if rt.db.dialect != "sqlite":
        return True
    other = sqlite3.connect(rt.db.engine.url.database, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()
    return True


class WatchedRenderer:
    """A renderer (the real one, wrapped) that notes, before it draws and before each page, how many
    writing statements `writes` holds and whether another writer could start (`writer_free`)."""

    def __init__(self, inner: Any, rt: Any, writes: list[str]) -> None:
        self.inner, self.rt, self.writes = inner, rt, writes
        self.seen: list[tuple[int, bool]] = []

    def note(self) -> None:
        self.seen.append((len(self.writes), writer_free(self.rt)))

    def render(self, source: Any, media_type: str, filename: str) -> Any:
        self.note()
        rendition = self.inner.render(source, media_type, filename)
        pages = rendition.pages

        def watched_pages() -> Any:
            for page in pages():
                self.note()
                yield page

        rendition.pages = watched_pages
        return rendition
