"""Rules on customers and documents as objects (not on reading their content: see loans and views)."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from vault.core.actions import Action
from vault.models import Document, User
from vault.policy.core import Decision, allow, deny, object_rule
from vault.policy.visibility import customer_worked


@object_rule(Action.DOCUMENT_VERSION)
def _new_version(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    document: Document = target
    if document.compiler_id != actor.id:
        return deny("not_compiler")
    return allow()


@object_rule(Action.DOCUMENT_UPLOAD)
def _upload(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """`target` is the customer; `context['grade']` the grade asked for, `context['custodian']` the
    person named to keep the file, if any. The compiler works the customer by a standing tie
    (`customer_worked`)."""
    grade = context.get("grade")
    if isinstance(grade, bool) or grade not in (1, 2, 3):
        return deny("invalid_grade")
    if not customer_worked(actor, target):
        # A file compiled there would let its compiler see the customer for good: a look-up's day of
        # sight would become standing sight.
        return deny("not_working_customer", _l("You add files only to customers you work (as owner, co-owner, "
                                               "their creator or through your team): a look-up shows a "
                                               "customer, it does not make it yours."))
    custodian: User | None = context.get("custodian")
    if custodian is not None and custodian.id == actor.id:
        # The custodian releases loans of the file; the compiler releasing their own would be one
        # person holding two duties on it.
        return deny("separation_of_duties", _l("The compiler of a file cannot also be its custodian."))
    return allow()
