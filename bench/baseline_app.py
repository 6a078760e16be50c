"""The bench's baseline: the same GET + decrypt as the product's content delivery, and nothing else.

A bare WSGI callable (no framework, no session, policy, quota, audit or database) that serves
``GET /objects/<name>`` by fetching the object with ``minio`` and streaming it through
``crypto.decrypt_stream``. ``bench/view_bench.py`` serves it with the same gunicorn worker settings as
the product, so the difference between the two is what the product's request handling costs.

Configured by environment variables (set by the bench):

* ``BASELINE_S3_ENDPOINT``, ``BASELINE_S3_ACCESS_KEY``, ``BASELINE_S3_SECRET_KEY``, ``BASELINE_S3_BUCKET``;
* ``BASELINE_MANIFEST``: a JSON file mapping each name to ``{"object", "key", "ad", "size"}`` (object
  name in the bucket, data key and associated data in hex, plaintext size). Knowing the data keys
  up front is what "no policy" means: nothing is looked up or decided per request.

Run as ``gunicorn --chdir bench baseline_app:app``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

# Served by gunicorn from bench/: make the project's packages importable without installing them.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minio import Minio

from crypto import decrypt_stream

_PREFIX = "/objects/"


def _client() -> Minio:
    return Minio(
        endpoint=os.environ["BASELINE_S3_ENDPOINT"],
        access_key=os.environ["BASELINE_S3_ACCESS_KEY"],
        secret_key=os.environ["BASELINE_S3_SECRET_KEY"],
        secure=False,
    )


def _manifest() -> dict[str, dict[str, Any]]:
    entries = json.loads(Path(os.environ["BASELINE_MANIFEST"]).read_text())
    return {
        name: {"object": entry["object"], "key": bytes.fromhex(entry["key"]), "ad": bytes.fromhex(entry["ad"]),
               "size": int(entry["size"])}
        for name, entry in entries.items()
    }


class _Body:
    """Decrypted chunks of one GET; closing it (the WSGI server does) releases the S3 connection."""

    def __init__(self, response: Any, chunks: Iterator[bytes]) -> None:
        self._response = response
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        self._response.close()
        self._response.release_conn()


class Baseline:
    def __init__(self) -> None:
        self.client = _client()
        self.bucket = os.environ["BASELINE_S3_BUCKET"]
        self.objects = _manifest()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        entry = self.objects.get(path[len(_PREFIX):]) if path.startswith(_PREFIX) else None
        if environ.get("REQUEST_METHOD") != "GET" or entry is None:
            start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
            return [b"not found"]
        response = self.client.get_object(self.bucket, entry["object"])
        chunks = decrypt_stream(entry["key"], entry["ad"], response)
        start_response("200 OK", [
            ("Content-Type", "application/octet-stream"),
            ("Content-Length", str(entry["size"])),
            ("Cache-Control", "no-store"),
        ])
        return _Body(response, chunks)


_instance: Baseline | None = None


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The WSGI entry point; the manifest and client are set up by the first request of each worker."""
    global _instance
    if _instance is None:
        _instance = Baseline()
    return _instance(environ, start_response)
