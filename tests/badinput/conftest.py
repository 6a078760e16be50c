"""Fixtures of the bad-input suite: the scene (see `scene.py`) on both databases."""

from __future__ import annotations

from typing import Any

import pytest

from tests.badinput.scene import Scene, build


@pytest.fixture
def scene(rt: Any, users: Any) -> Scene:
    return build(rt, users)
