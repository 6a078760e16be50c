"""A loan that waits for an approver or a custodian when nobody may act on it is told to the administrators,
who can name somebody: at the request, at an approval, and when the last one who could act gives notice.
The mail names the loan and the borrower, never the file or the customer (administrators read no file)."""

from __future__ import annotations

from tests.mail.conftest import give_email
from tests.mail.helpers import CTX, decide, give_notice, make_document, outbox, request, send
from vault.models import Role, User
from vault.services import accounts

TITLE = "Pricing 2027"


def _told_admins(rt, smtp) -> list:
    send(rt)
    return [r for r in smtp.to("adam@example.com") if "nobody may give" in r.message["Subject"]]


def test_a_request_with_no_approver_left_is_told_to_the_administrators(rt, cast, smtp) -> None:
    for name in ("paula", "quinn"):
        give_notice(rt, cast[name])
    loan_id = request(rt, cast["abby"], make_document(rt, compiler_id=cast["carl"], grade=2, title=TITLE))
    # abby approves others' loans, never her own: nobody may decide this one.
    assert not [row for row in outbox(rt) if row.kind == "loan_requested"]
    [told] = _told_admins(rt, smtp)
    assert told.message["Subject"] == f"Loan request #{loan_id} waits for an approval nobody may give"
    assert "Abby" in told.text and "/admin/users" in told.text
    assert TITLE not in told.text + told.html and TITLE not in told.message["Subject"]


def test_the_last_approver_giving_notice_tells_the_administrators_once(rt, cast, smtp) -> None:
    give_notice(rt, cast["quinn"])
    loan_id = request(rt, cast["ann"], make_document(rt, compiler_id=cast["carl"], grade=2, title=TITLE))
    assert _told_admins(rt, smtp) == []  # paula and abby may decide it
    give_notice(rt, cast["paula"])
    assert _told_admins(rt, smtp) == []  # abby still may
    give_notice(rt, cast["abby"])
    [told] = _told_admins(rt, smtp)
    assert f"#{loan_id}" in told.message["Subject"]
    give_notice(rt, cast["carl"])  # another notice later: the same loan is not told twice
    assert len(_told_admins(rt, smtp)) == 1


def test_an_approved_loan_no_custodian_may_release_is_told_to_the_administrators(rt, cast, smtp) -> None:
    for name in ("cora", "cid"):
        give_notice(rt, cast[name])
    loan_id = request(rt, cast["ann"], make_document(rt, compiler_id=cast["carl"], grade=3, title=TITLE))
    assert _told_admins(rt, smtp) == []
    decide(rt, cast["paula"], loan_id, "approve")
    assert not [row for row in outbox(rt) if row.kind == "release_needed"]
    [told] = _told_admins(rt, smtp)
    assert told.message["Subject"] == f"Loan #{loan_id} waits for a release nobody may give"


def test_a_disabled_account_or_a_role_taken_away_tells_the_administrators_too(rt, cast, smtp) -> None:
    give_notice(rt, cast["quinn"])
    first = request(rt, cast["ann"], make_document(rt, compiler_id=cast["carl"], grade=2, title=TITLE))
    second = request(rt, cast["abby"], make_document(rt, compiler_id=cast["carl"], grade=2, title=TITLE))
    assert _told_admins(rt, smtp) == []
    with rt.db.session() as session:  # abby may decide only ann's: the second waits on paula alone
        accounts.disable_user(rt, session, session.get(User, cast["paula"]), None, CTX, reason="Left")
    [told] = _told_admins(rt, smtp)
    assert f"#{second}" in told.message["Subject"]
    with rt.db.session() as session:
        accounts.remove_role(rt, session, session.get(User, cast["abby"]), Role.APPROVER, actor=None)
    assert [f"#{first}" in r.message["Subject"] for r in _told_admins(rt, smtp)] == [False, True]


def test_an_administrator_on_notice_is_not_asked_to_name_somebody(rt, cast, smtp, users) -> None:
    """They give no role any more (`decider_departing`); another administrator is told."""
    other = users.make("ada", Role.ADMIN).id
    give_email(rt, other, "ada@example.com")
    give_notice(rt, cast["adam"])
    for name in ("paula", "quinn"):
        give_notice(rt, cast[name])
    request(rt, cast["abby"], make_document(rt, compiler_id=cast["carl"], grade=2, title=TITLE))
    send(rt)
    told = {r.recipients[0] for r in smtp.received if "nobody may give" in r.message["Subject"]}
    assert told == {"ada@example.com"}
