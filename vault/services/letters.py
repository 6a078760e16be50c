"""Letters introducing a customer's new account manager, their single-use links, and the customer's answer.

When a customer's owner changes, `prepare` opens the sealed contacts (a system act, audited as
`customer:contacts_system_read`), picks the main contacts that have an e-mail address, and makes one letter
row per contact with a fresh link. The mail itself is written by `vault.mail.letters`, which calls this.

A link is `<secret>.<signature>`: 24 random bytes and an HMAC-SHA256 of them under the application's secret
key. The signature lets a forged or altered link be refused before any database look-up; only the SHA-256
of the whole link is stored, so neither the database nor a backup can answer in a customer's name. A link
works once, until it expires (`VAULT_LETTER_LINK_DAYS`), and not after the new owner, their manager or an
administrator revoked it. The answer goes to the customer's contact log (sealed like every entry), the audit
log, and the departure's handover item when the change came from one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from babel.dates import format_date
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vault import policy
from vault.core.actions import Action
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.core.errors import NotFound, ServiceError
from vault.db.locking import locked
from vault.models import (
    Customer,
    CustomerLetter,
    Departure,
    DepartureStatus,
    HandoverItem,
    LetterAnswer,
    MailOutbox,
    MailStatus,
    User,
    utcnow,
)
from vault.models.mail import forgotten
from vault.policy.notice import on_notice
from vault.runtime import Runtime
from vault.services import letter_addresses, masking, records

MAX_COMMENT = 500
# The reason a letter kept for a re-issue is forgotten once its link expired longer ago than
# `VAULT_LETTER_KEEP_DAYS` (`forget_unsendable`): `repair_refusal`'s code for an expired link, which alone never
# forgets a letter, since a re-issue would send it with a fresh one.
KEPT_EXPIRED = "letter_expired"
# Who the audit log names for what comes through a letter's link: someone without an account, known only by
# the link they hold (the letter id is in the record's detail).
ANONYMOUS = "link:customer-letter"
_LINK = re.compile(r"^[A-Za-z0-9_-]{32}\.[A-Za-z0-9_-]{43}$")
_PURPOSE = b"vault:customer-letter:"


class LinkRefused(ServiceError):
    """A link that cannot be answered: `forged` (bad signature or unknown), `used`, `expired`, `revoked`.
    Told as 404/410 pages, never a 5xx. A link to a real letter carries the letter's language, so the
    contact reads "already used" in the language the letter was written in."""

    status = 404

    def __init__(self, code: str, message: object, *, language: str | None = None) -> None:
        super().__init__(code, message)
        self.language = language


# -- links ------------------------------------------------------------------------------------------------


def _signature(secret_key: str, secret: str) -> str:
    mac = hmac.new(secret_key.encode("utf-8"), _PURPOSE + secret.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


def new_link(secret_key: str) -> str:
    secret = secrets.token_urlsafe(24)
    return f"{secret}.{_signature(secret_key, secret)}"


def link_hash(link: str) -> str:
    return hashlib.sha256(link.encode("utf-8")).hexdigest()


def well_signed(secret_key: str, link: str) -> bool:
    """Whether `link` has the right shape and a valid signature (nothing is looked up)."""
    if not _LINK.match(link or ""):
        return False
    secret, _, signature = link.partition(".")
    return hmac.compare_digest(signature, _signature(secret_key, secret))


# -- writing letters --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """One letter to send: the row (already flushed), the address, and the link to put in it."""

    letter: CustomerLetter
    address: str
    link: str
    contact_name: str


def change_key(customer: Customer, previous_owner_id: int | None, new_owner: User, cause: str,
               item: HandoverItem | None, now: datetime) -> str:
    """What names one change of owner. The same customer moving from the same person to the same person for
    the same reason on the same day is one change for the customer: they get one introduction of the new
    manager, however often the act is retried or an owner is moved back and forth that day."""
    where = f"item{item.id}" if item is not None else now.date().isoformat()
    return f"{customer.id}:{previous_owner_id or 0}>{new_owner.id}:{cause}:{where}"[:120]


def handover_item_for(session: Session, customer: Customer, new_owner: User) -> HandoverItem | None:
    """The open departure's handover item that gave this customer to `new_owner`, if any."""
    return session.scalar(
        select(HandoverItem).join(Departure, Departure.id == HandoverItem.departure_id)
        .where(HandoverItem.customer_id == customer.id, HandoverItem.to_user_id == new_owner.id,
               Departure.status == DepartureStatus.NOTICE)
        .order_by(HandoverItem.id.desc()).limit(1))


