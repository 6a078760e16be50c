"""API test helpers: callers by name with their bearer tokens, a cast of people, and every JSON answer
checked against the OpenAPI document (a status or body the document does not describe fails the test).
"""

from __future__ import annotations

import io
import re
from typing import Any

import jsonschema
import pytest
from sqlalchemy import select

from tests.conftest import everyone_works
from tests.mail.smtpd import SmtpServer
from tests.rendering.inputs import pdf_bytes
from vault.api.openapi import build
from vault.core.context import AccessContext
from vault.models import AuditEvent, Role
from vault.services import accounts, agreement, managers

BASE_URL = "https://vault.example.com"  # the public address mails put before their links
PDF = pdf_bytes(1)  # a real one-page PDF: the viewer renders it at upload

# Who plays which part in most tests.
CAST: dict[str, tuple[Role, ...]] = {
    "carl": (Role.COMPILER,),  # uploads files
    "bob": (Role.BORROWER,),
    "bea": (Role.BORROWER,),  # a second borrower, for "another person's" ids
    "ann": (Role.APPROVER,),
    "kim": (Role.CUSTODIAN,),
    "aud": (Role.AUDITOR,),
    "adm": (Role.ADMIN,),
}


class Api:
    """Calls the API as a named person; every answer is checked against the OpenAPI document."""

    def __init__(self, app: Any, client: Any, users: Any) -> None:
        self.app = app
        self.client = client
        self.users = users
        self.tokens: dict[str, str] = {}
        self.document = build(app)

    def token(self, username: str) -> str:
        """A bearer token of `username`, who has accepted the confidentiality agreement (the API's condition)."""
        if username not in self.tokens:
            accept_agreement(self.users.rt, username)
            self.tokens[username] = self.users.token(username)
        return self.tokens[username]

    def call(self, method: str, path: str, user: str | None = None, *, token: str | None = None,
             check: bool = True, **options: Any) -> Any:
        headers = dict(options.pop("headers", {}))
        if user is not None:
            token = self.token(user)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        response = self.client.open(path, method=method, headers=headers, **options)
        # A bearer token's answer never starts a browser session (a flash, a sign-in step, a language choice),
        # nor says it would differ with a cookie, which the API never reads.
        assert token is None or "Set-Cookie" not in response.headers, (path, response.headers)
        assert token is None or "cookie" not in response.headers.get("Vary", "").lower(), (path, response.headers)
        if check:
            self.check(method, path, response)
        return response

    def get(self, path: str, user: str | None = None, **options: Any) -> Any:
        return self.call("GET", path, user, **options)

    def post(self, path: str, user: str | None = None, **options: Any) -> Any:
        return self.call("POST", path, user, **options)

    def check(self, method: str, path: str, response: Any) -> None:
        """The status is documented for this operation, and a JSON body matches its schema."""
        operation = self.operation(method, path)
        if operation is None:  # an unmatched path: only the generic JSON error is expected
            assert response.status_code in (404, 405), (method, path, response.status_code)
            self.validate(response.get_json(), "Error")
            return
        responses = operation["responses"]
        status = str(response.status_code)
        assert status in responses, f"{method} {path} answered {status}, not documented: {response.get_data()[:300]}"
        content = responses[status]["content"]
        if "application/json" in content:
            assert response.mimetype == "application/json", response.mimetype
            schema = content["application/json"]["schema"]
            if "$ref" in schema:
                self.validate(response.get_json(), schema["$ref"].rpartition("/")[2])
            else:  # a schema written in place (an export's manifest: any object)
                jsonschema.Draft202012Validator(schema).validate(response.get_json())

    def validate(self, body: Any, component: str) -> None:
        schema = {"$ref": f"#/components/schemas/{component}", "components": self.document["components"]}
        jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(body)

    def operation(self, method: str, path: str) -> dict[str, Any] | None:
        path = path.split("?", 1)[0]
        if path.startswith("http"):
            path = "/" + path.split("/", 3)[3]
        for template, item in self.document["paths"].items():
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
            if re.match(pattern, path) and method.lower() in item:
                return item[method.lower()]
        return None

    # -- shortcuts for setting the scene through the API itself ----------------------------------------

    def customer(self, name: str = "Acme", user: str = "carl", *, shared: bool = True, **fields: Any) -> int:
        """A customer created by `user` (its owner unless `owner` is given); `shared`: every account manager
        of the scene works it too (`everyone_works`), as tests about other things expect."""
        response = self.post("/api/v1/customers", user, json={"name": name, "segment": "key", **fields})
        assert response.status_code == 201, response.get_json()
        customer_id = response.get_json()["id"]
        if shared:
            everyone_works(self.users.rt, customer_id)
        return customer_id

    def upload(self, customer_id: int, grade: int = 2, user: str = "carl", content: bytes = PDF,
               filename: str = "report.pdf", title: str = "Annual report", **fields: Any) -> int:
        response = self.post(
            f"/api/v1/customers/{customer_id}/documents", user,
            data={"file": (io.BytesIO(content), filename), "title": title, "grade": str(grade), **fields},
            content_type="multipart/form-data",
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    def loan(self, document_id: int, user: str = "bob", **fields: Any) -> int:
        body = {"document_id": document_id, "reason": "Visit on Monday", "category": "visit_preparation",
                "place": "Office", **({} if fields.get("kind") == "extension" else {"days": 5}), **fields}
        response = self.post("/api/v1/loans", user, json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    def approved_loan(self, document_id: int, user: str = "bob", approver: str = "ann") -> int:
        loan_id = self.loan(document_id, user)
        response = self.post(f"/api/v1/loans/{loan_id}/approve", approver, json={"comment": "ok"})
        assert response.status_code == 200, response.get_json()
        return loan_id

    def open_view(self, document_id: int, user: str = "bob", **options: Any) -> Any:
        body = {"reason": "Preparing the visit", "place": "Office", **options.pop("json", {})}
        return self.post(f"/api/v1/documents/{document_id}/views", user, json=body, **options)


@pytest.fixture
def cast(users: Any) -> dict[str, Any]:
    return {name: users.make(name, *roles) for name, roles in CAST.items()}


@pytest.fixture
def api(app: Any, client: Any, users: Any, cast: dict[str, Any]) -> Api:
    return Api(app, client, users)


def accept_agreement(rt: Any, username: str) -> None:
    with rt.db.session() as session:
        agreement.accept(rt, session, accounts.get_user(session, username), AccessContext.cli())


def events(rt: Any, action: str, outcome: str | None = "allowed") -> list[AuditEvent]:
    """Audit events of one action with one outcome (None: any), in order."""
    query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
    if outcome is not None:
        query = query.where(AuditEvent.outcome == outcome)
    with rt.db.session() as session:
        return list(session.scalars(query))


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.get_data()[:500])
    body = response.get_json()
    assert body["code"] == code, body
    assert body["error"]
    return body


@pytest.fixture
def org(api: Any, users: Any, rt: Any) -> dict[str, int]:
    """Who works which customer, as the rules are meant for (no `everyone_works` here): Vera manages Hana,
    who manages Eva and Bob; each owns one customer, Bea co-owns Eva's, and Carl's customer has no owner."""
    users.make("vera", Role.BORROWER)
    users.make("hana", Role.BORROWER)
    users.make("eva", Role.BORROWER)
    with rt.db.session() as session:
        person = {name: accounts.get_user(session, name) for name in ("vera", "hana", "eva", "bob")}
        managers.set_manager(rt, session, person["hana"], person["vera"], actor=None)
        for name in ("eva", "bob"):
            managers.set_manager(rt, session, person[name], person["hana"], actor=None)
    ids = {
        "eva": api.customer("Ibérica Logística", owner="eva", shared=False),
        "bob": api.customer("Nordlicht Handel", owner="bob", shared=False),
        "bea": api.customer("Adriatic Foods", owner="bea", shared=False),
        "carl": api.customer("Carl Direct", shared=False),
    }
    # Bea co-owns Eva's customer (team selling).
    added = api.post(f"/api/v1/customers/{ids['eva']}/co-owners", "hana", json={"user": "bea"})
    assert added.status_code == 200, added.get_json()
    return ids


@pytest.fixture
def smtp() -> Any:
    """A real SMTP server on loopback, for the tests that follow mail to its reader."""
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def mailing(smtp: SmtpServer) -> dict[str, Any]:
    """The settings with which this vault sends mail to `smtp` (a module's `settings_overrides` returns them)."""
    return {"smtp_url": smtp.url(timeout="5"), "mail_from": "vault@example.com", "base_url": BASE_URL}
