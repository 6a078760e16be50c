"""A small sales team for the departure and early-warning tests, built through the real services.

Customers and files are created as compilers create them (encrypted into the runtime's object store),
loans are requested and approved through the loan service, and views are opened through the view
service or the API, from addresses and places the tests choose.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.rendering.inputs import pdf_bytes
from vault.config.policy_file import DAY_NAMES, to_toml
from vault.core.context import AccessContext
from vault.models import Alert, AuditEvent, Customer, Document, Loan, Role, User
from vault.runtime import Runtime
from vault.services import accounts, agreement, customers, documents, loans, views

PDF = pdf_bytes(1)  # a real one-page PDF: the viewer renders it at upload
REASON = "Prepare the quarterly visit to the customer"
OFFICE = AccessContext(client_addr="10.1.2.3", named_place="Head office", user_agent="pytest",
                       request_id="office-request-0001")
HOME = AccessContext(client_addr="203.0.113.9", named_place=None, user_agent="pytest",
                     request_id="home-request-0001")
TRUSTED = "Head office=10.1.0.0/16"

# Who plays which part.
CAST: dict[str, tuple[Role, ...]] = {
    "sam": (Role.BORROWER, Role.COMPILER),  # the salesperson who leaves: owns customers, reads files
    "sue": (Role.BORROWER,),  # the successor
    "tom": (Role.BORROWER,),  # another account manager
    "carl": (Role.COMPILER,),
    "ann": (Role.APPROVER,),
    "abe": (Role.APPROVER,),
    "kim": (Role.CUSTODIAN,),
    "aud": (Role.AUDITOR,),
    "adm": (Role.ADMIN,),
}


def off_days_now() -> list[str]:
    """Working days that exclude today and tomorrow (UTC): whatever the test's clock says, it is
    "outside working hours" for the whole run, even across midnight."""
    today = datetime.now(UTC).weekday()
    excluded = {today, (today + 1) % 7}
    return [name for number, name in enumerate(DAY_NAMES) if number not in excluded]


def evening_policy(**alerts: Any) -> dict[str, Any]:
    return {
        "working_hours": {"timezone": "UTC", "days": off_days_now(), "start": "08:00", "end": "18:00"},
        "alerts": alerts,
    }


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "policy(sections): the policy sections of the test's runtime")


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"trusted_places": TRUSTED, "policy": evening_policy()}


class Company:
    def __init__(self, rt: Runtime, users: Any) -> None:
        self.rt = rt
        self.users = users
        self.ids = {name: users.make(name, *roles).id for name, roles in CAST.items()}
        with rt.db.session() as session:
            for name in CAST:
                agreement.accept(rt, session, accounts.get_user(session, name), AccessContext.cli())

    def user(self, session: Any, name: str) -> User:
        return accounts.get_user(session, name)

    def customer(self, name: str, segment: str = "ordinary", owner: str = "sam") -> int:
        with self.rt.db.session() as session:
            return customers.create_customer(
                self.rt, session, self.user(session, "carl"), name=name, segment=segment,
                owner=self.user(session, owner), ctx=OFFICE).id

    def document(self, customer_id: int, grade: int = 1, title: str = "Account plan", compiler: str = "carl") -> int:
        with self.rt.db.session() as session:
            return documents.upload_document(
                self.rt, session, self.user(session, compiler), session.get(Customer, customer_id), title=title,
                grade=grade, stream=io.BytesIO(PDF), filename="plan.pdf", content_type="application/pdf",
                ctx=OFFICE, custodian=self.user(session, "kim")).id

    def request(self, document_id: int, borrower: str = "sam", ctx: AccessContext = OFFICE) -> int:
        with self.rt.db.session() as session:
            return loans.request_loan(
                self.rt, session, self.user(session, borrower), session.get(Document, document_id), reason=REASON,
                category="visit_preparation", place="Head office", days=5, ctx=ctx).id

    def approve(self, loan_id: int, approver: str) -> Loan:
        with self.rt.db.session() as session:
            return loans.approve(self.rt, session, self.user(session, approver), session.get(Loan, loan_id),
                                 comment="fine", ctx=OFFICE)

    def loan(self, document_id: int, borrower: str = "sam") -> int:
        """An active loan (requested, approved by as many approvers as it needs, released if grade 3)."""
        loan_id = self.request(document_id, borrower)
        for approver in ("ann", "abe"):
            loan = self.approve(loan_id, approver)
            if loan.status != "requested":
                break
        if loan.status == "approved":
            with self.rt.db.session() as session:
                loans.release(self.rt, session, self.user(session, "kim"), session.get(Loan, loan_id), ctx=OFFICE)
        return loan_id

    def view(self, document_id: int, user: str = "sam", ctx: AccessContext = OFFICE, place: str = "Head office",
             category: str | None = "visit_preparation"):
        """Open a view as the person would; the kind of need is given, as the form asks it on notice."""
        with self.rt.db.session() as session:
            return views.open_view(self.rt, session, self.user(session, user), session.get(Document, document_id),
                                   reason=REASON, place=place, download=False, ctx=ctx, category=category)

    def alerts(self, user: str = "sam") -> list[Alert]:
        with self.rt.db.session() as session:
            return list(session.scalars(select(Alert).where(Alert.user_id == self.ids[user]).order_by(Alert.id)))

    def rules(self, user: str = "sam") -> list[str]:
        return sorted(alert.rule for alert in self.alerts(user))

    def events(self, action: str | None = None, outcome: str | None = None, after: int = 0) -> list[AuditEvent]:
        with self.rt.db.session() as session:
            query = select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq)
            if action is not None:
                query = query.where(AuditEvent.action == action)
            if outcome is not None:
                query = query.where(AuditEvent.outcome == outcome)
            return list(session.scalars(query))

    def head(self) -> int:
        events = self.events()
        return events[-1].seq if events else 0

    def refresh(self, name: str) -> User:
        with self.rt.db.session() as session:
            return self.user(session, name)


@pytest.fixture
def company(rt: Runtime, users: Any) -> Company:
    return Company(rt, users)


def days_from_today(n: int) -> Any:
    return (datetime.now(UTC) + timedelta(days=n)).date()



def policy_file(rt: Runtime, path: Any) -> Any:
    """The runtime's policy (sections and grade rules) as the TOML file a deployment would write."""
    path.write_text(to_toml(rt.settings.policy_sections()), encoding="utf-8")
    return path


