"""The operator's reads at the command line write their records, as the pages showing the same do, on both
databases: `vault departure show` printed a leaver's customers by name and `vault rotation list` every
open proposal's customer, with no record at all. Now `departure:report` (shown "cli", with the customers)
and `customer:list` ("rotation", with the ids), under the operator's name."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from tests.api.test_review_handover_reads import _handover_scene, _mark, _since
from tests.departure.conftest import run_cli
from vault.core.context import operator_name
from vault.models import Role


def test_departure_show_at_the_command_line_is_a_recorded_read_of_the_report(api: Any, rt: Any, cast: Any,
                                                                             tmp_path: Any) -> None:
    adriatic, baltic, departure = _handover_scene(api)
    mark = _mark(rt)
    shown = run_cli(rt, tmp_path, "departure", "show", "bea")
    assert shown.exit_code == 0 and "Adriatic Foods" in shown.output, shown.output
    [read] = _since(rt, mark)
    assert (read.action, read.actor_id, read.actor_name, read.user_agent, read.subject_user_id) == (
        "departure:report", None, operator_name(), "vault-cli", cast["bea"].id)
    assert json.loads(read.detail) == {"format": "cli", "departure_id": departure["id"],
                                       "customers": sorted([adriatic, baltic])}


def test_rotation_list_at_the_command_line_is_a_recorded_listing(api: Any, rt: Any, users: Any, clock: Any,
                                                                 tmp_path: Any) -> None:
    users.make("mia", Role.BORROWER)
    users.manage("mia", "bob", "bea")
    nordlicht = api.customer("Nordlicht Handel", owner="bob", shared=False)
    mark = _mark(rt)
    # Nothing open yet: nothing shown, nothing recorded.
    assert "0 open proposal(s)" in run_cli(rt, tmp_path, "rotation", "list").output
    assert _since(rt, mark) == []
    clock.advance(timedelta(days=400))
    assert run_cli(rt, tmp_path, "rotation", "propose").exit_code == 0
    mark = _mark(rt)
    listed = run_cli(rt, tmp_path, "rotation", "list")
    assert listed.exit_code == 0 and "Nordlicht Handel" in listed.output, listed.output
    [read] = _since(rt, mark)
    assert (read.action, read.actor_id, read.actor_name, read.user_agent) == (
        "customer:list", None, operator_name(), "vault-cli")
    assert json.loads(read.detail) == {"listing": "rotation", "ids": [nordlicht]}
