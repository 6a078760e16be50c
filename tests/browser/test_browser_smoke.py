"""The browser harness itself: Chromium renders, runs scripts, and leaves screenshots behind."""

from __future__ import annotations

import functools
import os
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.fixtures.browser import VIEWPORT, shot

pytestmark = pytest.mark.browser

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Harness check</title></head>
<body>
  <h1 id="title">Static page</h1>
  <p id="status">script did not run</p>
  <button id="go" onclick="document.getElementById('status').textContent = 'clicked'">Go</button>
  <script>document.getElementById('status').textContent = 'script ran';</script>
</body></html>
"""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Keep request lines out of the test output."""


@pytest.fixture
def static_site(tmp_path: Path) -> Iterator[str]:
    """Serve one HTML page from a thread on a free loopback port; yield its URL."""
    (tmp_path / "index.html").write_text(PAGE, encoding="utf-8")
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


def test_renders_page_runs_script_and_writes_screenshots(
    page: Page, static_site: str, request: pytest.FixtureRequest
) -> None:
    page.goto(static_site)
    assert page.title() == "Harness check"
    assert page.locator("#title").inner_text() == "Static page"
    assert page.locator("#status").inner_text() == "script ran"
    first = shot(page, "loaded")

    page.get_by_role("button", name="Go").click()
    assert page.locator("#status").inner_text() == "clicked"
    second = shot(page, "after click")

    assert first.name == "01-loaded.png"
    assert second.name == "02-after_click.png"
    assert first.parent.name == f"browser.test_browser_smoke.{request.node.name}"
    assert first.parent.parent.name == "screenshots"
    assert png_size(first)[0] == VIEWPORT["width"]
    assert first.stat().st_size > 1000


def test_each_page_has_its_own_cookies(new_page: Callable[[], Page], static_site: str) -> None:
    first, second = new_page(), new_page()
    first.goto(static_site)
    second.goto(static_site)
    first.evaluate("document.cookie = 'who=first'")
    assert first.evaluate("document.cookie") == "who=first"
    assert second.evaluate("document.cookie") == ""


FAILING_TEST = """
from tests.fixtures.browser import shot

def test_fails(page):
    page.set_content("<h1>before the failure</h1>")
    shot(page, "step")
    assert page.locator("h1").inner_text() == "something else"
"""


def test_failure_leaves_screenshot_and_html(tmp_path: Path) -> None:
    """Run a failing browser test in a separate pytest and look at what it left behind."""
    root = Path(__file__).resolve().parents[2]
    (tmp_path / "test_failing.py").write_text(FAILING_TEST, encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-p", "tests.fixtures.browser", "-q", "-p", "no:cacheprovider",
            "--rootdir", str(tmp_path), "-c", "/dev/null", str(tmp_path / "test_failing.py"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        # Without the installed plugins pytest starts in well under a second instead of about three.
        env={**os.environ, "PYTHONPATH": str(root), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed" in result.stdout, result.stdout + result.stderr
    folder = tmp_path / "test-artifacts" / "screenshots" / "test_failing.test_fails"
    assert sorted(p.name for p in folder.iterdir()) == [
        "01-step.png", "02-failure-page1.html", "02-failure-page1.png"
    ]
    assert "before the failure" in (folder / "02-failure-page1.html").read_text()
    assert png_size(folder / "02-failure-page1.png")[0] == VIEWPORT["width"]
