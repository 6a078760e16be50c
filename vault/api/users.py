"""Accounts for HR systems: create a person, name their manager and mail address, give and take roles,
disable and enable them, hand out a new password link, reset a lost second factor; and the second
person's side of the two-person rule: the role requests and the managers named waiting for a decision.

The same services and policy as the admin pages (`vault.pages.admin`): administrators manage accounts;
nobody changes their own roles, line, second factor or password link, nor disables themselves, nor makes
both a second-factor reset and a password link of someone else before that person signs in again; a role
of power (or any role for a person on notice) is only requested (202), and a second administrator (an
auditor, for the auditor role) approves or refuses it, never the one who asked nor the person. An
administrator names a manager the same way (202; a second administrator approves, never the one who
named nor the person nor the manager), while taking a manager away happens at once. An
administrator never chooses a password: a new account answers, once, with the one-time link its owner
sets theirs with. No other secret is ever in an answer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import g, jsonify, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from vault import policy
from vault.api.blueprint import ID, bp
from vault.api.errors import invalid
from vault.api.inputs import Field, JsonBody, Query, parse_query, text_problem
from vault.api.serializers import timestamp, user_ref
from vault.api.spec import operation
from vault.core.actions import Action
from vault.core.errors import NotFound
from vault.mail.accounts import set_email
from vault.models import ManagerRequest, Role, RoleRequest, User
from vault.services import accounts, managers, totp
from vault.web import auth
from vault.web.guard import permission
from vault.web.pipeline import access_context, db_session, runtime

ROLE_NAMES = tuple(str(role) for role in Role)
USERNAME = "<string(maxlength=64):username>"


@dataclass(frozen=True)
class RoleList(Field):
    """A JSON array of distinct role names (the create page's check boxes)."""

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "items": {"type": "string", "enum": list(ROLE_NAMES)}, "uniqueItems": True,
                "maxItems": len(ROLE_NAMES), "description": self.description, "default": []}

    def check(self, value: Any) -> tuple[Any, str | None]:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            return None, "must be an array of role names"
        if len(set(value)) != len(value):
            return None, "must not name a role twice"
        unknown = [item for item in value if item not in ROLE_NAMES]
        if unknown:
            return None, "must be role names, one of: " + ", ".join(ROLE_NAMES)
        return tuple(Role(item) for item in value), None


CREATE = JsonBody(
    "UserCreate",
    fields=(
        Field("username", "string", "1–64 letters, digits, dots, dashes or underscores.", max_length=64),
        Field("display_name", "string", "The full name shown in pages and reports (default: the user name).",
              required=False, default=None, max_length=200, nullable=True),
        RoleList("roles", "array", "Roles to give. A role of power (approver, custodian, auditor, admin) is only "
                 "requested: a second person approves it (`GET /role-requests`).", required=False, default=()),
        Field("email", "string", "The address for notifications.", required=False, default=None, max_length=254,
              nullable=True),
        Field("manager", "string", "The user name of the person's manager.", required=False, default=None,
              max_length=64, nullable=True),
    ),
    description="No password: the answer carries a one-time link with which the person sets their own.",
)
MANAGER = JsonBody(
    "UserManager",
    fields=(Field("manager", "string", "The user name of the manager; null: the person reports to nobody.",
                  max_length=64, nullable=True),),
)
EMAIL = JsonBody(
    "UserEmail",
    fields=(Field("email", "string", "The address for notifications; null removes it.",
                  required=True, max_length=254, nullable=True),),
)
ROLE = JsonBody("UserRole", fields=(Field("role", "string", "A role name.", choices=ROLE_NAMES),))
CONFIRM = JsonBody("UserAct", fields=(), required=False, description="No body, or an empty object.")
LIST_QUERY = (Query("page", "integer", "Page number, from 1 (50 accounts a page, by user name)."),)


