"""A stand-in for the peer recipe's measuring client (``loadclient.py``), which CI does not have, copied into
a recipe folder of a test's own: the names and result shapes peer_bench reads, plain ``http.client``
underneath, the clients of a load one after the other, and no figure worth reading.

Faults are injected under load only, by client number, from ``PEER_FAULTS`` (``1=no_token,2=cut``):
``no_token`` drops the Authorization header, so vault refuses for real (401); ``cut`` counts half of a
200 answer's body, as a connection that dropped mid-body would deliver.
"""

from __future__ import annotations

import contextlib
import http.client
import os
from collections import Counter
from collections.abc import Callable
from types import TracebackType
from typing import Any

PORT = [0]
FAULTS = dict(item.split("=") for item in os.environ.get("PEER_FAULTS", "").split(",") if item)
OPS_PER_CLIENT = 3


class Conn:
    """One keep-alive connection; ``request`` returns (status, body or None, bytes received)."""

    def __init__(self, port: int, timeout: float = 60.0, fault: str | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.fault = fault
        self.statuses: Counter[int] = Counter()

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                keep_body: bool = True, digest: Any = None, retry: bool = True) -> tuple[int, bytes | None, int]:
        sent = dict(headers or {})
        if self.fault == "no_token":
            sent.pop("Authorization", None)
        self.conn.request(method, path, body=body, headers=sent)
        response = self.conn.getresponse()
        data = response.read()
        self.statuses[response.status] += 1
        if self.fault == "cut" and response.status == 200 and not keep_body:
            data = data[:len(data) // 2]
        if digest is not None:
            digest.update(data)
        return response.status, data if keep_body else None, len(data)

    def close(self) -> None:
        self.conn.close()


Op = Callable[[Conn], tuple[bool, int]]


def throughput(make_op: Callable[[int], Op], threads: int, duration: float, warmup_ops: int = 2) -> dict[str, Any]:
    ok = bad = 0
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    for i in range(threads):
        op, conn = make_op(i), Conn(PORT[0], fault=FAULTS.get(str(i)))
        for _ in range(OPS_PER_CLIENT):
            try:
                good, _count = op(conn)
            except Exception as exc:  # counted, as the real client does
                good = False
                errors.append(f"{i}: {exc!r}")
            ok, bad = ok + good, bad + (not good)
        statuses.update(conn.statuses)
        conn.close()
    return {"threads": threads, "ops_ok": ok, "ops_failed": bad, "ops_per_s": float(ok), "p50_ms": 1.0,
            "status_counts": {str(k): v for k, v in sorted(statuses.items())},
            "non_2xx": sum(v for k, v in statuses.items() if not 200 <= k < 300), "exceptions": errors}


def latency(op: Op, conn: Conn, rounds: int, warmup: int) -> dict[str, Any]:
    for _ in range(warmup + rounds):
        if not op(conn)[0]:
            raise RuntimeError("operation failed during latency rounds")
    return {"rounds": rounds, "p50_ms": 1.0}


def children_map() -> dict[int, list[int]]:
    """Every process's children, from /proc (peer_bench finds its gunicorn master with it)."""
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError, ValueError), open(f"/proc/{name}/stat") as stat:
                text = stat.read()
                kids.setdefault(int(text[text.rindex(")") + 2:].split()[1]), []).append(int(name))
    return kids


def tree(root: int) -> list[int]:
    return [root]


def cpu_s(pids: list[int]) -> float:
    return 0.0


def mem_snapshot(roots: dict[str, int]) -> dict[str, Any]:
    return {name: {"rss_mib": 0.0} for name in roots}


class Sampler:
    def __init__(self, roots: dict[str, int], interval: float = 0.5) -> None:
        self.roots = roots

    def __enter__(self) -> Sampler:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        return None

    def summary(self) -> dict[str, Any]:
        return {name: {"rss_max_mib": 0.0} for name in self.roots}


def loadavg() -> list[float]:
    return [0.0, 0.0, 0.0]


def wait_quiet(limit: float = 1.0, max_wait: float = 180.0) -> list[float]:
    return loadavg()


def multipart(fields: dict[str, str], file_field: str, filename: str, content: bytes,
              content_type: str = "application/octet-stream") -> tuple[bytes, str]:
    boundary = "standin-boundary-7d1f"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
                 f"Content-Type: {content_type}\r\n\r\n".encode())
    parts += [content, f"\r\n--{boundary}--\r\n".encode()]
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