def prepare(rt: Runtime, session: Session, customer: Customer, *, previous_owner_id: int | None, new_owner: User,
            cause: str, actor: User | None, ctx: AccessContext) -> list[Prepared]:
    """Letter rows (with links) for the customer's main contacts that have an address, and for every address
    a leaver's edit took out of the record (`letter_addresses`: the customer is told even when a leaver put
    their own mailbox in its place); none when the owner did not change, when this change already has its
    letters, or when the record has no contacts and no earlier address. Every letter made is audited
    (`customer:letter`, naming each earlier address masked, with the edit that took it out and why), and so
    is the reading of the contacts and of the versions opened to find the earlier ones.

    An earlier address gets a letter of its own, with its own link, never a copy of the current address's:
    the leaver holding that link could otherwise spend it with "contacted" before the customer answers."""
    if previous_owner_id == new_owner.id:
        return []
    now = utcnow()
    item = handover_item_for(session, customer, new_owner) if cause == "handover" else None
    key = change_key(customer, previous_owner_id, new_owner, cause, item, now)
    if session.scalar(select(CustomerLetter.id).where(CustomerLetter.change_key == key).limit(1)) is not None:
        return []
    record = records.record_of(session, customer.id)
    if record is None:
        return []
    earlier, versions = letter_addresses.earlier_addresses(rt, session, record)
    if record.contacts is None and not earlier:
        return []
    chosen = records.main_contacts(records.snapshot(rt, record)["contacts"])
    # Opening the sealed contacts without a person behind it: recorded, with what it was for.
    rt.audit.record(session, action=AuditAction.CUSTOMER_CONTACTS_SYSTEM_READ, actor=None, ctx=ctx,
                    customer_id=customer.id, subject_user_id=new_owner.id,
                    detail={"purpose": "letter", "cause": cause, "main_contacts": [i for i, _c in chosen],
                            "by": actor.id if actor else None, **({"versions": versions} if versions else {})})
    settings = rt.settings

    def make(index: int, contact: dict[str, Any], address: str, *, earlier: bool = False) -> Prepared:
        link = new_link(settings.secret_key)
        letter = CustomerLetter(
            customer_id=customer.id, handover_item_id=item.id if item else None, cause=cause[:32],
            previous_owner_id=previous_owner_id, new_owner_id=new_owner.id, change_key=key, contact_index=index,
            earlier_address=earlier, contact_label=masking.mask_name(contact.get("name", ""))[:120],
            language=contact.get("language") or settings.company_language, token_hash=link_hash(link),
            created_at=now, expires_at=now + timedelta(days=settings.letter_link_days))
        session.add(letter)
        session.flush()
        return Prepared(letter=letter, address=address, link=link, contact_name=contact.get("name", ""))

    prepared: list[Prepared] = []
    skipped: list[int] = []
    for index, contact in chosen:
        address = letter_addresses.address_of(contact)
        if not address:
            skipped.append(index)
            continue
        prepared.append(make(index, contact, address))
    # An earlier address that is also a current one (changed back, or another contact's) is written to once.
    written = {letter_addresses.key(p.address) for p in prepared}
    told: list[dict[str, Any]] = []
    for found in earlier:
        if letter_addresses.key(found.address) in written:
            continue
        written.add(letter_addresses.key(found.address))
        letter = make(len(told) + 1, found.contact, found.address, earlier=True)
        prepared.append(letter)
        told.append({"letter_id": letter.letter.id, "address": masking.mask_email(found.address),
                     "why": found.why, "version": found.version, "contact_index": found.contact_index,
                     "edited_by": found.edited_by, "edited_at": found.edited_at.isoformat()})
    detail: dict[str, Any] = {"cause": cause, "from": previous_owner_id, "to": new_owner.id,
                              "letters": [p.letter.id for p in prepared],
                              "languages": [p.letter.language for p in prepared],
                              "handover_item_id": item.id if item else None, "no_address": skipped,
                              "days": settings.letter_link_days}
    if told:
        detail["earlier_addresses"] = told
    rt.audit.record(session, action=AuditAction.CUSTOMER_LETTER, actor=None, ctx=ctx, customer_id=customer.id,
                    subject_user_id=new_owner.id, detail=detail)
    return prepared


