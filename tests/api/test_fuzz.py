"""Generated requests, valid and invalid, against every operation of the OpenAPI document.

Whatever the input, the answer is never a server error and always one the document describes.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from vault.models import Role

EXAMPLES = 15


def test_no_input_gives_a_server_error_or_an_undocumented_answer(api, users):
    # Every duty but admin and auditor in one person, so requests pass the role gate and reach the
    # input checks and the services (separation of duties refuses them later, which is fine here).
    users.make("omni", Role.BORROWER, Role.COMPILER, Role.APPROVER, Role.CUSTODIAN)
    auth = {"Authorization": f"Bearer {api.token('omni')}"}
    customer_id = api.customer(user="omni")
    document_id = api.upload(customer_id, grade=2, user="omni")
    # Ids of things that exist, so that generated bodies also reach the services, not only "not found".
    existing = {"customer_id": customer_id, "document_id": document_id, "loan_id": api.loan(document_id, "bob")}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", api.app, headers=auth)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 16
    strategies = []
    for operation in operations:
        names = {parameter.name for parameter in operation.path_parameters}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategies.append(operation.as_strategy(mode))
            if names and names <= set(existing):
                strategies.append(operation.as_strategy(mode, path_parameters={n: existing[n] for n in names}))
    strategy = st.one_of(*strategies)
    failures: list[str] = []

    @settings(max_examples=EXAMPLES * len(operations), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case):
        response = case.call(headers=auth)
        label = f"{case.method} {case.formatted_path} -> {response.status_code}"
        if response.status_code >= 500:
            failures.append(f"{label}: {response.text[:300]}")
        documented = case.operation.definition.raw["responses"]
        if str(response.status_code) not in documented and response.status_code not in (404, 405):
            failures.append(f"{label}: status not documented")

    run()
    assert not failures, "\n".join(failures[:20])


pytestmark = pytest.mark.slow
