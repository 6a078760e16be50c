"""The loan request form answers every problem at once: the form's own checks (a number that is not one,
control characters) and the policy's input rules (reason, category, place, days) in one answer, each
beside its field, announced in one summary, the first bad field focused and everything typed kept.

What is recorded does not change: a form that fails its own checks decides (and records) nothing, as
before; one that passes them is decided, and refused for its first slip in one refusal record, which never
counts against the borrower (`policy.SLIPS`).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.loans.helpers import PLACE, REASON, Audit, loan_rows, one_loan
from vault.config.settings import DEFAULT_GRADES
from vault.models import AuditEvent, Document, Loan, LoanKind
from vault.policy.loans import request_input_problems
from vault.services import loans as loans_service

DAYS_NOT_A_NUMBER = "Enter a whole number of days."
REASON_SHORT = "Give a reason of at least 10 characters."
SUMMARY = re.compile(r'<div class="flash flash-error error-summary" role="alert" id="error-summary">(.*?)</div>', re.S)


def _summary(page: str) -> list[str]:
    """The problems listed in the announced summary, in their order."""
    found = SUMMARY.search(page)
    assert found, "no announced error summary"
    return re.findall(r"<li>(.*?)</li>", found.group(1), re.S)


def _focused(page: str) -> list[str]:
    """The ids of the fields that take the focus."""
    return re.findall(r'<(?:input|textarea|select)[^>]*\bautofocus\b[^>]*\bid="([^"]+)"', page) + re.findall(
        r'<(?:input|textarea|select)[^>]*\bid="([^"]+)"[^>]*\bautofocus\b', page)


def test_a_form_check_and_a_policy_rule_are_answered_together(world, rt):
    """Before, the form's check answered alone (400), and the short reason only on the next try."""
    doc = world.document(2)
    ann = world.browser("ann")
    audit = world.audit.mark()
    response = ann.request_loan(doc, reason="too short", days="many")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert _summary(page) == [f'<a href="#reason">{REASON_SHORT}</a>', f'<a href="#days">{DAYS_NOT_A_NUMBER}</a>']
    # Each beside its field, tied to it for a screen reader, announced once (by the summary), not twice.
    assert f'<p class="errors" id="reason-error-1">{REASON_SHORT}</p>' in page
    assert f'<p class="errors" id="days-error-1">{DAYS_NOT_A_NUMBER}</p>' in page
    assert re.search(r'<textarea[^>]*aria-describedby="reason-error-1"[^>]*aria-invalid="true"', page)
    assert page.count('role="alert"') == 1
    assert _focused(page) == ["reason"]  # the first bad field, where the correction starts
    # Nothing typed is lost, the bad number included.
    assert "\ntoo short</textarea>" in page
    assert 'value="many"' in page and f'value="{PLACE}"' in page
    assert '<option selected value="visit_preparation">' in page
    # The form failed its own checks: nothing is decided, so nothing of a request is recorded; the file the
    # form names again is (`test_a_form_shown_again_records_the_file_it_names`).
    assert [e.action for e in audit.since()] == ["document:read"]
    assert loan_rows(rt) == []


def test_the_first_bad_field_is_focused_whichever_check_refused_it(world, rt):
    doc = world.document(2)
    ann = world.browser("ann")
    response = ann.request_loan(doc, place="Head office\x00", days=31)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert _summary(page) == [
        '<a href="#place">Remove the control characters (such as NUL) from this field.</a>',
        '<a href="#days">Loans of grade-2 files last at most 30 days.</a>']
    assert _focused(page) == ["place"]


def test_every_slip_the_policy_finds_is_shown_at_once_and_recorded_once(world, rt):
    """Before, only the first slip (the reason) was shown; the place and the days came one try at a time."""
    doc = world.document(2)
    ann = world.browser("ann")
    audit = world.audit.mark()
    response = ann.request_loan(doc, reason="too short", category="gossip", place="   ", days=31)
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert _summary(page) == [
        f'<a href="#reason">{REASON_SHORT}</a>', '<a href="#category">Choose one of the listed categories.</a>',
        '<a href="#place">Say where you will read the document.</a>',
        '<a href="#days">Loans of grade-2 files last at most 30 days.</a>']
    assert _focused(page) == ["reason"]
    assert "\ntoo short</textarea>" in page and 'value="31"' in page
    # One decision, refused for its first slip, recorded as the API's refusal is.
    audit.one_refusal("loan:request", "reason_too_short", "ann", document_id=doc)
    assert loan_rows(rt) == []
    # Corrected at once: the slip is not held against the borrower.
    assert ann.request_loan(doc).status_code == 302
    with rt.db.session() as session:
        loan = session.get(Loan, one_loan(rt, document_id=doc).id)
        assert loans_service.requester_history(session, loan).refusals == 0