def letter_context(rt: Runtime, prepared: Prepared, contact_name: str, *, link_path: str) -> dict[str, Any]:
    """What a letter says: the contact's own name, the company, the new manager and their address, the link
    and when it ends. Nothing else of the record (no other contact, no terms, not even the customer's name):
    a letter that reaches the wrong inbox tells its reader no more than a business card would."""
    letter = prepared.letter
    return {"contact_name": contact_name, "company_name": rt.settings.company_name,
            "manager_name": letter.new_owner.display_name, "manager_email": letter.new_owner.email or "",
            "link_path": link_path, "expires_on": expiry_wording(letter, letter.expires_at)}


def attach(rt: Runtime, session: Session, prepared: Prepared, outbox_id: int | None, *, ctx: AccessContext) -> None:
    """Link the letter to its outbox row and note the letter on the customer's contact log."""
    letter = prepared.letter
    letter.outbox_id = outbox_id
    session.flush()
    records.log_by_product(
        rt, session, letter.customer, contact=letter.contact_label,
        topic=f"Letter introducing the new account manager ({letter.new_owner.display_name}) sent in "
              f"{letter.language}" + (" to an address the contact had before a leaver's edit"
                                      if letter.earlier_address else ""),
        result="queued" if outbox_id else "not queued",
        main_contact=True, ctx=ctx, detail={"letter_id": letter.id})


# -- repairing a letter whose mail failed -----------------------------------------------------------------


class LetterRefusal(NamedTuple):
    """Why a letter must not go (`repair_refusal`): a stable `code`, the operator's sentence, and whether it
    is `lasting` (nothing can make the letter hold again: answered, revoked, the customer moved on) or may
    pass (the manager it introduces is on notice or cannot sign in, until the notice is withdrawn or the
    account enabled again; its link has expired, until `vault letter reissue` gives it a fresh one)."""

    code: str
    why: str
    lasting: bool


def repair_refusal(session: Session, letter: CustomerLetter, *, now: datetime,
                   fresh_link: bool = False) -> LetterRefusal | None:
    """Why a letter must not be sent (again), or None when it may. The one rule for every way a letter
    leaves: asked by the sender when a waiting letter comes due (`vault.mail.audience`, which withholds it)
    and by the repairs (`vault mail retry`, `vault letter reissue`, which refuse it), so the two can never
    disagree about a letter. `fresh_link` says the letter would go with a new link (a re-issue), so the end of
    its present one does not matter; otherwise a link that has expired by `now` is a reason that may pass
    (`letter_expired`): the contact would get a link that opens only an "expired" page, and a re-issue sends
    the same text with a fresh one.

    A letter introduces the owner of one change: once the customer has moved on (another owner, or a later
    change that wrote letters of its own) it would introduce the wrong person, or the right one for the
    wrong reason, and its answer would land on a handover that no longer holds. An answered link has done
    its work; a revoked one was ended on purpose by the new owner or above, and an operator must not undo
    that from the server. A new owner who has given notice still owns the customers waiting in their
    handover, but a letter must not introduce a leaver as the customer's account manager: the handover
    gives the customer to a successor, and that change writes letters of its own."""
    if letter.answered_at is not None:
        return LetterRefusal("letter_answered", "its link was already answered", True)
    if letter.revoked_at is not None:
        return LetterRefusal("letter_revoked", f"its link was revoked on {letter.revoked_at.date().isoformat()} "
                                               "(the new owner's side chose not to have it answered)", True)
    customer = letter.customer
    if customer.owner_id != letter.new_owner_id:
        return LetterRefusal("letter_stale", "the customer has changed owner since: the letter would introduce "
                                             "someone who no longer looks after it", True)
    later = session.scalar(select(CustomerLetter.id).where(
        CustomerLetter.customer_id == letter.customer_id, CustomerLetter.id > letter.id,
        CustomerLetter.change_key != letter.change_key).order_by(CustomerLetter.id).limit(1))
    if later is not None:
        return LetterRefusal("letter_superseded", f"a later change of owner wrote letters of its own (#{later})",
                             True)
    if not letter.new_owner.can_sign_in:
        return LetterRefusal("manager_inactive", "the account manager it introduces can no longer sign in", False)
    if introduces_leaver(letter):
        name = letter.new_owner.username
        return LetterRefusal(
            "owner_on_notice", f"the account manager it introduces ({name}) is on notice: a letter must not "
                               "introduce a leaver; hand the customer to a successor through the departure's "
                               f"handover (`vault departure reassign {name} {customer.id} --to USER`), which "
                               "writes letters of its own", False)
    if not fresh_link and letter.state(now) == "expired":  # the link page's own rule
        return LetterRefusal("letter_expired", f"its link expired on {letter.expires_at.date().isoformat()}: "
                                               "re-issue it with a fresh link "
                                               f"(`vault letter reissue {letter.id}`)", False)
    return None


