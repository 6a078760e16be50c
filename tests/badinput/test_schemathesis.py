"""The API against its own OpenAPI document, with generated requests, as each role.

Schemathesis reads `/api/v1/openapi.json` from the application (over WSGI), generates valid and
invalid requests for every operation, and sends them with the bearer token of a person holding one
role (borrower, compiler, approver, custodian, auditor, administrator), and as one person holding all
four working duties at once, so every operation passes the role gate and reaches the input checks and
the services (separation of duties refuses that person later, which is fine). Every answer must be no
server error, have a status the document lists for the operation, the content type it lists, and a
body that matches its schema. Half the generated requests name ids that exist, so they reach the
services and not only "not found".
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.badinput.scene import Scene
from vault.models import Role

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 12
# The four working duties are explored in depth by the one person who holds them all; alone, each mostly
# meets the role gate, so half the examples suffice (the suite's time is bounded, not its reach).
EXAMPLES_PER_OPERATION_ONE_DUTY = 6
ROLES = {"borrower": "bob", "compiler": "carl", "approver": "ann", "custodian": "kim", "auditor": "aud",
         "administrator": "adm", "every working duty": "omni"}
OMNI = (Role.BORROWER, Role.COMPILER, Role.APPROVER, Role.CUSTODIAN)


def _existing(scene: Scene) -> dict[str, Any]:
    return {"customer_id": scene.customer, "document_id": scene.doc2, "loan_id": scene.loan_requested}


@pytest.mark.slow
@pytest.mark.parametrize("role", list(ROLES))
def test_every_answer_is_the_documented_one(app: Any, users: Any, scene: Scene, role: str) -> None:
    if ROLES[role] == "omni":
        scene.ids["omni"] = users.make("omni", *OMNI).id
    one_duty = role in {str(duty) for duty in OMNI}
    examples = EXAMPLES_PER_OPERATION_ONE_DUTY if one_duty else EXAMPLES_PER_OPERATION
    headers = {"Authorization": f"Bearer {scene.token(ROLES[role])}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, headers=headers)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 18, [op.label for op in operations]
    existing = _existing(scene)
    strategies = []
    for operation in operations:
        names = {parameter.name for parameter in operation.path_parameters}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategies.append(operation.as_strategy(generation_mode=mode))
            if names and names <= set(existing):
                strategies.append(operation.as_strategy(
                    generation_mode=mode, path_parameters={name: existing[name] for name in names}))
    failures: dict[str, str] = {}
    seen: set[str] = set()

    @settings(max_examples=examples * len(operations), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=st.one_of(*strategies))
    def run(case: Any) -> None:
        seen.add(case.operation.label)
        response = case.call(headers=headers)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (Failure, FailureGroup) as exc:
            label = f"{case.method} {case.formatted_path} -> {response.status_code}"
            failures.setdefault(f"{case.operation.label}: {type(exc).__name__}",
                                f"{label}: {exc}"[:600] + f"\n  body: {response.text[:200]!r}")

    run()
    assert len(seen) >= len(operations) * 3 // 4, sorted(seen)
    assert not failures, "\n\n".join(failures.values())
