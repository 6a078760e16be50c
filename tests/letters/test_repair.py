"""Repairing mail that failed for good from the command line: `vault mail retry` and `vault letter reissue`.

Before, no command put a failed mail back in the queue or sent a failed customer letter again: an operator
edited the outbox by hand in the database, unrecorded, and could as well have sent a password link's mail again
or a letter introducing someone who no longer looks after the customer. Each repair is now audited under the
operator's name, refuses what cannot be repaired honestly one line per mail, and prints a customer's mailbox
only masked, as `vault mail status` does."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.departure.conftest import OFFICE, days_from_today, run_cli
from tests.letters.conftest import write_contacts
from tests.mail.helpers import send
from vault.cli import letters as cli_letters
from vault.cli import mail as cli_mail
from vault.mail import Kind, enqueue
from vault.models import AuditEvent, ContactLogEntry, Customer, CustomerLetter, MailStatus, User, utcnow
from vault.models.mail import MailOutbox
from vault.services import customers, departures, letters

JANA = "jana@customer.example"
_LINK = re.compile(r"/letter/([A-Za-z0-9_-]{32}\.[A-Za-z0-9_-]{43})")


def _move(rt: Any, company: Any, customer: int, to: str, by: str = "ann") -> None:
    with rt.db.session() as session:
        customers.set_owner(rt, session, company.user(session, by), session.get(Customer, customer),
                            company.user(session, to), ctx=OFFICE, reason="Territory change")


def _events(rt: Any, action: str, outcome: str = "allowed") -> list[AuditEvent]:
    """The repairs done (or, with `outcome="denied"`, refused) as the audit log holds them."""
    with rt.db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action,
                                                             AuditEvent.outcome == outcome)
                                    .order_by(AuditEvent.seq)))


@pytest.fixture
def failed(rt: Any, company: Any, smtp: Any) -> dict[str, Any]:
    """Tom took over Baltic Freight; Jana's mail server refused her letter for good, the others arrived."""
    customer = company.customer("Baltic Freight")
    write_contacts(rt, customer)
    smtp.refuse = {JANA}
    _move(rt, company, customer, "tom")
    result = send(rt)
    assert (result.sent, result.failed) == (2, 1)
    smtp.refuse = set()
    with rt.db.session() as session:
        [mail] = session.scalars(select(MailOutbox).where(MailOutbox.status == MailStatus.FAILED)).all()
        letter = session.scalar(select(CustomerLetter).where(CustomerLetter.outbox_id == mail.id))
        delivered = session.scalar(select(MailOutbox.id).where(MailOutbox.status == MailStatus.SENT,
                                                               MailOutbox.kind == str(Kind.CUSTOMER_LETTER)))
        link = _LINK.search(mail.body_text).group(1)  # type: ignore[union-attr]
        return {"customer": customer, "mail": mail.id, "letter": letter.id, "delivered": delivered, "link": link}


def test_a_failed_letter_retried_is_delivered_with_its_link_and_recorded(rt, company, smtp, failed, tmp_path):
    done = run_cli(rt, tmp_path, "--operator", "maria", "mail", "retry", str(failed["mail"]))
    assert done.exit_code == 0, done.output
    assert f"queued #{failed['mail']} customer_letter •••@customer.example" in done.output
    assert "550" in done.output and "jana" not in done.output  # the reason stays, the mailbox is masked
    [record] = _events(rt, "mail:retry")
    assert record.actor_name == "cli:maria" and record.customer_id == failed["customer"]
    assert json.loads(record.detail) == {"mail_id": failed["mail"], "kind": "customer_letter",
                                         "to": "•••@customer.example", "attempts": 1, "letter_id": failed["letter"]}
    assert send(rt).sent == 1
    [arrived] = smtp.to(JANA)
    assert failed["link"] in arrived.text
    with rt.db.session() as session:
        assert letters.open_link(rt, session, failed["link"]).id == failed["letter"]
        mail = session.get(MailOutbox, failed["mail"])
        assert mail.status == MailStatus.SENT and mail.body_text == ""  # forgotten as any sent mail


