"""Rules on reading customers and documents as objects (their content: see loans and views)."""

from __future__ import annotations

from typing import Any

from vault.core.actions import Action
from vault.models import User
from vault.policy.core import Decision, object_rule
from vault.policy.visibility import customer_visible, document_visible


@object_rule(Action.CUSTOMER_READ)
def _read_customer(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """Whether `actor` sees this customer: the same rule as `visible_customers`, for one row."""
    return customer_visible(actor, target)


@object_rule(Action.DOCUMENT_READ)
def _read_document(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """Whether `actor` sees this document's metadata: the same rule as `visible_documents`."""
    return document_visible(actor, target)
