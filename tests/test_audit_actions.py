"""Every audit event name is an `AuditAction` member, and the log refuses any other name."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from flask import render_template_string
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


# Where an event name is rightly written out: the two enums that define the names (each value once), and
# the migrations, which are history and must not change when a member is renamed.
_DEFINITIONS = {Path("core/audit_actions.py"), Path("core/actions.py")}
_HISTORY = Path("db/migrations")
# Calls whose string arguments are English for a reader (a catalogue's message id), not a code.
_TRANSLATIONS = {"_", "_l", "N_", "gettext", "lazy_gettext", "ngettext", "lazy_ngettext", "pgettext", "npgettext"}
# Strings that spell an event name and are something else: the audit log's group "public" (the part of an
# action before its colon) by which `web.labels` words the groups; the route mark "public" is its own group.
_NOT_EVENT_NAMES = {(Path("web/labels.py"), "public")}


def _event_names_written_out(package: Path) -> list[str]:
    """Every string in `package`'s code (docstrings, comments and words for a reader aside) that spells an
    audit event name, as "file:line name"."""
    names = {str(a) for a in AuditAction}
    found = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if relative in _DEFINITIONS or relative.is_relative_to(_HISTORY):
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                      and node.body and isinstance(node.body[0], ast.Expr)
                      and isinstance(node.body[0].value, ast.Constant)}
        words = {id(argument) for node in ast.walk(tree)
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _TRANSLATIONS
                 for argument in node.args}
        found += [f"{relative}:{node.lineno} {node.value}" for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names
                  and id(node) not in docstrings and id(node) not in words
                  and (relative, node.value) not in _NOT_EVENT_NAMES]
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


def test_every_layer_names_events_by_their_members(tmp_path: Path) -> None:
    """Outside the services the alerts (`access:resume`, `access:suspend`, `customer:access_restore`), the
    mail's address change (`user:email`), the viewer's refused page (`view:page`, pages and API) and the
    pool's history labels still spelt event names out: a misspelt one is refused by the log only when its
    path runs, and a label keyed by one is silently never shown. All of `vault/` now names them by their
    members; what the check leaves aside (docstrings, the words of a catalogue, the enums themselves, the
    migrations' history) it leaves aside on purpose, and a string anywhere else is found."""
    assert _event_names_written_out(ROOT / "vault") == []
    probe = tmp_path / "probe"
    (probe / "db" / "migrations").mkdir(parents=True)
    (probe / "pages").mkdir()
    (probe / "db" / "migrations" / "old.py").write_text('ACTIONS = ("loan:approve",)\n')
    (probe / "pages" / "queue.py").write_text(
        'from flask_babel import pgettext\n'
        'WORD = pgettext("audit group", "public")\n'
        'DENIED = "view:page"  # a comment may say "loan:approve"\n'
        'LABELS = {"pool:claim": WORD}\n'
        'ASKED = action == "access:resume"\n')
    assert sorted(_event_names_written_out(probe)) == [
        "pages/queue.py:3 view:page", "pages/queue.py:4 pool:claim", "pages/queue.py:5 access:resume"]


def _codes_written_in_templates(folder: Path) -> list[str]:
    """Every quoted string in the templates under `folder` that spells a permission or an event name."""
    names = {str(a) for a in AuditAction}
    return [f"{path.relative_to(folder)}:{number} {match.group(1)}"
            for path in sorted(folder.rglob("*.html"))
            for number, line in enumerate(path.read_text().splitlines(), 1)
            for match in re.finditer(r"""['"]([a-z_]+:[a-z_]+)['"]""", line) if match.group(1) in names]


def test_the_templates_name_permissions_by_their_members(app: Any, tmp_path: Path) -> None:
    """The pages asked `can('loan:approve')` with the code written out: a misspelt one failed only when
    that branch of the page was drawn, and a search for a member's uses missed the templates. They now
    write `can(Action.LOAN_APPROVE)`; `can` refuses anything but a member, and the check finds a code
    written out in a template."""
    assert _codes_written_in_templates(ROOT / "templates") == []
    (tmp_path / "page.html").write_text("{% if can('loan:approve') %}{{ \"view:page\" }}{% endif %}\n"
                                        "{{ can(Action.LOAN_APPROVE) }} {{ _('Reading: %(n)s') }}\n")
    assert _codes_written_in_templates(tmp_path) == ["page.html:1 loan:approve", "page.html:1 view:page"]
    with app.test_request_context():
        assert render_template_string("{{ can(Action.LOAN_APPROVE) }}") == "False"
        with pytest.raises(TypeError, match="Action member"):
            render_template_string("{{ can('loan:approve') }}")
