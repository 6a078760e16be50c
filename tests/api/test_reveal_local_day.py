"""The daily reveal cap resets at the company's midnight, as the look-up cap does, not at UTC's.

Was: the cap was counted in UTC days, so in Shanghai it reset at 08:00, in the middle of the working day,
and a person had two days' reveals in one working day (and one day's across two local days).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.api.conftest import assert_error

SHANGHAI = {"timezone": "Asia/Shanghai", "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            "start": 0, "end": 24}
REVEAL = {"reason": "Call about the renewal", "place": "Head office"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"policy": {"working_hours": SHANGHAI, "records": {"reveals_per_day": 1}}}


def _reveal(api: Any, customer_id: int) -> Any:
    api.tokens.clear()  # the frozen clock moved: a token made at another time is not this moment's
    return api.post(f"/api/v1/customers/{customer_id}/reveal", "bob", json=REVEAL)


def test_the_daily_reveal_cap_is_counted_per_local_day(api: Any, clock: Any) -> None:
    customers = [api.customer(f"Local Day Customer {n}", owner="bob", shared=False) for n in range(3)]
    clock.freeze(datetime(2026, 12, 8, 23, 0, tzinfo=UTC))  # 07:00 on 9 December in Shanghai
    first = _reveal(api, customers[0])
    assert first.status_code == 200, first.get_json()
    clock.freeze(datetime(2026, 12, 9, 1, 0, tzinfo=UTC))  # 09:00 the same local day, another day in UTC
    assert_error(_reveal(api, customers[1]), 403, "reveal_daily_cap")
    clock.freeze(datetime(2026, 12, 9, 16, 5, tzinfo=UTC))  # 00:05 on 10 December there, the same day in UTC
    body = _reveal(api, customers[2])
    assert body.status_code == 200, body.get_json()
    assert body.get_json()["remaining_today"] == 0
