"""An alert's summary is read in the reader's language, counted in its plural forms, and an alert raised
before its summary's values were stored keeps its English summary; upgrade 0019 leaves such alerts as
they were."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask_babel import get_translations

from vault.core import alert_wording
from vault.db import schema
from vault.db.engine import Database
from vault.models.base import UTCDateTime


def _in(app: Any, language: str, params: dict[str, Any] | None, summary: str = "stored English") -> str:
    with app.test_request_context(headers={"Accept-Language": language}):
        return alert_wording.sentence(summary, params, get_translations())


@pytest.mark.parametrize(("n", "words"), [(1, "1 отказ в доступе"), (2, "2 отказа в доступе"),
                                          (5, "5 отказов в доступе"), (21, "21 отказ в доступе"),
                                          (24, "24 отказа в доступе"), (111, "111 отказов в доступе")])
def test_a_probing_summary_in_russian_takes_its_plural_form(app: Any, n: int, words: str) -> None:
    text = _in(app, "ru", {"id": "probing", "n": n, "limit": 5})
    assert text == f"{words} за час (предел — 5)."


def test_a_notice_counts_customers_and_loans_each_in_their_form(app: Any) -> None:
    params = {"id": "notice", "name": "Пётр Иванов", "day": "2026-12-19", "customers": 3, "loans": 1}
    assert _in(app, "ru", params) == ("Пётр Иванов: заявление об увольнении, последний рабочий день — 2026-12-19. "
                                      "3 клиента к передаче, 1 открытая выдача.")
    assert _in(app, "en", {**params, "customers": 1, "loans": 2}) == (
        "Пётр Иванов gave notice; last working day 2026-12-19. 1 customer to hand over, 2 open loans.")
    assert _in(app, "zh-CN", params) == ("Пётр Иванов 已提交离职通知；最后工作日 2026-12-19。"
                                         "待交接客户 3 个，未结束的借阅 1 项。")


def test_weekdays_and_kinds_of_place_are_translated(app: Any) -> None:
    assert _in(app, "ru", {"id": "outside_hours", "weekday": 6, "time": "23:40"}) == \
        "Файлы открыты в нерабочее время (воскресенье 23:40)."
    assert _in(app, "zh-CN", {"id": "new_place", "places": [["address", "10.0.0.9"], ["declared place", "Kyiv"]]}) \
        == "从该人员以前未出现过的地点打开了文件（地址: 10.0.0.9; 申报地点: Kyiv）。"


@pytest.mark.parametrize(("n", "days", "words"), [
    (6, 7, "Сэм: за 7 дней раскрыты контакты 6 клиентов не из своего портфеля (больше 5)."),
    (21, 1, "Сэм: за 1 день раскрыты контакты 21 клиента не из своего портфеля (больше 5)."),
    (3, 2, "Сэм: за 2 дня раскрыты контакты 3 клиентов не из своего портфеля (больше 5)."),
])
def test_reveals_outside_the_book_count_customers_and_days_each_in_their_form(
        app: Any, n: int, days: int, words: str) -> None:
    params = {"id": "outside_book_reveals", "name": "Сэм", "n": n, "days": days, "limit": 5}
    assert _in(app, "ru", params) == words
    assert _in(app, "en", {**params, "name": "Sam", "days": 1}) == (
        f"Sam revealed the contacts of {n} customers outside their own book within 1 day (more than 5).")
    assert _in(app, "zh-CN", {**params, "name": "Sam"}) == (
        f"Sam 在 {days} 天内查看了 {n} 个不属于自己名下的客户的联系人（超过 5）。")


@pytest.mark.parametrize("params", [None, {}, {"id": "no_such_sentence"}, {"id": "probing"},
                                    {"id": "probing", "n": "many", "limit": 5},
                                    {"id": "outside_hours", "weekday": 9, "time": "10:00"}])
def test_an_alert_without_fitting_values_shows_its_stored_english(app: Any, params: Any) -> None:
    assert _in(app, "ru", params, "5 refused attempts within an hour.") == "5 refused attempts within an hour."


def test_every_sentence_of_every_rule_reads_in_each_language(app: Any) -> None:
    """Each sentence's values as its rule stores them: no language falls back to the English record."""
    examples = {
        "many_customers": {"n": 12, "limit": 10}, "volume_spike": {"n": 40, "median": "3.5", "days": 30},
        "outside_hours": {"weekday": 0, "time": "06:10"}, "outside_hours_reveal": {"weekday": 6, "time": "23:05"},
        "new_place": {"places": [["named place", "Berlin"]]},
        "new_place_reveal": {"places": [["address", "203.0.113.9"], ["declared place", "Hotel Lisboa"]]},
        "departing_view": {"grade": 3}, "departing_request": {"grade": 2}, "probing": {"n": 6, "limit": 5},
        "quotas_exhausted": {"n": 3}, "notice": {"name": "Sam", "day": "2026-12-19", "customers": 5, "loans": 2},
        "directory_hour": {"name": "Sam", "n": 31, "limit": 30}, "directory_day": {"name": "Sam", "n": 81, "limit": 80},
        "outside_book": {"name": "Sam", "n": 2}, "crafted_file": {"name": "Sam", "title": "Offer 2027"},
        "outside_book_reveals": {"name": "Sam", "n": 6, "days": 7, "limit": 5},
    }
    assert set(examples) == set(alert_wording.SENTENCES)
    for sentence_id, values in examples.items():
        texts = {language: _in(app, language, {"id": sentence_id, **values}) for language in ("en", "ru", "zh-CN")}
        assert "stored English" not in texts.values(), (sentence_id, texts)
        assert len(set(texts.values())) == 3, (sentence_id, texts)


def test_upgrade_0019_keeps_older_alerts_with_their_english(empty_database: Database) -> None:
    db = empty_database
    schema.upgrade(db, "0018")
    at = datetime(2026, 1, 5, 22, 0, tzinfo=UTC)
    with db.engine.begin() as connection:
        # The time written as the product writes it (not by sqlite3's default adapter, deprecated in 3.12).
        timed = sa.bindparam("at", type_=UTCDateTime)
        connection.execute(sa.text(
            "INSERT INTO users (id, username, display_name, password_hash, status, disabled, session_epoch, "
            "created_at) VALUES (1, 'bob', 'Bob', 'x', 'active', false, 0, :at)").bindparams(timed), {"at": at})
        connection.execute(sa.text(
            "INSERT INTO alerts (id, user_id, rule, window_key, severity, status, summary, evidence_json, "
            "occurrences, created_at, last_seen_at) VALUES (1, 1, 'probing', 'w', 'high', 'open', "
            "'7 refused attempts within an hour (the limit is 5).', '{}', 1, :at, :at)").bindparams(timed),
            {"at": at})
    schema.upgrade(db)
    with db.engine.connect() as connection:
        row = connection.execute(sa.text("SELECT summary, summary_params FROM alerts")).one()
    assert tuple(row) == ("7 refused attempts within an hour (the limit is 5).", None)
