"""Static separation of duties, checked when a role is assigned, and the two-person rule for power.

Approver, custodian, auditor and admin are the roles that decide over others' access (or watch it); one
administrator giving them could build, alone, every account a grade-3 file needs. So one admin asks, and
a second person decides: another admin, or an auditor for the auditor role. A person on notice gets no
role at all on one admin's word, and an administrator (or auditor) on notice neither asks for a role for
anyone nor decides on one (`decider_problem`).

A manager sees the customers of everyone below the person, so naming one is power too: one admin names,
a second admin approves, neither of them the person nor the manager named (taking a manager away narrows
a reach and needs nobody else).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask_babel import lazy_gettext as _l

from vault.core.actions import Action
from vault.models import ManagerRequest, Role, RoleRequest, User, UserStatus
from vault.policy.core import Decision, allow, deny, object_rule
from vault.policy.notice import decider_problem, reach_through_manager

# An auditor watches the people who approve, keep and write files, so must not be one of them; an admin
# manages accounts and must not be able to grant themselves the means to read files.
_CONFLICTS: tuple[tuple[Role, frozenset[Role], str], ...] = (
    (Role.ADMIN, frozenset(Role) - {Role.ADMIN}, "An administrator holds no other role."),
    (Role.AUDITOR, frozenset({Role.APPROVER, Role.CUSTODIAN, Role.COMPILER}),
     "An auditor cannot also be approver, custodian or compiler."),
)


def role_conflict(existing: Iterable[Role], new: Role) -> str | None:
    """The plain-words conflict that adding `new` to `existing` would create, or None."""
    held = set(existing) - {new}
    for role, forbidden, message in _CONFLICTS:
        if (new == role and held & forbidden) or (role in held and new in forbidden):
            return message
    return None


@object_rule(Action.ROLE_ASSIGN)
def _assign(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """`target` is the user receiving `context['role']`; context['pending']: roles already requested for
    them (a conflict with a role still waiting for approval is refused now, not at the approval)."""
    user: User = target
    role = Role(context["role"])
    if user.id == actor.id:
        return deny("separation_of_duties", _l("Nobody may change their own roles."))
    if not (deciding := decider_problem(actor)):
        return deciding
    conflict = role_conflict(user.role_set | frozenset(context.get("pending", ())), role)
    return deny("role_conflict", conflict) if conflict else allow()


# An administrator who created the account, was shown a link of it or set the address one was mailed to.
_HOLDER = _l("You could sign in as this account (you created it, were shown a password link of it, or set the "
             "address one was mailed to): another administrator decides.")

POWER_ROLES = frozenset({Role.APPROVER, Role.CUSTODIAN, Role.AUDITOR, Role.ADMIN})


def needs_second_person(user: User, role: Role, *, holder: bool = False) -> bool:
    """Whether giving `role` to `user` on a page is a request a second person must approve: a role of power,
    any role for a person on notice, and any role from an administrator who may know the account's password
    (`holder`: they created it, were shown a link of it, or set the address one was mailed to;
    `services.accounts.link_holders`), who would
    otherwise give reach to an account they can sign in as."""
    return role in POWER_ROLES or user.status == UserStatus.DEPARTING or holder


@object_rule(Action.ROLE_APPROVE)
def _approve(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """`target` is the pending `RoleRequest`; the same rule decides approving and refusing it.

    `context['holders']`: the administrators who may know the person's password
    (`services.accounts.link_holders`). One of them approving would be deciding on roles of an account they can
    sign in as, their own in effect: the second person would be the first one again."""
    request: RoleRequest = target
    if request.requested_by_id == actor.id:
        return deny("separation_of_duties", _l("The person who asked for a role cannot also approve it."))
    if request.user_id == actor.id:
        return deny("separation_of_duties", _l("Nobody decides on their own roles."))
    if actor.id in context.get("holders", ()):
        return deny("separation_of_duties", _HOLDER)
    if not (deciding := decider_problem(actor)):
        return deciding
    role = Role(request.role)
    if role == Role.AUDITOR and Role.AUDITOR not in actor.role_set:
        return deny("not_permitted", _l("Only an auditor approves the auditor role."))
    if role != Role.AUDITOR and Role.ADMIN not in actor.role_set:
        return deny("not_permitted", _l("Only a second administrator approves this role."))
    conflict = role_conflict(request.user.role_set, role)
    return deny("role_conflict", conflict) if conflict else allow()


@object_rule(Action.MANAGER_APPROVE)
def _approve_manager(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """`target` is the pending `ManagerRequest`; the same rule decides approving and refusing it.

    `context['holders']`: the administrators who may know the password of the manager named
    (`services.accounts.link_holders`), who would see the person's customers through that account.
    `context['step']`: "approve" when the manager would be put in place now; then neither they nor anyone
    above them may be on notice (`reach_through_manager`), even for a request named before the notice.
    Without it, the rule says who may decide the request at all (refusing it stays open)."""
    request: ManagerRequest = target
    if request.requested_by_id == actor.id:
        return deny("separation_of_duties", _l("The person who named a manager cannot also approve it."))
    if actor.id in (request.user_id, request.manager_id):
        return deny("separation_of_duties", _l("Nobody decides on their own line of managers."))
    if actor.id in context.get("holders", ()):
        return deny("separation_of_duties", _HOLDER)
    if not (deciding := decider_problem(actor)):
        return deciding
    return reach_through_manager(request.manager) if context.get("step") == "approve" else allow()
