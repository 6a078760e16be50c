"""The customer record through the API: reveal, edit (a new version), history, old versions, contact log.

`GET /customers/{id}` (in `vault.api.customers`) answers the record masked; only `POST …/reveal`, with a
reason and a place, answers it in clear and spends the caller's reveal quotas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import jsonify

from vault.api import record_serializers
from vault.api.blueprint import ID, bp
from vault.api.errors import ApiError, invalid
from vault.api.inputs import Field, JsonBody, read_json
from vault.api.spec import operation
from vault.core.actions import Action
from vault.core.dates import parse_day
from vault.core.errors import ServiceError
from vault.models import Customer
from vault.services import customers as customers_service
from vault.services import pool, records
from vault.web import auth
from vault.web.guard import permission
from vault.web.pipeline import access_context, db_session, runtime


@dataclass(frozen=True)
class NestedJsonBody(JsonBody):
    """A JSON object body whose shape (nested lists and objects) is declared as a JSON schema; the service
    checks the values and each problem comes back as a 422 naming the field."""

    declared: dict[str, Any] = field(default_factory=dict)

    def schema(self) -> dict[str, Any]:
        return self.declared

    def parse(self) -> dict[str, Any]:
        data = read_json()
        if not isinstance(data, dict):
            raise ApiError(422, "invalid_request", "The body must be a JSON object.")
        return data


EDIT = NestedJsonBody("CustomerRecordEdit", fields=(), declared=record_serializers.RECORD_EDIT_SCHEMA)
REVEAL = JsonBody(
    "CustomerReveal",
    fields=(
        # Judged by the policy, as a view's reason and place are (`policy.records`): the same codes, recorded.
        Field("reason", "string", "Why the contacts and terms are needed (recorded; at least 10 characters, in "
              "words, as for a view: else 403 `reason_too_short`, `reason_not_meaningful` or "
              "`reason_copies_category`).", max_length=records.MAX_REASON, judged=True),
        Field("place", "string", "Where the caller is (recorded): empty, blank or without a letter or digit is "
              "403 `place_required`.", max_length=records.MAX_PLACE, judged=True),
    ),
)
LOG = JsonBody(
    "ContactLogCreate",
    fields=(
        Field("happened_on", "string", "The day of the contact, YYYY-MM-DD (within the last year).", max_length=10),
        Field("channel", "string", "How the customer was reached.", choices=records.CHANNELS),
        Field("contact", "string", "The person reached.", max_length=100),
        Field("topic", "string", "What it was about.", max_length=500),
        Field("result", "string", "The outcome.", required=False, default="", max_length=2000),
        Field("next_step", "string", "What happens next.", required=False, default="", max_length=500),
        Field("verification", "boolean", "A manager's verification visit.", required=False, default=False),
    ),
)


def customer_of(customer_id: int) -> Customer:
    """The customer, read through the audited, visibility-checked read of `services.customers`."""
    return customers_service.read_customer(runtime(), db_session(), auth.current(), customer_id,
                                           ctx=access_context())


def _as_fields(exc: ServiceError) -> ApiError:
    name, _, why = exc.message.partition(": ")
    return invalid({name: why or exc.message})


@bp.post(f"/customers/<{ID}:customer_id>/reveal")
@permission(Action.CUSTOMER_REVEAL)
@operation("Reveal the customer's contacts, terms, notes and log", tag="customers", response="Revealed",
           body=REVEAL, errors=(409,),
           description="Spends one unit of the caller's quota for this customer (policy `[records]`, by segment; "
                       "owners and co-owners have their own) and of their daily cap; refused with 403 "
                       "`reveal_quota` or `reveal_daily_cap` when spent. The reason and place are judged as a "
                       "view's are (403 `reason_too_short`, `reason_not_meaningful`, `reason_copies_category`, "
                       "`place_required`; recorded, nothing spent). Recorded as `customer:reveal` with the "
                       "reason and place, and counted by the directory alerts.")
def reveal(customer_id: int) -> Any:
    values = REVEAL.parse()
    customer = customer_of(customer_id)
    shown = records.reveal(runtime(), db_session(), auth.current(), customer, reason=values["reason"],
                           place=values["place"], ctx=access_context())
    return jsonify(record=record_serializers.record(shown.record), remaining=shown.remaining,
                   remaining_today=shown.remaining_today)


@bp.patch(f"/customers/<{ID}:customer_id>")
@permission(Action.CUSTOMER_EDIT)
@operation("Change the customer's record (a new version)", tag="customers", response="CustomerRecord", body=EDIT,
           errors=(409,),
           description="The owner and co-owners only. Recorded as `customer:edit` with the names of the fields "
                       "changed; the answer is masked like every read. A field left out stays as it is; a group "
                       "given as null (`contacts`, `terms`, `notes`) is emptied, the earlier version staying in "
                       "the history. With `version`, a record changed since (another version now) is 409 "
                       "`record_changed` and nothing is saved.")
def edit(customer_id: int) -> Any:
    values = EDIT.parse()
    session, actor = db_session(), auth.current()
    customer = customer_of(customer_id)
    expected = values.pop("version", None)
    if expected is not None and (not isinstance(expected, int) or isinstance(expected, bool)
                                 or not 0 <= expected <= 2_147_483_647):
        raise invalid({"version": "a whole number from 0: the version the change was made from"})
    try:
        changes = records.clean_changes(values)
    except ServiceError as exc:
        raise _as_fields(exc) from None
    records.edit(runtime(), session, actor, customer, changes, ctx=access_context(), expected_version=expected)
    return jsonify(record_serializers.record(records.masked_view(runtime(), session, customer)))


@bp.get(f"/customers/<{ID}:customer_id>/history")
@permission(Action.CUSTOMER_HISTORY)
@operation("The versions of the customer's record with their diffs", tag="customers", response="RecordHistory",
           errors=(409,),
           description="The owner, co-owners and their managers. Sensitive values in the diffs are masked. "
                       "`ownership` lists who owned the customer when, as the history page shows it.")
def history(customer_id: int) -> Any:
    customer = customer_of(customer_id)
    versions = records.history(runtime(), db_session(), auth.current(), customer, ctx=access_context())
    owners = pool.ownership_history(db_session(), customer)  # after the check `records.history` makes
    return jsonify(versions=[record_serializers.version(v) for v in versions],
                   ownership=[record_serializers.ownership(o) for o in owners])


@bp.get(f"/customers/<{ID}:customer_id>/history/<{ID}:number>")
@permission(Action.CUSTOMER_HISTORY)
@operation("One past version of the customer's record (masked)", tag="customers", response="RecordSnapshot",
           errors=(409,))
def old_version(customer_id: int, number: int) -> Any:
    customer = customer_of(customer_id)
    data = records.old_version(runtime(), db_session(), auth.current(), customer, number, ctx=access_context())
    return jsonify(record_serializers.old_version(number, data))


@bp.post(f"/customers/<{ID}:customer_id>/log")
@permission(Action.CUSTOMER_LOG)
@operation("Log a visit, call or meeting with the customer", tag="customers", ok=201, response="LogCreated",
           body=LOG, errors=(409,),
           description="The owner, co-owners, their managers (a verification visit) and a successor taking the "
                       "customer over. Recorded as `customer:log`; the text is sealed like the notes. `main_contact` "
                       "is null unless the caller's reveal of the customer still shows them the contacts.")
def add_log(customer_id: int) -> Any:
    values = LOG.parse()
    try:
        happened_on = parse_day(values["happened_on"])
    except ValueError:
        raise invalid({"happened_on": "must be a date (YYYY-MM-DD)"}) from None
    customer = customer_of(customer_id)
    entry = records.add_log(runtime(), db_session(), auth.current(), customer, happened_on=happened_on,
                            channel=values["channel"], contact=values["contact"], topic=values["topic"],
                            result=values["result"], next_step=values["next_step"],
                            verification=values["verification"], ctx=access_context())
    told = records.main_contact_told(db_session(), auth.current(), customer, entry)
    return jsonify(id=entry.id, main_contact=told), 201