def _request_json(session: Session, request: RoleRequest | ManagerRequest, **what: Any) -> dict[str, Any]:
    """A request waiting for a second person, or decided by one: `what` it asks for, who asked, who decided."""
    decided_by = session.get(User, request.decided_by_id) if request.decided_by_id else None
    return {
        "id": request.id,
        "user": user_ref(request.user),
        **what,
        "status": str(request.status),
        "requested_by": user_ref(request.requested_by),
        "requested_at": timestamp(request.requested_at),
        "decided_by": user_ref(decided_by),
        "decided_at": timestamp(request.decided_at),
    }


def role_request_json(session: Session, request: RoleRequest) -> dict[str, Any]:
    return _request_json(session, request, role=request.role)


def manager_request_json(session: Session, request: ManagerRequest) -> dict[str, Any]:
    return _request_json(session, request, manager=user_ref(request.manager))


def user_json(session: Session, user: User, *, enrolled: bool, pending: list[RoleRequest],
              managers_named: list[ManagerRequest]) -> dict[str, Any]:
    """An account as the admin's page shows it; never its password hash, tokens or second-factor secret."""
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "roles": sorted(str(role) for role in user.role_set),
        "status": "disabled" if user.disabled else str(user.status),
        "manager": user_ref(user.manager),
        "last_day": user.last_day.isoformat() if user.last_day else None,
        "second_factor": {"enrolled": enrolled, "required": totp.required(user)},
        "pending_role_requests": [role_request_json(session, request) for request in pending],
        "pending_manager_requests": [manager_request_json(session, request) for request in managers_named],
        "created_at": timestamp(user.created_at),
        "last_login_at": timestamp(user.last_login_at),
    }


def _detail(user: User) -> dict[str, Any]:
    session = db_session()
    return user_json(session, user, enrolled=totp.enrolled(session, user),
                     pending=accounts.pending_role_requests(session, user),
                     managers_named=managers.pending_manager_requests(session, user))


def _with_link(user: User, issued: accounts.IssuedLink) -> Any:
    """The account and how its one-time link went: the link itself, shown this once (only its hash is kept),
    for a brand-new account; only the masked address it was mailed to for an account in use. Never cached."""
    link: dict[str, Any] = {"delivery": str(issued.delivery), "expires_at": timestamp(issued.expires_at)}
    if issued.secret is not None:
        link["url"] = url_for("auth.set_password", secret=issued.secret, _external=True)
    else:
        link["sent_to"] = issued.sent_to
    response = jsonify({"user": _detail(user), "password_link": link})
    response.headers["Cache-Control"] = "no-store"
    return response


def _person(username: str) -> User:
    """The account named in the path; a name no account can have (control characters, which the databases
    would refuse as a parameter) is as unknown as any other."""
    if text_problem(username):
        raise NotFound("user")
    return accounts.get_user(db_session(), username)


def _manager(session: Session, username: str) -> User:
    """The named manager: unknown is a 404; a disabled account is no choice, as on the page."""
    manager = accounts.get_user(session, username)
    if manager.disabled:
        raise invalid({"manager": "is a disabled account"}, _l("A disabled account cannot be anyone's manager."))
    return manager


def _set_email(user: User, address: str | None) -> None:
    policy.require(auth.current(), Action.USER_MANAGE, user, change="email", audit={"subject_user_id": user.id})
    set_email(runtime(), db_session(), user, address, actor=auth.current(), ctx=access_context())


@bp.get("/users")
@permission(Action.USER_MANAGE)
@operation("Every account, by user name (administrators)", tag="users", response="UserList", query=LIST_QUERY)
def list_users() -> Any:
    params = parse_query(LIST_QUERY)
    session = db_session()
    found = accounts.page_of_users(session, page=params["page"] or 1)
    pending: dict[int, list[RoleRequest]] = defaultdict(list)
    for request in accounts.pending_role_requests(session):
        pending[request.user_id].append(request)
    named: dict[int, list[ManagerRequest]] = defaultdict(list)
    for named_request in managers.pending_manager_requests(session):
        named[named_request.user_id].append(named_request)
    return jsonify(users=[user_json(session, u, enrolled=u.id in found.enrolled, pending=pending[u.id],
                                    managers_named=named[u.id])
                          for u in found.users], total=found.total, page=found.page, pages=found.pages)


