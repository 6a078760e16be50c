"""The security policy of a content response depends on what the browser must run to show it."""

from __future__ import annotations

from flask import Flask

from vault.services.views import Delivery
from vault.web.content import content_response


def _headers(content_type: str) -> dict[str, str]:
    delivery = Delivery(view_id=1, filename="f", content_type=content_type, size=0,
                        disposition='inline; filename="f"', download=False, _content=iter(()))  # type: ignore[arg-type]
    with Flask(__name__).test_request_context():
        return dict(content_response(delivery).headers)


def _directives(csp: str) -> dict[str, str]:
    return {part.strip().split(" ")[0]: part.strip() for part in csp.split(";") if part.strip()}


def test_images_and_text_are_sandboxed_without_scripts():
    for kind in ("image/png", "text/plain; charset=utf-8"):
        directives = _directives(_headers(kind)["Content-Security-Policy"])
        assert "sandbox" in directives
        assert "script-src" not in directives and directives["default-src"] == "default-src 'none'"
        assert directives["frame-ancestors"] == "frame-ancestors 'none'"


def test_pdf_is_not_sandboxed_so_the_viewer_starts_but_runs_no_page_script():
    directives = _directives(_headers("application/pdf")["Content-Security-Policy"])
    assert "sandbox" not in directives
    assert directives["default-src"] == "default-src 'none'"
    assert "script-src" not in directives
    assert directives["frame-ancestors"] == "frame-ancestors 'none'"
