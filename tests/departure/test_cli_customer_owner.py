"""`vault customer owner CUSTOMER USER [--reason]`: an operator moves a customer when people change teams,
through the same service as the customer page (recorded `customer:owner` under the operator's name); bad
input is a clear error and changes nothing."""

from __future__ import annotations

import json

from click.testing import CliRunner

from tests.departure.conftest import cli_env, run_cli
from vault.cli import cli
from vault.core.context import operator_name
from vault.models import Customer
from vault.services import pool


def _owner(rt, customer_id: int) -> int | None:
    with rt.db.session() as session:
        return session.get(Customer, customer_id).owner_id


def test_an_operator_moves_customers_by_name_or_id_and_it_is_audited(rt, company, tmp_path):
    vip = company.customer("Vip Holdings", "vip")
    plain = company.customer("Plain Shop")
    moved = run_cli(rt, tmp_path, "customer", "owner", "Vip Holdings", "tom", "--reason", "Sam joins the north team")
    assert moved.exit_code == 0, moved.output
    assert "Vip Holdings: now with tom (was sam)" in moved.output
    assert _owner(rt, vip) == company.ids["tom"] and _owner(rt, plain) == company.ids["sam"]
    (event,) = company.events("customer:owner")
    assert (event.actor_name, event.user_agent, event.customer_id, event.subject_user_id, event.reason_text) == (
        operator_name(), "vault-cli", vip, company.ids["tom"], "Sam joins the north team")
    assert json.loads(event.detail) == {"from": company.ids["sam"], "to": company.ids["tom"]}

    by_id = run_cli(rt, tmp_path, "customer", "owner", str(plain), "sue")
    assert by_id.exit_code == 0 and "Plain Shop: now with sue (was sam)" in by_id.output
    assert _owner(rt, plain) == company.ids["sue"]
    # Already the owner: nothing changes, nothing is recorded.
    again = run_cli(rt, tmp_path, "customer", "owner", "Plain Shop", "sue")
    assert again.exit_code == 0 and "already with sue; nothing changed" in again.output
    assert len(company.events("customer:owner")) == 2
    # The customer's ownership history shows the move, as one made on the page.
    with rt.db.session() as session:
        history = pool.ownership_history(session, session.get(Customer, vip))
    latest = history[0]
    assert (latest.action, latest.person, latest.actor, latest.reason) == (
        "customer:owner", "Tom", operator_name(), "Sam joins the north team")


def test_bad_input_is_a_clear_error_and_moves_nothing(rt, company, tmp_path):
    vip = company.customer("Vip Holdings", "vip")
    for args, message in (
        (("Nope Industries", "tom"), "no customer 'Nope Industries'"),
        (("vip holdings", "tom"), "exact name"),  # a name differently spelt is not taken for the customer
        (("99999999999", "tom"), "no customer"),
        (("999999", "tom"), "no customer"),
        (("Vip Holdings", "zed"), "No such user"),
        (("Vip Holdings", "ann"), "active account manager"),  # an approver owns no customers
        (("Vip Holdings", "tom", "--reason", "x" * 2001), "at most 2000 characters"),
        (("Vip Holdings",), "Missing argument"),
    ):
        result = run_cli(rt, tmp_path, "customer", "owner", *args)
        assert result.exit_code != 0, args
        assert message in result.output, (args, result.output)
    assert _owner(rt, vip) == company.ids["sam"]
    assert company.events("customer:owner") == []


def test_arguments_that_are_not_text_are_a_usage_error(rt, company, tmp_path):
    """A shell argument in another encoding (bytes that are not UTF-8 reach Python as unpaired
    surrogates) is a clear usage error naming the argument, not a database traceback."""
    vip = company.customer("Vip Holdings", "vip")
    for args, hint in ((("Vip\udcffHoldings", "tom"), "CUSTOMER"), (("Vip Holdings", "to\udcffm"), "USERNAME"),
                       (("Vip Holdings", "tom", "--reason", "Team\udce9 change"), "--reason")):
        result = CliRunner().invoke(cli, ["customer", "owner", *args], env=cli_env(rt, tmp_path))
        assert result.exit_code == 2 and result.exception is not None, (args, result.output)
        assert hint in result.output and "UTF-8" in result.output, (args, result.output)
    assert _owner(rt, vip) == company.ids["sam"]
    assert company.events("customer:owner") == []
