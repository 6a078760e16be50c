"""One list of slips (`policy.SLIPS`), held to the policy so it cannot rot: every code on it is one the policy
words, every refusal its input rules answer is on it (or decided against, in `NOT_SLIPS`), and every code whose
name speaks of typed input is one or the other."""

from __future__ import annotations

import ast
import re
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from vault import policy
from vault.config.policy_file import DEFAULT_GRADES
from vault.core.actions import Action
from vault.models import AlertStatus, LoanKind, LoanStatus, Role, UserStatus
from vault.policy import departures as departure_rules
from vault.policy import loans as loan_rules
from vault.policy import records as record_rules
from vault.policy import views as view_rules
from vault.policy.core import MESSAGES
from vault.policy.slips import NOT_SLIPS, SLIPS

POLICY = Path(__file__).resolve().parents[2] / "vault" / "policy"
# A code whose name speaks of what was typed: a reason, a category, a place, days, views, a comment, a note, a
# date, a query, a name, a secret, a choice out of range.
INPUT_NAME = re.compile(r"reason|categor|place_required|days|views_invalid|quota_invalid|comment|note_|_note|date"
                        r"|contact_before|query|unknown|password|second_factor|code_reused|credentials|^invalid_|_invalid$"
                        r"|_required$|too_short|too_long|download")
TODAY = date(2030, 6, 12)
BLANK = ("", "   ", "ok", "..............", "Visit preparation", "complaint", None)


