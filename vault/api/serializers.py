"""Model objects as JSON, and the OpenAPI schemas of exactly those shapes, side by side.

Keeping each serializer next to its schema is what keeps the document honest: the API tests check
real responses against these schemas.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from vault.audit.browse import MAX_PAGE_SIZE, Names
from vault.audit.chain import record_dict
from vault.audit.filters import OUTCOMES
from vault.models import (
    AuditEvent,
    Category,
    Customer,
    Document,
    DocumentVersion,
    Loan,
    LoanKind,
    LoanStatus,
    Role,
    Segment,
    User,
)
from vault.services.loan_context import Act, DecisionContext
from vault.services.loans import History
from vault.services.search import FileHit


def timestamp(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def user_ref(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.id, "username": user.username, "display_name": user.display_name}


def me(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "roles": sorted(str(role) for role in user.role_set),
        "status": "disabled" if user.disabled else str(user.status),
    }


def customer(item: Customer) -> dict[str, Any]:
    return {
        "id": item.id,
        "name": item.name,
        "segment": str(item.segment),
        "owner": user_ref(item.owner),
        "co_owners": [user_ref(co.user) for co in item.co_owners],
        "created_at": timestamp(item.created_at),
    }


def pool_customer(item: Customer) -> dict[str, Any]:
    """A pooled customer as the pool shows it: name and segment only (need to know)."""
    return {"id": item.id, "name": item.name, "segment": str(item.segment)}


def customer_detail(item: Customer, documents: list[Document]) -> dict[str, Any]:
    return {**customer(item), "documents": [document_summary(d) for d in documents]}


def version(item: DocumentVersion) -> dict[str, Any]:
    return {
        "id": item.id,
        "number": item.number,
        "size": item.size,
        "sha256": item.sha256,
        "content_type": item.content_type,
        "filename": item.original_name,
        "uploaded_by": user_ref(item.uploaded_by),
        "uploaded_at": timestamp(item.uploaded_at),
    }


def document_summary(item: Document) -> dict[str, Any]:
    latest = item.latest
    return {
        "id": item.id,
        "customer_id": item.customer_id,
        "title": item.title,
        "grade": item.grade,
        "latest_version": latest.number if latest else None,
        "created_at": timestamp(item.created_at),
    }


def file_hit(hit: FileHit) -> dict[str, Any]:
    """A file found by search: its summary, its customer's name and its type (the latest version's)."""
    return {**document_summary(hit.document), "customer": hit.customer.name, "content_type": hit.content_type}


def document(item: Document, remaining_views: int | None) -> dict[str, Any]:
    return {
        **document_summary(item),
        "compiler": user_ref(item.compiler),
        "custodian": user_ref(item.custodian),
        "versions": [version(v) for v in item.versions],
        "remaining_views": remaining_views,
    }


def loan(item: Loan) -> dict[str, Any]:
    return {
        "id": item.id,
        "kind": str(item.kind),
        "status": str(item.status),
        "document_id": item.document_id,
        "borrower": user_ref(item.borrower),
        "reason": item.reason,
        "category": str(item.category),
        "place": item.declared_place,
        "days": item.days,
        "extra_views": item.extra_views,
        "approvals_required": item.approvals_required,
        "release_required": item.release_required,
        "decisions": [
            {"approver": user_ref(d.approver), "decision": d.decision, "comment": d.comment,
             "decided_at": timestamp(d.decided_at)}
            for d in item.decisions
        ],
        "requested_at": timestamp(item.requested_at),
        "approved_at": timestamp(item.approved_at),
        "released_by": user_ref(item.released_by),
        "released_at": timestamp(item.released_at),
        "due_at": timestamp(item.due_at),
        "closed_at": timestamp(item.closed_at),
        "closed_by": user_ref(item.closed_by),
        "close_reason": item.close_reason,
    }


def audit_event(event: AuditEvent, names: Names, prev_mac: str | None) -> dict[str, Any]:
    """A record as the chain holds it (the fields its MAC covers, `shard` and `shard_seq` only for a
    sharded record), its `mac` and the `prev_mac` it chains from, and beside them today's names of whom
    and what it mentions (outside the MAC: names change, records do not)."""
    return {
        **record_dict(event),
        "mac": event.mac,
        "prev_mac": prev_mac,
        "names": {
            "actor": names.user.get(event.actor_id) if event.actor_id else None,
            "customer": names.customer.get(event.customer_id) if event.customer_id else None,
            "document": names.document.get(event.document_id) if event.document_id else None,
            "subject_user": names.user.get(event.subject_user_id) if event.subject_user_id else None,
        },
    }


# -- schemas -----------------------------------------------------------------------------------------

def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable_ref(name: str) -> dict[str, Any]:
    return {"oneOf": [_ref(name), {"type": "null"}]}


def _object(properties: dict[str, Any], description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


_ID = {"type": "integer", "minimum": 1}
_TS = {"type": "string", "format": "date-time"}
_TS_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_TEXT = {"type": "string"}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "description": "Every error answer. `code` is stable and meant for programs; `error` is for people.",
        "properties": {
            "error": {"type": "string"},
            "code": {"type": "string", "examples": ["not_authenticated", "not_permitted", "not_found",
                                                    "invalid_request", "no_active_loan", "quota_exhausted",
                                                    "place_not_trusted", "separation_of_duties",
                                                    "download_not_allowed"]},
            "fields": {"type": "object", "additionalProperties": {"type": "string"},
                       "description": "For `invalid_request`: each bad field or parameter and what is wrong."},
            "remaining_today": {"type": "integer", "minimum": 0,
                                "description": "For a look-up's `query_too_short` (which costs nothing): look-ups "
                                               "the caller has left today, as a success says."},
            "daily_cap": {"type": "integer", "minimum": 0,
                          "description": "With `remaining_today`: the caller's look-ups a day."},
        },
        "required": ["error", "code"],
        "additionalProperties": False,
    },
    "UserRef": _object({"id": _ID, "username": _TEXT, "display_name": _TEXT}),
    "Me": _object({
        "id": _ID, "username": _TEXT, "display_name": _TEXT,
        "roles": {"type": "array", "items": {"type": "string", "enum": [str(r) for r in Role]}},
        "status": {"type": "string", "enum": ["active", "departing", "departed", "disabled"]},
    }),
    "Customer": _object({
        "id": _ID, "name": _TEXT, "segment": {"type": "string", "enum": [str(s) for s in Segment]},
        "owner": _nullable_ref("UserRef"), "co_owners": {"type": "array", "items": _ref("UserRef")},
        "created_at": _TS,
    }),
    "CustomerLookup": _object({
        "customers": {"type": "array", "items": _ref("Customer"), "maxItems": 5},
        "remaining_today": {"type": "integer", "minimum": 0,
                            "description": "Look-ups the caller has left today (the working-hours timezone's day)."},
        "daily_cap": {"type": "integer", "minimum": 0,
                      "description": "The caller's look-ups a day: `[lookups] per_day`, or `notice_per_day` on "
                                     "notice."},
    }),
    "CustomerList": _object({
        "customers": {"type": "array", "items": _ref("Customer")},
        "total": {"type": "integer", "minimum": 0, "description": "Customers matching, on all pages."},
        "page": {"type": "integer", "minimum": 1},
        "pages": {"type": "integer", "minimum": 1},
    }),
    "PoolCustomer": _object({
        "id": _ID, "name": _TEXT, "segment": {"type": "string", "enum": [str(s) for s in Segment]},
    }, "A customer in the shared pool: its name and segment, nothing of its record."),
    "PoolList": _object({
        "customers": {"type": "array", "items": _ref("PoolCustomer")},
        "total": {"type": "integer", "minimum": 0, "description": "Pooled customers the caller may take."},
        "page": {"type": "integer", "minimum": 1},
        "pages": {"type": "integer", "minimum": 1},
        "claimable_segments": {"type": "array", "items": {"type": "string", "enum": [str(s) for s in Segment]},
                               "description": "Segments the caller may claim from."},
        "may_assign": {"type": "boolean", "description": "The caller may give pooled customers to their people."},
    }),
    "DocumentSummary": _object({
        "id": _ID, "customer_id": _ID, "title": _TEXT, "grade": {"type": "integer", "enum": [1, 2, 3]},
        "latest_version": {"type": ["integer", "null"], "minimum": 1}, "created_at": _TS,
    }),
    "FileHit": _object({
        **{"id": _ID, "customer_id": _ID, "title": _TEXT, "grade": {"type": "integer", "enum": [1, 2, 3]},
           "latest_version": {"type": ["integer", "null"], "minimum": 1}, "created_at": _TS},
        "customer": _TEXT,
        "content_type": {"type": ["string", "null"], "description": "The latest version's media type."},
    }, "A file found by search, with its customer and type."),
    "SearchResult": _object({
        "query": {"type": "string", "description": "The query as searched (spaces collapsed)."},
        "customers": {"type": "array", "items": _ref("Customer")},
        "files": {"type": "array", "items": _ref("FileHit")},
        "more_customers": {"type": "boolean", "description": "More customers match than are listed."},
        "more_files": {"type": "boolean", "description": "More files match than are listed."},
    }),
    "Version": _object({
        "id": _ID, "number": {"type": "integer", "minimum": 1}, "size": {"type": "integer", "minimum": 0},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"}, "content_type": _TEXT, "filename": _TEXT,
        "uploaded_by": _nullable_ref("UserRef"), "uploaded_at": _TS,
    }),
    "Created": _object({"id": _ID, "version": {"type": "integer", "minimum": 1}},
                       "The document and the number of the version just stored."),
    "LoanCreated": _object({"id": _ID, "status": {"type": "string", "enum": [str(s) for s in LoanStatus]}}),
    "LoanList": _object({
        "loans": {"type": "array", "items": _ref("Loan"), "maxItems": 50},
        "total": {"type": "integer", "minimum": 0, "description": "Loans matching, on all pages."},
        "page": {"type": "integer", "minimum": 1},
        "pages": {"type": "integer", "minimum": 1},
    }),
    "Loan": _object({
        "id": _ID,
        "kind": {"type": "string", "enum": [str(k) for k in LoanKind]},
        "status": {"type": "string", "enum": [str(s) for s in LoanStatus]},
        "document_id": _ID,
        "borrower": _ref("UserRef"),
        "reason": _TEXT,
        "category": {"type": "string", "enum": [str(c) for c in Category]},
        "place": _TEXT,
        "days": {"type": "integer", "minimum": 0,
                 "description": "The loan's length; 0 for an extension, which adds views, not time."},
        "extra_views": {"type": "integer", "minimum": 0},
        "approvals_required": {"type": "integer", "minimum": 0},
        "release_required": {"type": "boolean"},
        "decisions": {"type": "array", "items": _object({
            "approver": _ref("UserRef"), "decision": {"type": "string", "enum": ["approve", "reject"]},
            "comment": _TEXT, "decided_at": _TS,
        })},
        "requested_at": _TS,
        "approved_at": _TS_OR_NULL,
        "released_by": _nullable_ref("UserRef"),
        "released_at": _TS_OR_NULL,
        "due_at": _TS_OR_NULL,
        "closed_at": _TS_OR_NULL,
        "closed_by": _nullable_ref("UserRef"),
        "close_reason": {"type": ["string", "null"]},
    }),
    "ViewOpened": {
        **_object({
            "view_id": _ID,
            "remaining": {"type": "integer", "minimum": 0, "description": "Views of this document left to the caller."},
            "pages": {"type": "integer", "minimum": 0, "description": "Pages of the rendition (0 for a download)."},
            "page_url": {"type": ["string", "null"],
                         "description": "A URI template (RFC 6570): replace `{n}` with a page number (1-based) "
                                        "and GET it with the same token for the stamped page image (image/jpeg). "
                                        "Bound to this view and the caller, valid until `expires_at`. Null for a "
                                        "download."},
            "expires_at": _TS,
            "content_url": {"type": "string", "format": "uri-reference",
                            "description": "Only when a download was asked for and allowed: the stamped copy (or "
                                           "the original where the grade says download_original), single use, "
                                           "short-lived, only for the same caller's token."},
        }),
        "required": ["view_id", "remaining", "pages", "page_url", "expires_at"],
    },
}

_DATE = {"type": "string", "format": "date"}
SCHEMAS["Departure"] = _object({
    "id": _ID, "person": _ref("UserRef"), "status": {"type": "string", "enum": ["notice", "completed"]},
    "notice_date": _DATE, "last_day": {"type": ["string", "null"], "format": "date"},
    "successor": _nullable_ref("UserRef"), "started_at": _TS, "completed_at": _TS_OR_NULL,
    "customers": {"type": "array", "items": _object({
        "item_id": _ID, "customer_id": _ID, "to_user_id": {"type": ["integer", "null"], "minimum": 1},
        "key": {"type": "boolean"}, "settled": {"type": "boolean"},
        "moved": {"type": "boolean", "description": "The customer has since been given to someone outside the "
                  "handover: the item may then be reassigned only to its present owner, who confirms the contact."},
    })},
}, "A departure and its handover: each customer (`item_id` names its handover item), who it went to, whether it is "
   "a key customer and settled.")
SCHEMAS["DepartureList"] = _object({
    "departures": {"type": "array", "items": _ref("Departure"), "maxItems": 50},
    "total": {"type": "integer", "minimum": 0, "description": "Departures listed, on all pages."},
    "page": {"type": "integer", "minimum": 1},
    "pages": {"type": "integer", "minimum": 1},
})
SCHEMAS["HandoverItem"] = _object({
    "id": _ID,
    "departure_id": _ID,
    "person": _ref("UserRef"),
    "customer": _object({"id": _ID, "name": {"type": "string"}}),
    "to_user": _nullable_ref("UserRef"),
    "key": {"type": "boolean"},
    "key_reason": {"type": "string"},
    "state": {"type": "string", "enum": ["unassigned", "pooled", "handed_over", "pending", "confirmed", "waived"]},
    "settled": {"type": "boolean"},
    "contact_date": {**_DATE, "type": ["string", "null"]},
    "confirmed_at": _TS_OR_NULL,
    "waived_at": _TS_OR_NULL,
    "pooled_at": _TS_OR_NULL,
}, "One customer of a departure's handover: who leaves (`person`), who receives it (`to_user`, null when it is "
   "still to be assigned or went back to the shared pool) and its state: `pending` is a key customer whose new "
   "owner has not yet confirmed the contact.")
SCHEMAS["HandoverItemList"] = _object({
    "items": {"type": "array", "items": _ref("HandoverItem"),
              "description": "The customers handed to the caller in open departures, key customers first."},
    "awaiting_override": {"type": "array", "items": _object({
        "departure_id": _ID, "person": _ref("UserRef"),
        "items": {"type": "array", "items": _ref("HandoverItem")},
    }), "description": "For approvers: open departures whose unconfirmed key customers the caller may waive "
                       "(`POST /departures/{departure_id}/override`); empty for everyone else."},
})
SCHEMAS["Withdrawn"] = _object({"id": _ID, "person": _ref("UserRef"),
                                "status": {"type": "string", "enum": ["withdrawn"]}},
                               "The notice is withdrawn; the departure no longer exists.")

SCHEMAS["CustomerDetail"] = {
    **_object({**SCHEMAS["Customer"]["properties"],
               "documents": {"type": "array", "items": _ref("DocumentSummary")}}),
    "description": "The customer with the metadata of the documents the caller may see.",
}
SCHEMAS["Document"] = _object({
    **SCHEMAS["DocumentSummary"]["properties"],
    "compiler": _ref("UserRef"),
    "custodian": _nullable_ref("UserRef"),
    "versions": {"type": "array", "items": _ref("Version")},
    "remaining_views": {"type": ["integer", "null"], "minimum": 0,
                        "description": "Views left to the caller on this document (null: the caller cannot view it)."},
})
SCHEMAS["Agreement"] = _object({
    "version": {"type": "string", "description": "The current version: what `POST /agreement/accept` is given."},
    "language": {"type": "string", "description": "The language asked for (the text is in it when translated)."},
    "text": {"type": "string", "description": "The agreement as the page shows it: plain Markdown (headings, "
                                              "paragraphs, `-` lists)."},
    "accepted": {"type": "boolean", "description": "The caller has accepted this version."},
    "accepted_at": _TS_OR_NULL,
}, "The confidentiality agreement every person accepts before using vault, and again when its version changes.")

_ID_OR_NULL = {"type": ["integer", "null"], "minimum": 1}
_TEXT_OR_NULL = {"type": ["string", "null"]}
_NAME_OR_NULL = {"type": ["string", "null"], "description": "Today's name; null when none is recorded or it is gone."}
SCHEMAS["AuditEvent"] = {
    **_object({
        "seq": _ID, "ts": _TS, "actor_id": _ID_OR_NULL,
        "actor_name": {"type": "string", "description": "Who acted, as recorded (a login name even when unknown)."},
        "action": _TEXT, "outcome": {"type": "string", "enum": list(OUTCOMES)}, "reason_code": _TEXT_OR_NULL,
        "customer_id": _ID_OR_NULL, "document_id": _ID_OR_NULL, "version_id": _ID_OR_NULL, "loan_id": _ID_OR_NULL,
        "subject_user_id": _ID_OR_NULL, "client_addr": _TEXT_OR_NULL, "named_place": _TEXT_OR_NULL,
        "declared_place": _TEXT_OR_NULL, "user_agent": _TEXT_OR_NULL, "reason_text": _TEXT_OR_NULL,
        "request_id": _TEXT_OR_NULL, "detail": {"type": "object"},
        "shard": {"type": "integer", "minimum": 1, "description": "The chain the record belongs to (absent: the "
                                                                  "single chain of before sharding)."},
        "shard_seq": {"type": "integer", "minimum": 1, "description": "The record's place in its chain."},
        "mac": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "prev_mac": {"type": ["string", "null"], "description": "The MAC of the record before in its chain (\"\" "
                                                                "for the first; null when that record is missing)."},
        "names": _object({"actor": _NAME_OR_NULL, "customer": _NAME_OR_NULL, "document": _NAME_OR_NULL,
                          "subject_user": _NAME_OR_NULL}),
    }, "One audit record: the chained fields exactly as its MAC covers them (HMAC-SHA256 with the audit key over "
       "the JSON of every field but `mac`, `prev_mac` and `names`, keys sorted, no spaces, UTF-8, followed by "
       "`prev_mac`), and today's names of whom and what it mentions."),
}
SCHEMAS["AuditEvent"]["required"] = [name for name in SCHEMAS["AuditEvent"]["required"]
                                     if name not in ("shard", "shard_seq")]
SCHEMAS["AuditEventPage"] = _object({
    "events": {"type": "array", "items": _ref("AuditEvent"), "maxItems": MAX_PAGE_SIZE, "description": "Newest first."},
    "newer": {"type": ["integer", "null"], "minimum": 1,
              "description": "Pass as `after` for the newer page; null when nothing newer matches."},
    "older": {"type": ["integer", "null"], "minimum": 1,
              "description": "Pass as `before` for the older page; null when nothing older matches."},
    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
})
SCHEMAS["RoleRequest"] = _object({
    "id": _ID, "user": _ref("UserRef"), "role": {"type": "string", "enum": [str(r) for r in Role]},
    "status": {"type": "string", "enum": ["pending", "approved", "refused"]},
    "requested_by": {**_nullable_ref("UserRef"), "description": "Null: asked by the server's operator."},
    "requested_at": _TS, "decided_by": _nullable_ref("UserRef"), "decided_at": _TS_OR_NULL,
}, "A role asked for by one administrator, given only when a second person approves it.")
SCHEMAS["RoleRequestList"] = _object({"role_requests": {"type": "array", "items": _ref("RoleRequest")}})
SCHEMAS["ManagerRequest"] = _object({
    "id": _ID, "user": _ref("UserRef"), "manager": _ref("UserRef"),
    "status": {"type": "string", "enum": ["pending", "approved", "refused"]},
    "requested_by": _ref("UserRef"), "requested_at": _TS, "decided_by": _nullable_ref("UserRef"),
    "decided_at": _TS_OR_NULL,
}, "A manager named by one administrator, in place only when a second administrator approves it.")
SCHEMAS["ManagerRequestList"] = _object({"manager_requests": {"type": "array", "items": _ref("ManagerRequest")}})
SCHEMAS["User"] = _object({
    **SCHEMAS["Me"]["properties"],
    "email": {"type": ["string", "null"]},
    "manager": _nullable_ref("UserRef"),
    "last_day": {"type": ["string", "null"], "format": "date", "description": "Set while the person is on notice."},
    "second_factor": _object({"enrolled": {"type": "boolean", "description": "An authenticator is set up."},
                              "required": {"type": "boolean", "description": "The person's roles need one."}}),
    "pending_role_requests": {"type": "array", "items": _ref("RoleRequest")},
    "pending_manager_requests": {"type": "array", "items": _ref("ManagerRequest")},
    "created_at": _TS,
    "last_login_at": _TS_OR_NULL,
}, "An account as administrators see it (the `Me` fields and more); never a password, token or second-factor "
   "secret.")


def _paged(key: str, item: str, total: str) -> dict[str, Any]:
    """A list answer cut into pages of 50: the items under `key`, with `total` (described), `page`, `pages`."""
    return _object({
        key: {"type": "array", "items": _ref(item), "maxItems": 50},
        "total": {"type": "integer", "minimum": 0, "description": total},
        "page": {"type": "integer", "minimum": 1},
        "pages": {"type": "integer", "minimum": 1},
    })


SCHEMAS["UserList"] = _paged("users", "User", "Accounts, on all pages.")
SCHEMAS["UserWithLink"] = _object({
    "user": _ref("User"),
    "password_link": {"oneOf": [
        _object({
            "delivery": {"const": "shown"},
            "url": {"type": "string", "format": "uri",
                    "description": "Opens a page where the person sets their password, once."},
            "expires_at": _TS,
        }, "A brand-new account (never signed in, no API token): the link is shown in this answer only (only its "
           "hash is kept); hand it to the person by a channel you trust."),
        _object({
            "delivery": {"const": "mail"},
            "sent_to": {"type": "string", "examples": ["•••@example.com"],
                        "description": "The address it was mailed to, with its mailbox hidden."},
            "expires_at": _TS,
        }, "An account in use: the link was mailed to the person's address on record and is shown to nobody."),
    ], "description": "How the one-time link went: to whoever asked, only for a brand-new account."},
})


def _history(item: History | None) -> dict[str, int] | None:
    return None if item is None else {"loans": item.loans, "views": item.views, "refusals": item.refusals}


def _act(item: Act) -> dict[str, Any]:
    refusal = item.refusal
    if refusal is None:
        return {"open": item.open, "code": None, "error": None}
    return {"open": item.open, "code": refusal.code, "error": str(refusal.message)}


def loan_context(item: Loan, context: DecisionContext) -> dict[str, Any]:
    """The loan with what its page shows the caller to decide on (`loan_context.decision_context`)."""
    allows, warning, acts = context.allowance, context.place_warning, context.acts
    return {
        "loan": loan(item),
        "allowance": None if allows is None else {
            "views": allows.views, "days": allows.days, "extra_views": allows.extra_views,
            "download": allows.download, "download_original": allows.download_original,
            "trusted_places_only": allows.trusted_places_only, "approvals_required": allows.approvals_required,
            "approvals_given": allows.approvals_given, "approvals_after_one_more": allows.approvals_after_mine,
            "release_required": allows.release_required,
        },
        "requester_history": _history(context.requester_history),
        "customer_history": _history(context.customer_history),
        "place_warning": None if warning is None else {"seen": warning.seen},
        "acts": {"approve": _act(acts.approve), "reject": _act(acts.reject), "release": _act(acts.release),
                 "return": _act(acts.return_loan), "revoke": _act(acts.revoke), "withdraw": _act(acts.withdraw)},
    }


_COUNT = {"type": "integer", "minimum": 0}
SCHEMAS["LoanHistory"] = _object({
    "loans": {**_COUNT, "description": "Other loan requests (any outcome)."},
    "views": {**_COUNT, "description": "Views spent."},
    "refusals": {**_COUNT, "description": "Acts of theirs the policy refused."},
}, "What the borrower did before: counts, not the records themselves.")
SCHEMAS["LoanAct"] = _object({
    "open": {"type": "boolean", "description": "The caller may do it now (given acceptable input: a reject's "
                                               "comment, a revoke's reason)."},
    "code": {"type": ["string", "null"], "description": "When closed: the policy's reason code, the one the act "
                                                        "would be refused with (`not_permitted`: not the "
                                                        "caller's role)."},
    "error": {"type": ["string", "null"], "description": "When closed: the reason, in words."},
})
SCHEMAS["LoanContext"] = _object({
    "loan": _ref("Loan"),
    "allowance": {"oneOf": [_object({
        "views": {**_COUNT, "description": "Views the borrower gets of the file in all."},
        "days": _COUNT, "extra_views": _COUNT,
        "download": {"type": "boolean", "description": "Downloads allowed (a stamped copy)."},
        "download_original": {"type": "boolean", "description": "Downloads are of the original file."},
        "trusted_places_only": {"type": "boolean", "description": "The file opens only from a trusted place."},
        "approvals_required": _COUNT, "approvals_given": _COUNT,
        "approvals_after_one_more": {**_COUNT, "description": "Approvals still needed after one more (0: the "
                                                              "next approval decides it)."},
        "release_required": {"type": "boolean", "description": "A custodian releases it once approved."},
    }), {"type": "null"}], "description": "What the loan will allow; null unless it waits for a decision or "
                                          "a release."},
    "requester_history": {"oneOf": [_ref("LoanHistory"), {"type": "null"}],
                          "description": "The borrower's history; null for the borrower themselves."},
    "customer_history": {"oneOf": [_ref("LoanHistory"), {"type": "null"}],
                         "description": "The borrower's history with this file's customer; null for the "
                                        "borrower themselves."},
    "place_warning": {"oneOf": [_object({"seen": {"type": "boolean", "description": "false: the borrower has "
                                                                                     "never been seen at all."}}),
                                {"type": "null"}],
                      "description": "Set when the file opens only from a trusted place and the borrower's "
                                     "latest act was outside every one (never for the borrower themselves)."},
    "acts": _object({name: _ref("LoanAct") for name in ("approve", "reject", "release", "return", "revoke",
                                                         "withdraw")}),
}, "What the loan page shows the caller to decide on, and which acts are open to them now.")
