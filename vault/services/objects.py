"""Objects abandoned by a failed act: deleted at once where possible, found by `vault fsck` otherwise."""

from __future__ import annotations

import logging

from storage import ObjectNotFound, ObjectStore

log = logging.getLogger(__name__)


def discard_object(store: ObjectStore, key: str) -> None:
    """Delete an abandoned object if it is there; a failure is logged, not raised (fsck finds it)."""
    try:
        store.delete(key)
    except ObjectNotFound:
        pass
    except Exception:
        log.exception("could not delete the abandoned object %s; `vault fsck --repair` will", key)
