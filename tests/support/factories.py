"""Factories for the things most tests need: people, customers, documents, loans.

People are made through the real account service (with an authenticator enrolled where their roles
require one, as at their first sign-in); documents are stored for real, encrypted into the runtime's
object store with the same binding as uploads, but without going through the upload pages, so tests of
loans and views exercise those alone. Loans go through the loan service, so their rules apply.
"""

from __future__ import annotations

import hashlib
import io
import time
import uuid
from typing import Any

from sqlalchemy import func, select

from crypto import EncryptingReader, associated_data, ciphertext_size, new_data_key
from vault.core.context import AccessContext
from vault.models import Customer, CustomerCoOwner, Document, DocumentVersion, Loan, Role, RoleAssignment, Segment, User
from vault.runtime import Runtime
from vault.services import accounts, loans, managers, records, totp
from vault.services.renditions import draw, store_drawing

PASSWORD = "correct horse battery"
TEXT = b"Customer file: Example Industries. Contacts, prices and the history of the account.\n"


class Users:
    """Creates accounts on demand: `users.make("bob", Role.BORROWER)`.

    People whose roles require a second factor get an authenticator enrolled at once, as they would
    at their first sign-in, so `login()` can answer the code step; their recovery codes are kept in
    `recovery_codes[username]`. `second_factor=False` leaves them unenrolled (to test enrolment),
    `second_factor=True` enrols anyone.
    """

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.recovery_codes: dict[str, list[str]] = {}

    def make(self, username: str, *roles: Role, password: str = PASSWORD, second_factor: bool | None = None) -> User:
        with self.rt.db.session() as session:
            user = accounts.create_user(self.rt, session, username=username, password=password,
                                        display_name=username.title(), roles=roles, ctx=AccessContext.cli())
            if totp.required(user) if second_factor is None else second_factor:
                self.recovery_codes[username] = _enrol_second_factor(self.rt, session, user)
            return user

    def manage(self, manager: str, *reports: str) -> None:
        """Name `manager` the manager of each of `reports`, as the operator does."""
        with self.rt.db.session() as session:
            boss = accounts.get_user(session, manager)
            for name in reports:
                managers.set_manager(self.rt, session, accounts.get_user(session, name), boss, actor=None)

    def approve_roles(self, username: str, by: str) -> None:
        """Approve every role waiting for `username`, as the second administrator `by` does on their page."""
        with self.rt.db.session() as session:
            second = accounts.get_user(session, by)
            for request in accounts.pending_role_requests(session, accounts.get_user(session, username)):
                accounts.decide_role_request(self.rt, session, request, approve=True, actor=second,
                                             ctx=AccessContext.cli())

    def token(self, username: str) -> str:
        with self.rt.db.session() as session:
            user = accounts.get_user(session, username)
            return accounts.create_token(self.rt, session, user).secret


def _enrol_second_factor(rt: Runtime, session: Any, user: User) -> list[str]:
    # Confirmed with a code from two steps ago, so the codes of the current steps are still unused.
    at = time.time() - 2 * totp.STEP_SECONDS
    secret = totp.begin_enrolment(rt, session, user)
    return totp.confirm_enrolment(rt, session, user, totp.code_at(secret, totp.time_step(at)),
                                  AccessContext.cli(), at=at)


def make_customer(session: Any, *, owner_id: int, name: str | None = None,
                  segment: Segment = Segment.ORDINARY) -> Customer:
    """A customer owned (and entered) by `owner_id`, flushed so it has its id."""
    customer = Customer(name=name or f"Example Industries {uuid.uuid4().hex[:6]}", owner_id=owner_id,
                        created_by_id=owner_id, segment=segment)
    session.add(customer)
    session.flush()
    return customer


