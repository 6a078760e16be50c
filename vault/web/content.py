"""The responses that carry a document's content, for pages and API alike: the stream of a download, and
one stamped page image of the viewer.

The response is built so the browser shows (or saves) the file and does nothing else with it: no
caching, no type sniffing, and a sandboxing Content-Security-Policy, since a document's bytes are
whatever the uploader made them and must not run as a page of this site.
"""

from __future__ import annotations

from flask import Response, url_for

from vault.models import DocumentView
from vault.services import viewer as viewer_service
from vault.services import views as views_service
from vault.web.pipeline import runtime

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


# A stamped page image: shown by the product's own viewer only, never cached, never run.
PAGE_CSP = "sandbox; default-src 'none'; frame-ancestors 'self'"


def page_url_template(view: DocumentView, *, api: bool = False) -> str:
    """The URL of page ``{n}`` of the view (the literal ``{n}`` to be replaced by a 1-based number)."""
    token = viewer_service.page_token(runtime(), view)
    endpoint = "api.view_page" if api else "viewer.page_image"
    return url_for(endpoint, token=token, number=999999999, _external=api).replace("999999999", "{n}")


def page_response(page: viewer_service.StampedPage) -> Response:
    response = Response(page.data, status=200, mimetype=page.media_type)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Content-Disposition"] = "inline"
    return response
