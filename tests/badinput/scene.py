"""A company built through the real services, every free text in it carrying markup.

The scene is what the attacks are tried against: customers, documents (encrypted into the runtime's
object store), loans in every state, an opened view whose content URL is still unused, a departure
with its handover and alerts. Every text a person can type (names, titles, file names, reasons,
comments, places, notes) carries a script tag or an attribute-breaking payload, so the same scene
serves the escaping checks, and a distinctive word in each serves the "no data leaked" checks.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from markupsafe import escape
from sqlalchemy import func, select, true, update

from tests.support.factories import reach_main_contact
from vault.alerts import desk
from vault.alerts.raising import Finding, raise_alert
from vault.core.context import AccessContext
from vault.models import (
    Alert,
    ApiToken,
    AuditEvent,
    Customer,
    CustomerLetter,
    Departure,
    Document,
    DocumentVersion,
    DocumentView,
    HandoverItem,
    Loan,
    LoanDecision,
    QuotaUsage,
    Role,
    RoleAssignment,
    RotationProposal,
    Segment,
    Severity,
    User,
    utcnow,
)
from vault.runtime import Runtime
from vault.services import accounts, agreement, customers, departures, documents, letters, loans, viewer, views
from vault.services.departures import today

XSS = "<script>alert(1)</script>"
ATTR = '"><img src=x onerror=alert(1)>'
# Markup that must never reach a page as markup.
RAW_PAYLOADS = (XSS, "<img src=x onerror=alert(1)>", "<svg onload=alert(1)>")

# People: who holds which roles. Display names carry markup and a word found nowhere else.
CAST: dict[str, tuple[Role, ...]] = {
    "carl": (Role.COMPILER,),
    "cam": (Role.COMPILER,),  # another compiler: may not add versions to carl's files
    "bob": (Role.BORROWER,),
    "eve": (Role.BORROWER,),  # the colleague who tries other people's ids
    "sam": (Role.BORROWER, Role.COMPILER),  # gives notice
    "sue": (Role.BORROWER,),  # sam's successor
    "ann": (Role.APPROVER,),
    "abe": (Role.APPROVER,),
    "kim": (Role.CUSTODIAN,),
    "aud": (Role.AUDITOR,),
    "aux": (Role.AUDITOR,),  # an auditor on notice: may not read their own departure report
    "adm": (Role.ADMIN,),
}

CTX = AccessContext(client_addr="10.0.0.7", named_place="Head office", user_agent="badinput",
                    request_id="badinput-scene-01")


def display_name(username: str) -> str:
    return f"{username.title()} Doe{username} {XSS}"


def person_word(username: str) -> str:
    """A word that appears only where that person's display name is shown."""
    return f"Doe{username}"


@dataclass(frozen=True)
class Texts:
    """The free texts of the scene; `word` is a distinctive part of each, for leak checks."""

    customer: str = f"Acme Quokka {XSS}{ATTR}"
    title: str = f"Plan Narwhal {XSS}"
    title3: str = f"Strategy Axolotl {XSS}"
    title1: str = f"Handbook Pangolin {XSS}"
    title_revoked: str = f"Prices Okapi {XSS}"
    filename: str = "<img src=x onerror=alert(1)>.txt"
    reason: str = f"Visit preparation Wombat {XSS}"
    sam_reason: str = f"Renewal talks Ibex {XSS}"
    place: str = f"Office Lynx {XSS}"
    comment: str = f"Approved Tapir {XSS}"
    revoke: str = f"Customer cancelled Gecko {XSS}"
    view_reason: str = f"Reading before the call Marmot {XSS}"
    sam_view_reason: str = f"Checking prices Dingo {XSS}"
    departure_note: str = f"Leaves for a rival Walrus {XSS}"
    contact_note: str = f"Spoke with the buyer Heron {XSS}"
    alert_summary: str = f"Refused attempts Jackal {XSS}"
    resolution: str = f"Checked with the manager Bison {XSS}"
    open_alert_summary: str = f"Evening access Koala {XSS}"
    rotated: str = f"Rotated Puffin {XSS}"  # a customer proposed for rotation
    rotated_done: str = f"Rotated Lemur {XSS}"  # a customer already rotated, its contact to confirm
    content: bytes = b"SECRET-CONTENT Manatee: prices 4711, margins 12%.\n"


