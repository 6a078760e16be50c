"""An operator's repair of mail that failed for good: `vault mail retry` and `vault letter reissue`.

Mail fails for good when the server refuses it or after `MAX_ATTEMPTS` (about eight hours of back-off), and
then nothing sends it again by itself. Repairs happen in the operator's unit of work, each recorded under the
operator's name in the same transaction (`mail:retry`, `letter:reissue`), and each refuses what cannot be
repaired honestly, every refusal recorded as denied in a unit of its own (`record_refused`):

- mail that was sent (or bundled into a digest), is still waiting, was withheld, or does not exist; a
  letter withheld for a reason that may pass (the manager it introduces on notice or unable to sign in) kept
  its text, and is re-issued (never retried) once that reason no longer holds: a fresh link, counted from the
  day it goes, since the old one was made for a mail that never left;
- mail to a person whose address has changed since it was written (it would go to a mailbox they no longer
  have);
- mail whose text is forgotten: a password link's (`FORGET_ON_FAILURE`: its repair is a new link, never the
  old one sent again) and the old mail of a re-issued letter;
- a customer letter that has done its work or no longer holds (`letters.repair_refusal`: answered, revoked,
  the customer moved on since, the account manager it introduces gone or on notice), and, for a plain
  retry, one whose link has expired (the same rule, which the sender asks of a waiting letter too): the
  letter would carry a link that no longer opens, so it is re-issued instead.

Re-issuing changes the letter in place: a new link (the old one's hash is replaced, so it stops working), a
new end date, and a new outbox row with the same address and text. The text is the failed (or withheld) mail's own, with
its link and end date replaced, because nothing else can write it again: the letter row keeps only a masked
name, and a letter to an address a leaver's edit took out names no contact of the record at all. The old
link is found in the text and checked against the letter's hash before anything is replaced, so only that
letter's link can be. The old row's address and text are then forgotten like a sent mail's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from markupsafe import escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.mail.kinds import Kind
from vault.mail.retention import FORGET_ON_FAILURE, forgotten, masked
from vault.mail.status import shown_error, shown_recipient
from vault.models import CustomerLetter, MailStatus, User
from vault.models.mail import MailOutbox
from vault.runtime import Runtime
from vault.services import letters, records

# A letter's link in its text: the confirmation page's path and the link (`letters.new_link`).
_LETTER_LINK = re.compile(r"/letter/([A-Za-z0-9_-]{32}\.[A-Za-z0-9_-]{43})")
MAX_IDS = 2**31 - 1  # ids are 32-bit columns: a larger number is no mail, not a database error


@dataclass(frozen=True)
class Refused:
    """A mail or letter left as it was, and why (`code` stable, `why` for the operator); what it names for the
    audit log's denied record (`record_refused`): the mail, its letter, the customer and the person."""

    id: int
    code: str
    why: str
    mail_id: int | None = None
    kind: str | None = None
    letter_id: int | None = None
    customer_id: int | None = None
    subject_user_id: int | None = None


@dataclass(frozen=True)
class Retried:
    id: int
    kind: str
    recipient: str  # as `vault mail status` shows it (a customer's mailbox masked)
    attempts: int  # the attempts it failed after
    last_error: str


@dataclass
class RetryResult:
    retried: list[Retried] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)


@dataclass(frozen=True)
class Reissued:
    letter_id: int
    previous_mail_id: int
    mail_id: int
    recipient: str  # masked
    expires_at: datetime


class ReissueRefused(Exception):
    """The letter cannot be re-issued; `refusal` says why."""

    def __init__(self, refusal: Refused) -> None:
        super().__init__(refusal.why)
        self.refusal = refusal


def _letter_of(session: Session, mail: MailOutbox) -> CustomerLetter | None:
    if mail.kind != Kind.CUSTOMER_LETTER:
        return None
    return session.scalar(select(CustomerLetter).where(CustomerLetter.outbox_id == mail.id))