def forget_unsendable(rt: Runtime, session: Session, *, ctx: AccessContext,
                      now: datetime) -> dict[str, list[int]]:
    """Forget the address and text of every withheld or failed letter that no repair may send any more; return
    the letters' ids by the reason they were forgotten for (`repair_refusal`'s lasting codes, and `KEPT_EXPIRED`
    for a link that ran out too long ago), as `letter:forget` records them, so the operator is told which is
    which. Part of the maintenance sweep, in its unit of work.

    The outbox keeps a letter's address and text while something may still send it: a letter withheld for a
    reason that may pass (`repair_refusal`, not `lasting`), for `vault letter reissue`, and a letter whose mail
    failed, for `vault mail retry` or a re-issue; they are the only copy of what it says. When its refusal turns
    lasting (the customer is handed to a successor, the letter is answered, revoked or superseded), nothing
    can send it, and the contact's address and the letter, link included, would otherwise stay in the outbox
    for ever: they are forgotten as a sent mail's are (`vault.models.mail.forgotten`), the status and the reason
    or the server's answer kept for `vault mail status`. Asked as a re-issue would ask it (`fresh_link`): a
    link that merely ran out is no lasting reason. One `letter:forget` per sweep names what it forgot and in
    which state; a sweep that forgets nothing records nothing, since it runs every minute. A row a repair holds
    (PostgreSQL) is skipped and left to the next sweep.

    A letter kept for a reason that may pass is not kept for ever either: `VAULT_LETTER_KEEP_DAYS` after its
    link expired (a letter withheld because the link ran out, or one whose mail failed or was withheld and that
    nobody re-issued since), its contact's address and its text are forgotten too, under the reason
    `letter_expired`. An introduction that waited that long is stale for the customer, and the contact's address
    must not outlive every use the outbox has for it; a re-issue gives a fresh link and starts the days again."""
    query = (select(CustomerLetter, MailOutbox).join(MailOutbox, MailOutbox.id == CustomerLetter.outbox_id)
             .where(MailOutbox.status.in_((MailStatus.WITHHELD, MailStatus.FAILED)), MailOutbox.body_text != "")
             .order_by(MailOutbox.id))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=MailOutbox, skip_locked=True)
    forgotten_ids: list[int] = []
    mails: list[int] = []
    customers: set[int] = set()
    reasons: dict[str, list[int]] = {}
    statuses: dict[str, list[int]] = {}
    kept_until = now - timedelta(days=rt.settings.letter_keep_days)
    for letter, mail in session.execute(query).all():
        refusal = repair_refusal(session, letter, now=now, fresh_link=True)
        if refusal is not None and refusal.lasting:
            code = refusal.code
        elif letter.expires_at <= kept_until:
            code = KEPT_EXPIRED
        else:
            continue
        for column, value in forgotten(mail.recipient).items():
            setattr(mail, column, value)
        forgotten_ids.append(letter.id)
        mails.append(mail.id)
        customers.add(letter.customer_id)
        reasons.setdefault(code, []).append(letter.id)
        statuses.setdefault(str(mail.status), []).append(letter.id)
    if forgotten_ids:
        session.flush()
        rt.audit.record(session, action=AuditAction.LETTER_FORGET, actor=None, ctx=ctx,
                        detail={"letters": forgotten_ids, "mails": mails, "customers": sorted(customers),
                                "reasons": reasons, "statuses": statuses})
    return reasons