def test_every_failed_mail_at_once_and_the_password_link_left_out(rt, company, smtp, failed, tmp_path):
    """`--all-failed` retries what can be, names what cannot, and exits 0: a password link's mail stays failed
    for ever, and must not make every later run an error."""
    link_mail = _failed_password_link(rt, company, smtp)
    done = run_cli(rt, tmp_path, "mail", "retry", "--all-failed")
    assert done.exit_code == 0, done.output
    assert f"queued #{failed['mail']}" in done.output and "1 mail back in the queue" in done.output
    assert f"skipped #{link_mail}: is a password link" in done.output
    assert "vault user password-link tom" in done.output
    assert [json.loads(e.detail)["mail_id"] for e in _events(rt, "mail:retry")] == [failed["mail"]]


def _failed_password_link(rt: Any, company: Any, smtp: Any) -> int:
    """A password link mailed to Tom, refused for good by his mail server: its text is forgotten."""
    with rt.db.session() as session:
        tom = session.get(User, company.ids["tom"])
        [row] = enqueue(session, Kind.PASSWORD_LINK, [tom], "password_link",
                        {"username": "tom", "admin_name": "Ann", "hours": 72, "link_path": "/password/set/x" * 3})
        row_id = row.id
    smtp.refuse = {"tom@nordwind.example"}
    assert send(rt).failed == 1
    smtp.refuse = set()
    return row_id


def test_each_refusal_is_one_line_with_its_reason_and_nothing_changes(rt, company, smtp, failed, tmp_path):
    link_mail = _failed_password_link(rt, company, smtp)
    # Queued, not yet sent: another customer's letter.
    other = company.customer("Nordic Paper")
    write_contacts(rt, other, [{"name": "Per Olsen", "emails": ["per@other.example"], "main": True}])
    _move(rt, company, other, "tom")
    with rt.db.session() as session:
        pending = session.scalar(select(MailOutbox.id).where(MailOutbox.status == MailStatus.QUEUED))
        before = {(m.id, m.status, m.attempts, m.body_text) for m in session.scalars(select(MailOutbox))}
    done = run_cli(rt, tmp_path, "mail", "retry", str(failed["delivered"]), str(pending), str(link_mail), "999999",
                   str(2**40))
    assert done.exit_code == 1, done.output
    lines = [line for line in done.output.splitlines() if line.startswith("refused #")]
    assert lines == [
        f"refused #{failed['delivered']}: " + lines[0].split(": ", 1)[1],
        f"refused #{pending}: is still waiting to be sent (queued, 0 attempts so far); "
        "`vault mail send-pending` sends it when due",
        f"refused #{link_mail}: is a password link: its text is forgotten and it is never sent again; make a new "
        "link instead (`vault user password-link tom`, or the administrators' page)",
        "refused #999999: no such mail",
        f"refused #{2**40}: no such mail",
    ]
    assert lines[0].endswith("nothing to retry") and "was sent (" in lines[0]
    assert "0 mails back in the queue" in done.output and "customer.example" not in done.output
    assert _events(rt, "mail:retry") == []
    with rt.db.session() as session:
        assert {(m.id, m.status, m.attempts, m.body_text) for m in session.scalars(select(MailOutbox))} == before
    # Naming nothing, or both ways at once, is a usage error.
    assert run_cli(rt, tmp_path, "mail", "retry").exit_code == 2
    assert run_cli(rt, tmp_path, "mail", "retry", "--all-failed", str(failed["mail"])).exit_code == 2


def test_a_mix_retries_the_good_ones_and_still_fails(rt, company, smtp, failed, tmp_path):
    done = run_cli(rt, tmp_path, "mail", "retry", str(failed["mail"]), "999999")
    assert done.exit_code == 1
    assert f"queued #{failed['mail']}" in done.output and "refused #999999: no such mail" in done.output
    assert len(_events(rt, "mail:retry")) == 1
    assert send(rt).sent == 1 and len(smtp.to(JANA)) == 1