def _mail_refusal(session: Session, mail_id: int, mail: MailOutbox | None, *,
                  reissuing: bool = False) -> Refused | None:
    """Why this outbox row cannot be sent again as it is, or None when its state allows it (`reissuing`: a
    withheld letter whose text was kept may be re-issued, if the letter holds again)."""
    if mail is None:
        return Refused(mail_id, "no_such_mail", "no such mail")
    status = MailStatus(mail.status)
    if status == MailStatus.SENT:
        sent = mail.sent_at.isoformat(timespec="minutes") if mail.sent_at else "earlier"
        return Refused(mail_id, "sent", f"was sent ({sent}); nothing to retry")
    if status == MailStatus.DIGESTED:
        return Refused(mail_id, "sent", f"went out in the daily digest #{mail.digest_id}; nothing to retry")
    if status in (MailStatus.QUEUED, MailStatus.SENDING, MailStatus.DIGEST):
        return Refused(mail_id, "pending", f"is still waiting to be sent ({status}, {mail.attempts} attempts "
                                           "so far); `vault mail send-pending` sends it when due")
    if status == MailStatus.WITHHELD:
        return _withheld_refusal(session, mail_id, mail, reissuing=reissuing)
    if not mail.body_text:
        if mail.kind in FORGET_ON_FAILURE:
            user = session.get(User, mail.recipient_user_id) if mail.recipient_user_id else None
            whose = user.username if user is not None else "NAME"
            return Refused(mail_id, "text_forgotten",
                           "is a password link: its text is forgotten and it is never sent again; make a new "
                           f"link instead (`vault user password-link {whose}`, or the administrators' page)")
        if mail.kind == Kind.CUSTOMER_LETTER:
            if _letter_of(session, mail) is not None:  # still the letter's mail: the maintenance sweep forgot it
                return Refused(mail_id, "text_forgotten", "its text is forgotten: the letter can never go (answered, "
                                                          "revoked, its customer moved on since, or its link expired "
                                                          "longer ago than VAULT_LETTER_KEEP_DAYS)")
            return Refused(mail_id, "text_forgotten", "its text is forgotten: its letter was re-issued with a "
                                                      "new link and a new mail")
        return Refused(mail_id, "text_forgotten", "its text is forgotten")
    if mail.recipient_user_id is not None:
        # A mail to a person went to the address they had when it was written. One changed since may have been
        # wrong, given up, or pointed at someone else's mailbox and put right: what was written for the person
        # (their customers, loans, files) must not go there now. Asked here, not when it leaves, since only a
        # repair brings an old mail back.
        person = session.get(User, mail.recipient_user_id)
        if person is None or (person.email or "").casefold() != mail.recipient.casefold():
            now_at = masked(person.email) if person is not None and person.email else "none"
            return Refused(mail_id, "address_changed",
                           f"its recipient's address has changed since (now {now_at}): not sent to one they no "
                           "longer have")
    return None


def _withheld_refusal(session: Session, mail_id: int, mail: MailOutbox, *, reissuing: bool) -> Refused | None:
    """A withheld mail is never put back in the queue as it is. A letter withheld for a reason that may pass (its
    manager on notice or unable to sign in) keeps its text, and is sent again only by a re-issue, with a fresh
    link counted from the day it goes: its old link was made for a mail that never left, and may have run out
    during the notice. Whether the reason still holds is the letter's own rule, asked next.

    A letter's refusal names why it was withheld, as the sender kept it: the code of `letters.repair_refusal`
    (`withheld_code`; the refusal's code, so the denied record says `owner_on_notice` or `letter_revoked`, not
    only that the mail was withheld) and its sentence, the code in brackets as `vault mail status` shows it. A
    row withheld before codes were kept, which no code could be given, is refused as `withheld`."""
    code = mail.withheld_code or "withheld"
    reason = f" ({mail.last_error})" if mail.last_error else ""
    if mail.kind != Kind.CUSTOMER_LETTER:
        return Refused(mail_id, "withheld", "was withheld: its recipient may no longer be told (its text is "
                                            "forgotten)")
    if not mail.last_error and mail.withheld_code in _WITHHELD_BECAUSE:
        reason = f" ({_WITHHELD_BECAUSE[mail.withheld_code]})"
    if mail.withheld_code:
        reason += f" [{mail.withheld_code}]"
    letter = _letter_of(session, mail) if mail.body_text else None
    if letter is None:
        if not reason:  # withheld before reasons were kept: only a notice withheld a letter then
            reason = " (the account manager it introduces had given notice)"
        return Refused(mail_id, code, f"was withheld{reason}; its text is forgotten")
    if reissuing:
        return None
    return Refused(mail_id, code, f"was withheld{reason}; a withheld letter goes again only with a fresh "
                                  f"link, once that no longer holds: `vault letter reissue {letter.id}`")