def _denied_literals() -> set[str]:
    """Every code written as `deny("...")` in the policy's source, and every code `reason_problem` returns."""
    codes: set[str] = set()
    for path in sorted(POLICY.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "deny" and node.args
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                codes.add(node.args[0].value)
    return codes | {code for text in BLANK if (code := loan_rules.reason_problem(text))}


def _person(status: UserStatus = UserStatus.ACTIVE, roles: tuple[Role, ...] = (Role.BORROWER,),
            ident: int = 1) -> Any:
    return SimpleNamespace(id=ident, status=status, role_set=frozenset(roles), can_sign_in=True, manager=None,
                           customers_suspended_at=None)


def _input_refusals() -> list[policy.Decision]:
    """What the policy's input rules answer when everything typed is wrong, field by field and act by act."""
    found: list[policy.Decision] = []
    for text in BLANK:
        found.append(policy.deny(code) if (code := loan_rules.reason_problem(text)) else policy.allow())
    for grade, rule in DEFAULT_GRADES.items():
        for kind in LoanKind:
            for days, extra in ((0, 0), (10_000, 10_000), ("3", "3"), (True, True), (None, None)):
                typed = {"reason": "ok", "category": "not_a_category", "place": " - ", "days": days,
                         "extra_views": extra, "grade": grade}
                found += loan_rules.request_input_problems(rule, typed, kind).values()
                found += loan_rules.request_input_problems(rule, {**typed, "category": None}, kind).values()
        for status in UserStatus:
            for category in (None, "", "not_a_category"):
                typed = {"category": category, "download": True, "reason": "..........", "place": ""}
                found += view_rules.open_input_problems(_person(status), rule, typed).values()
    found += record_rules.reveal_input_problems({"reason": "", "place": "."}).values()
    # A handover contact: no date, one in the future, one before the notice; a note that says nothing.
    departure = SimpleNamespace(is_open=True, notice_date=TODAY - timedelta(days=3), user_id=99, items=[])
    item = SimpleNamespace(departure=departure, to_user_id=1, transferred_at=TODAY, confirmed_at=None)
    for day, note in ((None, "Visited them in person"), (TODAY + timedelta(days=1), "Visited them in person"),
                      (TODAY - timedelta(days=9), "Visited them in person"), (TODAY, "ok")):
        found.append(departure_rules.check_confirmation(item, contact_date=day, note=note, today=TODAY))
    # A waiver, a withdrawn notice, and a resolved alert, each with nothing said.
    waivable = SimpleNamespace(key=True, to_user_id=2, settled=False, disputed=False)
    found.append(departure_rules.check_override(SimpleNamespace(is_open=True, items=[waivable]), "ok"))
    leaver = SimpleNamespace(can_sign_in=True)
    found.append(departure_rules.withdrawal_problem(
        SimpleNamespace(is_open=True, offboarded_at=None, user=leaver), ""))
    alert = SimpleNamespace(user_id=7, status=AlertStatus.OPEN)
    found.append(departure_rules._manage_alert(_person(), alert, {"step": "resolve", "note": "  "}))
    # A rejection without a comment, a revocation and a designation without a reason.
    borrower = SimpleNamespace(id=5, can_sign_in=True, status=UserStatus.ACTIVE)
    document = SimpleNamespace(compiler_id=6, custodian=None)
    requested = SimpleNamespace(borrower_id=5, borrower=borrower, document=document, status=LoanStatus.REQUESTED,
                                approver_ids=[], kind=LoanKind.LOAN, release_required=True, decisions=[])
    found.append(loan_rules._reject(_person(roles=(Role.APPROVER,)), requested, {"comment": " "}))
    active = SimpleNamespace(**{**vars(requested), "status": LoanStatus.ACTIVE})
    found.append(loan_rules._revoke(_person(roles=(Role.CUSTODIAN,)), active, {"reason": "ok"}))
    approved = SimpleNamespace(**{**vars(requested), "status": LoanStatus.APPROVED})
    custodian = _person(roles=(Role.CUSTODIAN,), ident=8)
    found.append(loan_rules._designate(_person(roles=(Role.APPROVER,)), approved,
                                       {"custodian": custodian, "reason": ""}))
    # A quota out of range.
    for views in (-1, loan_rules.MAX_QUOTA + 1, "3", True):
        found.append(loan_rules._quota(_person(roles=(Role.APPROVER,)), document, {"views": views}))
    return found


def test_every_slip_is_a_code_the_policy_words() -> None:
    """A code on the list that no rule answers, or that has no words of the policy's (`message_for` would make
    some from the code), is a typo or a code renamed away: the list must not keep it."""
    denied = _denied_literals()
    assert SLIPS, "the list is empty"
    unworded = sorted(code for code in SLIPS | set(NOT_SLIPS) if code not in MESSAGES)
    assert not unworded, f"codes the policy does not word: {unworded}"
    # Every slip but the look-up's (refused by its service with the policy's words) is answered by a rule.
    assert sorted(SLIPS - denied) == ["query_too_short"]
    assert not SLIPS & set(NOT_SLIPS), "a code both a slip and not one"


def test_every_refusal_of_the_input_rules_is_a_slip_or_decided_against() -> None:
    """The policy's input rules, asked with everything wrong, answer only slips, or a code decided not to be
    one; and every slip about these fields is met, so the enumeration means something."""
    refusals = {decision.code for decision in _input_refusals() if not decision}
    assert not refusals - SLIPS - set(NOT_SLIPS), f"undecided input refusals: {sorted(refusals - SLIPS)}"
    assert refusals & set(NOT_SLIPS) == {"download_not_allowed"}
    assert SLIPS - refusals == {"query_too_short"}


def test_every_code_that_speaks_of_input_is_decided() -> None:
    """A new refusal about something typed (its name says so) must be put on the list or in `NOT_SLIPS` with
    the reason it counts: a slip counted makes the early warning cry wolf; a refusal of reach left out would
    hide probing."""
    codes = _denied_literals() | set(MESSAGES)
    speaking = {code for code in codes if INPUT_NAME.search(code)}
    assert len(speaking) >= 20, "the scan found too few codes to mean anything"
    assert not speaking - SLIPS - set(NOT_SLIPS), f"undecided: {sorted(speaking - SLIPS - set(NOT_SLIPS))}"
    assert speaking >= SLIPS


@pytest.mark.parametrize("code", sorted(SLIPS))
def test_is_slip_answers_yes_for_every_code_on_the_list(code: str) -> None:
    assert policy.is_slip(code)


@pytest.mark.parametrize("code", [None, "not_found", "no_active_loan", "download_not_allowed", "own_departure",
                                  "quota_unknown_person", "separation_of_duties"])
def test_a_refusal_of_reach_is_not_a_slip(code: str | None) -> None:
    assert not policy.is_slip(code)


def test_the_rules_asked_are_the_ones_registered() -> None:
    """The rules called directly above are the ones `authorize` dispatches to, so what they answer is what a
    request meets."""
    assert policy.OBJECT_RULES[Action.LOAN_REJECT] is loan_rules._reject
    assert policy.OBJECT_RULES[Action.LOAN_REVOKE] is loan_rules._revoke
    assert policy.OBJECT_RULES[Action.LOAN_DESIGNATE] is loan_rules._designate
    assert policy.OBJECT_RULES[Action.QUOTA_OVERRIDE] is loan_rules._quota
    assert policy.OBJECT_RULES[Action.ALERT_MANAGE] is departure_rules._manage_alert


def test_a_step_to_take_first_shows_its_form_again_but_is_no_slip():
    """A confirmation refused because the call is not yet in the contact log is shown again with the way to the
    log (the handover's and the rotation's pages alike), yet it counts like any refusal of reach."""
    assert {"contact_not_logged"} == policy.STEPS_FIRST
    for code in policy.STEPS_FIRST:
        assert code in MESSAGES and not policy.is_slip(code) and policy.shows_form_again(code)
    assert all(policy.shows_form_again(code) for code in SLIPS)
    assert not any(policy.shows_form_again(code) for code in (*NOT_SLIPS, "not_found", None))