@bp.post("/users")
@permission(Action.USER_MANAGE)
@operation("Create an account (for HR systems); the answer carries its one-time password link", tag="users",
           ok=201, response="UserWithLink", body=CREATE, errors=(404, 409),
           description="Recorded as `user:create`, each role as `role:assign` or `role:request`, the address as "
                       "`user:email`, the manager as `manager:request` (a second administrator approves it: "
                       "`GET /manager-requests`) and the link as `account:password_link`. The "
                       "link is in this answer only (it sets the password once and expires after 72 hours); a "
                       "`password` field is refused. 400 `invalid_username`, `invalid_email`; 403 `role_conflict`; "
                       "404 an unknown manager; 409 `user_exists`, `email_taken`; 422 a disabled manager. Nothing "
                       "is created when anything is refused.")
def create_user() -> Any:
    values = CREATE.parse()
    session, actor, ctx = db_session(), auth.current(), access_context()
    manager = _manager(session, values["manager"]) if values["manager"] else None
    if values["roles"]:
        g.vault_denied_action = str(Action.ROLE_ASSIGN)  # as on the page: a refusal here is a role conflict
    created = accounts.create_user(runtime(), session, username=values["username"], password=None,
                                   display_name=values["display_name"] or None, roles=values["roles"], actor=actor,
                                   ctx=ctx)
    g.pop("vault_denied_action", None)
    if values["email"]:
        _set_email(created, values["email"])
    if manager is not None:
        managers.set_manager(runtime(), session, created, manager, actor=actor, ctx=ctx)
    issued = accounts.create_password_link(runtime(), session, created, actor=actor, ctx=ctx)
    return _with_link(created, issued), 201


@bp.get(f"/users/{USERNAME}")
@permission(Action.USER_MANAGE)
@operation("One account: roles, manager, status, second factor, role and manager requests waiting", tag="users",
           response="User")
def show_user(username: str) -> Any:
    return jsonify(_detail(_person(username)))


@bp.post(f"/users/{USERNAME}/manager")
@permission(Action.USER_MANAGE)
@operation("Name the person's manager (a request a second administrator approves), or nobody (at once)",
           tag="users", response="User", accepted="ManagerRequest", body=MANAGER,
           description="A manager sees the customers of everyone below the person, so naming one is only "
                       "requested (202, `manager:request`; naming the same again answers the same request) and "
                       "is in place once a second administrator approves it (`POST /manager-requests/{id}/approve`"
                       "). Null, or the present manager, answers 200 at once (`user:manager`). 403 "
                       "`separation_of_duties` for one's own, `manager_departing` when the manager or anyone above "
                       "them is on notice; 400 `manager_cycle` when the manager reports to the "
                       "person; 404 an unknown person or manager; 422 a disabled manager.")
def set_manager(username: str) -> Any:
    values = MANAGER.parse()
    session = db_session()
    person = _person(username)
    manager = _manager(session, values["manager"]) if values["manager"] else None
    waiting = managers.set_manager(runtime(), session, person, manager, actor=auth.current(), ctx=access_context())
    if waiting is not None:
        return jsonify(manager_request_json(session, waiting)), 202
    return jsonify(_detail(person))


@bp.post(f"/users/{USERNAME}/email")
@permission(Action.USER_MANAGE)
@operation("Set or remove the person's mail address (audited)", tag="users", response="User", body=EMAIL,
           errors=(409,),
           description="Recorded as `user:email` with the old and new address. The previous address, if any, is "
                       "sent a notice of the change (`notice`: `queued` in the record). 400 `invalid_email`; 409 "
                       "`email_taken` when another account has it.")
def change_email(username: str) -> Any:
    values = EMAIL.parse()
    person = _person(username)
    _set_email(person, values["email"])
    return jsonify(_detail(person))


@bp.post(f"/users/{USERNAME}/roles")
@permission(Action.ROLE_ASSIGN)
@operation("Give a role, or ask for it where a second person must approve (audited)", tag="users",
           response="User", accepted="RoleRequest", body=ROLE,
           description="200: the role is given (`role:assign`), or was held already. 202: a role of power, or any "
                       "role for a person on notice, waits for a second person; the answer is the request "
                       "(`role:request`; asking again answers the same request). 403 `separation_of_duties` for "
                       "one's own roles, `role_conflict` (with a role held or already requested).")
