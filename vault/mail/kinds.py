"""The kinds of notification, who may silence them, and how each is described on the account page."""

from __future__ import annotations

from enum import StrEnum

from vault.core.languages import N_
from vault.models import MailMode


class Kind(StrEnum):
    LOAN_REQUESTED = "loan_requested"  # to the approvers who may decide it
    LOAN_DECIDED = "loan_decided"  # to the borrower
    RELEASE_NEEDED = "release_needed"  # to the custodians, for an approved grade-3 loan
    HANDOVER_ASSIGNED = "handover_assigned"  # to the person who receives a leaver's customers
    DEPARTURE_STEP = "departure_step"  # to whoever started the departure
    SECURITY_ALERT = "security_alert"  # to the security contacts
    DIGEST = "digest"  # the daily summary itself
    TEST = "test"  # `vault mail test`
    CUSTOMER_LETTER = "customer_letter"  # to a customer's main contacts: their new account manager
    NO_DECIDER = "no_decider"  # to the admins: a loan waits for an approver or a custodian, and nobody may act
    PASSWORD_LINK = "password_link"  # noqa: S105 (a kind) to a person whose account is in use: an admin's link
    ADDRESS_CHANGED = "address_changed"  # to the address a person's account had: it was changed or removed


# What a person chooses for on the account page, in the order shown.
CHOOSABLE: tuple[Kind, ...] = (Kind.LOAN_REQUESTED, Kind.LOAN_DECIDED, Kind.RELEASE_NEEDED,
                               Kind.HANDOVER_ASSIGNED, Kind.DEPARTURE_STEP, Kind.SECURITY_ALERT)

# A security alert exists to be read: its recipients may bundle it into the digest, never silence it. The notice
# that an address was changed goes to the address replaced, which no choice of the account's governs any more.
CANNOT_BE_OFF: frozenset[Kind] = frozenset({Kind.SECURITY_ALERT, Kind.TEST, Kind.DIGEST, Kind.ADDRESS_CHANGED})

# Plain English; the account page translates them.
LABELS: dict[Kind, str] = {
    Kind.LOAN_REQUESTED: N_("A loan request waits for my decision"),
    Kind.LOAN_DECIDED: N_("My loan request was decided"),
    Kind.RELEASE_NEEDED: N_("An approved loan waits for a custodian's release"),
    Kind.HANDOVER_ASSIGNED: N_("Customers are handed over to me"),
    Kind.DEPARTURE_STEP: N_("A departure I started moves on"),
    Kind.SECURITY_ALERT: N_("Security alerts"),
}

MODE_LABELS: dict[MailMode, str] = {
    MailMode.IMMEDIATE: N_("Immediately"),
    MailMode.DIGEST: N_("Daily digest"),
    MailMode.OFF: N_("Off"),
}


def allowed_modes(kind: Kind) -> tuple[MailMode, ...]:
    if kind in CANNOT_BE_OFF:
        return (MailMode.IMMEDIATE, MailMode.DIGEST)
    return (MailMode.IMMEDIATE, MailMode.DIGEST, MailMode.OFF)
