"""What each API route accepts and answers, declared on the view itself.

The OpenAPI document is built from these declarations and the URL map, so a route cannot be served
without being described, and the described bodies are the very ones the views check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from vault.api.inputs import FormBody, JsonBody, Query

F = TypeVar("F", bound=Callable[..., Any])

# What the error statuses mean, for the document; the body is always the Error object.
ERROR_STATUSES: dict[int, str] = {
    400: "The body could not be read (malformed JSON), or the service refused a value (a file of a type not "
         "accepted, an owner who cannot own customers); `code` says which.",
    401: "No valid bearer token (missing, unknown, revoked or expired; cookies are ignored).",
    403: "Refused by the access policy; `code` says why.",
    404: "No such item, or the caller may not see it.",
    409: "Conflicts with the current state (a name already taken, a document with no file yet).",
    410: "The content URL has already been used or has expired.",
    413: "The request body is larger than the server accepts.",
    415: "The body is not of the required media type.",
    422: "A field is missing or has a wrong value; `fields` says which and why.",
    500: "The stored file cannot be read (it fails authentication); the view was given back.",
    503: "The database (`database_unavailable`: restarting, failing over or out of space; nothing was changed) "
         "or the object store (`storage_unavailable`; for a view: the view was given back) cannot be reached "
         "just now; try again in a moment (the database's answer carries `Retry-After`).",
}


@dataclass(frozen=True)
class Operation:
    summary: str
    tag: str
    ok: int = 200
    response: str | None = None  # an OpenAPI component name; None with `binary` for content
    body: JsonBody | FormBody | None = None
    query: tuple[Query, ...] = ()
    errors: tuple[int, ...] = ()
    description: str = ""
    binary: bool = False
    binary_type: str = "application/octet-stream"  # the media type(s) of a binary answer, comma-separated
    # A second success answer: 202 with this component when the act waits for a second person's approval.
    accepted: str | None = None

    def statuses(self, has_path_params: bool) -> list[int]:
        # 503: any request may meet the database going away (a restart, a failover); nothing is changed.
        codes = {401, 403, 503, *self.errors}
        if self.body is not None:
            # 400: malformed JSON, or bad input the service itself refuses (a file of the wrong type).
            codes |= {400, 413, 415, 422}
        if self.query:
            codes.add(422)
        if has_path_params:
            codes.add(404)
        return sorted(codes)


def operation(summary: str, *, tag: str, **options: Any) -> Callable[[F], F]:
    """Describe an API view for the OpenAPI document (see `Operation` for the options)."""
    described = Operation(summary=summary, tag=tag, **options)

    def mark(view: F) -> F:
        view.api_operation = described  # type: ignore[attr-defined]
        return view

    return mark


def operation_of(view: Callable[..., Any]) -> Operation | None:
    return getattr(view, "api_operation", None)