def test_a_letter_whose_link_expired_is_not_retried_but_reissued(rt, company, smtp, failed, tmp_path):
    with rt.db.session() as session:
        session.get(CustomerLetter, failed["letter"]).expires_at = utcnow()
    done = run_cli(rt, tmp_path, "mail", "retry", str(failed["mail"]))
    assert done.exit_code == 1
    assert (f"refused #{failed['mail']}: is letter #{failed['letter']}: its link expired on" in done.output
            and f"`vault letter reissue {failed['letter']}`" in done.output)
    assert _events(rt, "mail:retry") == []


def test_a_reissued_letter_has_a_new_link_and_the_old_one_is_refused(rt, company, smtp, failed, tmp_path, app):
    done = run_cli(rt, tmp_path, "--operator", "maria", "letter", "reissue", str(failed["letter"]))
    assert done.exit_code == 0, done.output
    assert f"letter #{failed['letter']} re-issued to •••@customer.example as mail #" in done.output
    assert "jana" not in done.output
    with rt.db.session() as session:
        letter = session.get(CustomerLetter, failed["letter"])
        new_mail = session.get(MailOutbox, letter.outbox_id)
        old_mail = session.get(MailOutbox, failed["mail"])
        # The old row holds neither the address nor the dead link; the new one is queued to the same address.
        assert (old_mail.status, old_mail.recipient, old_mail.body_text) == (MailStatus.FAILED,
                                                                             "•••@customer.example", "")
        assert new_mail.id != old_mail.id and new_mail.recipient == JANA and new_mail.status == MailStatus.QUEUED
        with pytest.raises(letters.LinkRefused):
            letters.open_link(rt, session, failed["link"])
        # Still one letter for Jana's contact of this change (the handover status counts letters).
        assert session.scalar(select(CustomerLetter.id).where(CustomerLetter.customer_id == failed["customer"],
                                                              CustomerLetter.contact_index == 0)) == letter.id
        expires = letter.expires_at
        logged = session.scalars(select(ContactLogEntry).where(ContactLogEntry.customer_id == failed["customer"])
                                 ).all()
        assert len(logged) == 4  # three letters, then the one sent again
    [record] = _events(rt, "letter:reissue")
    detail = json.loads(record.detail)
    assert record.actor_name == "cli:maria" and record.customer_id == failed["customer"]
    assert (detail["letter_id"], detail["previous_mail_id"], detail["mail_id"], detail["to"]) == (
        failed["letter"], failed["mail"], new_mail.id, "•••@customer.example")
    assert send(rt).sent == 1
    [arrived] = smtp.to(JANA)
    new_link = _LINK.search(arrived.text).group(1)  # type: ignore[union-attr]
    assert new_link != failed["link"] and failed["link"] not in arrived.text + arrived.html
    assert "Jana Novak" in arrived.text and expires.strftime("%Y") in arrived.text
    client = app.test_client()
    assert client.get(f"/letter/{failed['link']}").status_code == 404
    assert client.get(f"/letter/{new_link}").status_code == 200
    # The old mail cannot be retried now: its letter went again.
    again = run_cli(rt, tmp_path, "mail", "retry", str(failed["mail"]))
    assert again.exit_code == 1 and "its letter was re-issued" in again.output


def test_a_reissue_is_refused_for_a_delivered_a_waiting_or_a_stale_letter(rt, company, smtp, failed, tmp_path):
    with rt.db.session() as session:
        delivered = session.scalar(select(CustomerLetter.id).where(CustomerLetter.outbox_id == failed["delivered"]))
    refused = run_cli(rt, tmp_path, "letter", "reissue", str(delivered))
    assert refused.exit_code == 1 and f"refused letter #{delivered}: its mail #{failed['delivered']} was sent" \
        in refused.output
    assert "no such letter" in run_cli(rt, tmp_path, "letter", "reissue", "999999").output
    # Retried, so waiting again: no second copy with another link.
    assert run_cli(rt, tmp_path, "mail", "retry", str(failed["mail"])).exit_code == 0
    waiting = run_cli(rt, tmp_path, "letter", "reissue", str(failed["letter"]))
    assert waiting.exit_code == 1 and "is still waiting to be sent" in waiting.output
    # Failed again, and meanwhile the customer went on to Sue: the letter would introduce Tom.
    smtp.refuse = {JANA}
    assert send(rt).failed == 1
    _move(rt, company, failed["customer"], "sue")
    stale = run_cli(rt, tmp_path, "letter", "reissue", str(failed["letter"]))
    assert stale.exit_code == 1 and "the customer has changed owner since" in stale.output
    retried = run_cli(rt, tmp_path, "mail", "retry", str(failed["mail"]))
    assert retried.exit_code == 1 and "the customer has changed owner since" in retried.output
    assert _events(rt, "letter:reissue") == [] and len(_events(rt, "mail:retry")) == 1
    with rt.db.session() as session:
        letter = session.get(CustomerLetter, failed["letter"])
        assert letter.outbox_id == failed["mail"] and letters.open_link(rt, session, failed["link"]).id == letter.id


