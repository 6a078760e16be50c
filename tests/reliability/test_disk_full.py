"""The data folder's disk fills up: during an upload, and when the audit log is appended to.

The data folder (SQLite database and local object store, as `make run` sets them up) lives on a real
16 MiB tmpfs, so the kernel itself answers ENOSPC: no fake. Mounting needs root (CI runs as root); on a
machine where it is refused the module is skipped and says why.

What must hold: the user gets a clear error (413/503 with a message, never a 500), nothing half-written
stays behind (no row without object, no object without row, no temporary file), no quota is spent for
the view that could not be recorded, and once space is back the same acts succeed and the chain verifies.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.reliability.deployment import Deployment
from tests.support.factories import Users, make_document
from vault import create_app
from vault.core.context import AccessContext
from vault.models import Document, Role
from vault.services import accounts, agreement, integrity

MIB = 1024 * 1024
VIEW = {"reason": "Prepare the visit to the customer", "place": "Head office", "download": True}
BIG = b"order 4711; Example Industries; 12 units at 31.50; delivered Tuesday.\n" * (20 * MIB // 70)


# One full disk for the module, its state carried from test to test: one worker, in order.
pytestmark = pytest.mark.xdist_group("disk_full")

@pytest.fixture(scope="module")
def small_disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    mount = tmp_path_factory.mktemp("small-disk")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"a 16 MiB tmpfs cannot be mounted here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


class Scene:
    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.rt = deployment.runtime()
        users = Users(self.rt)
        self.tokens = {}
        for name, role in (("ann", Role.BORROWER), ("carl", Role.COMPILER)):
            users.make(name, role)
            with self.rt.db.session() as session:
                agreement.accept(self.rt, session, accounts.get_user(session, name), AccessContext.cli())
            self.tokens[name] = users.token(name)
        with self.rt.db.session() as session:
            carl = accounts.get_user(session, "carl").id
        self.document = make_document(self.rt, compiler_id=carl, grade=1, view_quota=5)
        with self.rt.db.session() as session:
            found = session.get(Document, self.document)
            assert found is not None
            self.customer = found.customer_id
        app = create_app(runtime=self.rt)
        app.config["TESTING"] = True
        self.client = app.test_client()

    def headers(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def upload(self, title: str, body: bytes) -> tuple[int, dict]:
        answer = self.client.post(f"/api/v1/customers/{self.customer}/documents", headers=self.headers("carl"),
                                  data={"title": title, "grade": "1", "file": (io.BytesIO(body), "orders.txt")},
                                  content_type="multipart/form-data")
        return answer.status_code, answer.get_json()

    def open_view(self) -> tuple[int, dict]:
        answer = self.client.post(f"/api/v1/documents/{self.document}/views", json=VIEW, headers=self.headers("ann"))
        return answer.status_code, answer.get_json()

    def titled(self, title: str) -> int:
        with self.rt.db.session() as session:
            return session.scalar(select(func.count()).select_from(Document).where(Document.title == title)) or 0

    def assert_consistent(self) -> None:
        report = integrity.fsck(self.rt, repair=True, min_age=timedelta(0), ctx=AccessContext.cli())
        assert report.ok and not report.orphans, report.summary()
        verified = self.deployment.cli("audit", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.fixture(scope="module")
def scene(small_disk: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    # Keyring and policy outside the small disk: only the data folder fills up.
    deployment = Deployment(tmp_path_factory.mktemp("disk-full"), data_dir=small_disk / "data").init()
    try:
        yield Scene(deployment)
    finally:
        deployment.close()


@contextlib.contextmanager
def disk_filled(folder: Path, leave: int = 0) -> Iterator[None]:
    """Fill the filesystem of `folder` until at most `leave` bytes are free; free it again after."""
    filler = folder / "filler"
    with open(filler, "wb") as out:
        block = b"\0" * MIB
        while shutil.disk_usage(folder).free > leave:
            try:
                out.write(block[: max(4096, min(MIB, shutil.disk_usage(folder).free - leave))])
                out.flush()
            except OSError:
                break
    try:
        yield
    finally:
        filler.unlink()


def _files(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if path.is_file()}


def test_an_upload_larger_than_the_free_space(scene: Scene, small_disk: Path) -> None:
    objects = small_disk / "data" / "objects"
    before = _files(objects) if objects.exists() else set()
    assert shutil.disk_usage(small_disk).free < len(BIG)
    status, body = scene.upload("Too big for the disk", BIG)
    assert status == 503, body
    assert body["code"] == "storage_unavailable" and "out of space" in body["error"], body
    assert scene.titled("Too big for the disk") == 0
    after = _files(objects) if objects.exists() else set()
    assert after == before  # no partial object, no temporary file
    scene.assert_consistent()
    status, body = scene.upload("Small enough", b"order 4711; 12 units.\n" * 100)
    assert status == 201, body


def test_an_audit_append_on_a_full_disk(scene: Scene, small_disk: Path) -> None:
    status, body = scene.open_view()
    assert status == 201, body
    remaining = body["remaining"]
    with disk_filled(small_disk):
        status, body = scene.open_view()
        assert status == 503, body
        assert body["code"] == "database_unavailable" and "nothing was changed" in body["error"]
    status, body = scene.open_view()
    assert status == 201, body
    assert body["remaining"] == remaining - 1  # the refused attempt spent nothing
    scene.assert_consistent()


def test_a_refused_commit_answers_503_with_the_security_headers(scene: Scene, small_disk: Path) -> None:
    # Pooled SQLite connections keep pages in memory, so a full disk may refuse only the commit, after
    # the handler has answered: the pipeline replaces the answer, and the headers still go on it.
    with disk_filled(small_disk):
        answer = scene.client.post(f"/api/v1/documents/{scene.document}/views", json=VIEW,
                                   headers=scene.headers("ann"))
    assert answer.status_code == 503, answer.get_json()
    assert answer.get_json()["code"] == "database_unavailable"
    assert answer.headers["Retry-After"] == "5"
    assert answer.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert answer.headers["Cache-Control"] == "no-store"
    status, body = scene.open_view()
    assert status == 201, body  # the next request, on a fresh connection, is served
    scene.assert_consistent()
