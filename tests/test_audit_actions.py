"""Every audit event name is an `AuditAction` member, and the log refuses any other name."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.badinput.scene import build
from vault.core.actions import Action
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.models import AuditEvent
from vault.pages.audit import KNOWN_ACTIONS

ROOT = Path(__file__).resolve().parent.parent


def test_every_permission_is_an_event_name() -> None:
    assert {str(a) for a in Action} <= {str(a) for a in AuditAction}


def test_record_refuses_an_unknown_name_and_writes_nothing(rt: Any) -> None:
    with rt.db.session() as session:
        before = session.scalar(select(func.count()).select_from(AuditEvent))
        with pytest.raises(ValueError, match="not an audit action"):
            rt.audit.record(session, action="loan:aprove", actor=None, ctx=AccessContext.cli())
        session.rollback()
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == before


def test_record_takes_members_and_permissions(rt: Any) -> None:
    with rt.db.session() as session:
        event = rt.audit.record(session, action=Action.LOAN_REVOKE, actor=None, ctx=AccessContext.cli())
        session.commit()
        assert event.action == "loan:revoke"


def test_the_desk_filter_offers_every_event_name() -> None:
    offered = set(KNOWN_ACTIONS)
    assert {str(a) for a in AuditAction if a != AuditAction.PUBLIC} <= offered
    assert {"loan:*", "auth:*", "document:*"} <= offered
    assert all(name in {str(a) for a in AuditAction} or name.endswith(":*") for name in offered)


def test_a_whole_company_leaves_only_known_event_names(rt: Any, users: Any) -> None:
    """The bad-input scene: uploads, loans in every state, a view, a departure, alerts, refusals."""
    build(rt, users)
    with rt.db.session() as session:
        names = set(session.scalars(select(AuditEvent.action).distinct()))
    assert len(names) >= 12
    assert names <= {str(a) for a in AuditAction}, names - {str(a) for a in AuditAction}


def _event_names_written_out(package: Path) -> list[str]:
    """Every string in `package`'s code (docstrings aside) that spells an audit event name, as "file:line name"."""
    names = {str(a) for a in AuditAction}
    found = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                      and node.body and isinstance(node.body[0], ast.Expr)
                      and isinstance(node.body[0].value, ast.Constant)}
        found += [f"{path.relative_to(package)}:{node.lineno} {node.value}" for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names
                  and id(node) not in docstrings]
    return found


def test_the_services_name_events_by_their_members(tmp_path: Path) -> None:
    """The services wrote some event names as plain strings ("customer:co_owner_add"): the log refuses a
    misspelt one only when that path runs, and a search for a member's uses missed them. Every name in the
    services is an `AuditAction` member; the check finds a string written out."""
    assert _event_names_written_out(ROOT / "vault" / "services") == []
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "act.py").write_text('"""A docstring may say "loan:approve"."""\nACTION = "loan:approve"\n')
    assert [hit.rsplit(" ", 1)[1] for hit in _event_names_written_out(probe)] == ["loan:approve"]
