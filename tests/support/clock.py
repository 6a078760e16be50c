"""The `clock` fixture: move the time every service, model and session sees, instead of rewriting
timestamps in the database or waiting. Time is put back after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vault.core.clock import Clock
from vault.core.clock import clock as shared_clock


@pytest.fixture
def clock() -> Iterator[Clock]:
    shared_clock.reset()
    try:
        yield shared_clock
    finally:
        shared_clock.reset()