def add_role(username: str) -> Any:
    values = ROLE.parse()
    session = db_session()
    person = _person(username)
    waiting = accounts.assign_role(runtime(), session, person, Role(values["role"]), actor=auth.current(),
                                   ctx=access_context())
    if waiting is not None:
        return jsonify(role_request_json(session, waiting)), 202
    return jsonify(_detail(person))


@bp.post(f"/users/{USERNAME}/roles/remove")
@permission(Action.USER_MANAGE)
@operation("Take a role away (audited)", tag="users", response="User", body=ROLE,
           description="Recorded as `role:remove`. 403 `separation_of_duties` for one's own roles.")
def remove_role(username: str) -> Any:
    values = ROLE.parse()
    session = db_session()
    person = _person(username)
    accounts.remove_role(runtime(), session, person, Role(values["role"]), actor=auth.current(),
                         ctx=access_context())
    return jsonify(_detail(person))


def _act_on(username: str, act: Callable[..., None]) -> Any:
    """An act on an account that takes no input (disable, enable, second-factor reset): the service checks
    the policy and records it; the answer is the account as it now is."""
    CONFIRM.parse()
    person = _person(username)
    act(runtime(), db_session(), person, auth.current(), access_context())
    return jsonify(_detail(person))


@bp.post(f"/users/{USERNAME}/disable")
@permission(Action.USER_MANAGE)
@operation("Disable an account: its sessions and API tokens end at once (audited)", tag="users", response="User",
           body=CONFIRM, description="Recorded as `user:disable` (and each token as `token:revoke`). 403 "
                                     "`self_disable` for one's own account.")
def disable_user(username: str) -> Any:
    return _act_on(username, accounts.disable_user)


@bp.post(f"/users/{USERNAME}/enable")
@permission(Action.USER_MANAGE)
@operation("Enable an account again, lifting a sign-in lockout (audited)", tag="users", response="User",
           body=CONFIRM, description="Recorded as `user:enable`.")
def enable_user(username: str) -> Any:
    return _act_on(username, accounts.enable_user)


@bp.post(f"/users/{USERNAME}/password-link")
@permission(Action.USER_MANAGE)
@operation("A new one-time password link; earlier unused links stop working (audited)", tag="users",
           response="UserWithLink", body=CONFIRM,
           description="Recorded as `account:password_link` with how it went (`delivery`). For a brand-new "
                       "account (never signed in, no API token) the link is in this answer only (`url`), to hand "
                       "over. For an account in use it is mailed to the person's address on record and the answer "
                       "says only where (`sent_to`, the address masked): whoever holds the link can sign in as "
                       "them. 403 `separation_of_duties` for one's own account (change it from My account), for "
                       "the administrator who removed the person's second factor since they last signed in, and, "
                       "for an account in use, for the administrator who changed the person's e-mail address since "
                       "then (another administrator gives the link); 403 `mail_not_configured` or "
                       "`no_email_address` when an account in use cannot be mailed (the operator gives one: `vault "
                       "user password-link`); 400 `account_disabled` for a disabled account in use.")
def new_password_link(username: str) -> Any:
    CONFIRM.parse()
    person = _person(username)
    issued = accounts.create_password_link(runtime(), db_session(), person, actor=auth.current(),
                                           ctx=access_context())
    return _with_link(person, issued)


@bp.post(f"/users/{USERNAME}/second-factor/reset")
@permission(Action.USER_MANAGE)
@operation("Remove the person's authenticator and recovery codes, e.g. a lost phone (audited)", tag="users",
           response="User", body=CONFIRM,
           description="Recorded as `totp:reset`; the person's sessions end, and a role that needs a second factor "
                       "makes them set up a new one at their next sign-in. 403 `separation_of_duties` for one's own, "
                       "and for the administrator who made the person a password link since they last signed in "
                       "(another administrator resets it).")
