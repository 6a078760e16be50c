"""`vault mail retry --all-failed` from cron: each skipped mail recorded once per reason, not once per run.

Before, every run appended a denied `mail:retry` for every failed mail it could not send again: a password
link's mail, which stays failed for ever, was recorded again every time cron ran the command, and the refusals
worth reading drowned in copies. A skip is now recorded when its reason code differs from the last one
such a run recorded for that mail (`MailOutbox.retry_refused_code`), so a new reason is still recorded and
nothing skipped goes unrecorded; a mail named by its id and refused is recorded every time (someone asked for
it)."""

from __future__ import annotations

import json
from typing import Any

from tests.departure.conftest import OFFICE, run_cli
from tests.letters import test_repair
from tests.letters.test_repair import _events, _failed_password_link
from tests.mail.helpers import send
from vault.models import CustomerLetter, utcnow
from vault.models.mail import MailOutbox
from vault.services import letters

JANA = "jana@customer.example"
failed = test_repair.failed  # Tom's letter to Jana, refused for good by her mail server


def _denied(rt: Any) -> list[tuple[int, str, bool]]:
    return [(json.loads(e.detail)["mail_id"], e.reason_code, json.loads(e.detail)["all_failed"])
            for e in _events(rt, "mail:retry", "denied")]


def _all_failed(rt: Any, tmp_path: Any) -> str:
    done = run_cli(rt, tmp_path, "mail", "retry", "--all-failed")
    assert done.exit_code == 0, done.output
    return done.output


def test_a_skipped_mail_is_recorded_once_per_reason_however_often_cron_runs(rt, company, smtp, failed, tmp_path):
    link_mail = _failed_password_link(rt, company, smtp)
    with rt.db.session() as session:  # Jana's letter cannot be retried either: its link ran out
        session.get(CustomerLetter, failed["letter"]).expires_at = utcnow()
    for _run in range(3):  # every run still names what it skips
        output = _all_failed(rt, tmp_path)
        assert f"skipped #{link_mail}: is a password link" in output
        assert f"skipped #{failed['mail']}: is letter #{failed['letter']}: its link expired on" in output
    assert _denied(rt) == [(failed["mail"], "letter_expired", True), (link_mail, "text_forgotten", True)]

    # The reason changes (the letter is revoked): recorded once more, with the new code; the rest stays quiet.
    with rt.db.session() as session:
        letters.revoke(rt, session, company.user(session, "tom"), session.get(CustomerLetter, failed["letter"]),
                       ctx=OFFICE)
    _all_failed(rt, tmp_path)
    _all_failed(rt, tmp_path)
    assert _denied(rt)[2:] == [(failed["mail"], "letter_revoked", True)]


def test_a_named_mail_refused_is_recorded_every_time(rt, company, smtp, failed, tmp_path):
    link_mail = _failed_password_link(rt, company, smtp)
    _all_failed(rt, tmp_path)  # Jana's letter goes back in the queue; the link's mail is skipped, recorded
    for _run in range(2):
        refused = run_cli(rt, tmp_path, "--operator", "maria", "mail", "retry", str(link_mail))
        assert refused.exit_code == 1 and f"refused #{link_mail}: is a password link" in refused.output
    assert _denied(rt) == [(link_mail, "text_forgotten", True), (link_mail, "text_forgotten", False),
                           (link_mail, "text_forgotten", False)]
    # The sweep's own record of the skip stands, with the same reason: a later cron run adds nothing.
    _all_failed(rt, tmp_path)
    assert len(_denied(rt)) == 3
    # A person's refusals are no sweep's: the first skip after them is recorded once, then the runs are quiet.
    fresh_link_mail = _failed_password_link(rt, company, smtp)
    assert run_cli(rt, tmp_path, "mail", "retry", str(fresh_link_mail)).exit_code == 1
    _all_failed(rt, tmp_path)
    _all_failed(rt, tmp_path)
    assert _denied(rt)[3:] == [(fresh_link_mail, "text_forgotten", False), (fresh_link_mail, "text_forgotten", True)]


def test_a_mail_retried_and_failed_again_is_a_new_refusal(rt, company, smtp, failed, tmp_path):
    """A retry ends what the earlier refusals were about: should the mail fail again and be skipped for the
    same reason, that is a new skip, recorded."""
    with rt.db.session() as session:
        session.get(CustomerLetter, failed["letter"]).expires_at = utcnow()
    _all_failed(rt, tmp_path)
    assert _denied(rt) == [(failed["mail"], "letter_expired", True)]
    with rt.db.session() as session:  # the link given more time by hand: the retry goes
        session.get(CustomerLetter, failed["letter"]).expires_at = utcnow().replace(year=utcnow().year + 1)
    assert f"queued #{failed['mail']}" in _all_failed(rt, tmp_path)
    with rt.db.session() as session:
        assert session.get(MailOutbox, failed["mail"]).retry_refused_code is None
    smtp.refuse = {JANA}
    assert send(rt).failed == 1
    with rt.db.session() as session:
        session.get(CustomerLetter, failed["letter"]).expires_at = utcnow()
    _all_failed(rt, tmp_path)
    _all_failed(rt, tmp_path)
    assert _denied(rt) == [(failed["mail"], "letter_expired", True)] * 2
