"""The language of a page: the person's stored choice, else the browser's Accept-Language, else English;
`<html lang>` says which; refusals, flashes and error pages are in it; dates, times and numbers are
written the language's way, in the person's time zone; Russian plurals take their three forms."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
from flask import g, render_template_string
from sqlalchemy import select

from tests.conftest import csrf_from, login
from vault.core import languages
from vault.core.errors import ServiceError
from vault.models import AuditEvent, Role, User
from vault.policy import views as view_rules
from vault.policy.core import message_for
from vault.services import search
from vault.web import file_types, locale

LANG = re.compile(r'<html lang="([^"]+)">')


def lang_of(response: Any) -> str:
    match = LANG.search(response.get_data(as_text=True))
    assert match, "no <html lang>"
    return match.group(1)


@pytest.mark.parametrize(("header", "expected", "word"), [
    ("zh-CN,zh;q=0.9,en;q=0.5", "zh-Hans", "登录"),
    ("zh", "zh-Hans", "登录"),
    ("zh-Hans-CN", "zh-Hans", "登录"),
    ("ru-RU,ru;q=0.9", "ru", "Войти"),
    ("de-DE,ru;q=0.8,en;q=0.5", "ru", "Войти"),
    ("fr-FR", "en", "Sign in"),
    ("", "en", "Sign in"),
])
def test_the_sign_in_page_speaks_the_browsers_language(client: Any, header: str, expected: str, word: str) -> None:
    response = client.get("/login", headers={"Accept-Language": header})
    assert response.status_code == 200
    assert lang_of(response) == expected
    assert word in response.get_data(as_text=True)


def test_a_failed_sign_in_is_told_in_russian(client: Any, users: Any) -> None:
    users.make("olga", Role.BORROWER)
    page = client.get("/login", headers={"Accept-Language": "ru"})
    answer = client.post("/login", data={"username": "olga", "password": "wrong password!", "csrf_token":
                                         csrf_from(page.get_data(as_text=True))}, headers={"Accept-Language": "ru"})
    assert "Неверное имя пользователя или пароль." in answer.get_data(as_text=True)


def test_a_refusal_is_told_in_the_readers_language(client: Any, users: Any) -> None:
    users.make("li", Role.BORROWER)
    login(client, "li")
    refused = client.get("/admin/users", headers={"Accept-Language": "zh-CN"})
    assert refused.status_code == 403
    assert lang_of(refused) == "zh-Hans"
    assert "您的角色不允许此操作。" in refused.get_data(as_text=True)
    refused = client.get("/admin/users", headers={"Accept-Language": "ru"})
    assert "Ваши роли этого не разрешают." in refused.get_data(as_text=True)


def test_a_missing_page_is_told_in_russian(client: Any) -> None:
    response = client.get("/no/such/page", headers={"Accept-Language": "ru"})
    assert response.status_code == 404 and lang_of(response) == "ru"
    assert "По этому адресу ничего нет." in response.get_data(as_text=True)


def test_the_api_words_its_errors_in_the_language_asked_and_keeps_the_code(client: Any) -> None:
    response = client.get("/api/v1/customers", headers={"Accept-Language": "ru"})
    assert response.status_code == 401
    assert response.get_json() == {"error": "Нужен действительный токен Bearer.", "code": "not_authenticated"}


def _choose(client: Any, token: str, **fields: str) -> Any:
    return client.post("/account/language", data={"csrf_token": token, **fields},
                       headers={"Accept-Language": "zh-CN"})


def test_the_stored_choice_overrides_the_browser_and_is_audited(client: Any, users: Any, rt: Any) -> None:
    users.make("ivan", Role.BORROWER)
    token = login(client, "ivan")
    assert lang_of(client.get("/account", headers={"Accept-Language": "zh-CN"})) == "zh-Hans"
    answer = _choose(client, token, locale="ru", timezone="Europe/Moscow")
    assert answer.status_code == 302
    page = client.get("/account", headers={"Accept-Language": "zh-CN"})
    assert lang_of(page) == "ru"
    assert "Язык и часовой пояс сохранены." in page.get_data(as_text=True)
    with rt.db.session() as session:
        user = session.scalar(select(User).where(User.username == "ivan"))
        assert (user.locale, user.timezone) == ("ru", "Europe/Moscow")
        (event,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "account:language")).all()
        assert event.subject_user_id == user.id
    # back to "as my browser asks"
    _choose(client, token, locale="", timezone="")
    assert lang_of(client.get("/account", headers={"Accept-Language": "zh-CN"})) == "zh-Hans"


@pytest.mark.parametrize("fields", [{"locale": "xx", "timezone": ""}, {"locale": "ru", "timezone": "Mars/Olympus"},
                                    {"locale": "ru", "timezone": "Etc/GMT+3"}])
def test_a_choice_vault_does_not_offer_is_refused_and_changes_nothing(client: Any, users: Any, rt: Any,
                                                                     fields: dict[str, str]) -> None:
    users.make("wang", Role.BORROWER)
    token = login(client, "wang")
    answer = _choose(client, token, **fields)
    assert answer.status_code == 302
    with rt.db.session() as session:
        user = session.scalar(select(User).where(User.username == "wang"))
        assert (user.locale, user.timezone) == (None, None)
        assert session.scalars(select(AuditEvent).where(AuditEvent.action == "account:language")).all() == []
    assert lang_of(client.get("/account", headers={"Accept-Language": "zh-CN"})) == "zh-Hans"


@pytest.mark.parametrize(("limit", "text"), [
    (1, "Вы израсходовали свой единственный просмотр этого документа."),
    (2, "Вы израсходовали 2 просмотра этого документа."),
    (5, "Вы израсходовали 5 просмотров этого документа."),
    (11, "Вы израсходовали 11 просмотров этого документа."),
    (21, "Вы израсходовали 21 просмотр этого документа."),
    (22, "Вы израсходовали 22 просмотра этого документа."),
])
def test_russian_plurals_take_their_three_forms(app: Any, limit: int, text: str) -> None:
    with app.test_request_context(headers={"Accept-Language": "ru"}):
        assert str(view_rules.quota_exhausted(limit).message) == text


def test_chinese_has_one_form(app: Any) -> None:
    with app.test_request_context(headers={"Accept-Language": "zh-CN"}):
        assert str(view_rules.quota_exhausted(5).message) == "您已用完此文件的 5 次查看。"


def test_refusals_with_a_number_in_them_speak_the_reader_s_language(app: Any) -> None:
    """They were plain English strings with the number filled in when the module loaded."""
    with app.test_request_context(headers={"Accept-Language": "ru"}):
        assert str(message_for("reason_too_short")) == "Укажите причину не короче 10 символов."
    with app.test_request_context(headers={"Accept-Language": "zh-CN"}):
        assert str(message_for("extra_views_invalid")).startswith("请申请 1 到 ")
        assert "0 到 " in str(message_for("quota_invalid"))


@pytest.mark.parametrize("language", ["ru", "zh-CN"])
def test_a_customer_without_a_segment_is_shown_a_dash_not_the_catalogue_s_header(app: Any, language: str) -> None:
    with app.test_request_context(headers={"Accept-Language": language}):
        shown = render_template_string("{{ none|segment_label }}|{{ ''|segment_label }}|{{ 'vip'|segment_label }}",
                                       none=None)
    assert shown.split("|")[:2] == ["—", "—"] and "Project-Id-Version" not in shown


@pytest.mark.parametrize(("language", "segment", "graded"), [
    ("en", "Segment: VIP", "Has a file of grade 2 or 3"),
    ("ru", "Сегмент: VIP", "Есть файл грифа 2 или 3"),
    ("zh-CN", "客户类别：VIP 客户", "有 2 级或 3 级文件"),
])
def test_why_a_handover_s_customer_is_a_key_one_is_said_in_the_reader_s_language(
        app: Any, language: str, segment: str, graded: str) -> None:
    """Stored (and given by the API) as "segment vip" and "grade 2-3 file"; the pages showed them so."""
    with app.test_request_context(headers={"Accept-Language": language}):
        shown = render_template_string("{{ 'segment vip'|key_reason }}|{{ 'grade 2-3 file'|key_reason }}")
    assert shown.split("|") == [segment, graded]


def test_sentences_are_joined_as_the_reader_s_language_writes_them(app: Any) -> None:
    """A flash of two sentences showed a Latin space between two Chinese ones."""
    with app.test_request_context(headers={"Accept-Language": "zh-CN"}):
        done, nothing = "您的批准已记录。", "没有其他等待您处理的事项。"
        assert locale.sentences(done, nothing) == done + nothing
        assert str(search_service_error()) == "搜索内容不能包含控制字符。"
    with app.test_request_context(headers={"Accept-Language": "ru"}):
        assert locale.sentences("Одобрено.", "Вот следующая заявка.") == "Одобрено. Вот следующая заявка."
        assert file_types.label("text/markdown") == "Markdown"


def search_service_error() -> Any:
    try:
        search.clean_query("a\x01b")
    except ServiceError as exc:
        return exc.message
    raise AssertionError("a control character was accepted")


@pytest.mark.parametrize(("language", "place", "window", "time"), [
    ("en", "declared place: Office", "Dec 7, 2026", "Dec 7, 2026 10:15\u202fPM"),
    ("ru", "заявленное место: Office", "7 дек. 2026\u202fг.", "7 дек. 2026\u202fг. 22:15"),
    ("zh-CN", "申报地点: Office", "2026年12月7日", "2026年12月7日 22:15"),
])
def test_an_alert_s_evidence_and_window_are_shown_in_the_reader_s_language(
        app: Any, language: str, place: str, window: str, time: str) -> None:
    """The evidence is stored as the rules write it ("declared place: Office", "2026-12-07T22:15"); the
    page showed it so. Local times stay as they were recorded, not moved to the reader's zone."""
    with app.test_request_context(headers={"Accept-Language": language}):
        shown = render_template_string(
            "{{ 'declared place: Office'|evidence_value('places') }}|{{ '2026-12-07'|local_moment }}|"
            "{{ '2026-12-07T22:15'|evidence_value('times') }}|{{ 'weekly-7'|local_moment }}")
    assert shown.split("|") == [place, window, time, "weekly-7"]


