"""Request input: declared fields, checked strictly, and the same declarations feed the OpenAPI document.

A body is checked as a whole so one answer lists every problem (`fields` maps each bad field to what
is wrong with it). Unknown fields are refused rather than ignored: a misspelt optional field silently
falling back to its default (`"downlaod": true`) is worse than an error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from flask import request
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import FileStorage

from vault.api.errors import ApiError, invalid

# JSON bodies are a few short fields; anything bigger is not a request this API understands.
MAX_JSON_BYTES = 64 * 1024
MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class BelongsTo:
    """Where a field belongs: only in bodies whose `field` has `value` (given, or by its default).

    There it is required; anywhere else it is refused with `elsewhere` rather than dropped: a client that
    sends it believes it means something (days on an extension, which adds views, not time), and an
    answer that quietly ignores it would let that belief stand."""

    field: str
    value: str
    required: str
    elsewhere: str


@dataclass(frozen=True)
class Field:
    """One input field: its JSON type, whether it must be given, and the limits on its value."""

    name: str
    kind: str  # "string" | "integer" | "boolean"
    description: str
    required: bool = True
    default: Any = None
    max_length: int | None = None
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] | None = None
    nullable: bool = False
    # What a person types (a reason, a place, a category, a number of days) is the policy's to judge, with
    # its own reason codes, so that the API refuses what the pages refuse with the same code and the same
    # refusal record. Such a field is checked here for its shape only (its JSON type, text the databases
    # can store, its greatest length); whether it is empty, listed or in range is left to the policy. The
    # schema still says what the policy accepts, for clients to check before they send.
    judged: bool = False
    # A field of one kind of body only (`required` is then ignored: the field is required where it belongs).
    belongs_to: BelongsTo | None = None

    def schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": [self.kind, "null"] if self.nullable else self.kind,
                                  "description": self.description}
        if self.kind == "string" and not self.choices:
            schema["minLength"] = 1 if self.required else 0
        if self.max_length is not None:
            schema["maxLength"] = self.max_length
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        if self.choices:
            schema["enum"] = list(self.choices) + ([None] if self.nullable else [])
        if self.default is not None:
            schema["default"] = self.default
        return schema

    def check(self, value: Any) -> tuple[Any, str | None]:
        """The value converted to its Python form, or an explanation of what is wrong with it."""
        if value is None:
            return (None, None) if self.nullable else (None, "must not be null")
        if self.kind == "string":
            if not isinstance(value, str):
                return None, "must be a string"
            problem = text_problem(value)
            if problem:
                return None, problem
            if self.required and not self.judged and not value.strip():
                return None, "must not be empty"
            if self.max_length is not None and len(value) > self.max_length:
                return None, f"must be at most {self.max_length} characters"
            if self.choices and not self.judged and value not in self.choices:
                return None, "must be one of: " + ", ".join(self.choices)
            return value, None
        if self.kind == "integer":
            # bool is an int in Python, but `true` is not a number in a request.
            if isinstance(value, bool) or not isinstance(value, int):
                return None, "must be a whole number"
            if self.judged:
                return value, None
            if self.minimum is not None and value < self.minimum:
                return None, f"must be at least {self.minimum}"
            if self.maximum is not None and value > self.maximum:
                return None, f"must be at most {self.maximum}"
            return value, None
        if self.kind == "boolean":
            if not isinstance(value, bool):
                return None, "must be true or false"
            return value, None
        raise AssertionError(f"unknown field kind {self.kind}")


@dataclass(frozen=True)
class JsonBody:
    """A JSON object body, named as its OpenAPI component."""

    name: str
    fields: tuple[Field, ...]
    description: str = ""
    required: bool = True  # False: the body may be left out altogether (no fields are then given)

    def schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {f.name: f.schema() for f in self.fields},
            "additionalProperties": False,
        }
        required = [f.name for f in self.fields if f.required and f.belongs_to is None]
        if required:
            schema["required"] = required
        conditions = [_condition(f, self.fields) for f in self.fields if f.belongs_to is not None]
        if conditions:
            schema["allOf"] = conditions
        if self.description:
            schema["description"] = self.description
        return schema

    def parse(self) -> dict[str, Any]:
        """The request's body checked against the fields, with defaults filled in.

        Raises:
            ApiError: 415 when the body is not JSON, 400 when it does not parse, 413 when it is too big,
                422 with every bad field when the values are wrong.
        """
        if not self.required and not _has_body():
            return {f.name: f.default for f in self.fields}
        data = read_json()
        if not isinstance(data, dict):
            raise ApiError(422, "invalid_request", _l("The body must be a JSON object."))
        return check_fields(self.fields, data)


@dataclass(frozen=True)
class FormBody:
    """A multipart/form-data body: text fields plus files."""

    name: str
    fields: tuple[Field, ...]
    files: tuple[str, ...] = ()
    description: str = ""

    def schema(self) -> dict[str, Any]:
        properties: dict[str, Any] = {name: {"type": "string", "contentMediaType": "application/octet-stream",
                                             "description": "The file's bytes, with its name."}
                                      for name in self.files}
        for f in self.fields:
            # Form values travel as text; integers are sent as their decimal digits.
            properties[f.name] = f.schema()
        return {
            "type": "object",
            "properties": properties,
            "required": [*self.files, *(f.name for f in self.fields if f.required)],
            "description": self.description,
        }

    def parse(self) -> tuple[dict[str, Any], dict[str, FileStorage]]:
        """Text fields checked (integers converted from their digits) and the uploaded files.

        Raises:
            ApiError: 415 when the body is not multipart, 422 with every bad or missing field.
        """
        if request.mimetype != "multipart/form-data":
            raise ApiError(415, "multipart_required", _l("The body must be multipart/form-data."))
        # Reading the form is what enforces the size limit (RequestEntityTooLarge → 413).
        form, uploads = request.form, request.files
        problems: dict[str, str] = {}
        raw: dict[str, Any] = {}
        known = {f.name for f in self.fields} | set(self.files)
        for name in set(form) | set(uploads):
            if name not in known:
                # A part whose name did not parse comes back as None; it is still an unknown field.
                problems[name or "(unnamed part)"] = "is not a known field"
        for f in self.fields:
            if f.name not in form:
                continue
            text = form[f.name]
            if f.kind == "integer":
                number = text.strip()
                # ASCII digits only: "²" passes `isdigit` and then fails `int`, and "١" would be taken as 1.
                raw[f.name] = int(number) if number.isascii() and number.isdigit() and len(number) < 12 else text
            else:
                raw[f.name] = text
        values = _check(self.fields, raw, problems)
        files: dict[str, FileStorage] = {}
        for name in self.files:
            upload = uploads.get(name)
            if upload is None or not upload.filename:
                problems[name] = "is required (a file part with a file name)"
            else:
                files[name] = upload
        if problems:
            raise invalid(problems)
        return values, files


@dataclass(frozen=True)
class Query:
    """A query-string parameter."""

    name: str
    kind: str  # "string" | "boolean" | "integer"
    description: str
    choices: tuple[str, ...] | None = None
    max_length: int = 200

    def schema(self) -> dict[str, Any]:
        if self.kind == "boolean":
            return {"type": "string", "enum": ["0", "1", "true", "false"]}
        if self.kind == "integer":
            return {"type": "integer", "minimum": 1, "maximum": MAX_ID}
        schema: dict[str, Any] = {"type": "string", "maxLength": self.max_length}
        if self.choices:
            schema["enum"] = list(self.choices)
        return schema


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as text (the databases refuse NUL and unpaired surrogates), or None."""
    if _CONTROL.search(value):
        return "must not contain control characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text"
    return None


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_query(params: tuple[Query, ...]) -> dict[str, Any]:
    """Query parameters checked like body fields; unknown parameters are refused (422)."""
    problems: dict[str, str] = {}
    values: dict[str, Any] = {}
    known = {p.name for p in params}
    for name in request.args:
        if name not in known:
            problems[name] = "is not a known parameter"
    for param in params:
        text = request.args.get(param.name)
        if text is None:
            values[param.name] = False if param.kind == "boolean" else None
            continue
        if param.kind == "integer":
            number = text.strip()
            if number.isascii() and number.isdigit() and len(number) <= 10 and 1 <= int(number) <= MAX_ID:
                values[param.name] = int(number)
            else:
                problems[param.name] = f"must be a whole number from 1 to {MAX_ID}"
        elif param.kind == "boolean":
            lowered = text.strip().lower()
            if lowered in _TRUE | _FALSE:
                values[param.name] = lowered in _TRUE
            else:
                problems[param.name] = "must be 1 or 0"
        elif text_problem(text):
            problems[param.name] = text_problem(text) or ""
        elif len(text) > param.max_length:
            problems[param.name] = f"must be at most {param.max_length} characters"
        elif param.choices and text not in param.choices:
            problems[param.name] = "must be one of: " + ", ".join(param.choices)
        else:
            values[param.name] = text
    if problems:
        raise invalid(problems)
    return values