TEXTS = Texts()


def escaped(text: str) -> str:
    return str(escape(text))


@dataclass
class Scene:
    rt: Runtime
    ids: dict[str, int] = field(default_factory=dict)  # username -> user id
    customer: int = 0
    plain_customers: dict[str, int] = field(default_factory=dict)
    doc2: int = 0  # grade 2: bob's active loan, sam's request
    doc3: int = 0  # grade 3: bob's loan approved, waiting for release
    doc1: int = 0  # grade 1: read without a loan
    doc_revoked: int = 0
    loan_active: int = 0
    loan_release: int = 0
    loan_requested: int = 0
    loan_revoked: int = 0
    view_secret: str = ""  # bob's opened, unused download of doc2
    view_id: int = 0
    reading_view: int = 0  # bob's open viewer of doc1
    page_token: str = ""  # its page URL token
    departure: int = 0  # sam's
    departure_aux: int = 0
    item: int = 0  # sam's customer, handed to sue
    letter: int = 0  # the letter telling that customer about sue (open link)
    letter_link: str = ""  # its link
    alert_notice: int = 0  # about sam
    alert_ann: int = 0  # about ann, resolved by aud
    alert_ann_open: int = 0  # about ann, open
    rotation_open: int = 0  # carl's customer proposed to cam, for an approver to decide
    rotation_task: int = 0  # a customer rotated from carl to cam, cam's contact to confirm
    tokens: dict[str, str] = field(default_factory=dict)

    def user(self, session: Any, name: str) -> User:
        user = session.get(User, self.ids[name])
        assert user is not None
        return user

    def token(self, name: str) -> str:
        """A bearer token of the person, who has accepted the agreement (the API's condition)."""
        if name not in self.tokens:
            with self.rt.db.session() as session:
                user = self.user(session, name)
                agreement.accept(self.rt, session, user, AccessContext.cli())
                self.tokens[name] = accounts.create_token(self.rt, session, user).secret
        return self.tokens[name]


# Customers whose names test that search characters are taken literally.
PLAIN_CUSTOMERS = ("100% Pure Water", "snake_case Ltd", "O'Brien & Sons", "Back\\slash Corp",
                   "Zürich Straße AG", "Plain Company")


