"""`vault departure start|show|complete|report` and `vault departures run|list`, as an operator uses them."""

from __future__ import annotations

import json

from sqlalchemy import select

from tests.departure.conftest import OFFICE, days_from_today, run_cli
from tests.support.factories import reach_main_contact
from vault.core.context import operator_name
from vault.models import Customer, HandoverItem


def test_start_show_complete_from_the_command_line(rt, company, tmp_path):
    vip = company.customer("Vip Holdings", "vip")
    company.customer("Plain Shop")
    last = days_from_today(14).isoformat()
    started = run_cli(rt, tmp_path, "departure", "start", "sam", "--last-day", last, "--successor", "sue",
                      "--note", "Moving abroad")
    assert started.exit_code == 0, started.output
    assert f"last working day {last}" in started.output and "2 (1 key) to sue" in started.output
    (event,) = company.events("departure:start")
    assert (event.actor_name, event.subject_user_id, event.reason_text, event.user_agent) == (
        operator_name(), company.ids["sam"], "Moving abroad", "vault-cli")
    assert json.loads(event.detail)["last_day"] == last
    shown = run_cli(rt, tmp_path, "departure", "show", "sam")
    assert "departing" in shown.output and "Vip Holdings" in shown.output and "pending" in shown.output
    listed = run_cli(rt, tmp_path, "departures", "list")
    assert "sam" in listed.output and "handover 1/2" in listed.output
    refused = run_cli(rt, tmp_path, "departure", "complete", "sam")
    assert refused.exit_code != 0 and "customers_unconfirmed" in refused.output
    reach_main_contact(rt, vip, "sue")
    with rt.db.session() as session:
        item = session.scalar(select(HandoverItem).where(HandoverItem.customer_id == vip))
        from vault.services import departures

        departures.confirm_contact(rt, session, company.user(session, "sue"), item,
                                   contact_date=days_from_today(0), note="Call with the chairman", ctx=OFFICE)
    done = run_cli(rt, tmp_path, "departure", "complete", "sam")
    assert done.exit_code == 0, done.output
    sam = company.refresh("sam")
    assert sam.status == "departed" and sam.disabled
    with rt.db.session() as session:
        assert {c.owner_id for c in session.scalars(select(Customer))} == {company.ids["sue"]}


def test_bad_input_is_a_clear_error_and_changes_nothing(rt, company, tmp_path):
    for args, message in (
        (("departure", "start", "nobody", "--last-day", "2030-01-01"), "No such user"),
        (("departure", "start", "sam", "--last-day", "01/02/2030"), "Invalid value for '--last-day'"),
        (("departure", "start", "sam", "--last-day", "2030-01-01", "--successor", "ann"), "account manager"),
        (("departure", "start", "sam", "--last-day", days_from_today(-5).isoformat()), "before the notice"),
        (("departure", "show", "sam"), "No such departure"),
        (("departure", "report", "sam", "--format", "docx", "--out", "x"), "Invalid value for '--format'"),
    ):
        result = run_cli(rt, tmp_path, *args)
        assert result.exit_code != 0, args
        assert message in result.output, (args, result.output)
    assert company.events("departure:start") == []
    assert company.refresh("sam").status == "active"
    assert run_cli(rt, tmp_path, "departures", "run").output.strip().endswith("0 departure(s) processed")
