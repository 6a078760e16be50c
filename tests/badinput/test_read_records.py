"""Every GET route, called by someone allowed to read it: what it shows of a customer is recorded.

The other walks of the URL map try refusals (`test_idor.py`: other people's ids; `test_state_changes.py`:
acts without their permission). This one is the other half of the promise that every read of customer
data writes an audit record in the read's transaction: each GET route (pages and API) is called with the
scene's real ids by a person who may read it, must answer as documented, and when its body shows any
customer's distinctive words (a name, a file's title or bytes, a contact-log note...) at least one record
written during that request must name that customer (itself, or a file, loan or view of it) with a read's
action, allowed. Routes that show no customer's data say why, and are called too: a body that shows a
customer after all fails the walk, so a route cannot be filed there by mistake.

The test fails when a new GET route has no entry, as the other walks do.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from tests.badinput.scene import CTX, PLAIN_CUSTOMERS, TEXTS, Scene
from tests.conftest import login
from vault.core.audit_actions import AuditAction
from vault.models import AuditEvent, Customer, Document, DocumentView, Loan, Role, RotationProposal, Segment
from vault.services import customers, departures, documents, loans, views
from vault.services.departures import today

# What a customer's data is recognised by in a body: its name, and for the scene's customer the titles of its
# files, their bytes and the note of its handover (each word appears nowhere else in the scene).
ACME = ("Quokka", "Capybara", "Narwhal", "Axolotl", "Pangolin", "Okapi", "Manatee", "Heron")
PLAIN_WORDS = {"100% Pure Water": "Pure Water", "snake_case Ltd": "snake_case Ltd", "O'Brien & Sons": "Brien",
               "Back\\slash Corp": "slash Corp", "Zürich Straße AG": "Zürich", "Plain Company": "Plain Company"}
TERN = "Tern Key Holdings"  # a key customer of a leaver, its handover not yet confirmed: what an approver waives
ROTATED_OPEN, ROTATED_DONE = TEXTS.rotated.split()[1], TEXTS.rotated_done.split()[1]  # Puffin, Lemur

# The actions a read is recorded under. A record of any other action (a sign-in, a refusal) does not count.
READS = frozenset({
    AuditAction.ALERT_READ, AuditAction.CONTENT_DELIVERED, AuditAction.CUSTOMER_HISTORY,
    AuditAction.CUSTOMER_LIST, AuditAction.CUSTOMER_LOOKUP, AuditAction.CUSTOMER_READ, AuditAction.CUSTOMER_SEARCH,
    AuditAction.CUSTOMER_VERSION_READ, AuditAction.DEPARTURE_REPORT, AuditAction.DOCUMENT_DOWNLOAD,
    AuditAction.DOCUMENT_READ, AuditAction.DOCUMENT_VIEW, AuditAction.LOAN_QUEUE, AuditAction.LOAN_READ,
    AuditAction.POOL_READ, AuditAction.VIEW_PAGE,
})


@dataclass(frozen=True)
class Read:
    """One call of a GET route.

    `who` is a person of the scene, or "anon" (a browser not signed in). `shows` names the customers the
    answer must show (by the keys of `_customers`): the walk would prove nothing if the read showed nobody.
    `binary` marks an answer whose customer data cannot be found by its words (a stamped PDF, a page image):
    the customers of `shows` are then taken as shown. `none` says why the route shows no customer's data:
    its body must then show none.
    """

    who: str
    values: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    shows: tuple[str, ...] = ()
    binary: bool = False
    none: str = ""
    opened: int = 0  # a view's id: the page is that view, whose opening was recorded (`document:view`)
    own: str = ""  # why what it shows is the person's own and documented as not recorded
    # The audit log itself: what an auditor reads there is recorded as this action, with the filters and how
    # many records were shown (README, "JSON API"), not customer by customer.
    ledger: str = ""


def reads(scene: Scene, secrets: dict[str, str], extra: dict[str, int]) -> dict[str, list[Read]]:
    """How each GET route is read, by whom, and what it shows (see `Read`)."""
    s = scene
    acme = {"customer_id": s.customer}
    loan = {"loan_id": s.loan_active}
    departure = {"departure_id": s.departure}
    own = "one's own account: no customer's data"
    admin = "account administration: people, roles and managers, no customer's data"
    public = "public, before any sign-in: no customer's data"
    return {
        # -- one's own account, sign-in, public pages --------------------------------------------------
        "account.index": [Read("bob", none=own)],
        "account.second_factor": [Read("bob", none=own)],
        "api.me": [Read("bob", none=own)],
        "api.my_tokens": [Read("bob", none=own)],
        "api.agreement_text": [Read("bob", none="the confidentiality agreement's text")],
        "api.openapi_document": [Read("bob", none="the API described: no data at all")],
        "auth.agreement": [Read("bob", none="the confidentiality agreement's text")],
        "auth.login": [Read("anon", none=public)],
        "auth.second_factor": [Read("anon", status=302, none=public + " (no password given yet: back to sign-in)")],
        "auth.set_password": [Read("anon", {"secret": "not-a-real-link"}, status=404, none=public)],
        "home.healthz": [Read("anon", none="the health check: no data at all")],
        "static": [Read("anon", {"filename": "css/vault.css"}, none="the style sheet")],
        # The letter's link page names only the company and the new account manager, never the customer.
        "letters.confirm": [Read("anon", {"link": s.letter_link}, none=public + "; names the company and manager")],
        # -- administration ----------------------------------------------------------------------------
        "admin.users": [Read("adm", none=admin)],
        "admin.user": [Read("adm", {"user_id": s.ids["sam"]}, none=admin)],
        "admin.role_requests": [Read("adm", none=admin)],
        "api.list_users": [Read("adm", none=admin)],
        "api.show_user": [Read("adm", {"username": "sam"}, none=admin)],
        "api.list_role_requests": [Read("adm", none=admin)],
        "api.list_manager_requests": [Read("adm", none=admin)],
        "api.list_quota_overrides": [Read("kim", none="the overrides set: people and numbers of views")],
        "customers.new": [Read("carl", none="an empty form")],
        "documents.new": [Read("carl", shows=tuple(PLAIN_CUSTOMERS))],
        "departures.new": [Read("adm", none="an empty form of people")],
        "audit.trace": [Read("aud", none="an empty form")],
        "api_audit.verify": [Read("aud", none="the chains' verification: numbers and hashes")],
        "audit.manifest": [Read("aud", {"event_seq": secrets["manifest"]}, none="an export's signed digest")],
        "api_audit.manifest": [Read("aud", {"event_seq": secrets["manifest"]}, none="an export's signed digest")],
        # -- the audit log -----------------------------------------------------------------------------
        "audit.index": [Read("aud", shows=("acme",), ledger=AuditAction.AUDIT_READ)],
        "audit.trail": [Read("aud", {"kind": "customer", "ident": s.customer}, shows=("acme",),
                             ledger=AuditAction.AUDIT_READ)],
        "api_audit.events": [Read("aud", shows=("acme",), ledger=AuditAction.AUDIT_READ)],
        "api_audit.export": [Read("aud", shows=("acme",), ledger=AuditAction.AUDIT_EXPORT)],
        # -- customers ---------------------------------------------------------------------------------
        "customers.index": [Read("sue", shows=("acme",)), Read("carl", shows=tuple(PLAIN_CUSTOMERS))],
        "api.list_customers": [Read("sue", shows=("acme",)), Read("carl", shows=tuple(PLAIN_CUSTOMERS))],
        "customers.show": [Read("sue", acme, shows=("acme",))],
        "api.show_customer": [Read("sue", acme, shows=("acme",))],
        "customers.lookup": [Read("eve", query={"q": "quokka"}, shows=("acme",))],
        "api.lookup_customer": [Read("eve", query={"q": "quokka"}, shows=("acme",))],
        "records.history": [Read("sue", acme, shows=("acme",))],
        # The record's JSON is masked until revealed: what it still shows of a customer is checked.
        "api.history": [Read("sue", acme)],
        "records.version": [Read("sue", {**acme, "number": 1}, shows=("acme",))],
        "api.old_version": [Read("sue", {**acme, "number": 1})],
        "search.index": [Read("bob", query={"q": "narwh"}, shows=("acme",))],
        "api.search": [Read("bob", query={"q": "narwh"}, shows=("acme",))],
        "pool.index": [Read("ann", none="the pool is empty in the scene (its record: tests/api/test_pool.py)")],
        "api.list_pool": [Read("ann", none="the pool is empty in the scene (its record: tests/api/test_pool.py)")],
        # -- files, loans, views -----------------------------------------------------------------------
        "documents.show": [Read("bob", {"document_id": s.doc2}, shows=("acme",))],
        "api.show_document": [Read("bob", {"document_id": s.doc2}, shows=("acme",))],
        "loans.reading": [Read("bob", {"document_id": s.doc1}, shows=("acme",))],
        "loans.request_loan": [Read("bob", {"document_id": s.doc3}, shows=("acme",))],
        "loans.request_extension": [Read("bob", {"document_id": s.doc2}, shows=("acme",))],
        "loans.mine": [Read("bob", shows=("acme",), own="the borrower's own loans: each was recorded when asked for "
                                                          "(`loan:request`), and README says their reads are not")],
        "loans.show": [Read("ann", loan, shows=("acme",))],
        # A loan's JSON names its file by id only: whatever else of a customer it shows is still checked.
        "api.show_loan": [Read("ann", loan)],
        "api.show_loan_context": [Read("ann", loan)],
        "api.list_loans": [Read("bob", query={"mine": 1}), Read("ann", query={"queue": "approvals"}),
                           Read("kim", query={"queue": "custody"})],
        "loans.approvals": [Read("ann", shows=("acme",))],
        "loans.custody": [Read("kim", shows=("acme",))],
        "viewer.show": [Read("bob", {"view_id": s.reading_view}, shows=("acme",), opened=s.reading_view)],
        "viewer.page_image": [Read("bob", {"token": s.page_token, "number": 1}, shows=("acme",), binary=True,
                                   opened=s.reading_view)],
        "api.view_page": [Read("bob", {"token": s.page_token, "number": 1}, shows=("acme",), binary=True,
                               opened=s.reading_view)],
        "content.deliver": [Read("bob", {"secret": secrets["page"]}, shows=("acme",), binary=True)],
        "api.content": [Read("bob", {"secret": secrets["api"]}, shows=("acme",), binary=True)],
        # -- departures, handovers, rotation -----------------------------------------------------------
        "departures.index": [Read("adm", none="the leavers and their dates: people, no customer's data")],
        "api.list_departures": [Read("adm", none="the leavers and their dates: people, no customer's data")],
        "departures.show": [Read("aud", departure, shows=("acme",)),
                            Read("aud", {"departure_id": extra["departure"]}, shows=("tern", "Plain Company"))],
        "api.show_departure": [Read("aud", departure)],
        "departures.report": [Read("aud", departure, shows=("acme",))],
        "departures.report_csv": [Read("aud", departure, shows=("acme",))],
        "departures.report_pdf": [Read("aud", departure, shows=("acme",), binary=True)],
        "api.departure_report": [Read("aud", departure, shows=("acme",))],
        "departures.override": [Read("ann", {"departure_id": extra["departure"]}, shows=("tern",))],
        "departures.handover": [Read("sue", shows=("acme",))],
        "api.my_handover": [Read("sue", shows=("acme",))],
        "departures.leavers_loans": [Read("kim"), Read("ann", shows=("acme",))],
        "api.leavers_loans": [Read("ann", shows=("acme",))],
        "rotation.index": [Read("ann", shows=("puffin",))],
        "api.list_rotations": [Read("ann", shows=("puffin",))],
        "rotation.tasks": [Read("cam", shows=("lemur",))],
        "api.rotation_tasks": [Read("cam", shows=("lemur",))],
        # -- alerts and the start page -----------------------------------------------------------------
        "alerts.index": [Read("aud", none="alerts name people and rules; their evidence is read on one alert")],
        "api.list_alerts": [Read("aud", none="alerts name people and rules; their evidence is read on one alert")],
        "alerts.show": [Read("aud", {"alert_id": s.alert_notice})],
        "api.show_alert": [Read("aud", {"alert_id": s.alert_notice})],
        "home.index": [Read("sue"), Read("ann", shows=("acme",)), Read("cam", shows=("lemur",))],
    }


def _customers(scene: Scene, extra: dict[str, int]) -> dict[str, tuple[int, tuple[str, ...]]]:
    """Each customer of the scene: its id and the words its data is recognised by."""
    with scene.rt.db.session() as session:
        rotated = dict(session.execute(select(RotationProposal.id, RotationProposal.customer_id)).all())
    found = {"acme": (scene.customer, ACME), "puffin": (rotated[scene.rotation_open], (ROTATED_OPEN,)),
             "lemur": (rotated[scene.rotation_task], (ROTATED_DONE,)), "tern": (extra["tern"], ("Tern Key",))}
    for name, word in PLAIN_WORDS.items():
        found[name] = (scene.plain_customers[name], (word,))
    return found


def _named(session: Any, event: AuditEvent) -> set[int]:
    """The customers a record names: its own columns, and the ids its detail lists (a list's customers, a
    queue's loans, an alert's or a report's customers and files), each file, loan or view taken to its customer."""
    detail = json.loads(event.detail or "{}")
    customers = {event.customer_id}
    documents = {event.document_id}
    loans = {event.loan_id}
    listed = [i for i in detail.get("ids", []) if isinstance(i, int)] if isinstance(detail.get("ids"), list) else []
    (loans if event.action == AuditAction.LOAN_QUEUE else customers).update(listed)
    for key, into in (("customers", customers), ("customer_ids", customers), ("documents", documents),
                      ("document_ids", documents), ("files", documents), ("loans", loans)):
        value = detail.get(key)
        if isinstance(value, list):
            into.update(i for i in value if isinstance(i, int))
    for key, into in (("customer_id", customers), ("document_id", documents), ("loan_id", loans)):
        if isinstance(detail.get(key), int):
            into.add(detail[key])
    if isinstance(detail.get("view_id"), int):
        documents.add(session.scalar(select(DocumentView.document_id).where(DocumentView.id == detail["view_id"])))
    loans.discard(None)
    if loans:
        documents.update(session.scalars(select(Loan.document_id).where(Loan.id.in_(loans))))
    documents.discard(None)
    if documents:
        customers.update(session.scalars(select(Document.customer_id).where(Document.id.in_(documents))))
    customers.discard(None)
    return customers  # type: ignore[return-value]


class Readers:
    """One signed-in browser per person (and one not signed in); the API with each person's token."""

    def __init__(self, app: Any, scene: Scene) -> None:
        self.app, self.scene = app, scene
        self.browsers: dict[str, Any] = {"anon": app.test_client()}

    def ready(self, who: str, api: bool) -> None:
        """Sign in or make the token before the read: those are acts of their own, not the read's records."""
        if api:
            self.scene.token(who)
        elif who not in self.browsers:
            self.browsers[who] = self.app.test_client()
            login(self.browsers[who], who)

    def get(self, endpoint: str, read: Read) -> Any:
        path = self.app.url_map.bind("localhost").build(endpoint, read.values)
        if path.startswith("/api/"):
            headers = {"Authorization": f"Bearer {self.scene.token(read.who)}"}
            return self.app.test_client().get(path, headers=headers, query_string=read.query)
        return self.browsers[read.who].get(path, query_string=read.query)


def _body(response: Any) -> str:
    """The answer as text; JSON decoded first, so that a name is found whatever its escaping."""
    if response.is_json:
        return json.dumps(response.get_json(), ensure_ascii=False)
    return response.get_data().decode("utf-8", "replace")


def _mark(scene: Scene) -> int:
    with scene.rt.db.session() as session:
        return session.scalar(select(func.max(AuditEvent.seq))) or 0


def _secrets(app: Any, scene: Scene) -> dict[str, str]:
    """Two unused content URLs of bob's (each is single-use: one for the page, one for the API) and an
    export's manifest (written once the export has been streamed)."""
    with scene.rt.db.session() as session:
        bob, doc = scene.user(session, "bob"), session.get(Document, scene.doc2)
        made = {key: views.open_view(scene.rt, session, bob, doc, reason=TEXTS.view_reason, place=TEXTS.place,
                                     download=True, ctx=CTX).secret for key in ("page", "api")}
    export = app.test_client().get("/api/v1/audit", headers={"Authorization": f"Bearer {scene.token('aud')}"})
    assert export.status_code == 200
    export.get_data()
    made["manifest"] = export.headers["X-Vault-Export-Manifest"].split("/")[-2]
    return made


def _waivable(scene: Scene, users: Any) -> dict[str, int]:
    """A second leaver, dan, whose key customer waits for its successor's contact: the override page's matter
    (the scene's own key customer is confirmed already). Before the notice dan co-owned "Plain Company" and
    asked to borrow one of its files: the departure's page lists that loan beside the handover, so it shows a
    customer that is not one of the handover's (the scene's own leaver borrowed from the customer handed over)."""
    dan = users.make("dan", Role.BORROWER).id
    with scene.rt.db.session() as session:
        carl, adm, bob = (scene.user(session, n) for n in ("carl", "adm", "bob"))
        plain = session.get(Customer, scene.plain_customers["Plain Company"])
        customers.add_co_owner(scene.rt, session, None, plain, session.get(type(carl), dan), ctx=CTX)
        document = documents.upload_document(
            scene.rt, session, carl, plain, title="Plain Company's rates", grade=2, stream=io.BytesIO(TEXTS.content),
            filename="rates.txt", content_type="text/plain", ctx=CTX, custodian=scene.user(session, "kim"))
        loans.request_loan(scene.rt, session, session.get(type(carl), dan), document, reason=TEXTS.reason,
                           category="visit_preparation", place=TEXTS.place, days=5, ctx=CTX)
        tern = customers.create_customer(scene.rt, session, carl, name=TERN, segment=Segment.VIP,
                                         owner=session.get(type(carl), dan), ctx=CTX).id
        departure = departures.start_departure(scene.rt, session, adm, session.get(type(carl), dan),
                                               last_day=today(scene.rt.settings) + timedelta(days=14),
                                               successor=bob, note="", ctx=CTX).id
    return {"tern": tern, "departure": departure}


def _ledger_read(scene: Scene, who: str, action: str, mark: int) -> bool:
    """Whether the request recorded the person's reading of the log as `action`, allowed."""
    with scene.rt.db.session() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.seq > mark, AuditEvent.action == action, AuditEvent.outcome == "allowed",
            AuditEvent.actor_id == scene.ids[who])) > 0


