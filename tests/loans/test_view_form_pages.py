"""The open-view form answers every problem at once: the form's own checks (control characters, lengths) and
the policy's input rules (reason, place, kind of need, download) in one answer, each beside its field,
announced in one summary, the first bad field focused and everything typed or chosen kept.

What is recorded does not change: a form that fails its own checks decides (and records) nothing; one that
passes is decided, and refused for its first slip in one refusal record, with the code the API answers. No
view is spent either way, and a slip never counts against the borrower (`policy.SLIPS`).
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from tests.loans.helpers import PLACE, REASON, loan_rows, one_loan, set_status, used, view_rows
from vault.config.settings import DEFAULT_GRADES
from vault.models import Loan, LoanKind, User, UserStatus
from vault.policy.views import open_input_problems
from vault.services import loans as loans_service

REASON_SHORT = "Give a reason of at least 10 characters."
NO_PLACE = "Say where you will read the document."
NO_DOWNLOAD = "Files of this grade may be read but not downloaded."
NO_CATEGORY = "People on notice say which kind of need a file answers: choose a category."
CONTROL = "Remove the control characters (such as NUL) from this field."
SUMMARY = re.compile(r'<div class="flash flash-error error-summary" role="alert" id="error-summary">(.*?)</div>', re.S)
# Grade 2 here may be read but not downloaded, so a ticked download box is a slip like the others.
READ_ONLY = {"policy": {"grades": {"2": {"download": False}}}}


def _summary(page: str) -> list[str]:
    """The problems listed in the announced summary, in their order."""
    found = SUMMARY.search(page)
    assert found, "no announced error summary"
    return re.findall(r"<li>(.*?)</li>", found.group(1), re.S)


def _focused(page: str) -> list[str]:
    """The ids of the fields that take the focus."""
    return re.findall(r'<(?:input|textarea|select)[^>]*\bautofocus\b[^>]*\bid="([^"]+)"', page) + re.findall(
        r'<(?:input|textarea|select)[^>]*\bid="([^"]+)"[^>]*\bautofocus\b', page)


def _active_loan(world, rt, doc, borrower="ann"):
    world.browser(borrower).request_loan(doc)
    loan = loan_rows(rt, document_id=doc, kind=LoanKind.LOAN)[-1]
    world.browser("paula").decide(loan.id, "approve")
    return one_loan(rt, id=loan.id)


def _refusals_weighed(rt, loan_id: int) -> int:
    with rt.db.session() as session:
        return loans_service.requester_history(session, session.get(Loan, loan_id)).refusals


@pytest.mark.parametrize("settings_overrides", [READ_ONLY])
def test_every_slip_is_shown_at_once_and_recorded_once(world, rt, settings_overrides):
    """Before, only the first slip (the download box) was shown; the reason and the place came one try, and
    one refusal, at a time."""
    doc = world.document(2)
    loan = _active_loan(world, rt, doc)
    ann = world.browser("ann")
    audit = world.audit.mark()
    response = ann.open_view(doc, reason="Because", place="  ", download=True)
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    # In the order the form shows them, each linked to its field.
    assert _summary(page) == [f'<a href="#view-reason">{REASON_SHORT}</a>', f'<a href="#view-place">{NO_PLACE}</a>',
                              f'<a href="#view-download">{NO_DOWNLOAD}</a>']
    # Each beside its field, tied to it for a screen reader, announced once (by the summary), not twice.
    assert f'<p class="errors" id="view-reason-error-1">{REASON_SHORT}</p>' in page
    assert f'<p class="errors" id="view-place-error-1">{NO_PLACE}</p>' in page
    assert f'<p class="errors" id="view-download-error-1">{NO_DOWNLOAD}</p>' in page
    assert re.search(r'<textarea[^>]*aria-describedby="view-reason-error-1"[^>]*aria-invalid="true"', page)
    assert re.search(r'<input[^>]*aria-describedby="view-download-error-1"[^>]*aria-invalid="true"', page)
    assert page.count('role="alert"') == 1
    assert _focused(page) == ["view-reason"]  # the first bad field, where the correction starts
    # What was typed and chosen is kept, the download box included (a retry must not quietly become a view).
    assert "\nBecause</textarea>" in page and 'value="  "' in page
    assert re.search(r'<input[^>]*checked[^>]*id="view-download"', page)
    # One decision, refused for its first slip in the order the API answers (tests/api/test_views.py), recorded
    # once; nothing spent.
    audit.one_refusal("document:download", "download_not_allowed", "ann", document_id=doc)
    assert view_rows(rt) == [] and used(rt, world.ids["ann"], doc) == 0
    assert "Reason code: download_not_allowed" in page
    # Corrected at once, it opens with all three views left.
    assert ann.open_view(doc).status_code == 303
    assert used(rt, world.ids["ann"], doc) == 1
    assert loan.id


def test_a_reason_and_a_place_are_slips_the_history_does_not_weigh(world, rt):
    doc = world.document(2)
    loan = _active_loan(world, rt, doc)
    ann = world.browser("ann")
    audit = world.audit.mark()
    response = ann.open_view(doc, reason="?!.......,,", place="")
    assert response.status_code == 403
    assert [item.split(">", 1)[0] for item in _summary(response.get_data(as_text=True))] == [
        '<a href="#view-reason"', '<a href="#view-place"']
    audit.one_refusal("document:view", "reason_not_meaningful", "ann", document_id=doc)
    assert used(rt, world.ids["ann"], doc) == 0 and _refusals_weighed(rt, loan.id) == 0


def test_a_form_check_and_a_policy_rule_are_answered_together(world, rt):
    """Before, the form's own check answered alone (400) with a fresh, empty form and no word of what was
    wrong; the short reason came only on the next try."""
    doc = world.document(2)
    _active_loan(world, rt, doc)
    ann = world.browser("ann")
    audit = world.audit.mark()
    response = ann.open_view(doc, reason="Because", place="Head office\x00")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert _summary(page) == [f'<a href="#view-reason">{REASON_SHORT}</a>', f'<a href="#view-place">{CONTROL}</a>']
    assert page.count('role="alert"') == 1 and _focused(page) == ["view-reason"]
    assert "\nBecause</textarea>" in page and "Head office" in page
    # The form failed its own checks: nothing is decided, so nothing is recorded or spent, as before.
    assert audit.since() == []
    assert view_rows(rt) == [] and used(rt, world.ids["ann"], doc) == 0


def test_on_notice_the_kind_of_need_is_asked_beside_the_other_slips(world, rt):
    """Someone on notice opening a file that needs no loan names the kind of need; forgetting it is a slip
    like the others, shown with them, and not weighed against them (before, it was)."""
    set_status(rt, world.ids["ann"], UserStatus.DEPARTING)
    grade1, grade2 = world.document(1), world.document(2)
    ann = world.browser("ann")
    audit = world.audit.mark()
    response = ann.open_view(grade1, reason="Because")
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert _summary(page) == [f'<a href="#view-reason">{REASON_SHORT}</a>',
                              f'<a href="#view-category">{NO_CATEGORY}</a>']
    assert f'<p class="errors" id="view-category-error-1">{NO_CATEGORY}</p>' in page
    assert _focused(page) == ["view-reason"]
    # Recorded under the code the API answers first, as before.
    audit.one_refusal("document:view", "category_required", "ann", document_id=grade1)
    assert used(rt, world.ids["ann"], grade1) == 0
    ann.request_loan(grade2)
    assert _refusals_weighed(rt, one_loan(rt, document_id=grade2).id) == 0
    response, _body = ann.read(grade1, category="quotation")
    assert response.status_code == 200


def test_a_refusal_of_the_person_is_not_buried_among_slips(world, rt):
    """No loan: the answer is that refusal on its own, whatever else was typed."""
    doc = world.document(2)
    ann = world.browser("ann")
    audit = world.audit.mark()
    response = ann.open_view(doc, reason="Because", place=" ")
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert "Reason code: no_active_loan" in page and "Request a loan of this file" in page
    assert "error-summary" not in page and REASON_SHORT not in page and 'class="open-view"' not in page
    assert page.count('role="alert"') == 1
    audit.one_refusal("document:view", "no_active_loan", "ann", document_id=doc)


def test_the_policy_lists_every_input_problem_by_field():
    """The one place the input rules live: all of them by field; the object rule refuses with the first."""
    departing, staying = User(id=1, status=UserStatus.DEPARTING), User(id=1, status=UserStatus.ACTIVE)
    typed = {"reason": " .... ", "place": " ", "download": True, "category": None}
    problems = open_input_problems(departing, replace(DEFAULT_GRADES[1], download=False), typed)
    assert {field: problem.code for field, problem in problems.items()} == {
        "category": "category_required", "download": "download_not_allowed", "reason": "reason_too_short",
        "place": "place_required"}
    # The kind of need is asked only of someone on notice, and only for a file that needs no loan.
    assert "category" not in open_input_problems(staying, DEFAULT_GRADES[1], typed)
    assert "category" not in open_input_problems(departing, DEFAULT_GRADES[2], typed)
    good = {"reason": REASON, "place": PLACE, "download": True, "category": "quotation"}
    assert open_input_problems(departing, DEFAULT_GRADES[1], good) == {}
    assert [*open_input_problems(staying, DEFAULT_GRADES[3], good)] == ["download"]


@pytest.mark.parametrize(("language", "summary", "words"), [
    ("zh-CN", "未消耗查看次数。请更正下面标出的内容：",
     ["请填写至少 10 个字符的理由。", "请说明您将在哪里查看此文件。"]),
    ("ru", "Просмотр не израсходован. Исправьте отмеченное ниже:",
     ["Укажите причину не короче 10 символов.", "Укажите, где вы будете читать документ."]),
])
def test_the_answer_speaks_the_reader_s_language(world, rt, language, summary, words):
    doc = world.document(2)
    _active_loan(world, rt, doc)
    ann = world.browser("ann")
    response = ann.post(f"/documents/{doc}/view", {"reason": "Because", "place": " "},
                        headers={"Accept-Language": language})
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    found = SUMMARY.search(page)
    assert found and summary in found.group(1)
    assert [item.split(">", 1)[1].removesuffix("</a>") for item in _summary(page)] == words
    for english in ("No view was used", REASON_SHORT, NO_PLACE):
        assert english not in page