def test_a_letter_introducing_a_manager_on_notice_is_not_sent_again(rt, company, smtp, failed, tmp_path):
    """Tom gave notice after Jana's letter failed, and his customers wait in his handover (no successor
    named): still Tom's, so nothing else refused the letter, which would introduce a leaver to Jana as her
    new account manager. Refused, saying what to do instead: the handover gives the customer to a successor,
    and that writes letters of its own."""
    with rt.db.session() as session:
        departures.start_departure(rt, session, None, company.user(session, "tom"), last_day=days_from_today(20),
                                   successor=None, ctx=OFFICE)
    with rt.db.session() as session:
        assert session.get(Customer, failed["customer"]).owner_id == company.ids["tom"]
    expected = (f"the account manager it introduces (tom) is on notice: a letter must not introduce a leaver; "
                f"hand the customer to a successor through the departure's handover (`vault departure reassign "
                f"tom {failed['customer']} --to USER`), which writes letters of its own")
    reissued = run_cli(rt, tmp_path, "letter", "reissue", str(failed["letter"]))
    assert reissued.exit_code == 1, reissued.output
    assert f"refused letter #{failed['letter']}: {expected}" in reissued.output
    retried = run_cli(rt, tmp_path, "mail", "retry", str(failed["mail"]))
    assert retried.exit_code == 1, retried.output
    assert f"is letter #{failed['letter']}: {expected}" in retried.output
    assert _events(rt, "letter:reissue") == [] and _events(rt, "mail:retry") == []
    with rt.db.session() as session:
        letter = session.get(CustomerLetter, failed["letter"])
        assert letter.outbox_id == failed["mail"] and letters.open_link(rt, session, failed["link"]).id == letter.id
        assert session.get(MailOutbox, failed["mail"]).status == MailStatus.FAILED
    # The notice withdrawn, Tom stays: the letter may go again.
    with rt.db.session() as session:
        departures.withdraw(rt, session, None, departures.departure_of(session, company.user(session, "tom")),
                            reason="Stays with the company after all", ctx=OFFICE)
    assert run_cli(rt, tmp_path, "letter", "reissue", str(failed["letter"])).exit_code == 0


def test_an_answered_letter_is_not_sent_again(rt, company, smtp, failed, tmp_path):
    with rt.db.session() as session:
        letters.answer(rt, session, failed["link"], "contacted", "", ctx=OFFICE)
    done = run_cli(rt, tmp_path, "letter", "reissue", str(failed["letter"]))
    assert done.exit_code == 1 and "its link was already answered" in done.output
    done = run_cli(rt, tmp_path, "mail", "retry", str(failed["mail"]))
    assert done.exit_code == 1 and "its link was already answered" in done.output


def _failed_handover_mail(rt: Any, company: Any, smtp: Any) -> int:
    """A handover mail to Tom (it names his new customers) refused for good by his mail server."""
    with rt.db.session() as session:
        tom = session.get(User, company.ids["tom"])
        [row] = enqueue(session, Kind.HANDOVER_ASSIGNED, [tom], "handover_assigned",
                        {"leaver_name": "Ann", "customer_name": "Baltic Freight", "key": True})
        row_id = row.id
        assert row.status == MailStatus.QUEUED
    smtp.refuse = {"tom@nordwind.example"}
    assert send(rt).failed == 1
    smtp.refuse = set()
    return row_id