def add_version(rt: Runtime, session: Any, document: Document, content: bytes, *, name: str = "notes.txt",
                content_type: str = "text/plain", uploader_id: int | None = None) -> DocumentVersion:
    number = (session.scalar(select(func.max(DocumentVersion.number))
                             .where(DocumentVersion.document_id == document.id)) or 0) + 1
    context = associated_data(document.id, number)
    dek = new_data_key()
    key_id, wrapped = rt.keyring.wrap(dek, context)
    key = f"documents/{document.id}/{number}-{uuid.uuid4().hex}"
    rt.store.put(key, EncryptingReader(dek, context, io.BytesIO(content)), length=ciphertext_size(len(content)))
    version = DocumentVersion(
        document_id=document.id, number=number, object_key=key, size=len(content),
        sha256=hashlib.sha256(content).hexdigest(), wrapped_dek=wrapped, key_id=key_id, content_type=content_type,
        original_name=name, uploaded_by_id=uploader_id or document.compiler_id,
    )
    session.add(version)
    session.flush()
    with draw(io.BytesIO(content), content_type, name) as drawing:
        store_drawing(rt, session, version, drawing, dek, track=lambda _key: None)
    session.expire(document, ["versions"])
    return version


def make_document(rt: Runtime, *, compiler_id: int, grade: int, content: bytes = TEXT, title: str = "Account plan",
                  name: str = "notes.txt", content_type: str = "text/plain", custodian_id: int | None = None,
                  view_quota: int | None = None) -> int:
    with rt.db.session() as session:
        customer = make_customer(session, owner_id=compiler_id)
        document = Document(customer_id=customer.id, title=title, grade=grade, compiler_id=compiler_id,
                            custodian_id=custodian_id, view_quota=view_quota)
        session.add(document)
        session.flush()
        add_version(rt, session, document, content, name=name, content_type=content_type)
        customer_id, document_id = customer.id, document.id
    everyone_works(rt, customer_id)
    return document_id


def make_loan(rt: Runtime, *, document_id: int, borrower_id: int, reason: str = "Prepare the visit to the customer",
              place: str = "Head office", days: int = 5) -> int:
    """A loan requested by `borrower_id` through the loan service (its rules apply); returns its id."""
    with rt.db.session() as session:
        borrower, document = session.get(User, borrower_id), session.get(Document, document_id)
        assert borrower is not None and document is not None
        loan: Loan = loans.request_loan(rt, session, borrower, document, reason=reason, category="visit_preparation",
                                   place=place, days=days, ctx=AccessContext(named_place=place))
        session.commit()
        return loan.id


def everyone_works(rt: Runtime, customer_id: int) -> None:
    """Scene setting for tests about something other than need to know: everyone in a working role
    (borrower, compiler, custodian, approver) co-owns the customer, so each sees it as the people of the
    scene expect. Written straight to the database, past the product's rules (only account managers
    co-own, at most three), which the need-to-know tests check on their own scenes."""
    with rt.db.session() as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        workers = set(session.scalars(select(RoleAssignment.user_id).where(
            RoleAssignment.role.in_([Role.BORROWER, Role.COMPILER, Role.CUSTODIAN, Role.APPROVER]))))
        for user_id in sorted(workers - customer.co_owner_ids - {customer.owner_id}):
            session.add(CustomerCoOwner(customer_id=customer_id, user_id=user_id))



def reach_main_contact(rt: Runtime, customer_id: int, username: str) -> None:
    """`username` logs reaching the customer's main contact today (a contact is recorded first when the
    record has none): what confirming a key customer's handover asks of the successor."""
    with rt.db.session() as session:
        customer = session.get(Customer, customer_id)
        contacts = records.snapshot(rt, records.record_of(session, customer_id))["contacts"]
        if not contacts:
            records.edit(rt, session, None, customer, {"contacts": [{"name": "Main Contact",
                                                                      "phones": ["+49 30 5550100"]}]},
                         ctx=AccessContext.cli())
            contacts = records.snapshot(rt, records.record_of(session, customer_id))["contacts"]
        records.add_log(rt, session, accounts.get_user(session, username), customer,
                        happened_on=records.utcnow().date(), channel="call", contact=contacts[0]["name"],
                        topic="Introduced as the new account manager", ctx=AccessContext.cli())