def _opened(scene: Scene, who: str, view_id: int) -> bool:
    """Whether the person's opening of the view was recorded (`document:view`, allowed, under its file)."""
    with scene.rt.db.session() as session:
        document = session.scalar(select(DocumentView.document_id).where(DocumentView.id == view_id))
        return session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == AuditAction.DOCUMENT_VIEW, AuditEvent.outcome == "allowed",
            AuditEvent.actor_id == scene.ids[who], AuditEvent.document_id == document)) > 0


def test_every_read_that_shows_a_customer_records_it(app: Any, scene: Scene, users: Any) -> None:
    extra = _waivable(scene, users)
    table = reads(scene, _secrets(app, scene), extra)
    routes = {rule.endpoint for rule in app.url_map.iter_rules() if "GET" in rule.methods}
    assert not routes - set(table), f"GET routes with no read in the walk: {sorted(routes - set(table))}"
    assert not set(table) - routes, "reads of routes that no longer exist"

    known = _customers(scene, extra)
    readers = Readers(app, scene)
    failures: list[str] = []
    walked = 0
    for endpoint, entries in sorted(table.items()):
        for read in entries:
            readers.ready(read.who, endpoint.startswith("api"))
            mark = _mark(scene)
            response = readers.get(endpoint, read)
            walked += 1
            label = f"GET {endpoint} by {read.who} {read.values or ''}{read.query or ''}".rstrip()
            if response.status_code != read.status:
                failures.append(f"{label}: answered {response.status_code}, not {read.status}")
                continue
            body = _body(response)  # read to its end: a delivery is recorded once its last byte is sent
            body = "" if read.binary else body
            shown = {key for key, (_id, words) in known.items() if any(word in body for word in words)}
            if read.binary:
                shown |= set(read.shows)
            if read.none:
                if shown:
                    failures.append(f"{label}: listed as showing no customer, but shows {sorted(shown)}")
                continue
            missing = set(read.shows) - shown
            if missing:
                failures.append(f"{label}: does not show {sorted(missing)} (the walk proves nothing)")
            if read.own:
                continue
            if read.ledger:
                if not _ledger_read(scene, read.who, read.ledger, mark):
                    failures.append(f"{label}: no {read.ledger} record of the reading")
                continue
            if read.opened:
                if not _opened(scene, read.who, read.opened):
                    failures.append(f"{label}: the view's opening was not recorded")
                continue
            with scene.rt.db.session() as session:
                records = list(session.scalars(select(AuditEvent).where(AuditEvent.seq > mark)))
                named = set().union(*(_named(session, e) for e in records
                                      if e.action in READS and e.outcome == "allowed"), set())
            unrecorded = sorted(key for key in shown if known[key][0] not in named)
            if unrecorded:
                written = sorted({(e.action, e.outcome) for e in records})
                failures.append(f"{label}: shows {unrecorded} with no read record naming them (written: {written})")
    assert walked >= len(table)
    assert not failures, "\n".join(failures)