def introduces_leaver(letter: CustomerLetter) -> bool:
    """Whether the account manager `letter` introduces has given notice (one of `repair_refusal`'s reasons):
    a letter written before the notice must not reach the customer after it, introducing a leaver as their new
    account manager; the departure's handover gives the customer to a successor, and that change writes
    letters of its own."""
    return on_notice(letter.new_owner)


def renew_link(rt: Runtime, letter: CustomerLetter, now: datetime) -> str:
    """Give `letter` a fresh link for a full `VAULT_LETTER_LINK_DAYS` and return it; the old link stops
    working at once, since only the new one's hash is kept (it never reached anyone, but a copy of the failed
    mail's text still held it). The row stays the same letter of the same change, so the handover status, the
    customer's page and the departure report keep counting one letter per contact."""
    link = new_link(rt.settings.secret_key)
    letter.token_hash = link_hash(link)
    letter.expires_at = now + timedelta(days=rt.settings.letter_link_days)
    return link


def expiry_wording(letter: CustomerLetter, expires_at: datetime) -> str:
    """The end date as the letter words it (`letter_context`), to find it in a letter's text."""
    return format_date(expires_at.date(), "long", locale=letter.language)


# -- the link ---------------------------------------------------------------------------------------------


def open_link(rt: Runtime, session: Session, link: str, *, now: datetime | None = None) -> CustomerLetter:
    """The letter behind a link that can still be answered.

    Raises:
        LinkRefused: `forged`, `used`, `revoked` or `expired`.
    """
    if not well_signed(rt.settings.secret_key, link):
        raise LinkRefused("forged", "This link is not valid.")
    letter = session.scalar(select(CustomerLetter).where(CustomerLetter.token_hash == link_hash(link)))
    if letter is None:
        raise LinkRefused("forged", "This link is not valid.")
    state = letter.state(now or utcnow())
    if state == "answered":
        raise LinkRefused("used", "This link was already used.", language=letter.language)
    if state != "open":
        raise LinkRefused(state, f"This link is {state}.", language=letter.language)
    return letter


def refuse_link(rt: Runtime, session: Session, link: str, code: str, *, ctx: AccessContext) -> None:
    """Audit a refused link (never the link itself: a hash prefix says which letter, when one matched)."""
    letter = session.scalar(select(CustomerLetter).where(CustomerLetter.token_hash == link_hash(link or "")))
    rt.audit.record(session, action=AuditAction.LETTER_LINK_REFUSED, actor=None, actor_name=ANONYMOUS, ctx=ctx,
                    outcome="denied",
                    reason_code=code, customer_id=letter.customer_id if letter else None,
                    detail={"letter_id": letter.id if letter else None})


def clean_comment(comment: str | None) -> str:
    text = unicodedata.normalize("NFC", comment or "").strip()
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in {"Cc", "Cf"})
    if len(text) > MAX_COMMENT:
        raise ServiceError("comment_too_long", f"A comment has at most {MAX_COMMENT} characters.")
    return text


