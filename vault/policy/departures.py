"""Rules on departures, handovers and alerts.

The people involved in a departure keep apart: the leaver manages, confirms, waives and reports on
nothing of their own departure; the successor cannot waive the confirmations they owe; nobody reads or
settles an alert about themselves (an approver under watch must not be able to close their own case).

Nobody on notice reads or settles any alert (`alerts_departing`): an alert names the person watched and, in
its evidence, the customers and files involved (an `outside_book` alert lists the customers a colleague
reached outside their book), which is what the audit log shows and a leaver reads no more
(`policy.audit_log`); and settling one (resolving it, lifting the suspension it caused) gives access back.
It is a standing rule of `alert:read` and `alert:manage`, so the guard asks it on every route, pages and
API, recording each refusal, and the home page's alerts (`visible_alerts`) ask it too. A colleague who is
not leaving reads on; a withdrawn notice gives the alerts back.

State rules (a completed departure changes no more, a key customer counts only once confirmed or
waived) are decided here too, so pages, the API and the command line refuse with the same codes.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask_babel import lazy_gettext as _l

from vault.core.actions import Action
from vault.models import Alert, AlertStatus, Departure, HandoverItem, Role, User, UserStatus
from vault.policy.core import MESSAGES, Decision, allow, deny, object_rule, standing_rule
from vault.policy.loans import reason_problem
from vault.policy.notice import decider_problem, on_notice

MESSAGES.update({
    "own_departure": _l("Nobody manages, waives or reports on their own departure."),
    "alerts_departing": _l("People on notice read and settle no alerts, which name people and customers; a "
                           "colleague who is not leaving does it."),
    "departure_closed": _l("This departure is completed; it changes no more."),
    "not_successor": _l("Only the person the customer was handed to confirms the contact."),
    "customer_moved": _l("This customer has since been given to someone else: its present owner confirms the "
                         "contact, once the handover is passed to them."),
    "already_offboarded": _l("The last day has passed and access has ended: the notice can no longer be withdrawn."),
    "last_day_passed": _l("The last day has passed and access has ended: the last day can no longer be moved."),
    "successor_departing": _l("You have given notice yourself: an approver waives or reassigns this confirmation."),
    "contact_not_logged": _l("Log your contact with the customer's main contact first (the customer page's contact "
                          "log): a key customer's handover is confirmed by the successor reaching them."),
    "not_transferred": _l("The customer has no new owner yet."),
    "already_confirmed": _l("The contact with this customer is already confirmed."),
    "contact_date_future": _l("The contact date cannot be in the future."),
    "contact_before_notice": _l("The contact must have taken place after the notice was given."),
    "nothing_to_override": _l("Every key customer is confirmed: there is nothing to waive."),
    "handover_incomplete": _l("Some customers have no new owner yet: reassign them first."),
    "customer_not_contacted": _l("A key customer answered the letter about their new account manager: nobody has "
                              "contacted them. The new owner contacts them first, or an approver waives this "
                              "with a reason."),
    "customers_unconfirmed": _l("Key customers are not confirmed by their new owner; confirm them, or have an "
                             "approver waive the confirmation with a reason."),
    "reporter_departing": _l("People on notice read no departure report and no departure's customers; a "
                             "colleague who is not leaving does it."),
    "own_alert": _l("Nobody reads or settles an alert about themselves."),
    "alert_resolved": _l("This alert is already resolved."),
    "alert_acknowledged": _l("This alert is already acknowledged."),
    "note_required": _l("Write a note of at least 10 characters."),
})


def _leaver_id(target: Any) -> int | None:
    if isinstance(target, Departure):
        return target.user_id
    if isinstance(target, HandoverItem):
        return target.departure.user_id
    if isinstance(target, User):
        return target.id
    return None


def completion_problem(departure: Departure) -> Decision:
    """Whether the departure may complete: open, every customer has a new owner, every key one settled."""
    if not departure.is_open:
        return deny("departure_closed")
    if any((item.to_user_id is None or item.transferred_at is None) and item.pooled_at is None
           for item in departure.items):
        return deny("handover_incomplete")
    if any(item.disputed for item in departure.items):
        return deny("customer_not_contacted")
    if not all(item.settled for item in departure.items):
        return deny("customers_unconfirmed")
    return allow()


def waivable(departure: Departure) -> list[HandoverItem]:
    """The key customers an approver's override would waive: unconfirmed ones, and those whose customer said
    "not contacted" since any earlier waiver."""
    return [item for item in departure.items
            if item.key and item.to_user_id is not None and (not item.settled or item.disputed)]


def withdrawal_problem(departure: Departure, reason: str | None) -> Decision:
    """Whether the notice may be withdrawn: still open, before the last-day steps, with a reason."""
    if not departure.is_open:
        return deny("departure_closed")
    if departure.offboarded_at is not None or not departure.user.can_sign_in:
        return deny("already_offboarded")
    problem = reason_problem(reason)
    return deny(problem) if problem else allow()


def last_day_problem(departure: Departure) -> Decision:
    """Whether the last day may be moved: still open, and access has not ended yet (moving it then would
    give back access, loans and tokens the last-day steps are about to end)."""
    if not departure.is_open:
        return deny("departure_closed")
    if departure.offboarded_at is not None or departure.user.past_last_day:
        return deny("last_day_passed")
    return allow()


@object_rule(Action.DEPARTURE_MANAGE)
def _manage(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """`target`: the leaver (starting), the departure or a handover item; context `step` = "complete"
    asks whether the departure may complete now, "withdraw" whether the notice may be withdrawn,
    "last_day" whether the last day may be moved, "hand_over" whether the leaver's customers may go to
    someone (a successor named, an item reassigned) or to the pool.

    Withdrawing a notice and moving a last day give the leaver access back or for longer, and handing
    customers over gives them to someone: nobody on notice does any of these for anyone (`decider_problem`);
    starting a departure without a successor only takes access away, and stays open to them."""
    if _leaver_id(target) == actor.id:
        return deny("own_departure")
    if context.get("step") in ("withdraw", "last_day", "hand_over") and not (deciding := decider_problem(actor)):
        return deciding
    departure = target.departure if isinstance(target, HandoverItem) else target
    if isinstance(departure, Departure):
        if context.get("step") == "complete":
            return completion_problem(departure)
        if context.get("step") == "withdraw":
            return withdrawal_problem(departure, context.get("reason"))
        if context.get("step") == "last_day":
            return last_day_problem(departure)
        if not departure.is_open:
            return deny("departure_closed")
    return allow()


@object_rule(Action.DEPARTURE_REPORT)
def _report(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """`target` is the person reported on.

    The report and the departure (its page, its JSON) name the person's customers: every one they owned or
    touched, with its segment. Administrators see no customer otherwise, so someone on notice reads neither
    (`reporter_departing`): a departing administrator or auditor could otherwise take the sales team's books
    away as CSV, one colleague at a time, in their last days. The operator's command line answers to no
    role and is not asked."""
    if _leaver_id(target) == actor.id:
        return deny("own_departure")
    if on_notice(actor):
        return deny("reporter_departing")
    return allow()


def check_confirmation(item: HandoverItem, *, contact_date: date | None, note: str | None, today: date) -> Decision:
    """The state and input rules of a contact confirmation, whoever gives it."""
    if not item.departure.is_open:
        return deny("departure_closed")
    if item.to_user_id is None or item.transferred_at is None:
        return deny("not_transferred")
    if item.confirmed_at is not None:
        return deny("already_confirmed")
    if contact_date is None or contact_date > today:
        return deny("contact_date_future")
    if contact_date < item.departure.notice_date:
        return deny("contact_before_notice")
    problem = reason_problem(note)
    return deny(problem) if problem else allow()


@object_rule(Action.HANDOVER_CONFIRM)
def _confirm(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """`target` is the handover item; context: contact_date, note, today (in the company's timezone),
    contact_logged (whether the actor logged reaching the customer's main contact since the notice)."""
    item: HandoverItem = target
    if item.departure.user_id == actor.id:
        return deny("own_departure")
    if item.to_user_id != actor.id:
        return deny("not_successor")
    if actor.status != UserStatus.ACTIVE:
        # A successor on notice is leaving too: their word that the customer stays is worth nothing.
        return deny("successor_departing")
    if item.customer.owner_id != actor.id:
        # Given since to someone else: a contact confirmed by one who no longer works the customer would
        # settle the handover while its present owner never spoke to it.
        return deny("customer_moved")
    checked = check_confirmation(item, contact_date=context.get("contact_date"), note=context.get("note"),
                                 today=context["today"])
    if checked and item.key and context.get("contact_logged") is False:
        # A key customer stays with the company when its main contact knows the successor: the contact
        # log, not a date typed into this form, shows that they met.
        return deny("contact_not_logged")
    return checked


def check_override(departure: Departure, reason: str | None) -> Decision:
    if not departure.is_open:
        return deny("departure_closed")
    if not waivable(departure):
        return deny("nothing_to_override")
    problem = reason_problem(reason)
    return deny(problem) if problem else allow()


@object_rule(Action.DEPARTURE_OVERRIDE)
def _override(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """`target` is the departure; context: reason. Nobody on notice waives another leaver's confirmations."""
    departure: Departure = target
    if departure.user_id == actor.id:
        return deny("own_departure")
    if not (deciding := decider_problem(actor)):
        return deciding
    pending = [item for item in departure.items if item.key and (not item.settled or item.disputed)]
    if any(item.to_user_id == actor.id for item in pending):
        return deny("separation_of_duties", _l("You cannot waive confirmations that are yours to give."))
    return check_override(departure, context.get("reason"))


@standing_rule(Action.ALERT_READ, Action.ALERT_MANAGE)
def _alert_reader(actor: User) -> Decision:
    """Whether `actor` may read alerts at all (the desk, one alert, its evidence) or settle one: never on
    notice (see the module docstring)."""
    return deny("alerts_departing") if on_notice(actor) else allow()


@object_rule(Action.ALERT_READ)
def _read_alert(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    alert: Alert = target
    return deny("not_found") if alert.user_id == actor.id else allow()


@object_rule(Action.ALERT_MANAGE)
def _manage_alert(actor: User, target: Any, context: dict[str, Any]) -> Decision:
    """`target` is the alert; context: step ("acknowledge", "resolve" or "lift": an approver lifting the
    suspension of the person's customer access the alert caused), note (resolving).

    Nobody on notice settles an alert, however: the standing rule (`alerts_departing`) refuses them before
    this one is asked."""
    alert: Alert = target
    if alert.user_id == actor.id:
        return deny("own_alert")
    if context.get("step") == "lift":
        if Role.APPROVER not in actor.role_set:
            return deny("not_permitted", _l("Only an approver may lift a suspension."))
        if alert.user.customers_suspended_at is None:
            return deny("not_suspended", _l("The person's customer access is not suspended."))
        return allow()
    if alert.status == AlertStatus.RESOLVED:
        return deny("alert_resolved")
    if context.get("step") == "acknowledge" and alert.status == AlertStatus.ACKNOWLEDGED:
        return deny("alert_acknowledged")
    if context.get("step") == "resolve" and reason_problem(context.get("note")):
        return deny("note_required")
    return allow()
