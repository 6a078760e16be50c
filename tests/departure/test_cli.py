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
    # Refused at the command line as on the web: nothing done, the refusal recorded under the operator's name.
    (denied,) = company.events("departure:manage", outcome="denied")
    assert (denied.reason_code, denied.actor_name, denied.subject_user_id, denied.user_agent) == (
        "customers_unconfirmed", operator_name(), company.ids["sam"], "vault-cli")
    assert json.loads(denied.detail) == {"command": "vault departure complete"}
    assert not company.events("departure:complete")
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


def test_update_and_reassign_from_the_command_line(rt, company, tmp_path):
    company.customer("Vip Holdings", "vip")
    plain = company.customer("Plain Shop")
    corner = company.customer("Corner Store")
    started = run_cli(rt, tmp_path, "departure", "start", "sam", "--last-day", days_from_today(14).isoformat(),
                      "--successor", "sue", "--notice-date", days_from_today(-10).isoformat())
    assert started.exit_code == 0, started.output
    moved = run_cli(rt, tmp_path, "departure", "update", "sam", "--last-day", days_from_today(20).isoformat(),
                    "--successor", "tom", "--note", "Moving in June")
    assert moved.exit_code == 0, moved.output
    assert f"last working day {days_from_today(20).isoformat()}, successor tom" in moved.output
    (event,) = company.events("departure:update")
    assert (event.actor_name, event.user_agent, event.subject_user_id) == (
        operator_name(), "vault-cli", company.ids["sam"])
    detail = json.loads(event.detail)
    assert detail["successor_id"] == {"from": company.ids["sue"], "to": company.ids["tom"]} and detail["note"]
    with rt.db.session() as session:
        assert {c.owner_id for c in session.scalars(select(Customer))} == {company.ids["tom"]}
    # One customer to someone else, by name; another to the shared pool, by id.
    to_sue = run_cli(rt, tmp_path, "departure", "reassign", "sam", "Plain Shop", "--to", "sue")
    assert to_sue.exit_code == 0 and "Plain Shop: now with sue" in to_sue.output, to_sue.output
    handover = json.loads(company.events("customer:handover")[-1].detail)
    assert (handover["from_user_id"], handover["to_user_id"]) == (company.ids["tom"], company.ids["sue"])
    pooled = run_cli(rt, tmp_path, "departure", "reassign", "sam", str(corner), "--pool")
    assert pooled.exit_code == 0 and "Corner Store: back in the shared pool" in pooled.output, pooled.output
    (returned,) = company.events("pool:return")
    assert (returned.actor_name, returned.customer_id) == (operator_name(), corner)
    with rt.db.session() as session:
        assert session.get(Customer, plain).owner_id == company.ids["sue"]
        assert session.get(Customer, corner).owner_id is None
    shown = run_cli(rt, tmp_path, "departure", "show", "sam").output
    corner_line = next(line for line in shown.splitlines() if "Corner Store" in line)
    assert corner_line.rstrip().endswith("pooled") and "pending" in shown  # not "unassigned": it was pooled
    # A last day moved into the past ends access and carries out the last-day steps at once.
    ended = run_cli(rt, tmp_path, "departure", "update", "sam", "--last-day", days_from_today(-1).isoformat())
    assert ended.exit_code == 0 and "access ended" in ended.output, ended.output
    assert company.refresh("sam").disabled and len(company.events("departure:offboard")) == 1


