"""Broken request bodies: uploads that lie about their length, stop mid-part, lose their boundary, or
exceed the limit; JSON bodies that do the same.

Every one gets a clean 4xx (an error page for the pages, the JSON error shape for the API) and leaves
no row and no stored object behind. Most are sent through the WSGI interface with the exact bytes and
headers an attacker would send; the truncated upload is also sent over a real socket to a real HTTP
server, which is where a body that never arrives actually happens.
"""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from tests.badinput.scene import Scene, changed, snapshot
from tests.conftest import login

BOUNDARY = "----vaultboundary7MA4YWxkTrZu0gW"
TEXT = b"A customer file: contacts and prices.\n" * 200


def multipart(fields: dict[str, str], file_name: str = "notes.txt", content: bytes = TEXT,
              boundary: str = BOUNDARY) -> bytes:
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
                 f"Content-Type: text/plain\r\n\r\n".encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts)


def variants(body: bytes, limit: int) -> Iterator[tuple[str, bytes, dict[str, str]]]:
    """(what is wrong, the bytes sent, the headers sent)."""
    kind = f"multipart/form-data; boundary={BOUNDARY}"
    cut = body.index(TEXT[:40]) + 100  # in the middle of the file's bytes
    yield "Content-Length larger than the body", body, {"Content-Type": kind, "Content-Length": str(len(body) + 500)}
    yield "body cut mid-part", body[:cut], {"Content-Type": kind, "Content-Length": str(cut)}
    yield "body cut mid-part, length still claiming it all", body[:cut], {
        "Content-Type": kind, "Content-Length": str(len(body))}
    yield "closing boundary missing", body[: body.rindex(b"--" + BOUNDARY.encode())], {"Content-Type": kind}
    yield "boundary missing from the header", body, {"Content-Type": "multipart/form-data"}
    yield "boundary of the header not in the body", body, {
        "Content-Type": "multipart/form-data; boundary=somethingelse"}
    yield "body not multipart at all", b"\x00\xff" * 500, {"Content-Type": kind}
    yield "empty body", b"", {"Content-Type": kind}
    yield "Content-Length not a number", body, {"Content-Type": kind, "Content-Length": "many"}
    yield "Content-Length above the limit", body, {"Content-Type": kind, "Content-Length": str(limit + 1)}


def _send(client: Any, path: str, data: bytes, headers: dict[str, str], auth: dict[str, str]) -> Any:
    environ: dict[str, Any] = {"wsgi.input": io.BytesIO(data)}
    length = headers.get("Content-Length", str(len(data)))
    environ["CONTENT_LENGTH"] = length
    environ["CONTENT_TYPE"] = headers["Content-Type"]
    return client.open(path, method="POST", headers=auth, environ_overrides=environ)


def _targets(app: Any, scene: Scene) -> list[tuple[str, str, dict[str, str], dict[str, str], Any]]:
    """(label, path, text fields, auth headers, client) for the four upload routes."""
    browser = app.test_client()
    token = login(browser, "carl")
    api = app.test_client()
    auth = {"Authorization": f"Bearer {scene.token('carl')}"}
    page_fields = {"csrf_token": token, "customer": str(scene.customer), "title": "Broken", "grade": "1",
                   "custodian": "0"}
    return [
        ("page upload", "/documents/new", page_fields, {}, browser),
        ("page version", f"/documents/{scene.doc2}/versions", {"csrf_token": token}, {}, browser),
        ("API upload", f"/api/v1/customers/{scene.customer}/documents", {"title": "Broken", "grade": "1"}, auth,
         api),
        ("API version", f"/api/v1/documents/{scene.doc2}/versions", {}, auth, api),
    ]


