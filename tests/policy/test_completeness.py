"""The policy is complete: every action the code asks about a target has an object rule, and asking
about a target no rule covers is an error, never a silent permission."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from vault import policy
from vault.core.actions import Action
from vault.models import Role, User

ROOT = Path(__file__).resolve().parents[2] / "vault"


def _calls_with_target() -> dict[str, list[str]]:
    """`Action.X` → where `authorize`/`require` is called with it and a target (three or more arguments)."""
    found: dict[str, list[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or len(node.args) < 3:
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name not in {"authorize", "require"}:
                continue
            action = node.args[1]
            if isinstance(action, ast.Attribute) and getattr(action.value, "id", "") == "Action":
                found.setdefault(action.attr, []).append(f"{path.relative_to(ROOT.parent)}:{node.lineno}")
    return found


def test_every_action_used_with_a_target_has_an_object_rule() -> None:
    calls = _calls_with_target()
    assert len(calls) >= 15, "the scan found too few calls to mean anything"
    missing = {name: where for name, where in calls.items() if Action[name] not in policy.OBJECT_RULES}
    assert not missing, f"actions used with a target but without an object rule: {missing}"


def test_a_target_without_a_rule_is_an_error_not_a_permission(monkeypatch: pytest.MonkeyPatch) -> None:
    admin = User(id=1, username="ada", display_name="Ada", password_hash="x")
    admin.roles = []
    monkeypatch.setattr(User, "role_set", property(lambda self: frozenset({Role.ADMIN})))
    monkeypatch.delitem(policy.OBJECT_RULES, Action.USER_MANAGE)
    with pytest.raises(policy.MissingRule):
        policy.authorize(admin, Action.USER_MANAGE, admin, change="enable")
    # Without a target only the role gate is asked, as before.
    assert policy.authorize(admin, Action.USER_MANAGE)


@pytest.mark.parametrize("change", ["remove_role", "disable", "reset_second_factor"])
def test_nobody_narrows_their_own_account_unchecked(monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    monkeypatch.setattr(User, "role_set", property(lambda self: frozenset({Role.ADMIN})))
    monkeypatch.setattr(User, "can_sign_in", property(lambda self: True))
    ada, bea = User(id=1, username="ada"), User(id=2, username="bea")
    assert not policy.authorize(ada, Action.USER_MANAGE, ada, change=change)
    assert policy.authorize(ada, Action.USER_MANAGE, bea, change=change)
    assert not policy.authorize(ada, Action.USER_MANAGE, bea, change="anything else")