def test_a_person_s_mail_is_not_sent_to_an_address_they_no_longer_have(rt, company, smtp, tmp_path):
    """Before: Tom's mail failed; his address was changed since (the old mailbox gone, or pointed elsewhere by
    someone and put right); `vault mail retry` sent the failed mail to the old address all the same."""
    row_id = _failed_handover_mail(rt, company, smtp)
    assert run_cli(rt, tmp_path, "user", "email", "tom", "tom@new-home.example").exit_code == 0
    done = run_cli(rt, tmp_path, "mail", "retry", str(row_id))
    assert done.exit_code == 1, done.output
    assert f"refused #{row_id}: its recipient's address has changed since" in done.output
    assert _events(rt, "mail:retry") == []
    # --all-failed names it too, and leaves it failed.
    skipped = run_cli(rt, tmp_path, "mail", "retry", "--all-failed")
    assert skipped.exit_code == 0 and f"skipped #{row_id}: its recipient's address has changed since" in skipped.output
    assert send(rt).sent == 0 and smtp.to("tom@nordwind.example") == []
    # Back to the address it was written to (by anyone, any case), it is retried as before.
    assert run_cli(rt, tmp_path, "user", "email", "tom", "Tom@Nordwind.example").exit_code == 0
    assert run_cli(rt, tmp_path, "mail", "retry", str(row_id)).exit_code == 0
    assert send(rt).sent == 1 and len(smtp.to("tom@nordwind.example")) == 1


def _outbox_and_letters(rt: Any) -> tuple[Any, ...]:
    with rt.db.session() as session:
        return ({(m.id, m.status, m.attempts, m.recipient, m.body_text) for m in session.scalars(select(MailOutbox))},
                {(c.id, c.token_hash, c.expires_at, c.outbox_id) for c in session.scalars(select(CustomerLetter))},
                session.scalar(select(func.count()).select_from(ContactLogEntry)))


def test_a_refused_retry_is_recorded_denied_in_its_own_unit_naming_the_mail_and_the_reason(
        rt, company, smtp, failed, tmp_path):
    """Before, a refused `vault mail retry` left no trace: an operator could try to send a password link's mail
    again, or a letter that no longer holds, as often as they liked, unrecorded. Each refusal is now a denied
    `mail:retry` under the operator (the mail, its letter and customer, the reason code), appended in a unit of
    its own after the retries that were allowed committed, so those stand and nothing else changes."""
    link_mail = _failed_password_link(rt, company, smtp)
    with rt.db.session() as session:
        delivered_letter = session.scalar(select(CustomerLetter.id).where(
            CustomerLetter.outbox_id == failed["delivered"]))
    before = _outbox_and_letters(rt)
    done = run_cli(rt, tmp_path, "--operator", "maria", "mail", "retry", str(failed["delivered"]), str(link_mail),
                   "999999")
    assert done.exit_code == 1, done.output
    assert _events(rt, "mail:retry") == [] and _outbox_and_letters(rt) == before
    denied = _events(rt, "mail:retry", "denied")
    assert [(json.loads(e.detail)["mail_id"], e.reason_code) for e in denied] == [
        (failed["delivered"], "sent"), (link_mail, "text_forgotten"), (999999, "no_such_mail")]
    assert {e.actor_name for e in denied} == {"cli:maria"}
    sent, link, unknown = denied
    assert (sent.customer_id, json.loads(sent.detail)["letter_id"]) == (failed["customer"], delivered_letter)
    assert (link.customer_id, link.subject_user_id) == (None, company.ids["tom"])
    assert json.loads(unknown.detail) == {"mail_id": 999999, "kind": None, "letter_id": None,
                                          "command": "vault mail retry", "all_failed": False}

    # A mix: the allowed retry is recorded allowed and stands; the refusal beside it is recorded denied.
    _move(rt, company, company.customer("Nordic Paper"), "tom")  # no contacts: no letter, nothing queued
    mixed = run_cli(rt, tmp_path, "mail", "retry", str(failed["mail"]), "999998")
    assert mixed.exit_code == 1
    assert [json.loads(e.detail)["mail_id"] for e in _events(rt, "mail:retry")] == [failed["mail"]]
    assert json.loads(_events(rt, "mail:retry", "denied")[-1].detail)["mail_id"] == 999998
    assert send(rt).sent == 1

    # --all-failed names what it skips, and records each as refused, saying it was not named.
    skipped = run_cli(rt, tmp_path, "mail", "retry", "--all-failed")
    assert skipped.exit_code == 0 and f"skipped #{link_mail}" in skipped.output
    last = _events(rt, "mail:retry", "denied")[-1]
    assert (json.loads(last.detail)["mail_id"], json.loads(last.detail)["all_failed"], last.reason_code) == (
        link_mail, True, "text_forgotten")

    # The audit log's own browsing finds them: the export's filters by action and outcome.
    out = tmp_path / "refused.jsonl"
    exported = run_cli(rt, tmp_path, "audit", "export", "--action", "mail:retry", "--outcome", "denied",
                       "--out", str(out))
    assert exported.exit_code == 0, exported.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["detail"]["mail_id"], r["reason_code"]) for r in rows] == [
        (failed["delivered"], "sent"), (link_mail, "text_forgotten"), (999999, "no_such_mail"),
        (999998, "no_such_mail"), (link_mail, "text_forgotten")]