def retry(rt: Runtime, session: Session, ids: Sequence[int] | None, *, ctx: AccessContext,
          now: datetime) -> RetryResult:
    """Put failed mail back in the queue, due now with its attempts counted afresh, each audited
    `mail:retry` in this transaction. `ids` None means every failed mail; the ones that cannot be retried
    are then refused too (the caller decides how loudly).

    A customer letter is retried only while its link still opens and the letter still holds: one whose link
    expired is refused with the command that re-issues it."""
    result = RetryResult()
    if ids is None:
        rows = list(session.scalars(select(MailOutbox).where(MailOutbox.status == MailStatus.FAILED)
                                    .order_by(MailOutbox.id).with_for_update()))
        wanted: list[tuple[int, MailOutbox | None]] = [(row.id, row) for row in rows]
    else:
        wanted = []
        for mail_id in dict.fromkeys(ids):
            row = session.get(MailOutbox, mail_id, with_for_update=True) if 0 < mail_id <= MAX_IDS else None
            wanted.append((mail_id, row))
    for mail_id, mail in wanted:
        refusal = _mail_refusal(session, mail_id, mail)
        letter = _letter_of(session, mail) if mail is not None else None
        if refusal is None and letter is not None:
            refusal = _letter_refusal(session, letter, mail_id, now, retrying=True)
        if refusal is not None or mail is None:
            refusal = refusal or Refused(mail_id, "no_such_mail", "no such mail")
            result.refused.append(replace(
                refusal, mail_id=mail_id, kind=mail.kind if mail else None, letter_id=letter.id if letter else None,
                customer_id=letter.customer_id if letter else None,
                subject_user_id=mail.recipient_user_id if mail else None))
            continue
        shown = shown_recipient(mail.kind, mail.recipient)
        result.retried.append(Retried(mail.id, mail.kind, shown, mail.attempts,
                                      shown_error(mail.kind, mail.recipient, mail.last_error or "")))
        rt.audit.record(session, action=AuditAction.MAIL_RETRY, actor=None, ctx=ctx,
                        customer_id=letter.customer_id if letter else None,
                        subject_user_id=mail.recipient_user_id,
                        detail={"mail_id": mail.id, "kind": mail.kind, "to": masked(mail.recipient),
                                "attempts": mail.attempts, "letter_id": letter.id if letter else None})
        mail.status = MailStatus.QUEUED
        mail.attempts = 0
        mail.next_attempt_at = now
        mail.retry_refused_code = None  # what earlier refusals were about has ended: a new one is news
    session.flush()
    return result


def _letter_refusal(session: Session, letter: CustomerLetter, refused_id: int, now: datetime, *,
                    retrying: bool) -> Refused | None:
    """The letter's own rule (`letters.repair_refusal`): a retry sends the letter with the link it has, so a
    link that has expired refuses it (re-issue it instead); a re-issue gives it a fresh one."""
    found = letters.repair_refusal(session, letter, now=now, fresh_link=not retrying)
    if found is None:
        return None
    return Refused(refused_id, found.code, f"is letter #{letter.id}: {found.why}" if retrying else found.why)


