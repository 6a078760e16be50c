"""The API against its own OpenAPI document, with generated requests, as each role, on both databases.

Schemathesis reads `/api/v1/openapi.json` from the application (over WSGI), generates valid and
invalid requests for every operation, and sends them with the bearer token of a person holding one
role (borrower, compiler, approver, custodian, auditor, administrator), and as one person holding all
four working duties at once, so every operation passes the role gate and reaches the input checks and
the services (separation of duties refuses that person later, which is fine). Every answer must be no
server error, have a status the document lists for the operation, the content type it lists, and a
body that matches its schema. Every operation gets the same number of requests, half valid and half
invalid, and half of those naming ids that exist, so they reach the services and not only "not found".

The same scene is built on SQLite and on PostgreSQL, and each generated request is sent to both, one
after the other: generating a request costs about as much as answering it, so generating once for
both databases saves a third of the test's time without sending either database fewer requests.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.badinput.scene import Scene, build
from tests.conftest import fresh_database, make_app, make_runtime
from tests.support.factories import Users
from vault.models import Role

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 8
# The four working duties are explored in depth by the one person who holds them all; alone, each mostly
# meets the role gate, so half the examples suffice (the suite's time is bounded, not its reach).
EXAMPLES_PER_OPERATION_ONE_DUTY = 4
ROLES = {"borrower": "bob", "compiler": "carl", "approver": "ann", "custodian": "kim", "auditor": "aud",
         "administrator": "adm", "every working duty": "omni"}
OMNI = (Role.BORROWER, Role.COMPILER, Role.APPROVER, Role.CUSTODIAN)


BACKENDS = ("sqlite", "postgresql")


@dataclass
class Company:
    """The scene on one database, and the application that serves it."""

    backend: str
    app: Any
    users: Users
    scene: Scene


@pytest.fixture
def companies(request: pytest.FixtureRequest, tmp_path: Path, keyring_path: Path) -> Iterator[list[Company]]:
    """The scene on each database, side by side (ids agree: both are built the same way on fresh copies)."""
    with contextlib.ExitStack() as stack:
        made = []
        for backend in BACKENDS:
            folder = tmp_path / backend
            folder.mkdir()
            url = stack.enter_context(fresh_database(backend, request, folder))
            rt = make_runtime(folder / "data", url, keyring_path)
            stack.callback(rt.close)
            rt.store.ensure_ready()
            users = Users(rt)
            made.append(Company(backend, make_app(rt), users, build(rt, users)))
        yield made


def _strategies(operation: Any, existing: dict[str, Any]) -> list[Any]:
    """The operation's valid and invalid requests, and the same naming ids that exist where it takes ids."""
    names = {parameter.name for parameter in operation.path_parameters}
    found = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        found.append(operation.as_strategy(generation_mode=mode))
        if names and names <= set(existing):
            found.append(operation.as_strategy(
                generation_mode=mode, path_parameters={name: existing[name] for name in names}))
    return found


def _existing(scene: Scene) -> dict[str, Any]:
    return {"customer_id": scene.customer, "document_id": scene.doc2, "loan_id": scene.loan_requested}


@pytest.mark.slow
@pytest.mark.parametrize("role", list(ROLES))
def test_every_answer_is_the_documented_one(companies: list[Company], role: str) -> None:
    for company in companies:
        if ROLES[role] == "omni":
            company.scene.ids["omni"] = company.users.make("omni", *OMNI).id
    one_duty = role in {str(duty) for duty in OMNI}
    examples = EXAMPLES_PER_OPERATION_ONE_DUTY if one_duty else EXAMPLES_PER_OPERATION
    headers = {c.backend: {"Authorization": f"Bearer {c.scene.token(ROLES[role])}"} for c in companies}
    first = companies[0]
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", first.app, headers=headers[first.backend])
    # One set of generated requests fits both: the same document, and the same ids in both scenes.
    for other in companies[1:]:
        document = other.app.test_client().get("/api/v1/openapi.json", headers=headers[other.backend])
        assert document.get_json() == schema.raw_schema
        assert _existing(other.scene) == _existing(first.scene)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 18, [op.label for op in operations]
    existing = _existing(first.scene)
    failures: dict[str, str] = {}
    seen: set[str] = set()

    def send(case: Any) -> None:
        seen.add(case.operation.label)
        for company in companies:
            sent = headers[company.backend]
            response = case.call(headers=sent, app=company.app)
            try:
                case.validate_response(response, checks=CHECKS, headers=sent)
            except (Failure, FailureGroup) as exc:
                label = f"{company.backend}: {case.method} {case.formatted_path} -> {response.status_code}"
                failures.setdefault(f"{company.backend} {case.operation.label}: {type(exc).__name__}",
                                    f"{label}: {exc}"[:600] + f"\n  body: {response.text[:200]!r}")

    # Each operation gets its share of the examples, split over valid and invalid requests, with random
    # ids and with ids that exist; an operation nothing invalid can be made for gets only valid ones.
    for operation in operations:
        strategies = _strategies(operation, existing)
        for strategy in strategies:
            run = settings(max_examples=max(1, examples // len(strategies)), deadline=None, database=None,
                           suppress_health_check=list(HealthCheck))(given(case=strategy)(send))
            with contextlib.suppress(Unsatisfiable):
                run()
    assert seen == {operation.label for operation in operations}
    assert not failures, "\n\n".join(failures.values())