def cli_env(rt: Runtime, tmp_path: Any) -> dict[str, str]:
    """Environment for running `vault ...` against the test's database, store and keyring."""
    settings = rt.settings
    return {
        "VAULT_DATA_DIR": str(settings.data_dir), "VAULT_DATABASE_URL": settings.database,
        "VAULT_KEYRING": str(settings.keyring_path), "VAULT_SECRET_KEY": settings.secret_key,
        "VAULT_CONFIG": str(policy_file(rt, tmp_path / "policy.toml")), "VAULT_TRUSTED_PLACES": TRUSTED,
        "VAULT_ARGON2_TIME_COST": "1", "VAULT_ARGON2_MEMORY_KIB": "1024", "VAULT_WEBHOOK_URL": settings.webhook_url,
    }


def run_cli(rt: Runtime, tmp_path: Any, *args: str) -> Any:
    from click.testing import CliRunner

    from vault.cli import cli

    return CliRunner().invoke(cli, list(args), env=cli_env(rt, tmp_path), catch_exceptions=False)


class ApiCaller:
    """Calls the JSON API with a bearer token from a chosen address."""

    def __init__(self, app: Any, token: str, address: str) -> None:
        self.client = app.test_client()
        self.token = token
        self.address = address

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return self.client.open(path, method=method, headers=headers,
                                environ_base={"REMOTE_ADDR": self.address}, **kwargs)

    def open_view(self, document_id: int, place: str = "Home") -> Any:
        return self.call("POST", f"/api/v1/documents/{document_id}/views", json={"reason": REASON, "place": place,
                                                                                     "category": "visit_preparation"})