MOMENT = datetime(2026, 12, 4, 22, 15, tzinfo=UTC)


@pytest.mark.parametrize(("header", "day", "when", "number"), [
    ("en", "Dec 4, 2026", "Dec 4, 2026, 10:15:00\u202fPM UTC", "12,345.5"),
    ("ru", "4 дек. 2026\u202fг.", "4 дек. 2026\u202fг., 22:15:00 UTC", "12\xa0345,5"),
    ("zh-CN", "2026年12月4日", "2026年12月4日 22:15:00 UTC", "12,345.5"),
])
def test_dates_times_and_numbers_are_written_the_languages_way(app: Any, header: str, day: str, when: str,
                                                              number: str) -> None:
    with app.test_request_context(headers={"Accept-Language": header}):
        assert locale.day(date(2026, 12, 4)) == day
        assert locale.when(MOMENT) == when
        assert locale.number(12345.5) == number
        assert locale.when(None) == "—"


def test_times_are_shown_in_the_persons_time_zone(app: Any, users: Any) -> None:
    person = users.make("mei", Role.BORROWER)
    person.timezone, person.locale = "Asia/Shanghai", "zh_Hans"
    with app.test_request_context():
        g.vault_user = person
        # 22:15 UTC is 06:15 the next morning in Shanghai, the zone named as every moment the pages show is.
        assert locale.clock(MOMENT) == "06:15 +0800"
        assert locale.html_lang() == "zh-Hans"