def test_a_refused_reissue_is_recorded_denied_and_the_letter_is_left_as_it_was(rt, company, smtp, failed, tmp_path):
    """Before, a refused `vault letter reissue` left no trace. Now a denied `letter:reissue` names the letter, its
    mail and customer and the reason code, in a unit of its own: the re-issue's own work is rolled back (no new
    link, no new mail, no contact-log entry)."""
    with rt.db.session() as session:
        letters.revoke(rt, session, company.user(session, "tom"), session.get(CustomerLetter, failed["letter"]),
                       ctx=OFFICE)
    before = _outbox_and_letters(rt)
    refused = run_cli(rt, tmp_path, "--operator", "maria", "letter", "reissue", str(failed["letter"]))
    assert refused.exit_code == 1 and "its link was revoked" in refused.output
    assert _outbox_and_letters(rt) == before and _events(rt, "letter:reissue") == []
    [record] = _events(rt, "letter:reissue", "denied")
    assert (record.actor_name, record.reason_code, record.customer_id, record.subject_user_id) == (
        "cli:maria", "letter_revoked", failed["customer"], company.ids["tom"])
    assert json.loads(record.detail) == {"letter_id": failed["letter"], "mail_id": failed["mail"],
                                         "command": "vault letter reissue"}
    # No such letter: recorded too, naming the number asked for.
    assert run_cli(rt, tmp_path, "letter", "reissue", "999999").exit_code == 1
    unknown = _events(rt, "letter:reissue", "denied")[-1]
    assert (unknown.reason_code, unknown.customer_id, json.loads(unknown.detail)["letter_id"]) == (
        "no_such_letter", None, 999999)
    assert _outbox_and_letters(rt) == before


def test_a_refusal_whose_record_fails_still_refuses_and_says_so(rt, company, smtp, failed, tmp_path, monkeypatch):
    """The fault injected: the audit log refuses the denied record. The repair is refused all the same (nothing
    sent again), and the operator is told that the refusal is not recorded."""
    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("audit log unavailable")
    monkeypatch.setattr(cli_mail, "record_refused", broken)
    monkeypatch.setattr(cli_letters, "record_refused", broken)
    before = _outbox_and_letters(rt)
    with rt.db.session() as session:
        letters.revoke(rt, session, company.user(session, "tom"), session.get(CustomerLetter, failed["letter"]),
                       ctx=OFFICE)
    refused = run_cli(rt, tmp_path, "letter", "reissue", str(failed["letter"]))
    assert refused.exit_code == 1 and "could not be recorded: audit log unavailable" in refused.output
    retried = run_cli(rt, tmp_path, "mail", "retry", str(failed["mail"]))
    assert retried.exit_code == 1 and "could not be recorded: audit log unavailable" in retried.output
    assert _outbox_and_letters(rt)[0] == before[0]