def build(rt: Runtime, users: Any) -> Scene:
    """Build the whole scene (a few hundred milliseconds); see the module docstring."""
    scene = Scene(rt)
    for name, roles in CAST.items():
        scene.ids[name] = users.make(name, *roles).id
    with rt.db.session() as session:
        for name, user_id in scene.ids.items():
            session.execute(update(User).where(User.id == user_id).values(display_name=display_name(name)))
    t = TEXTS
    with rt.db.session() as session:
        carl, sam = scene.user(session, "carl"), scene.user(session, "sam")
        scene.customer = customers.create_customer(rt, session, carl, name=t.customer, segment=Segment.VIP,
                                                   owner=sam, notes=f"Notes Capybara {XSS}", ctx=CTX).id
        for name in PLAIN_CUSTOMERS:
            scene.plain_customers[name] = customers.create_customer(
                rt, session, carl, name=name, segment=Segment.ORDINARY, ctx=CTX).id
    scene.doc2 = _upload(rt, scene, t.title, 2, t.filename)
    scene.doc3 = _upload(rt, scene, t.title3, 3, "strategy.txt")
    scene.doc1 = _upload(rt, scene, t.title1, 1, "handbook.txt")
    scene.doc_revoked = _upload(rt, scene, t.title_revoked, 2, "prices.txt")

    scene.loan_active = _request(rt, scene, "bob", scene.doc2, t.reason)
    _decide(rt, scene, "ann", scene.loan_active, "approve", comment=t.comment)
    scene.loan_release = _request(rt, scene, "bob", scene.doc3, t.reason)
    _decide(rt, scene, "ann", scene.loan_release, "approve", comment=t.comment)
    scene.loan_requested = _request(rt, scene, "sam", scene.doc2, t.sam_reason)
    scene.loan_revoked = _request(rt, scene, "bob", scene.doc_revoked, t.reason)
    _decide(rt, scene, "ann", scene.loan_revoked, "approve", comment=t.comment)
    _decide(rt, scene, "kim", scene.loan_revoked, "revoke", reason=t.revoke)

    with rt.db.session() as session:
        bob, sam = scene.user(session, "bob"), scene.user(session, "sam")
        opened = views.open_view(rt, session, bob, session.get(Document, scene.doc2), reason=t.view_reason,
                                 place=t.place, download=True, ctx=CTX)
        scene.view_secret, scene.view_id = opened.secret, opened.view.id
        reading = views.open_view(rt, session, bob, session.get(Document, scene.doc1), reason=t.view_reason,
                                  place=t.place, download=False, ctx=CTX).view
        viewer.start_window(rt, session, bob, reading, CTX)
        scene.reading_view, scene.page_token = reading.id, viewer.page_token(rt, reading)
        views.open_view(rt, session, sam, session.get(Document, scene.doc1), reason=t.sam_view_reason,
                        place=t.place, download=False, ctx=CTX)

    with rt.db.session() as session:
        adm, sam, sue, aux = (scene.user(session, n) for n in ("adm", "sam", "sue", "aux"))
        last_day = today(rt.settings) + timedelta(days=14)
        scene.departure = departures.start_departure(rt, session, adm, sam, last_day=last_day, successor=sue,
                                                     note=t.departure_note, ctx=CTX).id
        scene.departure_aux = departures.start_departure(rt, session, adm, aux, last_day=last_day, successor=None,
                                                         note=t.departure_note, ctx=CTX).id
    reach_main_contact(rt, scene.customer, "sue")
    with rt.db.session() as session:
        item = session.scalar(select(HandoverItem).where(HandoverItem.departure_id == scene.departure))
        assert item is not None
        scene.item = item.id
        departures.confirm_contact(rt, session, scene.user(session, "sue"), item, contact_date=today(rt.settings),
                                   note=t.contact_note, ctx=CTX)
        scene.alert_notice = session.scalar(select(Alert.id).where(Alert.user_id == scene.ids["sam"]))
        scene.alert_ann = raise_alert(rt, session, scene.user(session, "ann"), Finding(
            "new_place", Severity.LOW, "badinput-window", t.alert_summary,
            {"codes": [f"code {XSS}"], "places": [t.place]}))
        scene.alert_ann_open = raise_alert(rt, session, scene.user(session, "ann"), Finding(
            "outside_hours", Severity.MEDIUM, "badinput-window", t.open_alert_summary, {"places": [t.place]}))
    with rt.db.session() as session:
        desk.resolve(rt, session, scene.user(session, "aud"), session.get(Alert, scene.alert_ann),
                     note=t.resolution, ctx=CTX)
    _rotation(rt, scene)
    with rt.db.session() as session:
        # The letter that told the customer about sue (its main contact has no address in the scene, so none
        # was sent at the handover): an open link, for the walks of the link page and of revoking.
        scene.letter_link = letters.new_link(rt.settings.secret_key)
        now = utcnow()
        letter = CustomerLetter(customer_id=scene.customer, handover_item_id=scene.item, cause="handover",
                                previous_owner_id=scene.ids["sam"], new_owner_id=scene.ids["sue"],
                                change_key="badinput-scene", contact_index=0, contact_label="M••• C•••",
                                language="en", token_hash=letters.link_hash(scene.letter_link), created_at=now,
                                expires_at=now + timedelta(days=30))
        session.add(letter)
        session.flush()
        scene.letter = letter.id
    return scene


def _rotation(rt: Runtime, scene: Scene) -> None:
    """Two rotation proposals written straight to the database (the plan's rules are tested on their own
    scenes): one open, from carl to cam; one approved, cam's contact still to confirm."""
    with rt.db.session() as session:
        carl, cam = scene.ids["carl"], scene.ids["cam"]
        proposed = Customer(name=TEXTS.rotated, segment=Segment.KEY, owner_id=carl, created_by_id=carl)
        rotated = Customer(name=TEXTS.rotated_done, segment=Segment.KEY, owner_id=cam, created_by_id=carl)
        session.add_all([proposed, rotated])
        session.flush()
        open_one = RotationProposal(customer_id=proposed.id, segment="key", from_user_id=carl, proposed_user_id=cam,
                                    to_user_id=cam)
        done = RotationProposal(customer_id=rotated.id, segment="key", from_user_id=carl, proposed_user_id=cam,
                                to_user_id=cam, status="approved", decided_at=utcnow(),
                                decided_by_id=scene.ids["ann"])
        session.add_all([open_one, done])
        session.flush()
        scene.rotation_open, scene.rotation_task = open_one.id, done.id


