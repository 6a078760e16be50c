"""`GET /api/v1/openapi.json`: the OpenAPI 3.1 document of the whole API, built from the routes themselves.

Paths come from the URL map and bodies from the declarations the views check, so what is described is
what is served. Other blueprints under /api/v1 (the audit API) contribute their own `OPENAPI_PATHS`
(and `OPENAPI_SCHEMAS`, if they define schemas of their own); one document describes the whole API.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from flask import Flask, current_app, jsonify

from vault.api.blueprint import bp
from vault.api.inputs import FormBody, JsonBody
from vault.api.serializers import SCHEMAS
from vault.api.spec import ERROR_STATUSES, Operation, operation, operation_of
from vault.core.actions import Action
from vault.web.guard import permission

PREFIX = "/api/v1"
_PARAM = re.compile(r"<(?:(?P<converter>[a-z]+)(?:\([^)]*\))?:)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)>")
_CACHE_KEY = "vault_openapi"


@bp.get("/openapi.json")
@permission(Action.ACCOUNT_SELF)
@operation("This document", tag="meta", response="OpenApiDocument",
           description="The OpenAPI 3.1 description of every /api/v1 route.")
def openapi_document() -> Any:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if _CACHE_KEY not in app.extensions:
        app.extensions[_CACHE_KEY] = build(app)
    return jsonify(app.extensions[_CACHE_KEY])


def build(app: Flask) -> dict[str, Any]:
    """The document for `app`: this blueprint's described views plus other blueprints' OPENAPI_PATHS."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {**SCHEMAS, "OpenApiDocument": {"type": "object", "required": ["openapi", "paths"]}}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint.partition(".")[0] != bp.name:
            continue
        described = operation_of(app.view_functions[rule.endpoint])
        if described is None:
            continue
        path, parameters = _path_of(rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(rule.endpoint, described, parameters)
            if described.body is not None:
                schemas[described.body.name] = described.body.schema()
    for extra_paths, extra_schemas in _contributions(app):
        for path, item in extra_paths.items():
            full = path if path.startswith(PREFIX) else PREFIX + path
            paths.setdefault(full, {}).update(item)
        schemas.update(extra_schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "vault API",
            "version": "1",
            "description": (
                "Customer files kept in the company's hands. Every call needs a bearer token "
                "(`vault token create USER`); the same access policy as the pages applies, and every "
                "refusal is answered with an Error object whose `code` says why."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "tags": [{"name": name} for name in
                 ("account", "customers", "pool", "documents", "loans", "views", "audit", "meta")],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "A token from `vault token create USER`; cookies are ignored."},
            },
            "schemas": dict(sorted(schemas.items())),
        },
    }


def _path_of(rule: str) -> tuple[str, list[dict[str, Any]]]:
    parameters: list[dict[str, Any]] = []

    def replace(match: re.Match[str]) -> str:
        converter = match.group("converter") or "string"
        schema: dict[str, Any] = (
            {"type": "integer", "minimum": 0, "maximum": 2**31 - 1} if converter == "int" else {"type": "string"}
        )
        parameters.append({"name": match.group("name"), "in": "path", "required": True, "schema": schema})
        return "{" + match.group("name") + "}"

    return _PARAM.sub(replace, rule), parameters


def _operation(endpoint: str, described: Operation, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    item: dict[str, Any] = {
        "operationId": endpoint.partition(".")[2],
        "summary": described.summary,
        "tags": [described.tag],
        "parameters": parameters + [
            {"name": q.name, "in": "query", "required": False, "description": q.description, "schema": q.schema()}
            for q in described.query
        ],
        "responses": {},
    }
    if described.description:
        item["description"] = described.description
    if not item["parameters"]:
        del item["parameters"]
    if isinstance(described.body, JsonBody):
        item["requestBody"] = {
            "required": described.body.required,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{described.body.name}"}}},
        }
    elif isinstance(described.body, FormBody):
        item["requestBody"] = {
            "required": True,
            "content": {"multipart/form-data": {
                "schema": {"$ref": f"#/components/schemas/{described.body.name}"}}},
        }
    if described.binary:
        ok: dict[str, Any] = {
            "description": "The bytes of the file, streamed once.",
            "headers": {
                "Content-Disposition": {"description": "inline, or attachment for a download, with the file name",
                                        "schema": {"type": "string"}},
                "Content-Length": {"schema": {"type": "integer", "minimum": 0}},
                "Cache-Control": {"schema": {"type": "string", "const": "no-store"}},
            },
            "content": {media: {"schema": {"type": "string", "contentMediaType": media}}
                        for media in (m.strip() for m in described.binary_type.split(","))},
        }
    else:
        ok = {"description": "Success.",
              "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{described.response}"}}}}
    item["responses"][str(described.ok)] = ok
    if described.accepted:
        item["responses"]["202"] = {
            "description": "Accepted: the act waits for a second person's approval; the answer is the request.",
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{described.accepted}"}}}}
    for status in described.statuses(bool(parameters)):
        item["responses"][str(status)] = {
            "description": ERROR_STATUSES[status],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    return item


def _contributions(app: Flask) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """OPENAPI_PATHS (and OPENAPI_SCHEMAS) of the other registered blueprints' modules, where defined."""
    found = []
    for blueprint in app.blueprints.values():
        module = sys.modules.get(blueprint.import_name)
        if module is None or blueprint.import_name == __package__:
            continue
        extra = getattr(module, "OPENAPI_PATHS", None)
        if extra:
            found.append((dict(extra), dict(getattr(module, "OPENAPI_SCHEMAS", None) or {})))
    return found
