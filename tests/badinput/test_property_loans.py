"""Random role assignments and random loan histories, through the real services on a real database.

A small world (six people, a few documents of random grades) is built per example: everyone gets
roles of the trade plus random extra roles in random order, each assigned through the account
service, which must refuse exactly the static conflicts. Then random people do random things to
random loans and views: request (loans and extensions), approve, reject, release, return, revoke,
open views, fetch content fully, partly or not at all, let content URLs and loans run out, sweep,
change quotas, gain roles, give notice. Most acts are refused; whatever happens, after every step:

* on every loan the borrower, its approvers, its releasing custodian and the document's compiler
  hold no two duties (the compiler may borrow their own file, never approve or release it);
* each view under a loan belongs to its borrower, who approved and released none of it;
* for each person and document the views spent (delivered, partial, reserved, delivering) never grow
  past the person's limit, and the quota counter equals them;
* nobody holds roles that conflict.

Grades are set small (two views, one at grade 3, where a custodian releases the loan) so the limits
are reached within a few steps; people may give notice, after which their loans need two approvers.
"""

from __future__ import annotations

import io
import itertools
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from vault import policy
from vault.config.settings import GradeRule
from vault.core.context import AccessContext
from vault.core.errors import ServiceError
from vault.models import (
    OPEN_STATUSES as OPEN,
)
from vault.models import (
    SPENT_STATUSES,
    Customer,
    CustomerCoOwner,
    Document,
    DocumentView,
    Loan,
    LoanDecision,
    LoanStatus,
    QuotaUsage,
    Role,
    RoleAssignment,
    User,
    utcnow,
)
from vault.policy.notice import on_notice
from vault.policy.roles import needs_second_person
from vault.services import accounts, departures, documents, loans, quota, views

# The histories fetch every view's content through its content URL and check the bytes, so the originals may
# leave at every grade here (in production a reading view's content URL secret is never handed out).
GRADES = {
    1: GradeRule(views=2, loan_required=False, approvals=0, release_required=False, download=True,
                 download_original=True, trusted_places_only=False, max_days=None),
    2: GradeRule(views=2, loan_required=True, approvals=1, release_required=False, download=True,
                 download_original=True, trusted_places_only=False, max_days=30),
    3: GradeRule(views=1, loan_required=True, approvals=1, release_required=True, download=False,
                 download_original=True, trusted_places_only=True, max_days=7),
}
CTX = AccessContext(client_addr="10.0.0.9", named_place="Head office", user_agent="property", request_id="prop-0001")
REASON = "Preparing the customer meeting"
PEOPLE = 6
# Everyone has roles of the trade, so every world has borrowers, a compiler, approvers and a custodian,
# and two people whose roles allow two duties on one loan (which the services must keep apart).
BASE: tuple[tuple[Role, ...], ...] = (
    (Role.BORROWER,), (Role.BORROWER, Role.APPROVER), (Role.COMPILER,), (Role.APPROVER,),
    (Role.APPROVER, Role.CUSTODIAN), (Role.CUSTODIAN,))
FORBIDDEN_TOGETHER = [(Role.ADMIN, role) for role in Role if role != Role.ADMIN] + [
    (Role.AUDITOR, Role.APPROVER), (Role.AUDITOR, Role.CUSTODIAN), (Role.AUDITOR, Role.COMPILER)]

_worlds = itertools.count(1)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"grades": GRADES}


person = st.integers(0, PEOPLE - 1)
# An actor: below PEOPLE, that person; above, someone holding the role the act needs (two draws in
# three), so the acts get past the role gate often enough to reach the rules on the loan itself.
actor_pick = st.integers(0, 3 * PEOPLE - 1)
extra_roles = st.lists(st.sampled_from(list(Role)), max_size=3)


