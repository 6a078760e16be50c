"""Static separation of duties, checked when a role is assigned."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vault.core.actions import Action
from vault.models import Role, User
from vault.policy.core import Decision, allow, deny, object_rule

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
    """`target` is the user receiving `context['role']`."""
    user: User = target
    role = Role(context["role"])
    if user.id == actor.id:
        return deny("separation_of_duties", "Nobody may change their own roles.")
    conflict = role_conflict(user.role_set, role)
    return deny("role_conflict", conflict) if conflict else allow()
