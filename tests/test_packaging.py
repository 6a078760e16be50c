"""The wheel is the product: built, installed into a fresh virtual environment and served, every page
of the demo company's menu answers 200.

A checkout hides packaging mistakes (templates, migrations, static files and data found beside the
source), so the installed package is run from a folder with no checkout in it, and the test checks
that the `vault` it imports is the one inside the new environment.
"""

from __future__ import annotations

import http.cookiejar
import importlib
import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pyotp
import pytest
from flask import Flask, url_for

from vault.app import BLUEPRINTS
from vault.services.demo import DEMO_PASSWORD, USERS
from vault.web import navigation

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "MANIFEST.in", "babel.cfg", "vault", "crypto", "storage", "templates")
pytestmark = pytest.mark.slow
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
_SECRET = re.compile(r'<code class="secret">([A-Z2-7 ]+)</code>')
_LINK = re.compile(r'<nav[^>]*>(.*?)</nav>', re.S)


def _menu_paths() -> set[str]:
    """The path of every menu link, from the blueprints of this checkout."""
    app = Flask("menu")
    for name in BLUEPRINTS:
        app.register_blueprint(importlib.import_module(name).bp)
    with app.test_request_context():
        return {url_for(link.endpoint) for link in navigation.NAV}


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything that would lead the new one to the checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_") and k != "PYTHONPATH"}
    return {**env, **extra}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Browser:
    """Cookies and forms over real HTTP, following redirects as a browser does."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> tuple[int, str, str]:
        try:
            with self.opener.open(self.base + path, timeout=20) as response:
                return response.status, urllib.parse.urlsplit(response.url).path, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, path, exc.read().decode()

    def submit(self, path: str, fields: dict[str, str]) -> tuple[int, str, str]:
        status, _, page = self.get(path)
        assert status == 200, (path, status, page[:300])
        match = _CSRF.search(page)
        assert match, f"no form on {path}"
        data = urllib.parse.urlencode({"csrf_token": match.group(1), **fields}).encode()
        with self.opener.open(self.base + path, data=data, timeout=20) as response:
            return response.status, urllib.parse.urlsplit(response.url).path, response.read().decode()

    def sign_in(self, username: str) -> str:
        """Every step a person goes through the first time; returns the home page."""
        self.submit("/login", {"username": username, "password": DEMO_PASSWORD})
        for _ in range(4):
            status, where, page = self.get("/")  # the guard sends the person to the next step owed
            if where == "/account/second-factor":
                match = _SECRET.search(page)
                assert match, "the enrolment page shows no key"
                self.submit(where, {"code": pyotp.TOTP(match.group(1).replace(" ", "")).now()})
            elif where == "/agreement":
                self.submit(where, {"accept": "y"})
            else:
                break
        assert (status, where) == (200, "/"), (username, status, where, page[:300])
        return page


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment holding the wheel built from this checkout; returns its bin folder."""
    work = tmp_path_factory.mktemp("wheel")
    # Built from a copy of what is tracked, so no build folder is left in (or taken from) the checkout.
    source = work / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(work / "dist"), str(source)], check=True, cwd=work, timeout=180, env=_clean_env())
    (wheel,) = (work / "dist").glob("vault-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    bin_dir = venv / "bin"
    purelib = Path(subprocess.run([str(bin_dir / "python"), "-c", "import sysconfig;print(sysconfig.get_paths()"
                                   "['purelib'])"], check=True, capture_output=True, text=True,
                                  env=_clean_env()).stdout.strip())
    subprocess.run([sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), "install", "--no-deps",
                    "-q", str(wheel)], check=True, cwd=work, timeout=180, env=_clean_env())
    # Then the dependencies: those this test runs with (a plain path, so none of their .pth files runs
    # and no development install of vault is found; added after the install, so pip sees no vault there).
    (purelib / "_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    where = subprocess.run([str(bin_dir / "python"), "-c", "import vault;print(vault.__file__)"], check=True,
                           capture_output=True, text=True, cwd=work, env=_clean_env()).stdout.strip()
    assert Path(where).is_relative_to(venv), where
    return bin_dir


def test_the_installed_wheel_serves_every_menu_page(installed: Path, tmp_path: Path) -> None:
    env = _clean_env(VAULT_DATA_DIR=str(tmp_path / "data"), VAULT_ARGON2_TIME_COST="1",
                     VAULT_ARGON2_MEMORY_KIB="1024")
    subprocess.run([str(installed / "vault"), "demo", "--no-serve"], check=True, cwd=tmp_path, env=env,
                   capture_output=True, timeout=120)
    port = _free_port()
    server = subprocess.Popen([str(installed / "vault"), "run", "--port", str(port)], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/login", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:] if server.stderr else ""
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        expected = _menu_paths()
        fetched: dict[str, int] = {}
        for person in USERS:
            browser = Browser(base)
            home = browser.sign_in(person.username)
            nav = _LINK.search(home)
            assert nav, "the home page has no menu"
            for path in set(re.findall(r'href="([^"]+)"', nav.group(1))) & expected - set(fetched):
                status, _, page = browser.get(path)
                fetched[path] = status
                assert "TemplateNotFound" not in page
        assert fetched == dict.fromkeys(expected, 200)
    finally:
        server.terminate()
        server.wait(timeout=10)