def test_update_and_reassign_refuse_bad_input_and_change_nothing(rt, company, tmp_path):
    company.customer("Plain Shop")
    other = company.customer("Other Shop", owner="tom")
    for args, message in (
        (("departure", "update", "sam", "--note", "x"), "No such departure"),
        (("departure", "reassign", "sam", "Plain Shop", "--to", "tom"), "No such departure"),
    ):
        result = run_cli(rt, tmp_path, *args)
        assert result.exit_code != 0 and message in result.output, (args, result.output)
    started = run_cli(rt, tmp_path, "departure", "start", "sam", "--last-day", days_from_today(14).isoformat(),
                      "--successor", "sue")
    assert started.exit_code == 0, started.output
    for args, message in (
        (("departure", "update", "sam"), "at least one of"),
        (("departure", "update", "nobody", "--note", "x"), "No such user"),
        (("departure", "update", "sam", "--last-day", "soon"), "Invalid value for '--last-day'"),
        (("departure", "update", "sam", "--last-day", days_from_today(-5).isoformat()), "before the notice"),
        (("departure", "update", "sam", "--successor", "ann"), "account manager"),
        (("departure", "update", "sam", "--successor", "sam"), "someone other than"),
        (("departure", "reassign", "sam", "Plain Shop"), "exactly one of"),
        (("departure", "reassign", "sam", "Plain Shop", "--to", "tom", "--pool"), "exactly one of"),
        (("departure", "reassign", "sam", "plain shop", "--to", "tom"), "no customer 'plain shop'"),
        (("departure", "reassign", "sam", str(other), "--to", "tom"), "no customer"),
        (("departure", "reassign", "sam", "Plain Shop", "--to", "nobody"), "No such user"),
        (("departure", "reassign", "sam", "Plain Shop", "--to", "ann"), "account manager"),
    ):
        result = run_cli(rt, tmp_path, *args)
        assert result.exit_code != 0, args
        assert message in result.output, (args, result.output)
    assert company.events("departure:update") == [] and company.events("pool:return") == []
    assert len(company.events("customer:handover")) == 1  # the notice's own
    done = run_cli(rt, tmp_path, "departure", "complete", "sam")
    assert done.exit_code == 0, done.output
    for args in (("departure", "update", "sam", "--note", "late"),
                 ("departure", "reassign", "sam", "Plain Shop", "--pool")):
        result = run_cli(rt, tmp_path, *args)
        assert result.exit_code != 0 and "(departure_closed)" in result.output, (args, result.output)


def test_withdraw_and_a_notice_recorded_late_from_the_command_line(rt, company, tmp_path):
    plain = company.customer("Plain Shop")
    notice = ("departure", "start", "sam", "--last-day", days_from_today(14).isoformat(), "--successor", "sue")
    refusals = {
        ("departure", "withdraw", "sam"): "Missing option '--reason'",
        ("departure", "withdraw", "sam", "--reason", "stays"): "(reason_too_short)",
        ("departure", "withdraw", "nobody", "--reason", "Sam decided to stay with us"): "No such user",
        ("departure", "withdraw", "tom", "--reason", "Tom decided to stay with us"): "No such departure",
    }
    assert run_cli(rt, tmp_path, *notice).exit_code == 0
    for args, message in refusals.items():
        result = run_cli(rt, tmp_path, *args)
        assert result.exit_code != 0 and message in result.output, (args, result.output)
    assert company.events("departure:withdraw") == [] and company.refresh("sam").status == "departing"
    withdrawn = run_cli(rt, tmp_path, "departure", "withdraw", "sam", "--reason", "Sam decided to stay with us")
    assert withdrawn.exit_code == 0 and "withdrawn" in withdrawn.output, withdrawn.output
    (event,) = company.events("departure:withdraw")
    assert (event.actor_name, event.user_agent, event.subject_user_id, event.reason_text) == (
        operator_name(), "vault-cli", company.ids["sam"], "Sam decided to stay with us")
    assert json.loads(event.detail)["customers_returned"] == [plain]
    assert company.refresh("sam").status == "active"
    with rt.db.session() as session:
        assert session.get(Customer, plain).owner_id == company.ids["sam"]
    # A notice recorded after the last day: access has ended, the last-day steps run at once.
    late = run_cli(rt, tmp_path, "departure", "start", "tom", "--notice-date", days_from_today(-10).isoformat(),
                   "--last-day", days_from_today(-2).isoformat())
    assert late.exit_code == 0 and "access ended" in late.output, late.output
    (offboard,) = company.events("departure:offboard")
    assert (offboard.subject_user_id, offboard.user_agent) == (company.ids["tom"], "vault-cli")
    assert company.refresh("tom").disabled
    refused = run_cli(rt, tmp_path, "departure", "withdraw", "tom", "--reason", "Tom decided to stay with us")
    assert refused.exit_code != 0 and "(already_offboarded)" in refused.output, refused.output
    # A notice still running does not run them.
    ahead = run_cli(rt, tmp_path, "departure", "start", "sam", "--last-day", days_from_today(5).isoformat())
    assert ahead.exit_code == 0 and "access ended" not in ahead.output, ahead.output
    assert len(company.events("departure:offboard")) == 1