def reissue(rt: Runtime, session: Session, letter_id: int, *, ctx: AccessContext, now: datetime) -> Reissued:
    """Send a letter whose mail failed for good again, with a fresh link, to the same address; audited
    `letter:reissue` and noted on the customer's contact log, in this transaction.

    Raises:
        ReissueRefused: no such letter; its mail was delivered, is still waiting or cannot be repaired
            (`_mail_refusal`); the letter no longer holds (`letters.repair_refusal`); or it went without a
            link (no `VAULT_BASE_URL` then: retry its mail instead).
    """
    letter = session.get(CustomerLetter, letter_id, with_for_update=True) if 0 < letter_id <= MAX_IDS else None
    if letter is None:
        raise ReissueRefused(Refused(letter_id, "no_such_letter", "no such letter", letter_id=letter_id))

    def refused(code: str, why: str) -> ReissueRefused:
        return ReissueRefused(Refused(letter_id, code, why, mail_id=letter.outbox_id, kind=str(Kind.CUSTOMER_LETTER),
                                      letter_id=letter_id, customer_id=letter.customer_id,
                                      subject_user_id=letter.new_owner_id))

    if letter.outbox_id is None:
        raise refused("not_queued", "the letter was never queued (no address to write to, or its mail is gone)")
    mail = session.get(MailOutbox, letter.outbox_id, with_for_update=True)
    refusal = _mail_refusal(session, letter.outbox_id, mail, reissuing=True)
    if refusal is not None or mail is None:
        why = refusal.why if refusal else "no such mail"
        code = "delivered" if refusal and refusal.code == "sent" else (refusal.code if refusal else "no_such_mail")
        raise refused(code, f"its mail #{letter.outbox_id} {why}")
    refusal = _letter_refusal(session, letter, letter_id, now, retrying=False)
    if refusal is not None:
        raise refused(refusal.code, refusal.why)
    old_link = next((found for found in _LETTER_LINK.findall(mail.body_text)
                     if letters.link_hash(found) == letter.token_hash), None)
    if old_link is None:
        raise refused("no_link", f"the letter went without a link (no VAULT_BASE_URL then): retry its mail "
                                 f"(`vault mail retry {mail.id}`)")
    previous_status = str(mail.status)
    withheld_code = mail.withheld_code
    old_end = letters.expiry_wording(letter, letter.expires_at)
    previous_expiry = letter.expires_at
    link = letters.renew_link(rt, letter, now)
    new_end = letters.expiry_wording(letter, letter.expires_at)
    text = mail.body_text.replace(old_link, link).replace(old_end, new_end)
    html = mail.body_html.replace(old_link, link).replace(str(escape(old_end)), str(escape(new_end)))
    fresh = MailOutbox(created_at=now, kind=mail.kind, recipient=mail.recipient, recipient_user_id=None,
                       subject=mail.subject, body_text=text, body_html=html, status=MailStatus.QUEUED, attempts=0,
                       next_attempt_at=now)
    session.add(fresh)
    # The old row keeps what a sent mail keeps: its text holds a link that no longer opens, and the new row
    # holds the address. Both rows are locked (FOR UPDATE; SQLite's transactions take the write lock at once),
    # so two operators re-issuing at once make one new mail: the second finds this text forgotten.
    shown = masked(mail.recipient)
    for column, value in forgotten(mail.recipient).items():
        setattr(mail, column, value)
    session.flush()
    letter.outbox_id = fresh.id
    session.flush()
    records.log_by_product(
        rt, session, letter.customer, contact=letter.contact_label,
        topic=f"Letter introducing the new account manager ({letter.new_owner.display_name}) sent again in "
              f"{letter.language} with a new link, {_first_mail(previous_status, withheld_code)}",
        result="queued", main_contact=True, ctx=ctx, detail={"letter_id": letter.id})
    rt.audit.record(session, action=AuditAction.LETTER_REISSUE, actor=None, ctx=ctx, customer_id=letter.customer_id,
                    subject_user_id=letter.new_owner_id,
                    detail={"letter_id": letter.id, "previous_mail_id": mail.id, "previous_status": previous_status,
                            "mail_id": fresh.id, "to": shown,
                            "previous_expires_at": previous_expiry.isoformat(),
                            "expires_at": letter.expires_at.isoformat(), "days": rt.settings.letter_link_days})
    return Reissued(letter.id, mail.id, fresh.id, shown, letter.expires_at)