def answer(rt: Runtime, session: Session, link: str, reply: str, comment: str | None, *,
           ctx: AccessContext, now: datetime | None = None) -> CustomerLetter:
    """Record a contact's answer through the link: spent at once (a second answer is refused), written to
    the contact log (the comment sealed there) and the audit log, and onto the handover item.

    Raises:
        LinkRefused: as `open_link`.
        ServiceError: `invalid_answer`, `comment_too_long`.
    """
    if reply not in {LetterAnswer.CONTACTED, LetterAnswer.NOT_CONTACTED}:
        raise ServiceError("invalid_answer", "Choose one of the two answers.")
    text = clean_comment(comment)
    now = now or utcnow()
    letter = open_link(rt, session, link, now=now)
    # Spent by a conditional UPDATE: of two answers racing (two tabs, a double click), one finds the link
    # open and the other finds nothing to update, on SQLite and PostgreSQL alike.
    spent = session.execute(
        update(CustomerLetter).where(CustomerLetter.id == letter.id, CustomerLetter.answered_at.is_(None),
                                     CustomerLetter.revoked_at.is_(None), CustomerLetter.expires_at > now)
        .values(answer=str(reply), answered_at=now).execution_options(synchronize_session=False))
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        raise LinkRefused("used", "This link was already used.", language=letter.language)
    session.refresh(letter)
    item = session.get(HandoverItem, letter.handover_item_id) if letter.handover_item_id else None
    current = item is not None and item.customer_id == letter.customer_id and item.to_user_id == letter.new_owner_id
    # "Not contacted" outweighs "contacted": one main contact left out is what the rule is about.
    if item is not None and current and (reply == LetterAnswer.NOT_CONTACTED
                                         or item.customer_answer != LetterAnswer.NOT_CONTACTED):
        item.customer_answer = str(reply)
        item.customer_answered_at = now
    session.flush()
    said = ("confirmed being contacted by" if reply == LetterAnswer.CONTACTED
            else "said they have not been contacted by")
    records.log_by_product(rt, session, letter.customer, contact=letter.contact_label,
                           topic=f"Answer to the letter: {said} {letter.new_owner.display_name}",
                           result=text, main_contact=True, ctx=ctx, detail={"letter_id": letter.id})
    rt.audit.record(session, action=AuditAction.LETTER_ANSWER, actor=None, actor_name=ANONYMOUS, ctx=ctx,
                    customer_id=letter.customer_id,
                    subject_user_id=letter.new_owner_id,
                    detail={"letter_id": letter.id, "answer": str(reply), "commented": bool(text),
                            "handover_item_id": letter.handover_item_id})
    return letter


# -- revoking and listing ---------------------------------------------------------------------------------


def get_letter(session: Session, letter_id: int) -> CustomerLetter:
    letter = session.get(CustomerLetter, letter_id)
    if letter is None:
        raise NotFound("letter")
    return letter


def revoke(rt: Runtime, session: Session, actor: User, letter: CustomerLetter, *, ctx: AccessContext) -> CustomerLetter:
    """End a letter's link before it is used (the letter went to the wrong person, or the manager prefers to
    call first). Audited as `letter:revoke`.

    Raises:
        policy.Denied: `not_letter_owner`, `letter_closed`.
    """
    locked(session, CustomerLetter, letter.id)  # an answer or a revocation made meanwhile is seen
    policy.require(actor, Action.LETTER_REVOKE, letter, audit={"customer_id": letter.customer_id})
    letter.revoked_at = utcnow()
    letter.revoked_by_id = actor.id
    session.flush()
    rt.audit.record(session, action=AuditAction.LETTER_REVOKE, actor=actor, ctx=ctx, customer_id=letter.customer_id,
                    subject_user_id=letter.new_owner_id, detail={"letter_id": letter.id})
    return letter


def letters_of(session: Session, customer_id: int) -> list[CustomerLetter]:
    return list(session.scalars(select(CustomerLetter).where(CustomerLetter.customer_id == customer_id)
                                .order_by(CustomerLetter.id.desc())))


def letters_of_items(session: Session, item_ids: list[int]) -> dict[int, list[CustomerLetter]]:
    """The letters of each handover item (for the departure's handover status)."""
    found: dict[int, list[CustomerLetter]] = {}
    if not item_ids:
        return found
    for letter in session.scalars(select(CustomerLetter).where(CustomerLetter.handover_item_id.in_(item_ids))
                                  .order_by(CustomerLetter.id)):
        found.setdefault(letter.handover_item_id or 0, []).append(letter)
    return found


def may_revoke(actor: User, letter: CustomerLetter) -> bool:
    return bool(policy.authorize(actor, Action.LETTER_REVOKE, letter))
