"""Customers: creation by compilers, and the policy-scoped list with search by name."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, false, func, select
from sqlalchemy.orm import Session

from vault import policy
from vault.core.actions import Action
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.core.errors import Conflict, ServiceError
from vault.models import Customer, Role, RoleAssignment, Segment, User
from vault.runtime import Runtime

MAX_NAME = 200
PAGE_SIZE = 50
# Account managers: the people a customer relationship can belong to (and be handed over from).
OWNER_ROLES = (Role.COMPILER, Role.BORROWER)


def clean_name(name: str | None) -> str:
    text = " ".join(unicodedata.normalize("NFC", name or "").split())
    if not text:
        raise ServiceError("invalid_name", "A customer needs a name.")
    if len(text) > MAX_NAME:
        raise ServiceError("invalid_name", f"A customer name has at most {MAX_NAME} characters.")
    if any(unicodedata.category(ch) in {"Cc", "Cf"} for ch in text):
        raise ServiceError("invalid_name", "A customer name cannot contain control characters.")
    return text


def owner_choices(session: Session) -> list[User]:
    """Active people who can own a customer relationship."""
    users = session.scalars(
        select(User).join(RoleAssignment, RoleAssignment.user_id == User.id)
        .where(RoleAssignment.role.in_(OWNER_ROLES)).distinct().order_by(User.display_name)
    )
    return [u for u in users if u.can_sign_in]


def find_by_name(session: Session, name: str) -> Customer | None:
    return session.scalar(select(Customer).where(func.lower(Customer.name) == clean_name(name).lower()))


def create_customer(
    rt: Runtime,
    session: Session,
    actor: User,
    *,
    name: str,
    segment: Segment | str,
    owner: User | None = None,
    notes: str = "",
    ctx: AccessContext,
) -> Customer:
    """Create a customer; the owner (account manager) defaults to the creator.

    Raises:
        policy.Denied: the actor may not create customers.
        ServiceError: bad name, segment or owner; Conflict when the name is taken.
    """
    policy.require(actor, Action.CUSTOMER_CREATE)
    name = clean_name(name)
    try:
        segment = Segment(segment)
    except ValueError:
        raise ServiceError("invalid_segment", "The segment must be vip, key or ordinary.") from None
    owner = owner or actor
    if not owner.can_sign_in or not (owner.role_set & set(OWNER_ROLES)):
        raise ServiceError("invalid_owner", "The owner must be an active account manager (compiler or borrower).")
    if find_by_name(session, name) is not None:
        raise Conflict("customer_exists", f"A customer named {name} already exists.")
    customer = Customer(name=name, segment=segment, owner_id=owner.id, notes=notes.strip(), created_by_id=actor.id)
    session.add(customer)
    session.flush()
    rt.audit.record(session, action=AuditAction.CUSTOMER_CREATE, actor=actor, ctx=ctx, customer_id=customer.id,
                    subject_user_id=owner.id, detail={"name": name, "segment": str(segment)})
    return customer


@dataclass(frozen=True)
class CustomerPage:
    customers: list[Customer]
    total: int
    page: int
    pages: int


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def list_customers(session: Session, actor: User, *, query: str = "", page: int = 1,
                   page_size: int = PAGE_SIZE) -> CustomerPage:
    """Customers the actor may see, by name, optionally those whose name contains `query`.

    Raises:
        policy.Denied: the actor's roles do not allow reading customers (admins, auditors).
    """
    policy.require(actor, Action.CUSTOMER_READ)
    condition: ColumnElement[bool] = policy.visible_customers(actor)
    text = " ".join(unicodedata.normalize("NFC", query or "").split())[:MAX_NAME]
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        # No name holds one (see `clean_name`); SQLite would cut the pattern at a NUL and match every
        # name, PostgreSQL refuses the query.
        condition = false()
    elif text:
        condition = and_(condition, func.lower(Customer.name).like(_like_pattern(text), escape="\\"))
    total = session.scalar(select(func.count()).select_from(Customer).where(condition)) or 0
    pages = max(1, -(-total // page_size))
    page = min(max(1, page), pages)
    customers = list(session.scalars(
        select(Customer).where(condition).order_by(func.lower(Customer.name), Customer.id)
        .offset((page - 1) * page_size).limit(page_size)
    ))
    return CustomerPage(customers=customers, total=total, page=page, pages=pages)