def test_an_extension_form_answers_its_slips_together(world, rt):
    doc = world.document(2)
    ann = world.browser("ann")
    audit = world.audit.mark()
    response = ann.request_extension(doc, extra_views="lots", reason="short", place="")
    assert response.status_code == 400
    assert _summary(response.get_data(as_text=True)) == [
        f'<a href="#reason">{REASON_SHORT}</a>', '<a href="#place">Say where you will read the document.</a>',
        '<a href="#extra_views">Enter a whole number of views.</a>']
    assert [e.action for e in audit.since()] == ["document:read"]


def test_a_refusal_of_the_person_is_not_buried_among_slips(world, rt):
    """An open request already: the answer is that refusal on its own page, whatever else was typed."""
    doc = world.document(2)
    ann = world.browser("ann")
    assert ann.request_loan(doc).status_code == 302
    audit = world.audit.mark()
    response = ann.request_loan(doc, reason="too short", days=31)
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert "(loan_already_open)" in page
    assert "error-summary" not in page and REASON_SHORT not in page
    audit.one_refusal("loan:request", "loan_already_open", "ann", document_id=doc)


def test_the_policy_lists_every_input_problem_by_field():
    """The one place the input rules live: all of them by field; the object rule refuses with the first."""
    typed = {"grade": 3, "reason": "  ....  ", "category": "gossip", "place": " ", "days": 8}
    problems = request_input_problems(DEFAULT_GRADES[3], typed, LoanKind.LOAN)
    assert {field: problem.code for field, problem in problems.items()} == {
        "reason": "reason_too_short", "category": "invalid_category", "place": "place_required",
        "days": "days_too_long"}
    assert str(problems["days"].message) == "Loans of grade-3 files last at most 7 days."
    extension = request_input_problems(DEFAULT_GRADES[2], {**typed, "extra_views": 21}, LoanKind.EXTENSION)
    assert [problem.code for problem in extension.values()] == [
        "reason_too_short", "invalid_category", "place_required", "extra_views_invalid"]
    good = {"grade": 2, "reason": REASON, "category": "complaint", "place": PLACE, "days": 30, "extra_views": 1}
    assert request_input_problems(DEFAULT_GRADES[2], good, LoanKind.LOAN) == {}
    assert request_input_problems(DEFAULT_GRADES[2], good, LoanKind.EXTENSION) == {}
    for days, code in ((0, "days_invalid"), (True, "days_invalid"), (None, "days_invalid"), (31, "days_too_long")):
        assert request_input_problems(DEFAULT_GRADES[2], {**good, "days": days}, LoanKind.LOAN)["days"].code == code


@pytest.mark.parametrize(("language", "summary", "days", "reason"), [
    ("zh-CN", "申请未发送。请更正下面标出的内容：", "请输入整数天数。", "请填写至少 10 个字符的理由。"),
    ("ru", "Заявка не отправлена. Исправьте отмеченное ниже:", "Введите целое число дней.",
     "Укажите причину не короче 10 символов."),
])
def test_the_answer_speaks_the_reader_s_language(world, rt, language, summary, days, reason):
    doc = world.document(2)
    ann = world.browser("ann")

    def request(**typed):
        form = {"reason": "too short", "category": "visit_preparation", "place": PLACE, **typed}
        return ann.post(f"/documents/{doc}/loans/new", form, headers={"Accept-Language": language})

    response = request(days="many")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    found = SUMMARY.search(page)
    assert found and summary in found.group(1)
    assert _summary(page) == [f'<a href="#reason">{reason}</a>', f'<a href="#days">{days}</a>']
    for english in ("The request was not sent", DAYS_NOT_A_NUMBER, REASON_SHORT):
        assert english not in page
    # The policy's own words too, once the form's checks pass.
    response = request(place=" ", days=31)
    page = response.get_data(as_text=True)
    assert response.status_code == 403
    words = {"zh-CN": ["请填写至少 10 个字符的理由。", "请说明您将在哪里查看此文件。", "2 级文件的借阅最长 30 天。"],
             "ru": ["Укажите причину не короче 10 символов.", "Укажите, где вы будете читать документ.",
                    "Выдача файлов с грифом 2 длится не более 30 дн."]}[language]
    assert [item.split(">", 1)[1].removesuffix("</a>") for item in _summary(page)] == words


