"""One search over the customers and files a person may see: by customer name, city, file title, and
account manager (the customer's owner), accents and case ignored on every database.

Matching compares folded keys (`vault.models.customers.name_key`): customers keep `name_key`, their
records `city_key`, documents `title_key`, all written by the models, so "iberica" finds "Ibérica" and
"munchen" finds "München" with a plain LIKE on SQLite and on PostgreSQL alike. A city match finds the
customer only (its files are found by title or account manager).

People's names are folded in Python: the directory of people is small, and an owner
match only narrows rows that the visibility conditions already allow.

Search never widens what a person sees: both queries are filtered in the database by
`policy.visible_customers` / `policy.visible_documents`, exactly like the customer list, and the search is
audited like the list (`customer:search`, with the query and the ids returned).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, and_, exists, false, func, or_, select
from sqlalchemy.orm import Session

from vault import policy
from vault.core.actions import Action
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.core.errors import ServiceError
from vault.models import Customer, CustomerCoOwner, CustomerRecord, Document, DocumentVersion, User
from vault.models.customers import name_key
from vault.runtime import Runtime
from vault.services.customers import record_access

MAX_QUERY = 200
# Each list shows at most this many rows; the page says so when there are more.
LIMIT = 50


@dataclass(frozen=True)
class FileHit:
    """A file found, with what every list of files shows: its customer, grade and type."""

    document: Document
    customer: Customer
    content_type: str | None  # the latest version's media type; None before a first version


@dataclass(frozen=True)
class SearchResult:
    query: str
    mine: bool
    customers: list[Customer]
    files: list[FileHit]
    more_customers: bool
    more_files: bool


def clean_query(query: str | None) -> str:
    """The query as searched: NFC, spaces collapsed, at most `MAX_QUERY` characters.

    Raises:
        ServiceError: `invalid_query` (control characters: no name or title holds one).
    """
    text = " ".join(unicodedata.normalize("NFC", query or "").split())[:MAX_QUERY]
    if any(unicodedata.category(ch) in {"Cc", "Cs"} for ch in text):
        raise ServiceError("invalid_query", _l("A search cannot contain control characters."))
    return text


def _pattern(key: str) -> str:
    escaped = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _owners_matching(session: Session, key: str) -> list[int]:
    """Ids of people whose display name or user name contains `key` once folded."""
    rows = session.execute(select(User.id, User.display_name, User.username)).all()
    return [row.id for row in rows if key in name_key(row.display_name) or key in name_key(row.username)]


def _mine(actor: User) -> ColumnElement[bool]:
    return or_(Customer.owner_id == actor.id, exists().where(
        CustomerCoOwner.customer_id == Customer.id, CustomerCoOwner.user_id == actor.id))


def search(rt: Runtime, session: Session, actor: User, query: str, *, ctx: AccessContext,
           mine: bool = False) -> SearchResult:
    """Customers and files the actor sees whose name, city, title or account manager contains `query`
    (accents and case ignored); `mine` keeps the customers the actor owns or co-owns, and their files.

    Raises:
        policy.Denied: the role gate (`customer:read`: admins and auditors search the audit log instead),
            `access_suspended`.
        ServiceError: `query_required` (nothing to search for), `invalid_query`.
    """
    policy.require(actor, Action.CUSTOMER_READ)
    if actor.customers_suspended_at is not None:
        raise policy.Denied(policy.deny("access_suspended"))
    text = clean_query(query)
    key = name_key(text)
    if not key:
        raise ServiceError("query_required",
                           "Type part of a customer's name or city, a file's title or a person's name.")
    pattern = _pattern(key)
    owners = _owners_matching(session, key)
    by_owner: ColumnElement[bool] = Customer.owner_id.in_(owners) if owners else false()
    customer_scope: ColumnElement[bool] = policy.visible_customers(actor)
    if mine:
        customer_scope = and_(customer_scope, _mine(actor))

    by_city = exists().where(CustomerRecord.customer_id == Customer.id,
                             CustomerRecord.city_key.like(pattern, escape="\\"))
    customers = list(session.scalars(
        select(Customer).where(customer_scope, or_(Customer.name_key.like(pattern, escape="\\"), by_city, by_owner))
        .order_by(func.lower(Customer.name), Customer.id).limit(LIMIT + 1)))

    latest_type = (select(DocumentVersion.content_type).where(DocumentVersion.document_id == Document.id)
                   .order_by(DocumentVersion.number.desc()).limit(1).scalar_subquery())
    document_scope: ColumnElement[bool] = policy.visible_documents(actor)
    if mine:
        document_scope = and_(document_scope, _mine(actor))
    rows = session.execute(
        select(Document, Customer, latest_type).join(Customer, Customer.id == Document.customer_id)
        .where(document_scope, or_(Document.title_key.like(pattern, escape="\\"), by_owner))
        .order_by(Document.title_key, Document.id).limit(LIMIT + 1)).all()
    files = [FileHit(document=doc, customer=customer, content_type=kind) for doc, customer, kind in rows]

    result = SearchResult(query=text, mine=mine, customers=customers[:LIMIT], files=files[:LIMIT],
                          more_customers=len(customers) > LIMIT, more_files=len(files) > LIMIT)
    rt.audit.record(session, action=AuditAction.CUSTOMER_SEARCH, actor=actor, ctx=ctx, reason_text=text[:200],
                    detail={"query": text, "mine": mine, "ids": [c.id for c in result.customers],
                            "documents": [hit.document.id for hit in result.files]})
    # The customers shown, and those of the files shown (a file's hit names its customer).
    shown = dict.fromkeys([c.id for c in result.customers] + [hit.customer.id for hit in result.files])
    record_access(rt, session, actor, list(shown), "search")
    return result
