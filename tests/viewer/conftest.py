"""The viewer tests' cast and documents: the loan tests' world, with a trusted place for grade 3."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.documents.conftest import company  # noqa: F401 - a fixture of these tests too
from tests.loans.conftest import World

TRUSTED = {"trusted_places": "Head office=10.1.0.0/16"}
INSIDE = {"REMOTE_ADDR": "10.1.2.3"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return dict(TRUSTED)


@pytest.fixture
def world(rt: Any, app: Any, users: Any) -> World:
    return World(rt, app, users)


def active_loan(world: World, document_id: int, borrower: str = "ann") -> None:
    """Request, approve (and release, where the grade needs it) a loan of the document."""
    from tests.loans.helpers import loan_rows, one_loan

    world.browser(borrower, **INSIDE).request_loan(document_id)
    loan = loan_rows(world.rt, document_id=document_id)[-1]
    world.browser("paula").decide(loan.id, "approve")
    if one_loan(world.rt, id=loan.id).release_required:
        world.browser("cora").decide(loan.id, "release")


@pytest.fixture(autouse=True)
def pages_drawn_in_process() -> Iterator[None]:
    """Not here: uploads draw their pages as deployed, in a fork (see the fixture of this name in
    tests/conftest.py)."""
    yield
