"""The streaming response of a document's content, for pages and API alike.

The response is built so the browser shows (or saves) the file and does nothing else with it: no
caching, no type sniffing, and a sandboxing Content-Security-Policy, since a document's bytes are
whatever the uploader made them and must not run as a page of this site.
"""

from __future__ import annotations

from flask import Response

from vault.services import views as views_service

# The browser's own viewers style their page inline (the image viewer does), so inline styles are
# allowed; scripts are not, and the sandbox keeps the document away from this site's origin.
CONTENT_CSP = ("sandbox; default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; "
               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
# Chromium refuses to start its PDF viewer in a sandboxed document, so a PDF gets the same policy without
# the sandbox: uploads are sniffed and can never be HTML, and the viewer runs in its own process.
PDF_CSP = CONTENT_CSP.removeprefix("sandbox; ") + "; object-src 'self'"


def content_response(delivery: views_service.Delivery) -> Response:
    """The streaming response for a delivery (the page and the API route serve it alike)."""
    response = Response(delivery.chunks(), status=200, mimetype=delivery.content_type, direct_passthrough=True)
    response.headers["Content-Length"] = str(delivery.size)
    response.headers["Content-Disposition"] = delivery.disposition
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    pdf = delivery.content_type.split(";")[0].strip() == "application/pdf"
    response.headers["Content-Security-Policy"] = PDF_CSP if pdf else CONTENT_CSP
    return response
