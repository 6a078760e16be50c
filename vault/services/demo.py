"""A realistic demo company: people in every role (some in Shanghai and Moscow, working in Chinese and
Russian), thirty-six customers (six of them Chinese and Russian), seventy-two encrypted files, and work
in progress on every desk (`demo_work`: loans waiting for a decision and a release, an active loan, a
person on notice, open alerts).

Everything goes through the real services (accounts, customers, the upload pipeline with its
encryption and audit), so the demo shows the product as it is, not a shortcut around it. Seeding is
idempotent and resumable: people, customers and files are looked up by name first, and each customer's
files commit together, so a second run adds nothing and an interrupted one finishes what is missing.
"""

from __future__ import annotations

import dataclasses
import io
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from vault.config.settings import Settings, TrustedPlace
from vault.core.context import AccessContext
from vault.models import Document, Role, Segment
from vault.runtime import Runtime
from vault.services import (
    accounts,
    customers,
    demo_content,
    demo_records,
    demo_work,
    documents,
    language,
    managers,
)

# One password for every demo account, printed by `vault demo`; never use the demo in production.
DEMO_PASSWORD = "harbour-lantern-47"  # noqa: S105


# The demo runs on one computer and is opened from it: loopback is its trusted place, so grade-3 files
# (which open only from a trusted place) can be tried like every other grade.
LOOPBACK = TrustedPlace(name="This computer (demo)",
                        networks=(ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")))


def with_loopback_trusted(settings: Settings) -> Settings:
    """The demo's settings: the configured trusted places, plus loopback unless one already covers it."""
    covered = any(ipaddress.ip_address("127.0.0.1") in net for place in settings.trusted_places
                  for net in place.networks if net.version == 4)
    if covered:
        return settings
    return dataclasses.replace(settings, trusted_places=(*settings.trusted_places, LOOPBACK))


@dataclass(frozen=True)
class DemoUser:
    username: str
    display_name: str
    roles: tuple[Role, ...]
    locale: str = ""
    timezone: str = ""


# Every role, with the separation of duties kept: the administrator holds no other role, the auditor
# is neither approver, custodian nor compiler. Raj both compiles files and borrows others' files.
USERS: tuple[DemoUser, ...] = (
    DemoUser("admin", "Ada Lindgren", (Role.ADMIN,)),
    DemoUser("oskar", "Oskar Brandt", (Role.AUDITOR,)),
    DemoUser("mia", "Mia Svensson", (Role.APPROVER,)),
    DemoUser("leo", "Leo Hartmann", (Role.APPROVER,)),
    DemoUser("ines", "Ines Moreau", (Role.CUSTODIAN,)),
    DemoUser("tom", "Tom Becker", (Role.CUSTODIAN,)),
    DemoUser("nora", "Nora Patel", (Role.COMPILER,)),
    DemoUser("raj", "Raj Iyer", (Role.COMPILER, Role.BORROWER)),
    DemoUser("eva", "Eva Kowalski", (Role.BORROWER,)),
    DemoUser("sam", "Sam Okafor", (Role.BORROWER,)),
    DemoUser("lena", "Lena Fischer", (Role.BORROWER,)),
    DemoUser("hana", "Hana Sato", (Role.BORROWER,)),
    DemoUser("victor", "Victor Lindqvist", (Role.BORROWER,)),
    # Colleagues in the Shanghai and Moscow offices, each with their language and time zone chosen.
    DemoUser("wei", "王伟", (Role.BORROWER,), "zh_Hans", "Asia/Shanghai"),
    DemoUser("xiaoyan", "陈晓燕", (Role.APPROVER,), "zh_Hans", "Asia/Shanghai"),
    DemoUser("dmitry", "Дмитрий Соколов", (Role.BORROWER,), "ru", "Europe/Moscow"),
    DemoUser("olga", "Ольга Смирнова", (Role.APPROVER,), "ru", "Europe/Moscow"),
)
# A two-level sales organisation: Victor runs sales, Hana leads a team under him. Managers see their
# reports' customers (down the whole chain); everyone else reaches a customer only by a look-up.
MANAGERS: dict[str, str] = {
    "hana": "victor", "lena": "victor", "nora": "victor",
    "eva": "hana", "sam": "hana", "raj": "hana",
    "wei": "victor", "dmitry": "victor",
}
COMPILERS = ("nora", "raj")
CUSTODIANS = ("ines", "tom")
ACCOUNT_MANAGERS = ("nora", "raj", "eva", "sam", "lena")


# Who signs in to see each piece of the work in progress (`demo_work`), as `vault demo` prints it.
DESKS: tuple[tuple[str, str], ...] = (
    ("mia, leo", "Eva's request for a grade-2 dossier waits for your decision"),
    ("tom", "Lena's grade-3 loan is approved and waits for your release"),
    ("raj", "an active loan of a grade-3 dossier, views left: open it from the start page"),
    ("admin", "Sam is on notice: his departure, its report and his customers' handover"),
    ("eva", "Sam's customers handed to you: confirm you spoke to the key ones"),
    ("sam", "on notice: fewer look-ups a day, an approver more on each loan, his customers now Eva's"),
    ("oskar, mia, leo", "open alerts: Sam's notice and his look-up outside his book"),
)


@dataclass
class DemoSummary:
    users_created: int = 0
    customers_created: int = 0
    documents_created: int = 0
    records_created: int = 0
    users: int = 0
    customers: int = 0
    documents: int = 0
    work: demo_work.WorkSummary | None = None


def seed(rt: Runtime, *, seed: int = demo_content.SEED, echo: Callable[[str], None] = lambda _m: None,
         files: bool = True, work: bool = True) -> DemoSummary:
    """Create what is missing of the demo company; returns what exists and what was added.

    `work` adds the work in progress (`demo_work`: loans at each step, a person on notice, alerts), so
    that every desk has something to try. `files=False` leaves the seventy-two files out but for the
    few that work opens (tests of the people, customers, records and work need no more rendering);
    `work=False` leaves the work out, for tests of the company as it stands before anyone acts.
    """
    ctx = AccessContext.cli()
    summary = DemoSummary()
    with rt.db.session() as session:
        for spec in USERS:
            if accounts.find_user(session, spec.username) is None:
                person = accounts.create_user(rt, session, username=spec.username, password=DEMO_PASSWORD,
                                              display_name=spec.display_name, roles=spec.roles, ctx=ctx)
                if spec.locale or spec.timezone:
                    language.set_language(rt, session, person, locale=spec.locale, timezone=spec.timezone, ctx=ctx)
                summary.users_created += 1
        for username, boss in MANAGERS.items():
            person = accounts.get_user(session, username)
            if person.manager is None or person.manager.username != boss:
                managers.set_manager(rt, session, person, accounts.get_user(session, boss), actor=None, ctx=ctx)
    summary.users = len(USERS)
    echo(f"people: {summary.users} ({summary.users_created} new)")

    files_by_customer: dict[str, list[demo_content.DemoFile]] = {}
    for item in demo_content.files(seed):
        files_by_customer.setdefault(item.customer.name, []).append(item)

    for spec in demo_content.CUSTOMERS:
        compiler_name = COMPILERS[spec.index % len(COMPILERS)]
        custodian_name = CUSTODIANS[spec.index % len(CUSTODIANS)]
        # One transaction per customer: a crash leaves whole customers, and the next run goes on.
        with rt.db.session() as session:
            compiler = accounts.get_user(session, compiler_name)
            custodian = accounts.get_user(session, custodian_name)
            customer = customers.find_by_name(session, spec.name)
            if customer is None:
                owner = accounts.get_user(session, spec.owner or ACCOUNT_MANAGERS[spec.index % len(ACCOUNT_MANAGERS)])
                customer = customers.create_customer(
                    rt, session, compiler, name=spec.name, segment=Segment(spec.segment), owner=owner, ctx=ctx)
                summary.customers_created += 1
            if customer.segment == Segment.VIP and not customer.co_owners:
                # Key accounts are sold by a team: the next account manager co-owns each VIP customer.
                partner = accounts.get_user(session, ACCOUNT_MANAGERS[(spec.index + 1) % len(ACCOUNT_MANAGERS)])
                customers.add_co_owner(rt, session, None, customer, partner, ctx=ctx)
            team = [u for u in (customer.owner, *(co.user for co in customer.co_owners)) if u is not None]
            manager = customer.owner.manager if customer.owner is not None else None
            summary.records_created += demo_records.seed_record(rt, session, customer, spec, team, manager,
                                                                seed=seed, ctx=ctx)
            existing = set(session.scalars(select(Document.title).where(Document.customer_id == customer.id)))
            wanted = [item for item in files_by_customer.get(spec.name, [])
                      if files or (work and (spec.name, item.title) in demo_work.FILES)]
            for item in wanted:
                summary.documents += 1
                if item.title in existing:
                    continue
                documents.upload_document(
                    rt, session, compiler, customer, title=item.title, grade=item.grade,
                    stream=io.BytesIO(item.render(seed)), filename=item.filename, content_type=None, ctx=ctx,
                    custodian=custodian)
                summary.documents_created += 1
        summary.customers += 1
    echo(f"customers: {summary.customers} ({summary.customers_created} new)")
    echo(f"records: {summary.customers} ({summary.records_created} new; contacts, terms, notes and a year of "
         "contact log, sealed)")
    echo(f"files: {summary.documents} ({summary.documents_created} new, encrypted in {rt.store.describe()})")
    if work:
        summary.work = demo_work.seed_work(rt, echo=echo)
    return summary

