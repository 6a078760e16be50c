"""Accounts: creation, roles (with their static conflicts and the two-person rule), first passwords set
through one-time links, password checks and API tokens."""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, and_, bindparam, exists, func, literal, or_, select
from sqlalchemy.orm import Session, contains_eager, selectinload

from vault import policy
from vault.config.addresses import masked
from vault.config.settings import Settings
from vault.core import events
from vault.core.actions import Action
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.core.errors import Conflict, NotFound, ServiceError
from vault.core.passwords import MIN_LENGTH
from vault.db.locking import locked
from vault.models import (
    AgreementAcceptance,
    ApiToken,
    AuditEvent,
    LoginAttempt,
    PasswordLink,
    RequestStatus,
    Role,
    RoleAssignment,
    RoleRequest,
    TotpSecret,
    User,
    UserStatus,
    utcnow,
)
from vault.policy.accounts import link_by_mail
from vault.policy.roles import needs_second_person
from vault.runtime import Runtime
from vault.services import throttle, totp

TOKEN_PREFIX = "vt_"  # noqa: S105 (a public marker, not a secret)
TOKEN_SCOPES = ("read", "write")
DEFAULT_TOKEN_DAYS = 30
# Roles whose tokens act with power over others' access: short-lived, and made with a fresh second factor.
DUTY_ROLES = frozenset({Role.APPROVER, Role.CUSTODIAN, Role.AUDITOR, Role.ADMIN})
DUTY_TOKEN_HOURS = 12
MAX_REASON = 2000  # why an account was disabled, as the operator put it (kept in the audit record)


def has_duty_role(user: User) -> bool:
    return bool(user.role_set & DUTY_ROLES)


def token_cap(settings: Settings, user: User) -> timedelta:
    """The longest a token of `user` may live: 12 hours for a duty role, else the configured maximum."""
    return timedelta(hours=DUTY_TOKEN_HOURS) if has_duty_role(user) else timedelta(days=settings.token_max_days)


def token_expires_at(settings: Settings, token: ApiToken) -> datetime:
    """When `token` stops working: its stored expiry, but never later than `token_cap` from when it was
    made. A token made before tokens expired has no stored expiry, a lowered `token_max_days` holds for
    the tokens already out, and a duty role granted later shortens its holder's tokens: the API's guard
    (`api_caller`) refuses by this moment, and every listing shows it, so none says "never" for a token
    that stops."""
    capped = token.created_at + token_cap(settings, token.user)
    return capped if token.expires_at is None else min(token.expires_at, capped)


