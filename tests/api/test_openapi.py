"""The OpenAPI document: valid OpenAPI 3.1, and it describes every route under /api/v1 as served."""

from __future__ import annotations

import re

from openapi_spec_validator import validate
from openapi_spec_validator.validation.validators import OpenAPIV31SpecValidator

from tests.api.conftest import assert_error


def _documented_path(rule: str) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule)


def test_the_document_is_valid_openapi_3_1(api):
    response = api.get("/api/v1/openapi.json", "bob")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.1")
    validate(document, cls=OpenAPIV31SpecValidator)
    bearer = document["components"]["securitySchemes"]["bearer"]
    assert (bearer["type"], bearer["scheme"]) == ("http", "bearer")
    assert document["security"] == [{"bearer": []}]


def test_the_document_needs_a_token(api):
    assert_error(api.get("/api/v1/openapi.json"), 401, "not_authenticated")


def test_every_api_route_and_method_is_described(api, app):
    paths = api.get("/api/v1/openapi.json", "aud").get_json()["paths"]
    served = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            served.add((_documented_path(rule.rule), method.lower()))
    described = {(path, method) for path, item in paths.items() for method in item
                 if method in {"get", "post", "put", "patch", "delete"}}
    assert served - described == set(), "routes served but not described"
    assert described - served == set(), "routes described but not served"


def test_every_operation_states_its_answers(api):
    document = api.document
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not path.startswith("/api/v1/") or method not in {"get", "post"}:
                continue
            responses = operation["responses"]
            assert "401" in responses, (method, path)
            assert "403" in responses, (method, path)
            assert any(code in responses for code in ("200", "201")), (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)
            if "requestBody" in operation:
                assert {"413", "415", "422"} <= set(responses), (method, path)
            for code, answer in responses.items():
                if code.startswith(("4", "5")):
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, code)


def test_request_bodies_in_the_document_are_the_ones_checked(api):
    schemas = api.document["components"]["schemas"]
    loan = schemas["LoanRequest"]
    assert loan["required"] == ["document_id", "reason", "category", "place"]
    # Days belong to a loan (the default kind) and to nothing else: required there, refused on an extension;
    # extra views to an extension (named, since it is not the default), refused on a loan.
    assert loan["allOf"] == [{"if": {"properties": {"kind": {"const": "loan"}}},
                              "then": {"required": ["days"]}, "else": {"properties": {"days": False}}},
                             {"if": {"properties": {"kind": {"const": "extension"}}, "required": ["kind"]},
                              "then": {"required": ["extra_views"]}, "else": {"properties": {"extra_views": False}}}]
    assert "default" not in loan["properties"]["extra_views"]
    assert loan["additionalProperties"] is False
    assert schemas["ViewOpen"]["properties"]["download"] == {
        "type": "boolean", "description": schemas["ViewOpen"]["properties"]["download"]["description"],
        "default": False}
    assert schemas["ViewOpen"]["required"] == ["reason", "place"]
    upload = schemas["DocumentUpload"]
    assert set(upload["required"]) == {"file", "title", "grade"}
