"""The cast of the loan tests: borrowers, a compiler, approvers, custodians, and people holding two roles
(which the static role rules allow) so separation of duties on one loan can be put to the test."""

from __future__ import annotations

from typing import Any

import pytest

from tests.loans.helpers import Audit, Browser, make_document
from vault.models import Role

CAST: dict[str, tuple[Role, ...]] = {
    "ann": (Role.BORROWER,),
    "bob": (Role.BORROWER,),
    "carl": (Role.COMPILER,),
    "paula": (Role.APPROVER,),
    "quinn": (Role.APPROVER,),
    "cora": (Role.CUSTODIAN,),
    "abby": (Role.APPROVER, Role.BORROWER),  # may borrow and approve, never her own loan
    "cam": (Role.COMPILER, Role.APPROVER),  # may compile and approve, never loans of his own file
    "cole": (Role.COMPILER, Role.BORROWER),  # reads his own files only through a loan
    "val": (Role.APPROVER, Role.CUSTODIAN),  # may approve or release a loan, not both
    "cid": (Role.COMPILER, Role.CUSTODIAN),
    "kira": (Role.CUSTODIAN, Role.BORROWER),  # may keep files and borrow them, never set her own quota
}


class _People(dict):
    """Name → user id; a member of the cast is created the first time a test names them."""

    def __init__(self, users: Any) -> None:
        super().__init__()
        self.users = users

    def __missing__(self, name: str) -> int:
        self[name] = self.users.make(name, *CAST[name]).id
        return self[name]


class World:
    def __init__(self, rt: Any, app: Any, users: Any) -> None:
        self.rt = rt
        self.app = app
        self.ids = _People(users)
        self.audit = Audit(rt)

    def browser(self, name: str, **environ: Any) -> Browser:
        self.ids[name]
        return Browser(self.app, name, **environ)

    def document(self, grade: int, compiler: str = "carl", **kwargs: Any) -> int:
        # The whole cast exists before the file, so every account manager of it works the customer.
        for name in CAST:
            self.ids[name]
        return make_document(self.rt, compiler_id=self.ids[compiler], grade=grade, **kwargs)


# The loan tests exercise the single-use content URL with the original bytes (a grade may allow that);
# stamped copies, the default, are tested in tests/viewer.
ORIGINALS = {"policy": {"grades": {"1": {"download_original": True}, "2": {"download_original": True}}}}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return dict(ORIGINALS)


@pytest.fixture
def world(rt: Any, app: Any, users: Any) -> World:
    return World(rt, app, users)
