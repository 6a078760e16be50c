"""What the journeys do the way a person does it: sign in, follow links, fill forms, read the page.

Every person gets a page of their own (their own cookies) watched by a `Watch`: every request the
browser makes has its host recorded, and anything not on 127.0.0.1 is routed through it, refused and
remembered; every console message reporting a Content-Security-Policy violation is kept with the
page it came from, and so is any script error. `Cast.assert_clean()` at the end of a journey turns
any of them into a failure.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import ConsoleMessage, Download, Locator, Page, Route, expect

from tests.browser.conftest import Vault
from tests.conftest import PASSWORD, second_factor_code
from tests.fixtures.browser import shot
from vault.models import Role
from vault.services import totp

LOCAL_HOST = "127.0.0.1"
# The requests a watch intercepts: those for any other place. Chromium matches the pattern itself, so a
# request for the vault goes straight out instead of stopping in the test for permission (a round trip
# per stylesheet, script and image that cost more than drawing the page); it is still recorded, from
# the context's `request` event.
_ELSEWHERE = re.compile(r"^(?!https?://127\.0\.0\.1[:/])")
# Chromium reports a blocked resource or script as a console error naming the policy; the event
# listener below adds one line per `securitypolicyviolation` event, in case a violation ever comes
# without Chromium's own message.
_CSP_WORDS = ("Content Security Policy", "Content-Security-Policy", "csp-violation")
_CSP_LISTENER = """
document.addEventListener('securitypolicyviolation', (event) => {
  console.error('csp-violation ' + event.violatedDirective + ' ' + (event.blockedURI || 'inline'));
});
"""


@dataclass
class Watch:
    """The hosts a browser context asked for, and the CSP violations its pages reported."""

    hosts: set[str] = field(default_factory=set)
    foreign: list[str] = field(default_factory=list)
    violations: list[tuple[str, str]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    visited: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        """Route every request of `page`'s context through the watch, and listen to its console."""
        page.context.add_init_script(_CSP_LISTENER)
        page.context.on("request", lambda request: self.hosts.add(urlsplit(request.url).hostname or ""))
        page.context.route(_ELSEWHERE, self._route)
        page.on("console", lambda message: self._console(page, message))
        page.on("pageerror", lambda error: self.errors.append((page.url, str(error))))
        page.on("framenavigated", lambda frame: self._navigated(page, frame.url) if frame == page.main_frame else None)

    def _route(self, route: Route) -> None:
        url = route.request.url
        self.hosts.add(urlsplit(url).hostname or "")
        if urlsplit(url).hostname != LOCAL_HOST:
            self.foreign.append(url)
            route.abort("blockedbyclient")
            return
        route.continue_()  # only if the pattern let a local request through: never refuse the vault

    def _console(self, page: Page, message: ConsoleMessage) -> None:
        if any(words in message.text for words in _CSP_WORDS):
            self.violations.append((page.url, message.text))

    def _navigated(self, page: Page, url: str) -> None:
        if url.startswith("http"):
            self.visited.append(urlsplit(url).path)

    def assert_clean(self) -> None:
        assert not self.foreign, f"requests left 127.0.0.1: {self.foreign}"
        assert not self.violations, f"Content-Security-Policy violations: {self.violations}"
        assert not self.errors, f"script errors on the pages: {self.errors}"
        assert self.hosts <= {LOCAL_HOST}, self.hosts