def find_user(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def get_user(session: Session, username: str) -> User:
    user = find_user(session, username)
    if user is None:
        raise NotFound("user")
    return user


USERS_PAGE = 50  # accounts a page, by user name (as the customer and loan lists)


@dataclass(frozen=True)
class UserPage:
    users: list[User]
    enrolled: frozenset[int]  # the ids among `users` with a second factor set up
    total: int
    page: int
    pages: int


def page_of_users(session: Session, *, page: int = 1, page_size: int = USERS_PAGE) -> UserPage:
    """One page of every account, by user name, counted and cut in SQL, with which of them have a second
    factor set up (one query for the page, not one a person). A page past the end is the last page."""
    total = session.scalar(select(func.count()).select_from(User)) or 0
    pages = max(1, -(-total // page_size))
    page = min(max(1, page), pages)
    people = list(session.scalars(select(User).order_by(User.username, User.id)
                                  .offset((page - 1) * page_size).limit(page_size)))
    enrolled = frozenset(session.scalars(select(TotpSecret.user_id).where(
        TotpSecret.confirmed_at.is_not(None), TotpSecret.user_id.in_([person.id for person in people]))))
    return UserPage(users=people, enrolled=enrolled, total=total, page=page, pages=pages)


COMMON_PASSWORDS = Path(__file__).resolve().parent.parent / "data" / "common-passwords.txt"


@functools.cache
def _common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def check_password_rules(password: str, username: str | None = None) -> None:
    """Refuse passwords that guessing finds first: short ones, listed ones, and ones built on the name."""
    if len(password) < MIN_LENGTH:
        raise ServiceError("weak_password", _l("A password needs at least %(MIN_LENGTH)s characters.",
                                               MIN_LENGTH=MIN_LENGTH))
    if password.strip().lower() in _common_passwords():
        raise ServiceError("common_password", _l("This password is on the list of common passwords; choose another."))
    if username and username.strip().lower() in password.lower():
        raise ServiceError("password_contains_username", _l("A password must not contain the user name."))


PASSWORD_LINK_HOURS = 72
# Where a one-time link leads: the page on which its owner sets their password (kept in step with the
# page's route by a test). The command line, which has no request to build a URL from, puts the public
# address (`VAULT_BASE_URL`) before it.
PASSWORD_SET_PATH = "/password/set/{secret}"  # noqa: S105 (a path, not a secret)


def password_set_path(secret: str) -> str:
    """The path of the page that sets a password with the one-time link `secret`."""
    return PASSWORD_SET_PATH.format(secret=secret)


def create_user(
    rt: Runtime,
    session: Session,
    *,
    username: str,
    password: str | None,
    display_name: str | None = None,
    roles: tuple[Role, ...] = (),
    actor: User | None = None,
    ctx: AccessContext | None = None,
    by_link: bool = False,
) -> User:
    """Create an account and give it `roles`; `actor` None means the command line (the operator).

    An administrator (`actor`) chooses no password: `password` must be None, the account gets an unusable
    random one, and its owner sets theirs through `create_password_link`. The operator chooses one, or
    (`by_link`) none, as the administrator: the owner sets theirs through a link. Roles that need a second
    person (see `policy.roles.needs_second_person`) become requests instead of grants. The `user:create`
    record says which (`"password": "chosen"` or `"link"`): an account with a chosen password is in use from
    the start (`established`), and an administrator is never shown a link for it.
    """
    username = username.strip()
    if not username or len(username) > 64 or not username.replace(".", "").replace("-", "").replace("_", "").isalnum():
        raise ServiceError("invalid_username", _l("A user name is 1–64 letters, digits, dots, dashes or underscores."))
    display_name = _clean_display_name(display_name)
    if find_user(session, username):
        raise Conflict("user_exists", _l("The user %(username)s already exists.", username=username))
    if actor is not None:
        policy.require(actor, Action.USER_MANAGE)
    chosen = actor is None and not by_link
    if not chosen:
        if password is not None:
            raise ServiceError("password_by_admin", _l("An administrator does not choose anyone's password."))
        password = secrets.token_urlsafe(32)  # never told to anyone: the owner sets theirs through a link
    elif password is None:
        raise ServiceError("weak_password", _l("A password needs at least %(MIN_LENGTH)s characters.",
                                               MIN_LENGTH=MIN_LENGTH))
    else:
        check_password_rules(password, username)
    user = User(username=username, display_name=display_name or username, password_hash=rt.passwords.hash(password),
                status=UserStatus.ACTIVE)
    session.add(user)
    session.flush()
    rt.audit.record(session, action=AuditAction.USER_CREATE, actor=actor, ctx=ctx or AccessContext.cli(),
                    subject_user_id=user.id,
                    detail={"username": username, "password": "chosen" if chosen else "link"})
    for role in roles:
        assign_role(rt, session, user, role, actor=actor, ctx=ctx)
    return user


MAX_DISPLAY_NAME = 200  # the column's length


def _clean_display_name(name: str | None) -> str | None:
    """The full name as stored, or None for none: within the column, without control characters (a
    terminal escape in a name would reach every report, CSV and command table that prints it)."""
    text = " ".join((name or "").split())
    if not text:
        return None
    if len(text) > MAX_DISPLAY_NAME:
        raise ServiceError("invalid_display_name", _l("A full name has at most %(n)s characters.", n=MAX_DISPLAY_NAME))
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise ServiceError("invalid_display_name", _l("A full name cannot contain control characters."))
    return text


def assign_role(
    rt: Runtime, session: Session, user: User, role: Role, *, actor: User | None, ctx: AccessContext | None = None
) -> RoleRequest | None:
    """Give `user` a role, refusing the static conflicts (admin alone; auditor apart from the duties).

    From a page (`actor` set), a role of power, or any role for a person on notice, is only requested: the
    request is returned and the role waits for a second person (`decide_role_request`). The command line
    (`actor` None) is trusted, as whoever runs it holds the server; it grants at once under the operator's
    name, which is how an installation with a single administrator gives duty roles.
    """
    _hold_roles(session, user)
    if actor is not None:
        pending = frozenset(Role(r.role) for r in pending_role_requests(session, user))
        policy.require(actor, Action.ROLE_ASSIGN, user, role=role, pending=pending,
                       audit={"subject_user_id": user.id})
    else:
        conflict = policy.role_conflict(user.role_set, role)
        if conflict:
            raise ServiceError("role_conflict", conflict)
    if role in user.role_set:
        return None
    if actor is not None and needs_second_person(user, role, holder=actor.id in link_holders(session, user)):
        return _request_role(rt, session, user, role, actor=actor, ctx=ctx or AccessContext.cli())
    _grant(rt, session, user, role, actor=actor, ctx=ctx or AccessContext.cli())
    return None


def _hold_roles(session: Session, user: User) -> None:
    """Lock `user`'s row and read their roles again before a role is asked for or given to them.

    The static conflicts (`policy.role_conflict`) are judged on the roles a person holds and those waiting
    for them; two at once (two administrators asking, an auditor and an administrator approving) each read
    them before the other committed, and an auditor became an approver too. Everything that asks for or
    gives a role takes this lock first (after the request it decides), so the second reads the first.
    """
    locked(session, User, user.id)
    session.expire(user, ["roles"])


def _grant(rt: Runtime, session: Session, user: User, role: Role, *, actor: User | None,
           ctx: AccessContext, request_id: int | None = None) -> None:
    user.roles.append(RoleAssignment(role=role, granted_by_id=actor.id if actor else None))
    session.flush()
    detail: dict[str, object] = {"role": str(role)}
    if request_id is not None:
        detail["request_id"] = request_id
    rt.audit.record(session, action=AuditAction.ROLE_ASSIGN, actor=actor, ctx=ctx, subject_user_id=user.id,
                    detail=detail)


def _request_role(rt: Runtime, session: Session, user: User, role: Role, *, actor: User,
                  ctx: AccessContext) -> RoleRequest:
    existing = session.scalar(select(RoleRequest).where(
        RoleRequest.user_id == user.id, RoleRequest.role == str(role), RoleRequest.status == RequestStatus.PENDING))
    if existing is not None:
        return existing
    request = RoleRequest(user_id=user.id, role=str(role), status=RequestStatus.PENDING, requested_by_id=actor.id,
                          requested_at=utcnow())
    session.add(request)
    session.flush()
    rt.audit.record(session, action=AuditAction.ROLE_REQUEST, actor=actor, ctx=ctx, subject_user_id=user.id,
                    detail={"request_id": request.id, "role": str(role)})
    return request


def pending_role_requests(session: Session, user: User | None = None) -> list[RoleRequest]:
    """Requests waiting for a second person (of one account, or of everyone), oldest first."""
    query = (select(RoleRequest).where(RoleRequest.status == RequestStatus.PENDING).order_by(RoleRequest.id)
             .options(selectinload(RoleRequest.user), selectinload(RoleRequest.requested_by)))
    if user is not None:
        query = query.where(RoleRequest.user_id == user.id)
    return list(session.scalars(query))


def get_role_request(session: Session, request_id: int) -> RoleRequest:
    """A request still waiting, locked for its decision (`vault.db.locking`): one decided meanwhile, by another
    administrator in the same instant, is not found rather than decided again."""
    request = locked(session, RoleRequest, request_id)
    if request is None or request.status != RequestStatus.PENDING:
        raise NotFound("role request")
    return request


def request_holders(session: Session, roles: Iterable[RoleRequest],
                    named: Iterable[Any] = ()) -> dict[int, frozenset[int]]:
    """`holders_of` everyone a list of role requests (their people) and manager requests (the managers
    named) asks the policy about, read at once for `role_decider` and `managers.manager_decider`."""
    return holders_of(session, [*(r.user_id for r in roles), *(r.manager_id for r in named)])


def role_decider(session: Session, actor: User, request: RoleRequest,
                 holders: dict[int, frozenset[int]] | None = None) -> policy.Decision:
    """The policy's answer to `actor` deciding `request`, with the facts its rule needs (who may hold the
    account; a list passes `holders_of` its requests' people, read at once): for the decision itself and for
    every list that offers it, so none offers what is refused."""
    held = holders[request.user_id] if holders is not None else link_holders(session, request.user)
    return policy.authorize(actor, Action.ROLE_APPROVE, request, holders=held)


def decide_role_request(
    rt: Runtime, session: Session, request: RoleRequest, *, approve: bool, actor: User, ctx: AccessContext
) -> None:
    """The second person's decision: approving gives the role now; refusing closes the request. Both
    are recorded ("role:approve" / "role:refuse"), the grant too ("role:assign").

    Raises:
        policy.Denied: `separation_of_duties` (the one who asked, the person themselves, or an administrator
            who may know the person's password: `link_holders`),
            `not_permitted` (an auditor role needs an auditor, other roles an admin), `role_conflict`.
    """
    audit = {"subject_user_id": request.user_id}
    _hold_roles(session, request.user)
    if not (decision := role_decider(session, actor, request)):
        raise policy.Denied(decision, action=Action.ROLE_APPROVE, **audit)
    request.status = RequestStatus.APPROVED if approve else RequestStatus.REFUSED
    request.decided_by_id, request.decided_at = actor.id, utcnow()
    detail = {"request_id": request.id, "role": request.role, "requested_by_id": request.requested_by_id}
    decided = AuditAction.ROLE_APPROVE if approve else AuditAction.ROLE_REFUSE
    rt.audit.record(session, action=decided, actor=actor, ctx=ctx, detail=detail, **audit)
    if approve and Role(request.role) not in request.user.role_set:
        _grant(rt, session, request.user, Role(request.role), actor=actor, ctx=ctx, request_id=request.id)


def _link_makers(session: Session, user: User) -> frozenset[int | None]:
    """Who made a password link for `user` since they last signed in (None: the operator)."""
    query = select(PasswordLink.created_by_id).where(PasswordLink.user_id == user.id)
    if user.last_login_at is not None:
        query = query.where(PasswordLink.created_at >= user.last_login_at)
    return frozenset(session.scalars(query))


def _second_factor_removers(session: Session, user: User) -> frozenset[int | None]:
    """Who removed a second factor of `user` since they last signed in (None: the operator), from the audit
    log, where every reset is recorded (the removed rows leave nothing else behind)."""
    query = select(AuditEvent.actor_id, AuditEvent.detail).where(
        AuditEvent.subject_user_id == user.id, AuditEvent.action == str(AuditAction.TOTP_RESET),
        AuditEvent.outcome == "allowed")
    if user.last_login_at is not None:
        query = query.where(AuditEvent.ts >= user.last_login_at)
    return frozenset(actor_id for actor_id, detail in session.execute(query)
                     if json.loads(detail or "{}").get("had_second_factor"))


def established(session: Session, user: User) -> bool:
    """Whether `user`'s account is in use: its owner has signed in, it has an API token (a service account
    nobody signs in to, given its way in by the operator), or it has a password someone chose (`_chosen_password`).
    A link shown to an administrator for such an account is that account in the administrator's hands
    (`policy.accounts`): they would set a password of their own over the one its owner was given, and sign in
    as the person before the person first does."""
    if user.last_login_at is not None:
        return True
    if session.scalar(select(exists().where(ApiToken.user_id == user.id))) is True:
        return True
    return _password_chosen_at(session, user) is not None


def _password_chosen_at(session: Session, user: User) -> int | None:
    """The audit sequence number from which `user`'s password was one someone chose rather than the unusable
    random one an administrator's creation (or the operator's `--link`) sets, or None: the operator chose it
    at creation (the `user:create` record says `"password": "chosen"`), or the owner set it through a link
    (`account:password_set`).

    From the audit log, since the hash cannot tell a chosen password from a random one. A creation recorded
    before the record said which counts as chosen when the operator made it (who either chose one or gave a
    link; of the two, the one that keeps the account out of an administrator's hands), and as a link when an
    administrator did (who never chooses one)."""
    rows = session.execute(
        select(AuditEvent.seq, AuditEvent.action, AuditEvent.actor_id, AuditEvent.detail)
        .where(AuditEvent.subject_user_id == user.id, AuditEvent.outcome == "allowed",
               AuditEvent.action.in_((str(AuditAction.USER_CREATE), str(AuditAction.ACCOUNT_PASSWORD_SET))))
        .order_by(AuditEvent.seq))
    for seq, action, actor_id, detail in rows:
        if action == str(AuditAction.ACCOUNT_PASSWORD_SET):
            return seq
        how = json.loads(detail or "{}").get("password")
        if how == "chosen" or (how is None and actor_id is None):
            return seq
    return None


def _address_changers(session: Session, user: User, *, in_use_only: bool = True) -> frozenset[int | None]:
    """Who set `user`'s current mail address while the account was in use (None: the operator), from the
    audit log's latest change of it (the column keeps only the value); empty when the address is the one
    the account started with, set before its first sign-in, token or chosen password, which the person has used
    since.

    Not bounded by the person's last sign-in, as the second factor's other half is: signing in confirms
    nothing about the address, so an administrator who points it at a mailbox of theirs and waits for the
    person's next sign-in must still not mail the link there. The hold ends when someone else sets the
    address (the person, another administrator, the operator).

    With `in_use_only` False (a brand-new account's link, mailed because the one asking did not create it),
    whoever set the current address holds it, in use or not: otherwise a second administrator would point a
    new account's address at a mailbox of theirs and mail its link there."""
    latest = session.execute(
        select(AuditEvent.seq, AuditEvent.actor_id)
        .where(AuditEvent.subject_user_id == user.id, AuditEvent.action == str(AuditAction.USER_EMAIL),
               AuditEvent.outcome == "allowed")
        .order_by(AuditEvent.seq.desc()).limit(1)).first()
    if latest is None:
        return frozenset()
    if not in_use_only:
        return frozenset({latest.actor_id})
    in_use_before = select(AuditEvent.seq).where(
        AuditEvent.seq < latest.seq, AuditEvent.outcome == "allowed",
        or_(and_(AuditEvent.actor_id == user.id, AuditEvent.action == str(AuditAction.AUTH_LOGIN)),
            and_(AuditEvent.subject_user_id == user.id, AuditEvent.action == str(AuditAction.TOKEN_CREATE))))
    if session.scalar(select(in_use_before.exists())):
        return frozenset({latest.actor_id})
    chosen_at = _password_chosen_at(session, user)
    return frozenset({latest.actor_id}) if chosen_at is not None and chosen_at < latest.seq else frozenset()


def account_creator(session: Session, user: User) -> int | None:
    """The administrator who created `user`'s account, from its `user:create` record; None when the operator
    did (or the record is gone)."""
    return session.scalar(select(AuditEvent.actor_id).where(
        AuditEvent.subject_user_id == user.id, AuditEvent.action == str(AuditAction.USER_CREATE),
        AuditEvent.outcome == "allowed").order_by(AuditEvent.seq).limit(1))


def link_holders(session: Session, user: User) -> frozenset[int]:
    """The administrators who may know `user`'s password: who created the account (its first link is shown to
    them, to hand over), was shown a link of it, or chose the mailbox a link of it was mailed to, since its
    owner last set a password through a link that reached nobody else.

    A link shown to an administrator lets them set a password of their own and sign in as the account; that it
    has signed in since proves nothing, since they may be the one who did. A mailed link is no better when the
    address it went to was chosen by an administrator: nothing tells their own mailbox from the owner's, so the
    creator who gave the account an address of theirs, or any administrator who later set one, reads the link
    there, whether they asked for it or an unwitting colleague did. An address the person set themselves while
    the account was held may have been set by a holder signed in as them, so it is read by whoever held it then.
    Only a password set through the operator's link, or one mailed to an address the operator or an
    administrator holding nothing set, ends the hold. Read from the audit log (creations, address changes,
    links with their `delivery`, passwords set), in order; an administrator's link recorded before the record
    said how it went was shown."""
    return holders_of(session, [user.id])[user.id]


def holders_of(session: Session, user_ids: Iterable[int]) -> dict[int, frozenset[int]]:
    """`link_holders` of each of `user_ids`, read in one statement (lists of requests ask for many)."""
    ids = sorted(set(user_ids))
    by_user: dict[int, list[Any]] = {user_id: [] for user_id in ids}
    if ids:
        for row in session.execute(
                select(AuditEvent.subject_user_id, AuditEvent.action, AuditEvent.actor_id, AuditEvent.detail)
                .where(AuditEvent.subject_user_id.in_(ids), AuditEvent.outcome == "allowed",
                       AuditEvent.action.in_((str(AuditAction.USER_CREATE), str(AuditAction.USER_EMAIL),
                                              str(AuditAction.ACCOUNT_PASSWORD_LINK),
                                              str(AuditAction.ACCOUNT_PASSWORD_SET))))
                .order_by(AuditEvent.seq)):
            by_user[row.subject_user_id].append(row)
    return {user_id: _holders(user_id, rows) for user_id, rows in by_user.items()}


def _holders(user_id: int, rows: list[Any]) -> frozenset[int]:
    """`link_holders` from the account's records, oldest first."""
    holders: set[int] = set()
    readers: frozenset[int] = frozenset()  # the administrators who may read the current address's mailbox
    latest_seen_by: frozenset[int] = frozenset()  # who could read the latest link (or password) besides the owner
    for _subject, action, actor_id, detail in rows:
        if action == str(AuditAction.USER_EMAIL):
            readers = (frozenset() if actor_id is None else frozenset(holders) if actor_id == user_id
                       else frozenset({actor_id}))
            continue
        if action == str(AuditAction.ACCOUNT_PASSWORD_SET):
            if not latest_seen_by:
                holders.clear()
            continue
        if actor_id is None:  # the operator: a password chosen on the server, or a link printed there
            latest_seen_by = frozenset()
            continue
        delivery = json.loads(detail or "{}").get("delivery", LinkDelivery.SHOWN)
        if action == str(AuditAction.USER_CREATE) or delivery == LinkDelivery.SHOWN:
            latest_seen_by = frozenset({actor_id})
        else:
            latest_seen_by = readers
        holders |= latest_seen_by
    return frozenset(holders)


def mailed_link(session: Session, user: User, actor: User) -> bool:
    """Whether a password link `actor` asks for `user` goes to the owner's mailbox (`policy.accounts`)."""
    return link_by_mail(actor, established(session, user), account_creator(session, user))


def mail_state(settings: Settings, user: User) -> str:
    """Whether a mail can carry a link to `user`: "ready", "no_address", or "not_configured" (no SMTP server,
    no sender, or no public address to put before the link, without which it would lead nowhere)."""
    if not (settings.smtp_url and settings.mail_from and settings.base_url):
        return "not_configured"
    return "ready" if user.email else "no_address"


class LinkDelivery(StrEnum):
    """How a password link reached its owner, as the audit record and the API say it."""

    SHOWN = "shown"  # to the administrator who asked, to hand over: a brand-new account
    MAIL = "mail"  # to the owner's address on record; the administrator sees only where it went
    OPERATOR = "operator"  # printed by `vault user password-link` on the server


@dataclass(frozen=True)
class IssuedLink:
    """A password link just made. `secret` is None when it went by mail: nobody but the mailbox holds it."""

    secret: str | None
    expires_at: datetime
    delivery: LinkDelivery
    sent_to: str | None = None  # the masked address, when mailed


def create_password_link(
    rt: Runtime, session: Session, user: User, *, actor: User | None, ctx: AccessContext | None = None
) -> IssuedLink:
    """A single-use secret with which `user` sets their own password, valid for 72 hours; only its hash is
    kept, and earlier unused links of the person stop working.

    The operator (`actor` None) gets the secret to print. An administrator gets it only for a brand-new account
    (see `established`) they created themselves, to hand over; for an account in use, or one another
    administrator or the operator made, it goes by mail to the owner's address and the administrator learns only
    the masked address, since whoever holds it can sign in as that person (see `link_holders`). An
    administrator is refused (`policy.accounts`, the two halves of an account) when they removed the person's
    second factor, or, for a mailed link, changed the person's address, since the person last signed in; and
    when a mailed link cannot go (no mail configured, no address on record: the operator gives one).

    Raises:
        policy.Denied: `separation_of_duties`, `mail_not_configured`, `no_email_address` (and the account rules).
        ServiceError: `account_disabled`, for a link that would be mailed to someone who cannot sign in.
    """
    in_use = actor is not None and established(session, user)
    creator = account_creator(session, user)
    if actor is not None:
        facts: dict[str, Any] = {"restored_by": _second_factor_removers(session, user), "established": in_use,
                                 "created_by": creator}
        if link_by_mail(actor, in_use, creator):
            facts |= {"addressed_by": _address_changers(session, user, in_use_only=in_use),
                      "mail": mail_state(rt.settings, user)}
        policy.require(actor, Action.USER_MANAGE, user, change="password_link", audit={"subject_user_id": user.id},
                       **facts)
    by_mail = link_by_mail(actor, in_use, creator)
    if by_mail and not user.can_sign_in:
        raise ServiceError("account_disabled", _l("A disabled or departed account is sent no password link: "
                                                  "enable it first."))
    now = utcnow()
    for old in session.scalars(select(PasswordLink).where(PasswordLink.user_id == user.id,
                                                          PasswordLink.used_at.is_(None))):
        old.used_at = now
    secret = secrets.token_urlsafe(32)
    expires_at = now + timedelta(hours=PASSWORD_LINK_HOURS)
    session.add(PasswordLink(user_id=user.id, token_hash=hash_token(secret), created_by_id=actor.id if actor else None,
                             created_at=now, expires_at=expires_at))
    session.flush()
    detail: dict[str, object] = {"hours": PASSWORD_LINK_HOURS}
    if by_mail:
        assert actor is not None and user.email is not None  # by_mail needs both; the policy saw to the address
        queued: list[int] = []
        events.emit("account.password_link", session=session, rt=rt, user=user, link_path=password_set_path(secret),
                    hours=PASSWORD_LINK_HOURS, actor=actor, queued=queued)
        if not queued:  # no mail listener, or it wrote nothing: never tell the administrator "sent" untruly
            raise RuntimeError(f"the password link of {user.username} was not queued for mail")
        issued = IssuedLink(None, expires_at, LinkDelivery.MAIL, masked(user.email))
        detail |= {"delivery": str(issued.delivery), "to": issued.sent_to}
    else:
        issued = IssuedLink(secret, expires_at, LinkDelivery.SHOWN if actor is not None else LinkDelivery.OPERATOR)
        detail["delivery"] = str(issued.delivery)
    rt.audit.record(session, action=AuditAction.ACCOUNT_PASSWORD_LINK, actor=actor, ctx=ctx or AccessContext.cli(),
                    subject_user_id=user.id, detail=detail)
    return issued


def password_link(session: Session, secret: str) -> PasswordLink:
    """The live link behind `secret`; NotFound when unknown, used or expired."""
    link = session.scalar(select(PasswordLink).where(PasswordLink.token_hash == hash_token(secret)))
    if link is None or link.used_at is not None or link.expires_at <= utcnow() or not link.user.can_sign_in:
        raise NotFound("password link")
    return link


def set_password_with_link(rt: Runtime, session: Session, secret: str, new: str, ctx: AccessContext) -> User:
    """Set a password through a one-time link; the link is spent and the person's sessions end."""
    link = password_link(session, secret)
    user = link.user
    check_password_rules(new, user.username)
    link.used_at = utcnow()
    user.password_hash = rt.passwords.hash(new)
    end_sessions(user)
    rt.audit.record(session, action=AuditAction.ACCOUNT_PASSWORD_SET, actor=user, ctx=ctx, subject_user_id=user.id)
    return user


def remove_role(
    rt: Runtime, session: Session, user: User, role: Role, *, actor: User | None, ctx: AccessContext | None = None
) -> None:
    if actor is not None:
        policy.require(actor, Action.USER_MANAGE, user, change="remove_role", audit={"subject_user_id": user.id})
    held = user.role_set
    for assignment in list(user.roles):
        if assignment.role == role:
            user.roles.remove(assignment)
    session.flush()
    rt.audit.record(session, action=AuditAction.ROLE_REMOVE, actor=actor, ctx=ctx or AccessContext.cli(),
                    subject_user_id=user.id, detail={"role": str(role)})
    if role in held:
        events.emit("decider.lost", session=session, rt=rt, user=user, roles=frozenset({role}))


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(
    rt: Runtime, session: Session, user: User, *, name: str = "cli", expires_at: datetime | None = None,
    scope: str = "write", code: str | None = None, actor: User | None = None, ctx: AccessContext | None = None,
) -> NewToken:
    """A bearer token for `user`; the secret is returned once and only its hash is stored.

    `actor` is the person making their own token on their account page, or None for the operator on the
    server (service accounts, `vault token create`). Every token expires: by default after 30 days (12
    hours for a duty role), never later than `token_cap`. A person with a duty role making their own token
    gives a fresh authenticator code (`code`): a stolen session alone does not mint a token.

    Raises:
        ServiceError: `account_disabled`, `invalid_scope`, `token_expiry` (past or beyond the cap),
            `second_factor_required` / `bad_second_factor` / `code_reused`.
    """
    ctx = ctx or AccessContext.cli()
    if not user.can_sign_in:
        raise ServiceError("account_disabled", _l("A disabled or departed account cannot get a token."))
    if scope not in TOKEN_SCOPES:
        raise ServiceError("invalid_scope", _l("A token's scope is read or write."))
    now = utcnow()
    cap = token_cap(rt.settings, user)
    if expires_at is None:
        expires_at = now + min(cap, timedelta(days=DEFAULT_TOKEN_DAYS))
    if expires_at <= now or expires_at - now > cap + timedelta(minutes=1):
        hours = int(cap.total_seconds() // 3600)
        limit = f"{hours} hours" if hours < 48 else f"{hours // 24} days"
        raise ServiceError("token_expiry", _l("A token of %(username)s must expire within %(limit)s.",
                                              username=user.username, limit=limit))
    if actor is not None and has_duty_role(user):
        if not code or not totp.enrolled(session, user):
            raise ServiceError("second_factor_required",
                               _l("Your roles need a fresh code from your authenticator to make a token."))
        outcome, _method = totp.verify(rt, session, user, code)
        if outcome != "ok":
            throttle.count_failure(rt, session, user, user.username, ctx)
            rt.audit.record(session, action=AuditAction.TOKEN_CREATE, actor=actor, ctx=ctx, outcome="denied",
                            reason_code=outcome, subject_user_id=user.id)
            raise ServiceError(outcome, _l("The code is not valid."))
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name[:100], token_hash=hash_token(secret), prefix=secret[:10],
                     expires_at=expires_at, scope=scope, created_at=now)
    session.add(token)
    session.flush()
    rt.audit.record(session, action=AuditAction.TOKEN_CREATE, actor=actor, ctx=ctx, subject_user_id=user.id,
                    detail={"token_id": token.id, "name": token.name, "scope": scope,
                            "expires_at": expires_at.isoformat(timespec="seconds")})
    return NewToken(token=token, secret=secret)


def revoke_tokens(
    rt: Runtime, session: Session, user: User, *, token_id: int | None = None, actor: User | None = None,
    ctx: AccessContext | None = None,
) -> int:
    """Revoke one token of `user` (or all of them); returns how many were revoked."""
    query = select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    if token_id is not None:
        query = query.where(ApiToken.id == token_id)
    tokens = list(session.scalars(query))
    if token_id is not None and not tokens:
        raise NotFound("token")
    now = utcnow()
    for token in tokens:
        token.revoked_at = now
        rt.audit.record(session, action=AuditAction.TOKEN_REVOKE, actor=actor, ctx=ctx or AccessContext.cli(),
                        subject_user_id=user.id, detail={"token_id": token.id})
    return len(tokens)


def _caller_statement() -> Select[Any]:
    accepted = exists().where(AgreementAcceptance.user_id == ApiToken.user_id,
                              AgreementAcceptance.version == bindparam("agreement"))
    locked_until = (select(LoginAttempt.locked_until)
                    .where(LoginAttempt.key == literal(throttle.user_key("")) + User.username).scalar_subquery())
    return (
        select(ApiToken, accepted.label("accepted"), locked_until.label("locked_until"))
        .join(ApiToken.user).outerjoin(User.roles)
        .options(contains_eager(ApiToken.user).contains_eager(User.roles))
        .where(ApiToken.token_hash == bindparam("token_hash"))
    )


# Asked on every API request: built once, bound by parameter (building it cost more than running it).
_CALLER = _caller_statement()


def api_caller(session: Session, secret: str, settings: Settings) -> tuple[ApiToken, bool] | None:
    """The live token behind a bearer secret and whether its owner accepted the current agreement, in one
    statement: the token, its owner, the owner's roles, the owner's lockout and the acceptance are
    joined, since every API request asks all of them before anything else. None: the secret is unknown,
    the token revoked, or older than `token_cap` from when it was made, whatever its stored expiry (one
    made before tokens expired has none, a lowered `token_max_days` holds for the tokens already out too,
    and a duty role's token lives 12 hours); or its owner is disabled, departed or locked out.
    """
    if not secret.startswith(TOKEN_PREFIX):
        return None
    rows = session.execute(
        _CALLER, {"token_hash": hash_token(secret), "agreement": settings.agreement_version}
    ).unique().all()
    if not rows:
        return None
    token, agreed, locked = rows[0]
    now = utcnow()
    if token.revoked_at is not None or token_expires_at(settings, token) <= now:
        return None
    user = token.user
    if locked is not None and locked.tzinfo is None:
        locked = locked.replace(tzinfo=UTC)
    if not user.can_sign_in or (locked is not None and locked > now):
        return None
    if token.last_used_at is None or now - token.last_used_at > timedelta(seconds=60):
        token.last_used_at = now
    return token, bool(agreed)


def list_tokens(session: Session, user: User) -> list[ApiToken]:
    """A person's tokens that still work or worked lately, newest first (never their secrets)."""
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
                                .order_by(ApiToken.id.desc())))


def end_sessions(user: User) -> None:
    """End every signed-in session of `user` at their next request (sessions carry the epoch they began in)."""
    user.session_epoch = (user.session_epoch or 0) + 1


def log_out_everywhere(rt: Runtime, session: Session, user: User, ctx: AccessContext) -> None:
    end_sessions(user)
    rt.audit.record(session, action=AuditAction.AUTH_LOGOUT_EVERYWHERE, actor=user, ctx=ctx, subject_user_id=user.id)


def disable_user(
    rt: Runtime, session: Session, user: User, actor: User | None, ctx: AccessContext | None = None, *,
    reason: str | None = None, decided: bool = False,
) -> None:
    """Disable an account: its sessions and its API tokens stop working at once, not at their expiry.
    `reason` (the operator's words, optional) is kept with the record. `decided`: the act is a step of a
    decision the caller has checked already (a departure completed), recorded under `actor` without the
    account rule, which is about administrators disabling accounts."""
    ctx = ctx or AccessContext.cli()
    reason = (reason or "").strip() or None
    if reason is not None and len(reason) > MAX_REASON:
        raise ServiceError("reason_too_long", _l("A reason has at most %(n)s characters.", n=MAX_REASON))
    if actor is not None and not decided:
        policy.require(actor, Action.USER_MANAGE, user, change="disable", audit={"subject_user_id": user.id})
    user.disabled = True
    end_sessions(user)
    revoke_tokens(rt, session, user, actor=actor, ctx=ctx)
    rt.audit.record(session, action=AuditAction.USER_DISABLE, actor=actor, ctx=ctx, subject_user_id=user.id,
                    reason_text=reason)
    events.emit("decider.lost", session=session, rt=rt, user=user, roles=user.role_set)


def enable_user(
    rt: Runtime, session: Session, user: User, actor: User | None, ctx: AccessContext | None = None
) -> None:
    """Re-enable an account, lifting a sign-in lockout too (the administrator has spoken to the person)."""
    ctx = ctx or AccessContext.cli()
    if actor is not None:
        policy.require(actor, Action.USER_MANAGE, user, change="enable", audit={"subject_user_id": user.id})
    user.disabled = False
    throttle.clear(session, user.username)
    rt.audit.record(session, action=AuditAction.USER_ENABLE, actor=actor, ctx=ctx, subject_user_id=user.id)


def confirm_password(
    rt: Runtime, session: Session, user: User, password: str, ctx: AccessContext, *, action: AuditAction
) -> None:
    """Ask a signed-in person for their password again before a sensitive change of their account.

    Counted like a sign-in, so a session left open is not a way to guess the password; raises
    ServiceError (after auditing the refusal in the caller's transaction, which the caller commits).
    """
    block = throttle.blocked(session, user.username, ctx.client_addr)
    if block:
        rt.audit.record(session, action=action, actor=user, ctx=ctx, outcome="denied", reason_code=block,
                        subject_user_id=user.id)
        raise ServiceError(block, _l("Too many failed attempts; try again later."))
    if not rt.passwords.verify(user.password_hash, password):
        throttle.count_failure(rt, session, user, user.username, ctx)
        rt.audit.record(session, action=action, actor=user, ctx=ctx, outcome="denied",
                        reason_code="bad_credentials", subject_user_id=user.id)
        raise ServiceError("bad_credentials", _l("The password is wrong."))


def change_password(
    rt: Runtime, session: Session, user: User, *, current: str, new: str, ctx: AccessContext
) -> None:
    """Change one's own password (the current one is asked again); the person's other sessions end."""
    confirm_password(rt, session, user, current, ctx, action=AuditAction.ACCOUNT_PASSWORD)
    check_password_rules(new, user.username)
    user.password_hash = rt.passwords.hash(new)
    end_sessions(user)
    rt.audit.record(session, action=AuditAction.ACCOUNT_PASSWORD, actor=user, ctx=ctx, subject_user_id=user.id)


def reset_second_factor(
    rt: Runtime, session: Session, user: User, actor: User | None, ctx: AccessContext | None = None
) -> bool:
    """Remove a person's authenticator and recovery codes (a lost phone); their sessions end, and a role
    that requires a second factor makes them set up a new one at their next sign-in. Returns whether
    the person had one. An administrator who made the person a password link since they last signed in is
    refused when there is an authenticator to remove (`policy.accounts`: the two would be the account)."""
    ctx = ctx or AccessContext.cli()
    if actor is not None:
        makers = _link_makers(session, user) if totp.record(session, user) is not None else frozenset()
        policy.require(actor, Action.USER_MANAGE, user, change="reset_second_factor", restored_by=makers,
                       audit={"subject_user_id": user.id})
    existed = totp.remove(rt, session, user, actor=actor, ctx=ctx, action=AuditAction.TOTP_RESET)
    end_sessions(user)
    return existed
