"""The letter to a customer's main contacts whenever the customer's owner changes, whatever moved it.

A listener on `customer.owner_changed`: an assignment, a departure's handover, the shared pool, a rotation,
each emits the event and none of them knows about letters. Each main contact with an address gets one mail
in their own language (the contact's `language`, else `VAULT_COMPANY_LANGUAGE`), carrying a single-use link
to confirm (or deny) that the new manager has been in touch. Like every listener it runs in the act's
transaction inside a savepoint: a letter that cannot be written is logged, and the change of owner stands.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from vault.core import events
from vault.core.context import AccessContext
from vault.mail.kinds import Kind
from vault.mail.outbox import enqueue
from vault.models import Customer, CustomerLetter, User
from vault.services import letters

log = logging.getLogger(__name__)
TEMPLATE = "customer_letter"
LINK_PATH = "/letter/{link}"


def link_path(link: str) -> str:
    """The confirmation page's path (kept in step with the page's route by a test)."""
    return LINK_PATH.format(link=link)


@events.listen("customer.owner_changed")
def owner_changed(*, session: Session, rt: Any, customer: Customer, previous_owner_id: int | None, new_owner: User,
                  cause: str, actor: User | None = None, ctx: AccessContext | None = None) -> None:
    """Queue the letters for one change of owner (nothing when the owner stays the same)."""
    if previous_owner_id == new_owner.id:
        return
    try:
        with session.begin_nested():
            write_letters(rt, session, customer, previous_owner_id=previous_owner_id, new_owner=new_owner,
                          cause=cause, actor=actor, ctx=ctx or AccessContext.system("customer letters"))
    except Exception:
        log.exception("mail: the letters about customer %s's new owner could not be queued", customer.id)


def dedupe_key(letter: CustomerLetter) -> str:
    """The outbox's key for one letter. A letter to an earlier address is written `-1`, `-2`, ... as it was
    when a negative position marked it (before `CustomerLetter.earlier_address`), so the keys of mail queued
    before and after that column came mean the same and no outbox row is rewritten; the sign cannot clash
    with a current contact's position, which is never negative."""
    position = -letter.contact_index if letter.earlier_address else letter.contact_index
    return f"letter:{letter.change_key}:{position}"


def write_letters(rt: Any, session: Session, customer: Customer, *, previous_owner_id: int | None, new_owner: User,
                  cause: str, actor: User | None, ctx: AccessContext) -> int:
    """Letters made and queued for this change; returns how many were queued. Without `VAULT_BASE_URL` a letter
    still introduces the new manager, but carries no link (a relative one would lead nowhere)."""
    if not rt.settings.base_url:
        log.warning("mail: VAULT_BASE_URL is not set: letters to customers go out without their answer link")
    queued = 0
    for prepared in letters.prepare(rt, session, customer, previous_owner_id=previous_owner_id,
                                    new_owner=new_owner, cause=cause, actor=actor, ctx=ctx):
        context = letters.letter_context(rt, prepared, prepared.contact_name, link_path=link_path(prepared.link))
        rows = enqueue(session, Kind.CUSTOMER_LETTER, [prepared.address], TEMPLATE, context,
                       dedupe=dedupe_key(prepared.letter),
                       locale=prepared.letter.language)
        letters.attach(rt, session, prepared, rows[0].id if rows else None, ctx=ctx)
        queued += bool(rows)
    return queued