def refused(scene: Scene) -> list[tuple[str, str, dict[str, Any]]]:
    """A sample of refused reads, one per kind of refusal (role gate, need to know, chain of managers,
    another borrower's loan, one's own departure): the refusals themselves are walked in `test_idor.py`."""
    s = scene
    return [("customers.show", "aud", {"customer_id": s.customer}),
            ("api.show_customer", "cam", {"customer_id": s.customer}),
            ("records.history", "carl", {"customer_id": s.customer}),
            ("loans.show", "eve", {"loan_id": s.loan_active}),
            ("api.show_document", "aud", {"document_id": s.doc2}),
            ("departures.report", "aux", {"departure_id": s.departure_aux})]


def test_a_refused_read_is_recorded_as_denied_and_names_nothing_read(app: Any, scene: Scene) -> None:
    readers = Readers(app, scene)
    failures: list[str] = []
    for endpoint, who, values in refused(scene):
        readers.ready(who, endpoint.startswith("api"))
        mark = _mark(scene)
        response = readers.get(endpoint, Read(who, values))
        label = f"GET {endpoint} by {who} {values}"
        with scene.rt.db.session() as session:
            records = list(session.scalars(select(AuditEvent).where(AuditEvent.seq > mark)))
            read = set().union(*(_named(session, e) for e in records
                                 if e.action in READS and e.outcome == "allowed"), set())
        if response.status_code not in (403, 404):
            failures.append(f"{label}: answered {response.status_code}")
        if not [e for e in records if e.outcome == "denied" and e.actor_id == scene.ids[who]]:
            failures.append(f"{label}: no denied record ({sorted((e.action, e.outcome) for e in records)})")
        if scene.customer in read:
            failures.append(f"{label}: recorded as an allowed read of the customer")
    assert not failures, "\n".join(failures)