def test_each_form_sends_only_its_own_kind_s_number(world, rt):
    """The API refuses days on an extension and extra views on a loan (422); the pages' forms cannot send
    either: the loan form has no field for extra views, the extension form none for days, and a field added
    to the request by hand is not read (the loan is made from the form's own fields)."""
    doc = world.document(2)
    ann = world.browser("ann")
    loan_form = ann.get(f"/documents/{doc}/loans/new").get_data(as_text=True)
    assert 'name="days"' in loan_form and 'name="extra_views"' not in loan_form
    extension_form = ann.get(f"/documents/{doc}/extension").get_data(as_text=True)
    assert 'name="extra_views"' in extension_form and 'name="days"' not in extension_form
    crafted = ann.post(f"/documents/{doc}/loans/new", {"reason": REASON, "category": "visit_preparation",
                                                        "place": PLACE, "days": 5, "extra_views": 9})
    assert crafted.status_code == 302
    loan = one_loan(rt, document_id=doc)
    assert (loan.kind, loan.days, loan.extra_views) == (LoanKind.LOAN, 5, 0)


def _shown_again(audit: Audit, response: Any, actor: str, doc: int, shown: str) -> AuditEvent:
    """The one read the answer recorded, in its own request: the file, its customer and where it was shown,
    marked as a showing again (the first one was recorded by the form's GET)."""
    [read] = audit.since("document:read")
    assert (read.outcome, read.actor_name, read.document_id) == ("allowed", actor, doc)
    assert json.loads(read.detail) == {"shown": shown, "again": True}
    assert read.request_id == response.headers["X-Request-ID"]
    return read


def _names(rt: Any, doc: int) -> tuple[str, str, int]:
    with rt.db.session() as session:
        document = session.get(Document, doc)
        return document.title, document.customer.name, document.customer_id


@pytest.mark.parametrize("kind", ["loan", "extension"])
def test_a_form_shown_again_records_the_file_it_names(world, rt, kind):
    """Before, only the form's GET recorded the file; the 400 page naming it again wrote nothing (and would
    have been rolled back with the error)."""
    doc = world.document(2)
    ann = world.browser("ann")
    shown = f"{kind}_form"
    first = ann.get(f"/documents/{doc}/{'loans/new' if kind == 'loan' else 'extension'}")
    assert first.status_code == 200
    audit = world.audit.mark()
    if kind == "loan":
        response = ann.request_loan(doc, reason="too short", days="many")
    else:
        response = ann.request_extension(doc, extra_views="lots", reason="short")
    assert response.status_code == 400
    title, customer, customer_id = _names(rt, doc)
    page = response.get_data(as_text=True)
    assert title in page and customer in page
    read = _shown_again(audit, response, "ann", doc, shown)
    assert read.customer_id == customer_id
    assert audit.since(outcome="denied") == []  # a form's own checks decide nothing
    assert loan_rows(rt) == []


def test_a_form_refused_for_its_input_records_the_file_it_names_beside_the_refusal(world, rt):
    """The policy's refusal of a slip shows the form again (403): the refusal is recorded in its own unit,
    and the file shown again in the request's, kept though the answer is a refusal."""
    doc = world.document(2)
    ann = world.browser("ann")
    audit = world.audit.mark()
    response = ann.request_loan(doc, reason="too short")
    assert response.status_code == 403
    title, customer, _ = _names(rt, doc)
    page = response.get_data(as_text=True)
    assert title in page and customer in page
    audit.one_refusal("loan:request", "reason_too_short", "ann", document_id=doc)
    _shown_again(audit, response, "ann", doc, "loan_form")
    assert loan_rows(rt) == []


def test_a_form_refused_for_the_person_records_the_file_it_names_too(world, rt):
    """An extension asked without a loan to extend: refused for who asks, not for what was typed; the page
    still names the file, so that read is recorded (and nothing else of the refused act stands)."""
    doc = world.document(2)
    ann = world.browser("ann")
    audit = world.audit.mark()
    response = ann.request_extension(doc)
    assert response.status_code == 403
    title, customer, _ = _names(rt, doc)
    page = response.get_data(as_text=True)
    assert title in page and customer in page
    refusal = audit.since(outcome="denied")
    assert [(e.action, e.actor_name) for e in refusal] == [("loan:request", "ann")]
    _shown_again(audit, response, "ann", doc, "extension_form")
    assert loan_rows(rt) == []