def reset_second_factor(username: str) -> Any:
    return _act_on(username, accounts.reset_second_factor)


@bp.get("/role-requests")
@permission(Action.ROLE_APPROVE)
@operation("Every role request waiting for a second person, oldest first (administrators and auditors)",
           tag="users", response="RoleRequestList")
def list_role_requests() -> Any:
    session = db_session()
    return jsonify(role_requests=[role_request_json(session, r) for r in accounts.pending_role_requests(session)])


def _decide(request_id: int, *, approve: bool, find: Callable[[Session, int], Any], decide: Callable[..., None],
            to_json: Callable[[Session, Any], dict[str, Any]]) -> Any:
    """The second person's decision on a request waiting for them (a role, or a manager named)."""
    CONFIRM.parse()
    session = db_session()
    pending = find(session, request_id)
    decide(runtime(), session, pending, approve=approve, actor=auth.current(), ctx=access_context())
    return jsonify(to_json(session, pending))


def _decide_role(request_id: int, *, approve: bool) -> Any:
    return _decide(request_id, approve=approve, find=accounts.get_role_request, decide=accounts.decide_role_request,
                   to_json=role_request_json)


_DECISION = ("403 `separation_of_duties` for the one who asked and for the person themselves, `not_permitted` "
             "when the auditor role is decided by a non-auditor or another role by a non-administrator, "
             "`role_conflict`; 404 for an unknown request or one already decided.")


@bp.post(f"/role-requests/<{ID}:request_id>/approve")
@permission(Action.ROLE_APPROVE)
@operation("Approve a role request: the role is given now (audited)", tag="users", response="RoleRequest",
           body=CONFIRM, description="Recorded as `role:approve` and `role:assign`. " + _DECISION)
def approve_role_request(request_id: int) -> Any:
    return _decide_role(request_id, approve=True)


@bp.post(f"/role-requests/<{ID}:request_id>/refuse")
@permission(Action.ROLE_APPROVE)
@operation("Refuse a role request (audited)", tag="users", response="RoleRequest", body=CONFIRM,
           description="Recorded as `role:refuse`. " + _DECISION)
def refuse_role_request(request_id: int) -> Any:
    return _decide_role(request_id, approve=False)


@bp.get("/manager-requests")
@permission(Action.MANAGER_APPROVE)
@operation("Every manager named and waiting for a second administrator, oldest first (administrators)",
           tag="users", response="ManagerRequestList")
def list_manager_requests() -> Any:
    session = db_session()
    return jsonify(manager_requests=[manager_request_json(session, r)
                                     for r in managers.pending_manager_requests(session)])


def _decide_manager(request_id: int, *, approve: bool) -> Any:
    return _decide(request_id, approve=approve, find=managers.get_manager_request,
                   decide=managers.decide_manager_request, to_json=manager_request_json)


_MANAGER_DECISION = ("403 `separation_of_duties` for the one who named the manager, the person and the manager "
                     "named, `decider_departing` for an administrator on notice; 404 for an unknown request or one "
                     "already decided.")


@bp.post(f"/manager-requests/<{ID}:request_id>/approve")
@permission(Action.MANAGER_APPROVE)
@operation("Approve a manager named by another administrator: the line changes now (audited)", tag="users",
           response="ManagerRequest", body=CONFIRM,
           description="Recorded as `manager:approve` and `user:manager`. 400 `manager_cycle` (the chain changed "
                       "since) or `manager_disabled`; 403 `manager_departing` (the manager, or anyone above them, "
                       "has given notice since). " + _MANAGER_DECISION)
def approve_manager_request(request_id: int) -> Any:
    return _decide_manager(request_id, approve=True)


@bp.post(f"/manager-requests/<{ID}:request_id>/refuse")
@permission(Action.MANAGER_APPROVE)
@operation("Refuse a manager named by another administrator (audited)", tag="users", response="ManagerRequest",
           body=CONFIRM, description="Recorded as `manager:refuse`. " + _MANAGER_DECISION)
def refuse_manager_request(request_id: int) -> Any:
    return _decide_manager(request_id, approve=False)