def test_broken_multipart_bodies_get_a_clean_4xx_and_leave_nothing(app: Any, scene: Scene) -> None:
    limit = app.config["MAX_CONTENT_LENGTH"]
    failures: list[str] = []
    for label, path, fields, auth, client in _targets(app, scene):
        # The well-formed body is accepted: what follows is refused for its breakage alone.
        good = _send(client, path, multipart(fields, "good.txt"), {
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}, auth)
        assert good.status_code in (201, 302), (label, good.status_code, good.get_data()[:300])
        for wrong, data, headers in variants(multipart(fields), limit):
            before = snapshot(scene.rt)
            response = _send(client, path, data, headers, auth)
            what = f"{label}, {wrong}"
            if not 400 <= response.status_code < 500:
                failures.append(f"{what}: {response.status_code} {response.get_data()[:200]!r}")
            if path.startswith("/api/"):
                body = response.get_json(silent=True)
                if not (isinstance(body, dict) and body.get("code") and body.get("error")):
                    failures.append(f"{what}: not the JSON error shape: {response.get_data()[:200]!r}")
            elif response.mimetype != "text/html":
                failures.append(f"{what}: answered {response.mimetype}")
            difference = changed(before, snapshot(scene.rt))
            if difference:
                failures.append(f"{what}: changed {sorted(difference)}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("wrong", ["longer", "cut", "not json", "huge"])
def test_broken_json_bodies_get_a_clean_4xx(app: Any, scene: Scene, wrong: str) -> None:
    body = (b'{"document_id": %d, "reason": "Visit preparation next week", "category": "other", '
            b'"place": "Office", "days": 3}' % scene.doc1)
    data, length = {"longer": (body, len(body) + 100), "cut": (body[:40], 40), "not json": (b"\x00" * 30, 30),
                    "huge": (body, 10**9)}[wrong]
    auth = {"Authorization": f"Bearer {scene.token('sam')}"}
    before = snapshot(scene.rt)
    response = app.test_client().open(
        "/api/v1/loans", method="POST", headers=auth,
        environ_overrides={"wsgi.input": io.BytesIO(data), "CONTENT_LENGTH": str(length),
                           "CONTENT_TYPE": "application/json"})
    assert 400 <= response.status_code < 500, (response.status_code, response.get_data()[:200])
    assert response.get_json()["code"]
    assert not changed(before, snapshot(scene.rt))


# -- over a real socket ---------------------------------------------------------------------------------


@pytest.fixture
def server(app: Any) -> Iterator[tuple[str, int]]:
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1", httpd.server_port
    httpd.shutdown()
    thread.join(timeout=10)


def _raw(address: tuple[str, int], head: str, body: bytes) -> bytes:
    with socket.create_connection(address, timeout=20) as sock:
        sock.sendall(head.encode() + body)
        sock.shutdown(socket.SHUT_WR)  # the client goes away before the promised body has arrived
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_an_upload_whose_body_never_arrives_leaves_nothing(scene: Scene, server: tuple[str, int]) -> None:
    token = scene.token("carl")
    body = multipart({"title": "Broken", "grade": "1"})
    cut = body[: len(body) // 2]
    before = snapshot(scene.rt)
    answer = _raw(server, (
        f"POST /api/v1/customers/{scene.customer}/documents HTTP/1.1\r\nHost: localhost\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"), cut)
    status = answer.split(b"\r\n", 1)[0]
    assert status.split()[1].startswith(b"4"), answer[:300]
    assert not changed(before, snapshot(scene.rt))
    # The server is still answering, and a whole upload still works.
    whole = _raw(server, (
        f"POST /api/v1/customers/{scene.customer}/documents HTTP/1.1\r\nHost: localhost\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"), body)
    assert whole.split(b"\r\n", 1)[0].split()[1] == b"201", whole[:300]


@pytest.mark.parametrize("grade", ["²", "١", "１", "3 3", "99999999999999"])
def test_a_whole_number_field_takes_ascii_digits_only(app: Any, scene: Scene, grade: str) -> None:
    """`str.isdigit` takes "²" (which `int` then refused: a 500) and "١" (taken as grade 1)."""
    auth = {"Authorization": f"Bearer {scene.token('carl')}"}
    before = snapshot(scene.rt)
    response = _send(app.test_client(), f"/api/v1/customers/{scene.customer}/documents",
                     multipart({"title": "Digits", "grade": grade}),
                     {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}, auth)
    assert response.status_code == 422 and response.get_json()["code"] == "invalid_request", response.get_json()
    assert "grade" in response.get_json()["fields"]
    assert not changed(before, snapshot(scene.rt))


# Blank in every way `str.strip` knows (spaces, tabs, no-break and ideographic spaces): empty, as on the pages.
BLANKS = ["", " ", "\t \t", "\u00a0", "\u3000"]


@pytest.mark.parametrize("blank", BLANKS)
def test_a_blank_typed_field_is_the_policys_refusal_and_changes_nothing(app: Any, scene: Scene, blank: str) -> None:
    """A reason or a place left blank is what a person typed, judged by the policy with its own code (as the
    pages judge it), not a body of the wrong shape: 403 with that code, one refusal recorded, nothing spent."""
    auth = {"Authorization": f"Bearer {scene.token('sam')}"}
    client = app.test_client()
    view = {"reason": "Preparing the visit next week", "place": "Office", "category": "other"}  # sam is on notice
    loan = {"document_id": scene.doc3, "reason": "Preparing the visit next week", "category": "other",
            "place": "Office", "days": 3}
    attempts = [
        (f"/api/v1/documents/{scene.doc1}/views", view),
        (f"/api/v1/documents/{scene.doc1}/content", view),
        ("/api/v1/loans", loan),
    ]
    failures = []
    for path, body in attempts:
        for field, code in (("reason", "reason_too_short"), ("place", "place_required")):
            before = snapshot(scene.rt)
            response = client.post(path, headers=auth, json={**body, field: blank})
            answer = response.get_json()
            if response.status_code != 403 or answer.get("code") != code:
                failures.append(f"{path} {field}={blank!r}: {response.status_code} {answer}")
            difference = changed(before, snapshot(scene.rt))
            if difference:
                failures.append(f"{path} {field}={blank!r}: changed {sorted(difference)}")
    assert not failures, "\n".join(failures)