def test_language_tags_map_onto_the_catalogues() -> None:
    assert [languages.from_tag(t) for t in ("zh-TW", "ZH_hans", "ru-UA", "en-GB", "de", "", None)] == [
        "zh_Hans", "zh_Hans", "ru", "en", None, None, None]
    assert languages.from_accept([("de", 1.0), ("ru", 0.0), ("zh-CN", 0.5)]) == "zh_Hans"


@pytest.mark.parametrize("header", ["zh-CN", "ru"])
def test_every_menu_page_of_every_role_answers_in_the_language(client: Any, users: Any, header: str) -> None:
    """The menu of each role, walked in Chinese and Russian: every page answers 200 and is marked with
    the language (what words are still English is the template pass's test)."""
    for name, role in (("boris", Role.BORROWER), ("zhou", Role.COMPILER), ("kira", Role.CUSTODIAN),
                       ("lin", Role.APPROVER), ("pavel", Role.AUDITOR), ("admin", Role.ADMIN)):
        users.make(name, role)
        login(client, name)
        home = client.get("/", headers={"Accept-Language": header})
        menu = re.findall(r'<nav id="main-menu"[^>]*>(.*?)</nav>', home.get_data(as_text=True), re.S)[0]
        links = set(menu.split('href="')[1:])
        for link in {chunk.split('"', 1)[0] for chunk in links} | {"/account"}:
            page = client.get(link, headers={"Accept-Language": header})
            assert page.status_code == 200, (name, link, page.status_code)
            assert lang_of(page) == ("zh-Hans" if header == "zh-CN" else "ru"), (name, link)
        client.post("/logout", data={"csrf_token": csrf_from(home.get_data(as_text=True))})
