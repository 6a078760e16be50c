"""Fixtures shared by the crypto tests."""

from __future__ import annotations

import os

import pytest

from crypto import stream


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def small_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the 2**32 segment limit reachable: the only way to test it in finite time."""
    monkeypatch.setattr(stream, "_MAX_SEGMENTS", 3)
