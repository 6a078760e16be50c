"""The loan and view services called directly: visibility of loans, the sweep and its command, deliveries
abandoned by the client, the departure setting, and the policy's reading of a stated reason."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner

from tests.loans.helpers import PLACE, REASON, Audit, make_document, set_rows, used, view_rows
from vault import policy
from vault.cli import cli
from vault.config.settings import DEFAULT_GRADES, ConfigError, load_settings
from vault.core.context import AccessContext, operator_name
from vault.core.errors import NotFound
from vault.models import Document, DocumentView, Loan, LoanStatus, Role, User, UserStatus, ViewStatus, utcnow
from vault.policy.loans import approvals_needed, reason_problem
from vault.services import loans, views

CTX = AccessContext(client_addr="10.0.0.5", user_agent="tests")


@pytest.fixture
def cast(users):
    return {name: users.make(name, *roles).id for name, roles in {
        "ann": (Role.BORROWER,), "bob": (Role.BORROWER,), "carl": (Role.COMPILER,), "paula": (Role.APPROVER,),
        "quinn": (Role.APPROVER,), "cora": (Role.CUSTODIAN,)}.items()}


def _request(rt, cast, doc, who="ann", **kwargs):
    with rt.db.session() as session:
        actor = session.get(User, cast[who])
        loan = loans.request_loan(rt, session, actor, session.get(Document, doc), reason=REASON,
                                  category="complaint", place=PLACE, days=kwargs.pop("days", 3), ctx=CTX, **kwargs)
        return loan.id


def _act(rt, cast, who, loan_id, verb, **kwargs):
    with rt.db.session() as session:
        actor = session.get(User, cast[who])
        loan = loans.get_loan(session, actor, loan_id)
        getattr(loans, verb)(rt, session, actor, loan, ctx=CTX, **kwargs)


def _visible(rt, cast, who, loan_id):
    with rt.db.session() as session:
        try:
            loans.get_loan(session, session.get(User, cast[who]), loan_id)
            return True
        except NotFound:
            return False


def test_who_sees_a_loan(rt, cast):
    doc = make_document(rt, compiler_id=cast["carl"], grade=3)
    loan_id = _request(rt, cast, doc)
    assert [_visible(rt, cast, who, loan_id) for who in ("ann", "bob", "paula", "cora")] == [
        True, False, True, False]  # custodians see loans once there is something for them to do
    _act(rt, cast, "paula", loan_id, "approve", comment="")
    assert _visible(rt, cast, "cora", loan_id)
    _act(rt, cast, "quinn", loan_id, "revoke", reason="Visit cancelled by the customer")
    # Closed: the borrower and the people who acted on it still see it; the others no longer do.
    assert [_visible(rt, cast, who, loan_id) for who in ("ann", "paula", "quinn", "cora", "bob")] == [
        True, True, True, False, False]
    with rt.db.session() as session:
        ann, paula = session.get(User, cast["ann"]), session.get(User, cast["paula"])
        assert [loan.id for loan in loans.list_loans(session, ann, mine=True)] == [loan_id]
        assert [loan.id for loan in loans.list_loans(session, paula, status="revoked")] == [loan_id]
        assert loans.list_loans(session, paula, mine=True) == []


def test_remaining_views_needs_only_a_session(rt, cast):
    doc = make_document(rt, compiler_id=cast["carl"], grade=1, view_quota=4)
    with rt.db.session() as session:
        ann, document = session.get(User, cast["ann"]), session.get(Document, doc)
        assert views.remaining_views(session, ann, document) == 4
        opened = views.open_view(rt, session, ann, document, reason=REASON, place=PLACE, download=False, ctx=CTX)
        assert (opened.remaining, views.remaining_views(session, ann, document)) == (3, 3)
        assert views.quota_limit(rt, session, ann, document) == 4
        assert opened.expires_at - utcnow() <= timedelta(seconds=rt.settings.content_url_seconds)


def _delivery(rt, cast, doc):
    with rt.db.session() as session:
        ann, document = session.get(User, cast["ann"]), session.get(Document, doc)
        secret = views.open_view(rt, session, ann, document, reason=REASON, place=PLACE, download=True,
                                 ctx=CTX).secret
    with rt.db.session() as session:
        claim = views.claim_delivery(rt, session, session.get(User, cast["ann"]), secret, CTX)
    return views.open_delivery(rt, claim)


def test_a_client_gone_before_the_first_byte_gets_the_view_back(rt, cast):
    doc = make_document(rt, compiler_id=cast["carl"], grade=1)
    audit = Audit(rt)
    delivery = _delivery(rt, cast, doc)
    assert view_rows(rt)[0].status == ViewStatus.DELIVERING  # claimed and committed before any byte
    delivery.chunks().close()
    assert (view_rows(rt)[0].status, used(rt, cast["ann"], doc)) == (ViewStatus.REFUNDED, 0)
    [refund] = audit.since("view:refund")
    assert '"cause":"client_gone"' in refund.detail


def test_a_client_gone_after_the_first_byte_leaves_the_view_spent(rt, cast):
    doc = make_document(rt, compiler_id=cast["carl"], grade=1, content=b"x" * 3_000_000)
    audit = Audit(rt)
    delivery = _delivery(rt, cast, doc)
    chunks = delivery.chunks()
    first = next(chunks)
    chunks.close()
    [view] = view_rows(rt)
    assert (view.status, view.bytes_sent, used(rt, cast["ann"], doc)) == (ViewStatus.PARTIAL, len(first), 1)
    assert len(audit.since("content:partial")) == 1


def test_the_sweep_expires_loans_and_refunds_stale_reservations(rt, cast, keyring_path):
    grade2 = make_document(rt, compiler_id=cast["carl"], grade=2)
    grade1 = make_document(rt, compiler_id=cast["carl"], grade=1)
    due, running = _request(rt, cast, grade2), _request(rt, cast, grade2, who="bob")
    for loan_id in (due, running):
        _act(rt, cast, "paula", loan_id, "approve", comment="")
    set_rows(rt, Loan, Loan.id == due, due_at=utcnow() - timedelta(hours=1))
    with rt.db.session() as session:
        ann = session.get(User, cast["ann"])
        views.open_view(rt, session, ann, session.get(Document, grade1), reason=REASON, place=PLACE,
                        download=False, ctx=CTX)
    set_rows(rt, DocumentView, DocumentView.user_id == cast["ann"], expires_at=utcnow() - timedelta(seconds=5))
    audit = Audit(rt)
    env = {"VAULT_DATA_DIR": str(rt.settings.data_dir), "VAULT_DATABASE_URL": rt.settings.database_url,
           "VAULT_KEYRING": str(keyring_path), "VAULT_SECRET_KEY": "test-secret-key"}
    result = CliRunner().invoke(cli, ["loans", "expire"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "expired 1 loan(s); refunded 1 unused view(s)"
    with rt.db.session() as session:
        assert session.get(Loan, due).status == LoanStatus.EXPIRED
        assert session.get(Loan, running).status == LoanStatus.ACTIVE
    assert [(e.loan_id, e.actor_name, e.client_addr) for e in audit.since("loan:expire")] == [
        (due, operator_name(), "cli")]
    assert len(audit.since("view:refund")) == 1
    assert used(rt, cast["ann"], grade1) == 0
    again = CliRunner().invoke(cli, ["loans", "expire"], env=env)
    assert again.output.strip() == "expired 0 loan(s); refunded 0 unused view(s)"
    with rt.db.session() as session:
        assert loans.expire_due(rt, session) == 0


def test_an_unknown_departure_setting_is_an_error():
    assert load_settings({}, environ={}).departure.on_notice == "second_approver"
    refuse = load_settings({"policy": {"departure": {"on_notice": "refuse"}}}, environ={})
    assert refuse.departure.on_notice == "refuse"
    with pytest.raises(ConfigError, match="on_notice must be one of second_approver, refuse, not 'maybe'"):
        load_settings({"policy": {"departure": {"on_notice": "maybe"}}}, environ={})


def test_an_unknown_kind_is_refused(rt, cast):
    doc = make_document(rt, compiler_id=cast["carl"], grade=2)
    with pytest.raises(policy.Denied) as refused:
        _request(rt, cast, doc, kind="gift")
    assert refused.value.decision.code == "invalid_kind"
    assert refused.value.audit["document_id"] == doc  # the refusal record names the document


@pytest.mark.parametrize(("text", "problem"), [
    ("", "reason_too_short"),
    ("   short   ", "reason_too_short"),
    ("!!!???....,,,;;;", "reason_not_meaningful"),
    ("\t \n . . . . . . \n", "reason_not_meaningful"),
    ("CONTRACT RENEWAL", "reason_copies_category"),
    ("contract_renewal", "reason_copies_category"),
    ("Visit-Preparation.", "reason_copies_category"),
    ("Renewal talks with the buyer on Monday", None),
    ("Réclamation du client sur la facture 42", None),
])
def test_what_counts_as_a_reason(text, problem):
    assert reason_problem(text) == problem


def test_people_on_notice_need_one_more_approver():
    person = User(username="x", display_name="X", password_hash="-", status=UserStatus.DEPARTING)
    assert [approvals_needed(DEFAULT_GRADES[g], person) for g in (1, 2, 3)] == [1, 2, 2]
    person.status = UserStatus.ACTIVE
    assert [approvals_needed(DEFAULT_GRADES[g], person) for g in (1, 2, 3)] == [1, 1, 1]