def make_machine(rt: Any, totals: Counter[str]) -> type[RuleBasedStateMachine]:
    class LoanWorld(RuleBasedStateMachine):
        documents = Bundle("documents")

        def __init__(self) -> None:
            super().__init__()
            self.people: list[int] = []
            self.docs: list[int] = []
            self.spent: dict[tuple[int, int], int] = {}
            self.urls: list[tuple[str, int]] = []  # content URL secrets handed out, with their owner

        # -- helpers -----------------------------------------------------------------------------

        def user(self, session: Any, index: int) -> User:
            user = session.get(User, self.people[index])
            assert user is not None
            return user

        def actor(self, session: Any, pick: int, role: Role) -> User:
            if pick < PEOPLE:
                return self.user(session, pick)
            holders = [u for u in (self.user(session, i) for i in range(PEOPLE)) if u.has_role(role)]
            return holders[pick % len(holders)] if holders else self.user(session, pick % PEOPLE)

        def attempt(self, label: str, act: Any) -> Any:
            """Do `act(session)` in a unit of work; a refusal is an outcome like any other."""
            try:
                with rt.db.session() as session:
                    result = act(session)
            except policy.Denied as exc:
                totals[f"{label} refused: {exc.decision.code}"] += 1
                event(f"{label}: refused ({exc.decision.code})")
                return None
            except ServiceError as exc:
                totals[f"{label} refused: {exc.code}"] += 1
                event(f"{label}: refused ({exc.code})")
                return None
            totals[label] += 1
            event(f"{label}: done")
            return result

        def assign(self, session: Any, user: User, role: Role, actor: User | None) -> None:
            """Give a role, and check the account service refuses exactly the static conflicts."""
            # On a page, roles still waiting for a second person count towards conflicts too.
            pending = {Role(r.role) for r in accounts.pending_role_requests(session, user)} if actor else set()
            conflict = policy.role_conflict(user.role_set | pending, role)
            expected = "role_conflict" if conflict else None
            if actor is not None and not actor.has_role(Role.ADMIN):
                expected = "not_permitted"
            elif actor is not None and actor.id == user.id:
                expected = "separation_of_duties"
            elif actor is not None and on_notice(actor):  # an administrator on notice gives no role
                expected = "decider_departing"
            try:
                with session.begin_nested():
                    waiting = accounts.assign_role(rt, session, user, role, actor=actor, ctx=CTX)
            except (policy.Denied, ServiceError) as exc:
                code = exc.decision.code if isinstance(exc, policy.Denied) else exc.code
                assert code == expected, (sorted(user.role_set), role, code)
                totals[f"role refused: {code}"] += 1
                return
            assert expected is None, (sorted(user.role_set), role, "was given despite", expected)
            if waiting is not None:
                # A role of power (or any role of a person on notice) from a page waits for a second admin.
                assert actor is not None and needs_second_person(user, role) and role not in user.role_set
                totals["role requested"] += 1
                return
            assert role in user.role_set
            totals["role given"] += 1

        # -- the world ---------------------------------------------------------------------------

        @initialize(target=documents, extras=st.lists(extra_roles, min_size=PEOPLE, max_size=PEOPLE),
                    places=st.lists(st.integers(0, 3), min_size=PEOPLE, max_size=PEOPLE),
                    grades=st.lists(st.sampled_from([1, 2, 3]), min_size=1, max_size=2).map(lambda g: [2, 3, *g]),
                    second_compiler=person,
                    openers=st.lists(st.tuples(person, st.integers(0, 3)), min_size=1, max_size=3))
        def world(self, extras: list[list[Role]], places: list[int], grades: list[int], second_compiler: int,
                  openers: list[tuple[int, int]]) -> Any:
            tag = next(_worlds)
            with rt.db.session() as session:
                for index, (base, more, place) in enumerate(zip(BASE, extras, places, strict=True)):
                    user = accounts.create_user(rt, session, username=f"w{tag}p{index}", password="correct horse 1",
                                                ctx=CTX)
                    self.people.append(user.id)
                    # The role of the trade comes among the extras (an admin or auditor role given first
                    # makes it refused), except for the first compiler, who must upload the files.
                    order = [*more]
                    order[0 if index == 2 else min(place, len(order)):0] = base
                    for role in order:
                        self.assign(session, user, role, None)
                customer = Customer(name=f"World {tag} customer", created_by_id=self.people[2])
                if second_compiler != 2:  # a compiler adds files only to a customer they work: a co-owner here
                    customer.co_owners.append(CustomerCoOwner(user_id=self.people[second_compiler]))
                session.add(customer)
                session.flush()
                compilers = [2, second_compiler]
                for number, grade in enumerate(grades):
                    compiler = self.user(session, compilers[number % 2])
                    if not compiler.has_role(Role.COMPILER):
                        compiler = self.user(session, 2)
                    document = documents.upload_document(
                        rt, session, compiler, customer, title=f"File {number}", grade=grade,
                        stream=io.BytesIO(b"Customer file %d: prices and contacts.\n" % number * 20),
                        filename="file.txt", content_type="text/plain", ctx=CTX)
                    self.docs.append(document.id)
            # A few requests to start from, by whoever holds the borrower role.
            for borrower, document_index in openers:
                self.request(PEOPLE + borrower, self.docs[document_index % len(self.docs)], False, 5, 0)
            return multiple(*self.docs)

        # -- acts (helpers: the rules below choose among them) -----------------------------------

        def pick_loan(self, session: Any, pick: int, *statuses: LoanStatus) -> Loan | None:
            """A loan of this world: mostly one in a state the act applies to, sometimes any at all."""
            query = select(Loan).where(Loan.document_id.in_(self.docs)).order_by(Loan.id)
            found = list(session.scalars(query.where(Loan.status.in_(statuses)) if pick < 75 else query))
            return found[pick % len(found)] if found else None

        def on_loan(self, label: str, actor: int, loan_id: int, role: Role, act: Any) -> None:
            """`act(session, who, loan)` by the actor, on the loan as the actor may see it."""
            def run(session: Any) -> None:
                who = self.actor(session, actor, role)
                act(session, who, loans.get_loan(session, who, loan_id))

            self.attempt(label, run)

        def approve(self, actor: int, loan_id: int) -> None:
            self.on_loan("approve", actor, loan_id, Role.APPROVER,
                         lambda session, who, loan: loans.approve(rt, session, who, loan, comment="", ctx=CTX))

        def reject(self, actor: int, loan_id: int) -> None:
            self.on_loan("reject", actor, loan_id, Role.APPROVER, lambda session, who, loan: loans.reject(
                rt, session, who, loan, comment="Not needed at the moment", ctx=CTX))

        def release(self, actor: int, loan_id: int) -> None:
            self.on_loan("release", actor, loan_id, Role.CUSTODIAN,
                         lambda session, who, loan: loans.release(rt, session, who, loan, ctx=CTX))

        def give_back(self, actor: int, loan_id: int) -> None:
            self.on_loan("return", actor, loan_id, Role.BORROWER,
                         lambda session, who, loan: loans.return_loan(rt, session, who, loan, ctx=CTX))

        def revoke(self, actor: int, loan_id: int, role: Role) -> None:
            self.on_loan("revoke", actor, loan_id, role, lambda session, who, loan: loans.revoke(
                rt, session, who, loan, reason="The customer visit was cancelled", ctx=CTX))

        def open_view(self, actor: int, document: int) -> bool:
            def act(session: Any) -> bool:
                reader = self.actor(session, actor, Role.BORROWER)
                opened = views.open_view(rt, session, reader, session.get(Document, document),
                                         reason=REASON, place="Head office", download=False, ctx=CTX)
                self.urls.append((opened.secret, reader.id))
                return True

            return bool(self.attempt("view", act))

        def request(self, actor: int, document: int, extension: bool, days: int, extra: int) -> None:
            def act(session: Any) -> None:
                loans.request_loan(
                    rt, session, self.actor(session, actor, Role.BORROWER), session.get(Document, document),
                    reason=REASON, category="visit_preparation", place="Head office", days=days, ctx=CTX,
                    kind="extension" if extension else "loan", extra_views=extra if extension else 0)

            self.attempt("extension" if extension else "request", act)

        # -- rules -------------------------------------------------------------------------------

        @rule(actor=actor_pick, document=documents, extension=st.sampled_from([False, False, True]),
              days=st.integers(1, 8), extra=st.integers(1, 2))
        def ask(self, actor: int, document: int, extension: bool, days: int, extra: int) -> None:
            self.request(actor, document, extension, days, extra)

        @rule(steps=st.lists(st.tuples(actor_pick, st.integers(0, 99), st.integers(0, 9)), min_size=1, max_size=4))
        def advance(self, steps: list[tuple[int, int, int]]) -> None:
            """Someone takes the natural next step on an open loan (approve it, release it, read under
            it, return or revoke it); whether that someone may is for the services to decide."""
            for actor, pick, choice in steps:
                with rt.db.session() as session:
                    loan = self.pick_loan(session, pick % 75, *OPEN)
                    if loan is None:
                        totals["advance: no open loan"] += 1
                        continue
                    status, borrower, document = loan.status, self.people.index(loan.borrower_id), loan.document_id
                    compiler = self.people.index(session.get(Document, document).compiler_id)
                    approver = self.people.index(loan.approver_ids.pop()) if loan.approver_ids else actor
                if status == LoanStatus.REQUESTED:
                    # Sometimes the borrower or the file's compiler is the one who tries to decide.
                    decider = {1: borrower, 2: compiler}.get(choice, actor)
                    (self.reject if choice == 0 else self.approve)(decider, loan.id)
                elif status == LoanStatus.APPROVED:
                    # Sometimes the borrower or an approver of the loan is the one who tries to release it.
                    releaser = {1: borrower, 2: approver}.get(choice, actor)
                    self.release(releaser, loan.id)
                elif choice < 7:
                    # Mostly the borrower reads under their loan, then fetches the content; sometimes
                    # someone else tries to.
                    if self.open_view(borrower if choice < 6 else actor % PEOPLE, document):
                        self.fetch(0, None, ("whole", "whole", "whole", "part", "nothing", "whole", "whole")[choice])
                elif choice < 9:
                    self.revoke(actor, loan.id, Role.CUSTODIAN if choice == 7 else Role.APPROVER)
                else:
                    self.give_back(borrower, loan.id)

        @rule(pick=st.integers(0, 99), actor=st.one_of(st.none(), st.none(), person),
              how=st.sampled_from(["whole", "part", "nothing"]))
        def fetch(self, pick: int, actor: int | None, how: str) -> None:
            """A content URL is fetched (mostly by its owner), to the end, partly, or not at all."""
            if not self.urls:
                return
            secret, owner = self.urls[-1 - pick % len(self.urls)]  # the newest most often
            try:
                with rt.db.session() as session:
                    who = session.get(User, owner) if actor is None else self.user(session, actor)
                    claim = views.claim_delivery(rt, session, who, secret, CTX)
                delivery = views.open_delivery(rt, claim)
            except (policy.Denied, ServiceError) as exc:
                code = exc.decision.code if isinstance(exc, policy.Denied) else exc.code
                totals[f"fetch refused: {code}"] += 1
                event(f"fetch: refused ({code})")
                return
            chunks = delivery.chunks()
            if how == "whole":
                assert b"".join(chunks).startswith(b"Customer file")
            elif how == "part":
                assert next(chunks)
                chunks.close()
            else:
                chunks.close()
            totals[f"fetch {how}"] += 1
            event(f"fetch: {how}")

        @rule(kind=st.sampled_from(["act on any loan", "read any file", "url runs out", "loan runs out", "sweep",
                                    "quota", "role", "notice"]),
              actor=actor_pick, pick=st.integers(0, 99), choice=st.integers(0, 9), document=documents,
              role=st.sampled_from(list(Role)), views_=st.one_of(st.none(), st.integers(0, 3)))
        def disorder(self, kind: str, actor: int, pick: int, choice: int, document: int, role: Role,
                     views_: int | None) -> None:
            """Anything else: any act on any loan by anyone, reading any file, time passing, a quota
            changed, a role given, notice given."""
            if kind == "act on any loan":
                with rt.db.session() as session:
                    loan = self.pick_loan(session, 99)
                if loan is not None:
                    acts = [self.approve, self.reject, self.release, self.give_back,
                            lambda a, i: self.revoke(a, i, Role.CUSTODIAN),
                            lambda a, i: self.revoke(a, i, Role.APPROVER)]
                    acts[choice % len(acts)](actor, loan.id)
            elif kind == "read any file":
                self.open_view(actor, document)
            elif kind == "url runs out" and self.urls:
                with rt.db.session() as session:
                    view = session.scalar(select(DocumentView).where(
                        DocumentView.token_hash == views.hash_secret(self.urls[pick % len(self.urls)][0])))
                    view.expires_at = utcnow() - timedelta(seconds=1)
            elif kind == "loan runs out":
                with rt.db.session() as session:
                    loan = self.pick_loan(session, pick, LoanStatus.ACTIVE)
                    if loan is not None and loan.status == LoanStatus.ACTIVE:
                        loan.due_at = utcnow() - timedelta(seconds=1)
                        totals["loan ran out"] += 1
            elif kind == "sweep":
                with rt.db.session() as session:
                    loans.sweep(rt, session)
            elif kind == "quota":
                # One person's quota (everyone's is an approver's call, refused to a custodian).
                self.attempt("quota", lambda session: loans.set_quota_override(
                    rt, session, self.actor(session, actor, Role.CUSTODIAN), session.get(Document, document),
                    views_, person=self.user(session, pick % PEOPLE), ctx=CTX))
            elif kind == "role":
                with rt.db.session() as session:
                    self.assign(session, self.user(session, pick % PEOPLE), role,
                                None if choice == 0 else self.user(session, actor % PEOPLE))
            elif kind == "notice":
                # From now on the person's requests need one approver more, two at least.
                self.attempt("notice", lambda session: departures.start_departure(
                    rt, session, None, self.user(session, actor % PEOPLE),
                    last_day=utcnow().date() + timedelta(days=30), successor=None, ctx=CTX))

        # -- invariants --------------------------------------------------------------------------

        @invariant()
        def world_is_sound(self) -> None:
            if not self.docs:
                return
            with rt.db.session() as session:
                self.no_two_duties_on_one_loan(session)
                self.views_within_quota(session)
                self.no_conflicting_roles(session)

        def no_two_duties_on_one_loan(self, session: Any) -> None:
            compilers = {doc_id: compiler_id for doc_id, compiler_id in session.execute(
                select(Document.id, Document.compiler_id).where(Document.id.in_(self.docs)))}
            world_loans = list(session.scalars(select(Loan).where(Loan.document_id.in_(self.docs))))
            decided: dict[int, list[tuple[int, str]]] = {loan.id: [] for loan in world_loans}
            for loan_id, approver_id, decision in session.execute(
                    select(LoanDecision.loan_id, LoanDecision.approver_id, LoanDecision.decision)
                    .where(LoanDecision.loan_id.in_(decided))):
                decided[loan_id].append((approver_id, decision))
            readers: dict[int, set[int]] = {loan.id: set() for loan in world_loans}
            for loan_id, user_id in session.execute(
                    select(DocumentView.loan_id, DocumentView.user_id).where(DocumentView.loan_id.in_(readers))):
                readers[loan_id].add(user_id)
            for loan in world_loans:
                deciders = [person for person, _ in decided[loan.id]]
                approvers = [person for person, decision in decided[loan.id] if decision == "approve"]
                compiler = compilers[loan.document_id]
                duties = (f"loan {loan.id} ({loan.status}): borrower {loan.borrower_id}, deciders {decided[loan.id]}, "
                          f"releaser {loan.released_by_id}, compiler {compiler}")
                assert len(set(deciders)) == len(deciders), duties
                assert loan.borrower_id not in deciders, duties
                assert compiler not in deciders, duties
                if loan.released_by_id is not None:
                    assert loan.released_by_id not in {loan.borrower_id, compiler, *approvers}, duties
                if loan.status == LoanStatus.REVOKED and loan.closed_by_id is not None:
                    assert loan.closed_by_id != loan.borrower_id, duties
                if loan.approved_at is not None:
                    assert len(approvers) >= loan.approvals_required, duties
                if loan.status == LoanStatus.ACTIVE and loan.release_required:
                    assert loan.released_by_id is not None, duties
                # Views under a loan are its borrower's, who approved and released none of it.
                assert readers[loan.id] <= {loan.borrower_id}, (duties, readers[loan.id])
                assert not readers[loan.id] & {*approvers, loan.released_by_id}, duties

        def views_within_quota(self, session: Any) -> None:
            spent = {(user, doc): n for user, doc, n in session.execute(
                select(DocumentView.user_id, DocumentView.document_id, func.count())
                .where(DocumentView.document_id.in_(self.docs), DocumentView.status.in_(SPENT_STATUSES))
                .group_by(DocumentView.user_id, DocumentView.document_id))}
            counters = {(user, doc): n for user, doc, n in session.execute(
                select(QuotaUsage.user_id, QuotaUsage.document_id, QuotaUsage.used)
                .where(QuotaUsage.document_id.in_(self.docs)))}
            for key in set(spent) | set(counters):
                assert counters.get(key, 0) == spent.get(key, 0), (key, counters.get(key), spent.get(key))
            for (user_id, doc_id), count in spent.items():
                # A custodian may lower a quota (or an extension be revoked) below what was already
                # spent: spent units stay spent, but none may be added above the limit.
                if count > self.spent.get((user_id, doc_id), 0):
                    limit = quota.limit_for(rt.settings, session, user_id, session.get(Document, doc_id))
                    assert count <= limit, ((user_id, doc_id), count, limit)
                    totals["views checked against the limit"] += 1
                self.spent[(user_id, doc_id)] = count

        def no_conflicting_roles(self, session: Any) -> None:
            held: dict[int, set[Role]] = {user_id: set() for user_id in self.people}
            for user_id, role in session.execute(select(RoleAssignment.user_id, RoleAssignment.role)
                                                 .where(RoleAssignment.user_id.in_(self.people))):
                held[user_id].add(Role(role))
            for user_id, roles in held.items():
                for one, other in FORBIDDEN_TOGETHER:
                    assert not {one, other} <= roles, (user_id, sorted(roles))

    return LoanWorld


@pytest.mark.slow
def test_random_histories_keep_duties_apart_and_views_within_quota(rt: Any) -> None:
    totals: Counter[str] = Counter()
    run_state_machine_as_test(make_machine(rt, totals), settings=settings(
        max_examples=20, stateful_step_count=60, deadline=None, database=None, derandomize=True,
        # A failing history is reported as it happened: shrinking one that runs on a database takes minutes.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
    # The run was not vacuous: every kind of act happened, quotas ran out, and attempts at a second
    # duty on one loan, and at conflicting roles, were made and refused.
    for label in ("request", "approve", "release", "return", "revoke", "view", "fetch whole", "notice",
                  "view refused: quota_exhausted", "views checked against the limit", "role given",
                  "role refused: role_conflict"):
        assert totals[label] > 0, (label, sorted(totals.items()))
    assert totals["approve refused: separation_of_duties"] + totals["release refused: separation_of_duties"] > 0