def check_fields(fields: tuple[Field, ...], data: dict[str, Any]) -> dict[str, Any]:
    problems = {name: "is not a known field" for name in data if name not in {f.name for f in fields}}
    values = _check(fields, data, problems)
    if problems:
        raise invalid(problems)
    return values


def _check(fields: tuple[Field, ...], data: dict[str, Any], problems: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in fields:
        if f.name not in data:
            if f.required and f.belongs_to is None:
                problems[f.name] = "is required"
            values[f.name] = f.default
            continue
        value, problem = f.check(data[f.name])
        if problem:
            problems[f.name] = problem
        values[f.name] = value
    for f in fields:
        where = f.belongs_to
        # A field whose kind of body is itself wrong is not judged against it: one slip, one problem.
        if where is None or where.field in problems or f.name in problems:
            continue
        if values[where.field] == where.value:
            if f.name not in data:
                problems[f.name] = where.required
        elif f.name in data:
            problems[f.name] = where.elsewhere
    return values


def _condition(f: Field, fields: tuple[Field, ...]) -> dict[str, Any]:
    """The JSON Schema of where `f` belongs: required when the other field has the value, absent otherwise.
    The other field left out counts as its default, so `required` joins the test only when the value is not
    that default."""
    assert f.belongs_to is not None
    where = f.belongs_to
    test: dict[str, Any] = {"properties": {where.field: {"const": where.value}}}
    if next(other.default for other in fields if other.name == where.field) != where.value:
        test["required"] = [where.field]
    return {"if": test, "then": {"required": [f.name]}, "else": {"properties": {f.name: False}}}


def _has_body() -> bool:
    return bool(request.content_length) or request.headers.get("Transfer-Encoding", "").lower() == "chunked"


def read_json() -> Any:
    """The request body parsed as JSON, refusing other media types, oversized and malformed bodies."""
    if not request.is_json:
        raise ApiError(415, "json_required", _l("The body must be JSON (Content-Type: application/json)."))
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise ApiError(413, "too_large", _l("A JSON body may have at most %(limit)s bytes.",
                                            limit=MAX_JSON_BYTES))
    raw = request.stream.read(MAX_JSON_BYTES + 1)
    if len(raw) > MAX_JSON_BYTES:
        raise ApiError(413, "too_large", _l("A JSON body may have at most %(limit)s bytes.",
                                            limit=MAX_JSON_BYTES))
    try:
        return json.loads(raw, object_pairs_hook=_unique_names)
    except _NamedTwice as twice:
        raise ApiError(400, "invalid_json", _l("The body names %(name)s twice in one object; each name may "
                                               "appear once.", name=json.dumps(twice.name))) from None
    except (ValueError, RecursionError):
        raise ApiError(400, "invalid_json", _l("The body is not valid JSON.")) from None


class _NamedTwice(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _unique_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose names are all different. JSON leaves a repeated name to the reader, and readers
    differ: Python keeps the last, others the first. A body that says two things of one field (two
    messaging ids of one service, two reasons, two places) is refused rather than read one way here and
    another way by whatever checked it on the way in."""
    body: dict[str, Any] = {}
    for name, value in pairs:
        if name in body:
            raise _NamedTwice(name)
        body[name] = value
    return body