def _upload(rt: Runtime, scene: Scene, title: str, grade: int, filename: str) -> int:
    with rt.db.session() as session:
        carl = scene.user(session, "carl")
        document = documents.upload_document(
            rt, session, carl, session.get(Customer, scene.customer), title=title, grade=grade,
            stream=io.BytesIO(TEXTS.content), filename=filename, content_type="text/plain", ctx=CTX,
            custodian=scene.user(session, "kim"))
        return document.id


def _request(rt: Runtime, scene: Scene, who: str, document_id: int, reason: str) -> int:
    with rt.db.session() as session:
        return loans.request_loan(rt, session, scene.user(session, who), session.get(Document, document_id),
                                  reason=reason, category="visit_preparation", place=TEXTS.place, days=5,
                                  ctx=CTX).id


def _decide(rt: Runtime, scene: Scene, who: str, loan_id: int, verb: str, **kwargs: Any) -> None:
    with rt.db.session() as session:
        actor = scene.user(session, who)
        getattr(loans, verb)(rt, session, actor, loans.get_loan(session, actor, loan_id), ctx=CTX, **kwargs)


# -- the state an attack must not change ----------------------------------------------------------------


def snapshot(rt: Runtime) -> dict[str, Any]:
    """Every row an act could change, and the stored objects.

    A person's successful act always leaves an "allowed" audit record naming them, so the count of
    those is part of the state; refusals leave "denied" records, which are not. Neither are alerts the
    early warning raises about a run of refusals (a probe is supposed to be noticed): only the alerts
    that existed before are compared.
    """
    with rt.db.session() as session:
        def rows(*columns: Any, where: Any = None) -> list[tuple[Any, ...]]:
            query = select(*columns).where(true() if where is None else where).order_by(*columns[:1])
            return [tuple(row) for row in session.execute(query).all()]

        state = {
            "users": rows(User.id, User.display_name, User.status, User.disabled, User.session_epoch,
                          User.password_hash, User.last_day),
            "roles": rows(RoleAssignment.id, RoleAssignment.user_id, RoleAssignment.role),
            "tokens": rows(ApiToken.id, ApiToken.revoked_at),
            "customers": rows(Customer.id, Customer.name, Customer.owner_id, Customer.segment),
            "documents": rows(Document.id, Document.title, Document.grade, Document.view_quota,
                              Document.custodian_id),
            "versions": rows(DocumentVersion.id, DocumentVersion.object_key),
            "loans": rows(Loan.id, Loan.status, Loan.released_by_id, Loan.closed_by_id, Loan.due_at,
                          Loan.approved_at),
            "decisions": rows(LoanDecision.id, LoanDecision.decision),
            "views": rows(DocumentView.id, DocumentView.status, DocumentView.bytes_sent),
            "quota": rows(QuotaUsage.user_id, QuotaUsage.document_id, QuotaUsage.used),
            "departures": rows(Departure.id, Departure.status, Departure.successor_id, Departure.note),
            "items": rows(HandoverItem.id, HandoverItem.to_user_id, HandoverItem.confirmed_at,
                          HandoverItem.waived_at),
            "rotations": rows(RotationProposal.id, RotationProposal.status, RotationProposal.to_user_id,
                              RotationProposal.confirmed_at),
            "alerts": rows(Alert.id, Alert.status, Alert.acknowledged_at, Alert.resolved_at,
                           where=Alert.rule != "probing"),
            "acts": session.scalar(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.outcome == "allowed", AuditEvent.actor_id.is_not(None))),
        }
    state["objects"] = sorted((info.key, info.size) for info in rt.store.list("documents/"))
    return state


def changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """What differs between two snapshots, table by table (empty when nothing changed)."""
    return {key: (before[key], after[key]) for key in before if before[key] != after[key]}