# How the contact log words, after the fact, each reason that may pass (`letters.repair_refusal`'s codes; a
# lasting one forgets the letter's text, so no re-issue follows it).
_WITHHELD_BECAUSE: dict[str, str] = {
    "owner_on_notice": "the account manager it introduces had given notice",
    "manager_inactive": "the account manager it introduces could not sign in",
    "letter_expired": "its link had expired while it waited",
}


def _first_mail(status: str, withheld_code: str | None) -> str:
    """What became of a re-issued letter's first mail, for the contact log: withheld (and why, when the sender
    kept a code it knows, `withheld_code`) or failed. Read from the old row before it is forgotten; never from
    its error's sentence, whose wording is the operator's and may change."""
    if status != MailStatus.WITHHELD:
        return "its first mail having failed"
    because = _WITHHELD_BECAUSE.get(withheld_code or "")
    return "its first mail having been withheld" + (f" ({because})" if because else "")


def record_refused(rt: Runtime, session: Session, action: AuditAction, refusals: Sequence[Refused], *,
                   ctx: AccessContext, command: str, all_failed: bool | None = None) -> int:
    """Append a denied `action` record (`mail:retry`, `letter:reissue`) for each refusal, naming the mail and
    letter asked for, the customer and the reason code, as every refusal in the product is recorded; return how
    many were appended.

    For the caller's own unit of work, apart from the repair's: a refused re-issue rolls back all it did, and a
    retry that refused some mail commits the rest, so the refusals must not ride on either. `all_failed` says
    whether the operator named the mail or asked for every failed one (then a refusal is a mail skipped).

    A mail skipped by `--all-failed` is recorded only when its reason differs from the one such a run last
    recorded for it (`MailOutbox.retry_refused_code`, kept in this same transaction): the command runs from
    cron, and a mail that stays failed for ever (a password link's) was otherwise recorded again on every run,
    drowning the refusals worth reading. A new reason is recorded, so no skip goes unrecorded; a retry clears
    the mark (`retry`), so the same mail failing and skipped again is recorded again. A mail named by its id is
    recorded every time (someone asked for it) and leaves the mark alone: a person's request is a record of its
    own, not the sweep's. The row is locked first, so two runs at once record a skip once."""
    appended = 0
    for refusal in refusals:
        mail = None
        if (action == AuditAction.MAIL_RETRY and all_failed and refusal.mail_id is not None
                and 0 < refusal.mail_id <= MAX_IDS):
            mail = session.get(MailOutbox, refusal.mail_id, with_for_update=True)
            if mail is not None and mail.retry_refused_code == refusal.code:
                continue
        detail: dict[str, object] = {"mail_id": refusal.mail_id}
        if action == AuditAction.MAIL_RETRY:
            detail.update(kind=refusal.kind, letter_id=refusal.letter_id)
        else:
            detail = {"letter_id": refusal.letter_id if refusal.letter_id is not None else refusal.id, **detail}
        detail["command"] = command
        if all_failed is not None:
            detail["all_failed"] = all_failed
        rt.audit.record(session, action=action, actor=None, ctx=ctx, outcome="denied", reason_code=refusal.code,
                        customer_id=refusal.customer_id, subject_user_id=refusal.subject_user_id, detail=detail)
        if mail is not None:
            mail.retry_refused_code = refusal.code
        appended += 1
    session.flush()
    return appended
