"""JSON error answers of the API: one shape, `{"error": ..., "code": ...}`, for every failure.

Policy refusals (`policy.Denied`) and plain HTTP errors are turned into this shape by the request
pipeline; this module adds the API's own input errors and the services' `ServiceError`s, which would
otherwise surface as server errors.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import RequestEntityTooLarge

from storage import StorageError, StorageUnavailable
from vault.core.errors import NotFound, ServiceError
from vault.web.pipeline import not_found_response

# Service codes whose HTTP status differs from the service's generic "bad input" (400).
STATUS_BY_CODE: dict[str, int] = {"file_too_large": 413}


class ApiError(Exception):
    """Bad input caught by the API itself, with field-by-field details when there are any."""

    def __init__(self, status: int, code: str, message: object, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = str(message)  # put into words now, in the request's language (a lazy text is allowed)
        self.fields = fields or {}


def invalid(fields: dict[str, str], message: object = None) -> ApiError:
    return ApiError(422, "invalid_request", message or _l("The request is not valid."), fields)


def error_response(status: int, code: str, message: object, fields: dict[str, str] | None = None,
                   **figures: int) -> Any:
    """The one error shape; `figures` are the few numbers an answer documents beside it in the Error object
    (a look-up's slip says how many look-ups are left), so a client need not ask again to know them."""
    body: dict[str, Any] = {"error": str(message), "code": code}
    if fields:
        body["fields"] = fields
    body.update(figures)
    return jsonify(body), status


def install(bp: Blueprint) -> None:
    @bp.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Any:
        return error_response(exc.status, exc.code, exc.message, exc.fields)

    bp.register_error_handler(NotFound, not_found_response)

    @bp.errorhandler(ServiceError)
    def _service_error(exc: ServiceError) -> Any:
        # The request's session is rolled back at teardown: nothing of the failed act is kept.
        return error_response(STATUS_BY_CODE.get(exc.code, exc.status), exc.code, exc.message)

    @bp.errorhandler(StorageError)
    def _storage(exc: StorageError) -> Any:
        current_app.logger.exception("object store failure")
        if isinstance(exc, StorageUnavailable):
            return error_response(503, "storage_unavailable", _l("The file store cannot be reached; try again later."))
        # Reached, but it refused: a full disk is the usual cause, and "cannot be reached" would mislead.
        return error_response(503, "storage_unavailable", _l("The file store refused the operation (it may be out "
                                                             "of space); nothing was saved. Try again later."))

    @bp.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge) -> Any:
        return error_response(413, "too_large", _l("The request body is larger than this server accepts."))
