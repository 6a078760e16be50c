"""Who may still be told about an event: asked when a mail is queued, and again when it leaves.

A mail is written in the transaction of its event and may leave much later: after retries, or a day later
in the digest. A request to decide a loan or release a file names the customer and the file, as the queue
does, so it goes only to someone who may see the queue: not a person whose queues have since been
suspended (on notice, or after a directory alert), nor one who can no longer sign in. The same holds for
the administrators' word that a loan has nobody left to act on it: one on notice names nobody. Nothing else about
the company goes to someone who can no longer sign in either. Bare addresses (a customer's contacts, the
security contacts) have no account to ask about, and a security alert always goes: it exists to be read, as
does the notice to a person's previous address that it was changed. A letter to a customer's contact goes to
a bare address, but introduces the customer's new account manager: it is withheld when it comes due if the
repairs would refuse it (`letters.repair_refusal`: answered, revoked, the customer moved on since, the manager
it introduces on notice or unable to sign in, or its link expired while it waited), since it would introduce a
leaver or someone who no longer looks after the customer (the change that moved the customer writes its own
letter about the successor), or carry a link that no longer opens.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.mail.kinds import Kind
from vault.mail.retention import forgotten
from vault.models import CustomerLetter, MailOutbox, MailStatus, User
from vault.policy.visibility import queues_suspended
from vault.services import letters

# Mail that asks its recipient to act for others: to decide in a queue, or (administrators) to name
# somebody who may; none of it goes to someone on notice, who does neither any more.
QUEUE_KINDS: frozenset[Kind] = frozenset({Kind.LOAN_REQUESTED, Kind.RELEASE_NEEDED, Kind.NO_DECIDER})
# Mail that goes whoever its recipient has become. The notice that an account's address was changed tells its
# owner of their own account, nothing of the company's, and matters most for an account disabled meanwhile: one
# disabled, redirected and enabled again would otherwise reach its next password link unnoticed.
ALWAYS: frozenset[Kind] = frozenset({Kind.SECURITY_ALERT, Kind.TEST, Kind.ADDRESS_CHANGED})


def may_be_told(kind: Kind | str, person: User | None) -> bool:
    """Whether a mail of `kind` may (still) go to `person` (None: a bare address)."""
    kind = Kind(kind)
    if person is None or kind in ALWAYS:
        return True
    if not person.can_sign_in:
        return False
    return kind not in QUEUE_KINDS or not queues_suspended(person)


def letter_refusal(session: Session, row: MailOutbox, now: datetime
                   ) -> tuple[CustomerLetter, letters.LetterRefusal] | None:
    """The letter `row` carries and why it may no longer go at `now` (`letters.repair_refusal`, the repairs'
    own rule: answered, revoked, the customer moved on, the manager it introduces on notice or unable to sign
    in, its link expired while it waited), or None. Its recipient is a bare address, whom anything may reach;
    what may no longer go is what the letter says."""
    if row.kind != Kind.CUSTOMER_LETTER:
        return None
    letter = session.scalar(select(CustomerLetter).where(CustomerLetter.outbox_id == row.id))
    refusal = letters.repair_refusal(session, letter, now=now) if letter is not None else None
    return (letter, refusal) if letter is not None and refusal is not None else None


def withheld(session: Session, row: MailOutbox, now: datetime) -> bool:
    """Whether the waiting `row` may no longer go (asked when it is claimed for sending or bundled into a
    digest): to its recipient, or, for a customer letter, because the letter no longer holds; if so it is
    marked `withheld`, with its address masked and its text forgotten.

    A letter keeps its reason: the refusal's code (`withheld_code`, which the re-issue's contact-log note is
    worded from) and its sentence (`last_error`, for `vault mail status`), and, when that reason may pass (its
    manager on notice or unable to sign in, its link expired while it waited), its address and text too, as a
    failed letter does: they are the only copy of what it says (the letter row keeps only a masked name), and
    `vault letter reissue` sends it with a fresh link once the notice is withdrawn or the account enabled
    again, or at once for a link that merely ran out. The maintenance sweep forgets them should the reason
    become lasting meanwhile (`letters.forget_unsendable`)."""
    person = session.get(User, row.recipient_user_id) if row.recipient_user_id is not None else None
    if not may_be_told(row.kind, person):
        _withhold(row, forget=True)
        return True
    found = letter_refusal(session, row, now)
    if found is None:
        return False
    letter, refusal = found
    _withhold(row, forget=refusal.lasting)
    row.last_error = f"letter #{letter.id}: {refusal.why}"
    row.withheld_code = refusal.code  # what the repairs act on; the sentence above is for the operator
    return True


def _withhold(row: MailOutbox, *, forget: bool) -> None:
    row.status = MailStatus.WITHHELD
    if forget:
        for name, value in forgotten(row.recipient).items():
            setattr(row, name, value)
