"""Every kind of mail, rendered in Chinese and in Russian, has no English left in its subject, its text
or its HTML (the same check and allow-list as the pages); the HTML is marked with the language."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.i18n.english import AllowList, english_left
from vault.mail import render

# The data the mails carry (names, titles, reasons): what people wrote, not the interface.
DATA = ("eva.kowalski", "Nordlicht Logistik GmbH", "Q4 plan", "Eva Kowalski", "Mia Svensson", "Sam Okafor",
        "Preparing the yearly review", "Not during the audit", "Sam Okafor read 4 customers outside his team")
LOAN = {"loan_id": 7, "document_title": "Q4 plan", "customer_name": "Nordlicht Logistik GmbH", "grade": 2,
        "borrower_name": "Eva Kowalski", "reason": "Preparing the yearly review", "days": 5, "extra_views": 0,
        "extension": False}
# One context per mail, and one per variant a template words differently.
MAILS: dict[str, tuple[str, dict[str, Any]]] = {
    "loan requested": ("loan_requested", LOAN),
    "more views requested": ("loan_requested", {**LOAN, "extension": True, "extra_views": 3}),
    "loan approved": ("loan_decided", {**LOAN, "approved": True, "waits_for_release": False,
                                       "decided_by": "Mia Svensson", "comment": ""}),
    "loan approved, waits for release": ("loan_decided", {**LOAN, "approved": True, "waits_for_release": True,
                                                          "decided_by": "Mia Svensson", "comment": ""}),
    "loan rejected": ("loan_decided", {**LOAN, "approved": False, "waits_for_release": False,
                                       "decided_by": "Mia Svensson", "comment": "Not during the audit"}),
    "release needed": ("release_needed", LOAN),
    "nobody may approve": ("no_decider", {"loan_id": 7, "borrower_name": "Sam Okafor", "grade": 2,
                                          "role": "approver"}),
    "nobody may release": ("no_decider", {"loan_id": 7, "borrower_name": "Sam Okafor", "grade": 3,
                                          "role": "custodian"}),
    "key customer handed over": ("handover_assigned", {"leaver_name": "Sam Okafor", "departure_id": 3,
                                                       "customer_name": "Nordlicht Logistik GmbH", "key": True}),
    "customer handed over": ("handover_assigned", {"leaver_name": "Sam Okafor", "departure_id": 3,
                                                   "customer_name": "Nordlicht Logistik GmbH", "key": False}),
    **{f"departure {step}": ("departure_step", {"step": step, "leaver_name": "Sam Okafor", "departure_id": 3,
                                                "last_day": "2026-12-19"})
       for step in ("started", "offboarded", "completed")},
    "security alert": ("security_alert", {"alert_id": 4, "title": "Many customer records read or looked up",
                                          "severity": "high", "person_name": "Sam Okafor", "event": "new",
                                          "summary": "Sam Okafor read 4 customers outside his team"}),
    "security alert, summary in the reader's language": ("security_alert", {
        "alert_id": 4, "title": "Customer outside their book read by a person on notice", "severity": "high",
        "person_name": "Sam Okafor", "event": "new",
        "summary": "Sam Okafor, on notice, read or looked up 4 customers outside their own book.",
        "summary_params": {"id": "outside_book", "name": "Sam Okafor", "n": 4}}),
    "digest": ("digest", {"day": "2026-12-04", "items": [{"subject": "借阅 7", "text": "Q4 plan"}]}),
    "test": ("test", {}),
    "customer letter": ("customer_letter", {"contact_name": "Eva Kowalski", "company_name": "Nordlicht Logistik GmbH",
                                            "manager_name": "Sam Okafor", "manager_email": "sam@example.com",
                                            "link_path": "/letter/abc.def", "expires_on": "2027-01-04"}),
    "customer letter, no company": ("customer_letter", {"contact_name": "Eva Kowalski", "company_name": "",
                                                        "manager_name": "Sam Okafor", "manager_email": "",
                                                        "link_path": "/letter/abc.def", "expires_on": "2027-01-04"}),
    "password link": ("password_link", {"username": "eva.kowalski", "admin_name": "Mia Svensson", "hours": 72,
                                        "link_path": "/password/set/abc"}),
    **{f"address {'changed' if new else 'removed'} by {by}": ("address_changed", {
        "username": "eva.kowalski", "by": by, "admin_name": "Mia Svensson" if by == "admin" else "",
        "changed_at": "2026-12-07 10:15 UTC", "new_address": new})
       for by in ("admin", "operator", "self") for new in ("•••@example.org", "")},
}
LANGUAGES = {"zh_Hans": "zh-Hans", "ru": "ru"}


def test_every_mail_template_is_rendered_here() -> None:
    """A mail added to templates/mail/ must be given a context above, or this check would miss it."""
    names = {path.name.split(".")[0] for path in (Path(render.TEMPLATES) / "mail").glob("*.txt")
             if not path.name.startswith("_")}
    assert names == {template for template, _context in MAILS.values()}


@pytest.mark.parametrize("language", list(LANGUAGES))
@pytest.mark.parametrize("mail", list(MAILS))
def test_a_mail_has_no_english_left(mail: str, language: str) -> None:
    template, context = MAILS[mail]
    rendered = render.render(template, context, locale=language, base_url="https://vault.example")
    allow = AllowList(DATA)
    found = {part: english_left(text, allow) for part, text in (
        ("subject", _as_page(rendered.subject)), ("text", _as_page(rendered.text)), ("html", rendered.html))}
    assert not any(found.values()), (mail, language, found)
    assert f'<html lang="{LANGUAGES[language]}">' in rendered.html


@pytest.mark.parametrize(("language", "words"), [
    ("ru", "Sam Okafor (увольняется): открыты или найдены карточки 4 клиентов не из своего портфеля."),
    ("zh_Hans", "离职中的 Sam Okafor 查阅或查找了 4 个不属于自己名下的客户。"),
    ("en", "Sam Okafor, on notice, read or looked up 4 customers outside their own book.")])
def test_a_security_alert_mail_words_the_summary_in_the_recipients_language(language: str, words: str) -> None:
    """The summary's values, not its stored English, make the sentence (counted in the language's forms)."""
    _template, context = MAILS["security alert, summary in the reader's language"]
    rendered = render.render("security_alert", context, locale=language, base_url="")
    assert words in rendered.text and words in rendered.html
    assert (context["summary"] in rendered.text) == (language == "en")


def test_the_checker_sees_english_in_a_mail() -> None:
    rendered = render.render("test", {}, locale="en", base_url="")
    assert english_left(_as_page(rendered.text), AllowList())


def _as_page(text: str) -> str:
    """Plain text as a page's text (angle brackets kept as text)."""
    return "<p>" + re.sub(r"[<>&]", " ", text) + "</p>"
