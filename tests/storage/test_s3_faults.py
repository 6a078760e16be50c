"""S3Store against endpoints that are down or misbehave: no SeaweedFS needed.

A real S3 server cannot be made to refuse connections, answer 503 or cut a body short on demand, so
these faults come from a closed port and from a small HTTP server that answers as told.
"""

from __future__ import annotations

import http.server
import io
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from storage import ObjectLocked, S3Store, StorageError, StorageUnavailable
from storage.s3 import _http_date

SECRET = "never-shown-secret-value"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def store_at(endpoint: str) -> S3Store:
    # A region given up front: the client would otherwise first ask the server for the bucket's region.
    return S3Store(
        endpoint=endpoint, access_key="vault", secret_key=SECRET, bucket="vault", secure=False, region="us-east-1"
    )


OPERATIONS: dict[str, Callable[[S3Store], object]] = {
    "check": lambda store: store.check(),
    "ensure_ready": lambda store: store.ensure_ready(),
    "put": lambda store: store.put("k", io.BytesIO(b"data")),
    "open": lambda store: store.open("k"),
    "stat": lambda store: store.stat("k"),
    "exists": lambda store: store.exists("k"),
    "list": lambda store: list(store.list("documents/")),
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_closed_port_is_unavailable_at_once(operation: str) -> None:
    port = closed_port()
    store = store_at(f"127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(StorageUnavailable) as raised:
        OPERATIONS[operation](store)
    elapsed = time.monotonic() - started
    message = str(raised.value)
    assert f"127.0.0.1:{port}" in message
    assert "Connection refused" in message
    assert SECRET not in message
    # Guards the retry configuration: minio's default client takes about 6 s to give up here, and a
    # health check must not hang that long.
    assert elapsed < 3


@dataclass
class Answer:
    """What the fake endpoint answers: a status, a body, and optionally a longer announced length."""

    status: int = 503
    body: bytes = b"<html><body>Service unavailable</body></html>"
    announced: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class OddEndpoint:
    endpoint: str
    answer: Answer


class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self) -> None:
        answer: Answer = self.server.answer  # type: ignore[attr-defined]
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(answer.status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(answer.announced or len(answer.body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)
        self.close_connection = True

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def odd() -> Iterator[OddEndpoint]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.answer = Answer()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield OddEndpoint(f"127.0.0.1:{server.server_address[1]}", server.answer)  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("operation", ["check", "put"])
def test_a_failing_server_is_unavailable(odd: OddEndpoint, operation: str) -> None:
    odd.answer.status = 503
    with pytest.raises(StorageUnavailable, match=f"failed repeatedly.*{odd.endpoint}"):
        OPERATIONS[operation](store_at(odd.endpoint))


def test_a_server_error_without_retry_is_unavailable(odd: OddEndpoint) -> None:
    odd.answer.status = 507  # Insufficient Storage: not retried, reported by minio as a server error
    with pytest.raises(StorageUnavailable, match=r"the S3 server failed \(HTTP 507\) trying to stat 'k'"):
        store_at(odd.endpoint).stat("k")


@pytest.mark.parametrize("operation", ["check", "stat"])
def test_a_refusal_without_an_s3_error_code_is_a_storage_error(odd: OddEndpoint, operation: str) -> None:
    odd.answer.status = 400
    with pytest.raises(StorageError, match="refused") as raised:
        OPERATIONS[operation](store_at(odd.endpoint))
    assert not isinstance(raised.value, StorageUnavailable)


@pytest.mark.parametrize("status", [200, 400])
def test_a_web_page_instead_of_a_listing_is_a_storage_error(odd: OddEndpoint, status: int) -> None:
    odd.answer.status = status
    with pytest.raises(StorageError, match="non-S3 answer"):
        list(store_at(odd.endpoint).list())


def test_a_body_cut_short_is_unavailable(odd: OddEndpoint) -> None:
    odd.answer.status, odd.answer.body, odd.answer.announced = 200, b"x" * 1000, 1_000_000
    with store_at(odd.endpoint).open("documents/1") as stream:
        assert stream.read(1000) == b"x" * 1000
        with pytest.raises(StorageUnavailable, match="read 'documents/1'"):
            stream.read(10_000)


RETAIN_UNTIL = "x-amz-object-lock-retain-until-date"


@pytest.mark.parametrize(
    "date", ["not a date", "2999-01-01T00:00:00", "Fri, 01 Jan 2999 00:00:00 GMT", "2999-13-01T00:00:00Z"]
)
def test_an_unreadable_retention_date_refuses_the_delete_as_a_storage_error(odd: OddEndpoint, date: str) -> None:
    """SeaweedFS only sends retention dates it was given in its own format, so an odd one comes from the
    fake endpoint. It raised a bare ValueError (or, without a time zone, a TypeError) that no storage error
    handler catches: a 500. Now it is the store's own error, and the delete is refused, since the object
    may well still be retained."""
    odd.answer.status, odd.answer.body, odd.answer.headers = 200, b"", {RETAIN_UNTIL: date}
    store = store_at(odd.endpoint)
    with pytest.raises(StorageError, match=f"retention date.*{re.escape(repr(date))}.*'documents/1'") as raised:
        store.delete("documents/1")
    assert not isinstance(raised.value, StorageUnavailable | ObjectLocked)
    # Reading the object's size and date does not depend on its retention.
    assert store.stat("documents/1").size == 0
    assert store.exists("documents/1")


def test_a_readable_retention_date_still_locks(odd: OddEndpoint) -> None:
    odd.answer.status, odd.answer.body, odd.answer.headers = 200, b"", {RETAIN_UNTIL: "2999-01-01T00:00:00.123Z"}
    with pytest.raises(ObjectLocked, match="retained until 2999-01-01"):
        store_at(odd.endpoint).delete("documents/1")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"bucket": "bad bucket"}, "invalid bucket name"),
        ({"part_size": 1024 * 1024}, "at least 5 MiB"),
        ({"parallel_uploads": 0}, "at least 1"),
        ({"key_prefix": "tenant"}, "must end with '/'"),
        ({"key_prefix": "/tenant/"}, "absolute"),
        ({"key_prefix": "../tenant/"}, "invalid path component"),
    ],
)
def test_invalid_settings_are_refused_at_construction(options: dict, message: str) -> None:
    settings = {"endpoint": "127.0.0.1:9", "access_key": "a", "secret_key": "b", "bucket": "vault", **options}
    with pytest.raises(ValueError, match=message):
        S3Store(**settings)


def test_describe_and_repr_show_no_secret() -> None:
    store = S3Store(endpoint="s3.example.test", access_key="AKIAEXAMPLE", secret_key=SECRET, bucket="vault")
    assert store.describe() == "S3 bucket 'vault' at https://s3.example.test"
    assert SECRET not in repr(store)
    assert SECRET not in store.describe()


def test_the_put_date_is_read_from_the_answer() -> None:
    assert _http_date("Sun, 22 Nov 2026 13:50:30 GMT") == datetime(2026, 11, 22, 13, 50, 30, tzinfo=UTC)
    assert _http_date("not a date") is None
    assert _http_date(None) is None
