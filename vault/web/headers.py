"""Security headers on every response: pages, redirects, errors, JSON and static files alike.

The Content-Security-Policy allows no inline script or style at all (templates keep CSS and JS in
files), so an injected `<script>` or `style=` attribute does nothing; images may be `data:` URIs
because the second-factor QR code is drawn by the app as one. HSTS is sent when the site is served
over TLS, as seen by the request (through the configured proxies) or declared by `base_url`.

The referrer goes to this site only ("same-origin"), never elsewhere: over HTTPS the CSRF check
compares the Referer of every form post with the host, so "no-referrer" would refuse every form.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, request

CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HSTS = "max-age=63072000; includeSubDomains"
PERMISSIONS = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"


def served_over_tls() -> bool:
    settings = current_app.extensions["vault"].settings
    return request.is_secure or settings.base_url.lower().startswith("https://")


# Sent unless the response set its own (a viewer page its CSP, a file its caching).
ALWAYS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Permissions-Policy", PERMISSIONS),
)


def install(app: Flask) -> None:
    @app.after_request
    def _security_headers(response: Any) -> Any:
        headers = response.headers
        # The names present, looked up once: a `setdefault` per header raised and caught an exception
        # for every header missing, on every response.
        present = {name.lower() for name, _value in headers.items()}
        wanted = list(ALWAYS)
        if served_over_tls():
            wanted.append(("Strict-Transport-Security", HSTS))
        if request.endpoint != "static":
            wanted.append(("Cache-Control", "no-store"))
        for name, value in wanted:
            if name.lower() not in present:
                headers.add(name, value)
        return response
