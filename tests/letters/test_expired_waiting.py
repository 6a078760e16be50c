"""A letter's mail still waiting in the outbox after its link has expired.

When sending was off (no mail server, cron stopped) for longer than `VAULT_LETTER_LINK_DAYS`, the sender
mailed the letters waiting all the same: the contact got a link that opens only an "expired" page. Only
`vault mail retry` asked about the link's end. The end is now one of the letters' own reasons
(`letters.repair_refusal`, `letter_expired`), so the sender withholds such a letter with the repairs' rule,
keeping its address and text (the reason passes with a fresh link), and `vault letter reissue` sends it with a
new link for the full `VAULT_LETTER_LINK_DAYS`."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from tests.departure.conftest import run_cli
from tests.letters.conftest import write_contacts
from tests.letters.test_repair import _move
from tests.mail.helpers import send
from vault.models import CustomerLetter, MailStatus, utcnow
from vault.models.mail import MailOutbox

JANA = "jana@customer.example"
ONE_CONTACT = [{"name": "Jana Novak", "emails": [JANA], "main": True}]
LINK = re.compile(r"/letter/([A-Za-z0-9_-]{32}\.[A-Za-z0-9_-]{43})")


def _waiting_letter(rt: Any, company: Any) -> tuple[int, int]:
    """A letter to Jana introducing Tom, waiting in the outbox since sixteen days ago: its fourteen days' link
    ran out two days ago, while nothing was sent."""
    customer = company.customer("Baltic Freight")
    write_contacts(rt, customer, ONE_CONTACT)
    _move(rt, company, customer, "tom")
    with rt.db.session() as session:
        letter = session.scalar(select(CustomerLetter).where(CustomerLetter.new_owner_id == company.ids["tom"]))
        mail = session.get(MailOutbox, letter.outbox_id)
        assert mail.status == MailStatus.QUEUED
        letter.expires_at = utcnow() - timedelta(days=2)
        mail.created_at = mail.next_attempt_at = utcnow() - timedelta(days=16)
        return letter.id, mail.id


def test_a_waiting_letter_whose_link_expired_is_withheld_with_its_text_and_reissued(
        rt, company, smtp, tmp_path, app):
    letter_id, mail_id = _waiting_letter(rt, company)

    result = send(rt)
    assert (result.sent, result.withheld, result.failed) == (0, 1, 0)
    assert smtp.received == []
    with rt.db.session() as session:
        mail = session.get(MailOutbox, mail_id)
        old_link = LINK.search(mail.body_text).group(1)  # type: ignore[union-attr]
        # Kept whole: a fresh link is all the letter needs, and its text is the only copy of what it says.
        assert (mail.status, mail.recipient, mail.sent_at) == (MailStatus.WITHHELD, JANA, None)
        assert mail.last_error is not None and mail.last_error.startswith(
            f"letter #{letter_id}: its link expired on ")
    assert send(rt).claimed == 0

    status = run_cli(rt, tmp_path, "mail", "status")
    assert status.exit_code == 0, status.output
    assert f"withheld #{mail_id} •••@customer.example: letter #{letter_id}: its link expired on" in status.output
    assert "jana@" not in status.output

    # A retry would put the dead link back in the queue: refused, pointing at the re-issue.
    retried = run_cli(rt, tmp_path, "mail", "retry", str(mail_id))
    assert retried.exit_code == 1
    assert f"refused #{mail_id}: was withheld (letter #{letter_id}: its link expired on" in retried.output
    assert f"`vault letter reissue {letter_id}`" in retried.output

    done = run_cli(rt, tmp_path, "letter", "reissue", str(letter_id))
    assert done.exit_code == 0, done.output
    assert send(rt).sent == 1
    [arrived] = smtp.to(JANA)
    new_link = LINK.search(arrived.text).group(1)  # type: ignore[union-attr]
    assert new_link != old_link and "Tom" in arrived.text
    client = app.test_client()
    assert client.get(f"/letter/{old_link}").status_code == 404
    assert client.get(f"/letter/{new_link}").status_code == 200
    with rt.db.session() as session:
        letter = session.get(CustomerLetter, letter_id)
        assert letter.expires_at > utcnow() + timedelta(days=13)
        old = session.get(MailOutbox, mail_id)
        assert (old.status, old.recipient, old.body_text) == (MailStatus.WITHHELD, "•••@customer.example", "")


def test_the_control_a_waiting_letter_whose_link_still_opens_goes(rt, company, smtp):
    letter_id, mail_id = _waiting_letter(rt, company)
    with rt.db.session() as session:
        session.get(CustomerLetter, letter_id).expires_at = utcnow() + timedelta(hours=1)
    assert (send(rt).sent, len(smtp.to(JANA))) == (1, 1)
    with rt.db.session() as session:
        assert session.get(MailOutbox, mail_id).status == MailStatus.SENT