@dataclass
class Person:
    """Someone using vault in their own browser window."""

    name: str
    page: Page
    vault: Vault
    watch: Watch
    password: str = PASSWORD
    # The steps the first sign-in went through (see `sign_in`).
    first_steps: list[str] = field(default_factory=list)

    def go(self, path: str) -> Page:
        self.page.goto(self.vault.url(path))
        return self.page

    def menu(self, label: str) -> Page:
        """Follow a link of the top bar (from whichever page is open)."""
        self.submit(self.page.get_by_role("navigation").get_by_role("link", name=label, exact=True))
        return self.page

    def main(self) -> Locator:
        """The page's own content, without the top bar."""
        return self.page.get_by_role("main")

    def shot(self, step: str) -> Path:
        return shot(self.page, f"{self.name}-{step}")

    def submit(self, button: Locator) -> None:
        """Click a form's button (or a link) and wait for the page the server answers with."""
        _to_middle(button)
        with self.page.expect_navigation():
            button.click()

    def sign_in(self) -> list[str]:
        """Sign in through the forms, settling every step owed; return the steps met, in order.

        The steps are those a person meets: the authenticator code, setting one up (reading the key
        off the page, then the recovery codes), the confidentiality agreement.
        """
        page = self.page
        self.go("/login")
        page.get_by_label("User name").fill(self.name)
        page.get_by_label("Password").fill(self.password)
        self.shot("sign-in")
        self.submit(page.get_by_role("button", name="Sign in"))
        steps: list[str] = []
        for _ in range(5):
            path = urlsplit(page.url).path
            if page.locator("ul.recovery-codes").count():
                steps.append("recovery-codes")
                self.shot("recovery-codes")
                self.submit(page.get_by_role("link", name="I have kept them: continue"))
            elif path == "/login/code":
                steps.append("second-factor")
                page.get_by_label("Code").fill(second_factor_code(self.vault.rt, self.name))
                self.shot("second-factor")
                self.submit(page.get_by_role("button", name="Continue"))
            elif path == "/account/second-factor":
                steps.append("enrol")
                # The key shown on the page is what the person types into their authenticator app.
                secret = page.locator("code.secret").inner_text().strip()
                assert secret, "the enrolment page shows no key"
                page.get_by_label("Code from the app").fill(totp.code_at(secret, totp.time_step()))
                self.shot("enrol-second-factor")
                self.submit(page.get_by_role("button", name="Confirm"))
            elif path == "/agreement":
                steps.append("agreement")
                page.get_by_label("I have read this agreement and accept it.").check()
                self.shot("agreement")
                self.submit(page.get_by_role("button", name="Accept"))
            else:
                break
        expect(page.get_by_role("heading", name=re.compile(r"^Welcome, "))).to_be_visible()
        return steps

    def download(self, trigger: Locator) -> tuple[Download, bytes]:
        """Click `trigger`, which starts a download; return it with the bytes saved."""
        _to_middle(trigger)
        with self.page.expect_download() as info:
            trigger.click()
        download = info.value
        path = download.path()
        assert path is not None, download.failure()
        return download, Path(path).read_bytes()

    def refusal(self) -> str:
        """The plain-words reason on a refusal page (the reason code is shown apart)."""
        reason = self.page.locator(".refusal .reason, .refusal-reason").first
        expect(reason).to_be_visible()
        return reason.inner_text().strip()


class Cast:
    """The people of one journey: `cast.enter("carla", Role.COMPILER)` makes the account, opens a
    window and signs in."""

    def __init__(self, vault: Vault, new_page: Callable[[], Page]) -> None:
        self.vault = vault
        self.new_page = new_page
        self.people: list[Person] = []

    def make(self, name: str, *roles: Role, **options: Any) -> None:
        """The account alone (`second_factor=False`: the person sets up their authenticator in the browser)."""
        self.vault.users.make(name, *roles, **options)

    def window(self, name: str) -> Person:
        """A browser window for an existing account, not yet signed in."""
        page = self.new_page()
        watch = Watch()
        watch.attach(page)
        person = Person(name=name, page=page, vault=self.vault, watch=watch)
        self.people.append(person)
        return person

    def enter(self, name: str, *roles: Role, **options: Any) -> Person:
        self.make(name, *roles, **options)
        person = self.window(name)
        person.first_steps = person.sign_in()
        return person

    def assert_clean(self) -> None:
        """No page any person saw loaded anything from elsewhere or broke the CSP."""
        for person in self.people:
            try:
                person.watch.assert_clean()
            except AssertionError as error:
                raise AssertionError(f"{person.name}: {error}") from None
        assert all(person.watch.visited for person in self.people)


def _to_middle(target: Locator) -> None:
    # After a full-page screenshot, Chromium loses a click on an element at the very bottom edge of
    # the viewport; a person would have scrolled it into view anyway.
    target.evaluate("element => element.scrollIntoView({block: 'center', inline: 'nearest'})")


def message(page: Page, kind: str = "success") -> Locator:
    """The message the server flashed at the top of the page (success, info or error)."""
    return page.locator(f"main > p.flash-{kind}[role=status]")


def post_form(person: Person, action: str, fields: dict[str, str]) -> None:
    """Submit a form the page does not offer, as a person crafting it by hand would (e.g. saved HTML).

    The CSRF token is the one of the person's own session, taken from a form on the current page,
    so the request is refused for what it asks, not for a missing token.
    """
    page = person.page
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token, "no CSRF token on the page"
    with page.expect_navigation():
        page.evaluate(
            """([action, fields]) => {
                const form = document.createElement('form');
                form.method = 'post';
                form.action = action;
                for (const [name, value] of Object.entries(fields)) {
                    const input = document.createElement('input');
                    input.type = 'hidden';
                    input.name = name;
                    input.value = value;
                    form.appendChild(input);
                }
                document.body.appendChild(form);
                form.submit();
            }""",
            [action, {"csrf_token": token, **fields}],
        )
