"""Who manages whom: the line of managers, and the two-person rule for naming one.

A manager sees the customers of everyone below the person (`policy.visibility`), so naming a manager
widens a reach as much as giving a role does: from a page or the API one administrator names, and the
manager is in place only when a second administrator approves (`policy.roles`). Taking a manager away
narrows a reach and happens at once. The command line is trusted, as whoever runs it holds the server:
it names at once, under the operator's name, which is how an installation with one administrator (and
the demo) builds its lines. Trusted with the two-person rule, not with the notice: the operator names no
manager who is on notice or below someone who is (`manager_departing`), as the pages and the API do not,
since that opens a team's customers to a leaver whoever types it (`refuse_departing_manager`).
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from vault import policy
from vault.core.actions import Action
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.core.errors import NotFound, ServiceError
from vault.db.locking import locked, take_turn
from vault.models import ManagerRequest, RequestStatus, User, utcnow
from vault.runtime import Runtime
from vault.services.accounts import link_holders


def set_manager(rt: Runtime, session: Session, user: User, manager: User | None, *, actor: User | None,
                ctx: AccessContext | None = None) -> ManagerRequest | None:
    """Name the person's manager (None: nobody). From a page or the API (`actor` set) a manager is only
    requested: the request is returned, and the line changes when a second administrator approves it.

    Raises:
        policy.Denied: the role gate, an administrator changing their own line, one on notice naming,
            `manager_departing` (the manager named, or one above them, is on notice; the operator too).
        ServiceError: `manager_cycle` (the manager reports to the person, directly or further down).
    """
    ctx = ctx or AccessContext.cli()
    if actor is not None:
        policy.require(actor, Action.USER_MANAGE, user, change="manager", manager=manager,
                       audit={"subject_user_id": user.id})
    else:
        refuse_departing_manager(manager, user=user)
    if manager is not None:
        _refuse_cycle(session, user, manager)
    if actor is not None and manager is not None and manager.id != user.manager_id:
        return _request(rt, session, user, manager, actor=actor, ctx=ctx)
    _apply(rt, session, user, manager, actor=actor, ctx=ctx)
    return None


def refuse_departing_manager(manager: User | None, *, user: User | None) -> None:
    """The operator's check before naming `manager` (None: nobody, always allowed): the same rule of the notice
    that binds an administrator (`policy.reach_through_manager`), without the role gate the operator answers
    to none of. A leaver, or a manager below one, named over a colleague would see that colleague's customers
    in their last days, which no handover lists; trusting the server's operator with the two-person rule does
    not make that reach any smaller. `user` None: the account is not made yet (`vault user add --manager`),
    so the refusal's record names nobody rather than an id its rolled-back creation may hand on.

    Raises:
        policy.Denied: `manager_departing`, under `user:manage`, which the command line records.
    """
    if not (reach := policy.reach_through_manager(manager)):
        raise policy.Denied(reach, action=Action.USER_MANAGE,
                            **({"subject_user_id": user.id} if user is not None else {}))


CHAIN_TURN = b"vaultmgr"
"""Changes of the chain of managers take turns (`take_turn`): each checks the whole chain above the manager
it names, and two at once (Mal named Bob's manager and Bob Mal's) each found no loop in a chain the other
was changing, and made one."""


def _refuse_cycle(session: Session, user: User, manager: User) -> None:
    """Refuse `manager` when they report to `user`, directly or further up; the chain is read as it now
    stands, in this change's turn (changes of the chain committed meanwhile included)."""
    take_turn(session, CHAIN_TURN)
    boss: int | None = manager.id
    seen: set[int] = set()
    while boss is not None and boss not in seen:
        if boss == user.id:
            raise ServiceError("manager_cycle", _l("%(manager)s reports to %(person)s: a chain of managers "
                                                   "cannot loop.",
                                                   manager=manager.display_name, person=user.display_name))
        seen.add(boss)
        boss = session.scalar(select(User.manager_id).where(User.id == boss))


def _apply(rt: Runtime, session: Session, user: User, manager: User | None, *, actor: User | None,
           ctx: AccessContext, request_id: int | None = None) -> None:
    take_turn(session, CHAIN_TURN)
    locked(session, User, user.id)  # the manager it has now, changed meanwhile or not, is the one replaced
    previous = user.manager_id
    user.manager_id = manager.id if manager is not None else None
    user.manager = manager
    session.flush()
    detail: dict[str, object] = {"from": previous, "to": user.manager_id}
    if request_id is not None:
        detail["request_id"] = request_id
    rt.audit.record(session, action=AuditAction.USER_MANAGER, actor=actor, ctx=ctx, subject_user_id=user.id,
                    detail=detail)


def _request(rt: Runtime, session: Session, user: User, manager: User, *, actor: User,
             ctx: AccessContext) -> ManagerRequest:
    existing = session.scalar(select(ManagerRequest).where(
        ManagerRequest.user_id == user.id, ManagerRequest.manager_id == manager.id,
        ManagerRequest.status == RequestStatus.PENDING))
    if existing is not None:
        return existing
    request = ManagerRequest(user_id=user.id, manager_id=manager.id, status=RequestStatus.PENDING,
                             requested_by_id=actor.id, requested_at=utcnow())
    session.add(request)
    session.flush()
    rt.audit.record(session, action=AuditAction.MANAGER_REQUEST, actor=actor, ctx=ctx, subject_user_id=user.id,
                    detail={"request_id": request.id, "from": user.manager_id, "to": manager.id})
    return request


def pending_manager_requests(session: Session, user: User | None = None) -> list[ManagerRequest]:
    """Managers named and waiting for a second administrator (of one person, or of everyone), oldest first."""
    query = (select(ManagerRequest).where(ManagerRequest.status == RequestStatus.PENDING).order_by(ManagerRequest.id)
             .options(selectinload(ManagerRequest.user), selectinload(ManagerRequest.manager),
                      selectinload(ManagerRequest.requested_by)))
    if user is not None:
        query = query.where(ManagerRequest.user_id == user.id)
    return list(session.scalars(query))


def get_manager_request(session: Session, request_id: int) -> ManagerRequest:
    """A request still waiting, locked for its decision (`vault.db.locking`): one decided meanwhile is not
    found rather than decided again."""
    request = locked(session, ManagerRequest, request_id)
    if request is None or request.status != RequestStatus.PENDING:
        raise NotFound("manager request")
    return request


def manager_decider(session: Session, actor: User, request: ManagerRequest,
                    holders: dict[int, frozenset[int]] | None = None, *, step: str | None = None) -> policy.Decision:
    """The policy's answer to `actor` deciding `request`, with the facts its rule needs (who may hold the
    manager's account; a list passes `holders_of` its managers, read at once): for the decision itself and
    for every list that offers it. `step` "approve" asks about putting the manager in place now, which a
    manager on notice (or below someone who is) may not be; a list asks without it, so a request the notice
    overtook is still offered for refusing."""
    held = holders[request.manager_id] if holders is not None else link_holders(session, request.manager)
    return policy.authorize(actor, Action.MANAGER_APPROVE, request, holders=held, step=step)


def decide_manager_request(rt: Runtime, session: Session, request: ManagerRequest, *, approve: bool, actor: User,
                           ctx: AccessContext) -> None:
    """The second administrator's decision: approving puts the manager in place now (the chain is checked
    again, as it may have changed since), refusing closes the request. Recorded as "manager:approve" or
    "manager:refuse", the change itself as "user:manager". Other requests for the same person stay open.

    Raises:
        policy.Denied: `separation_of_duties` (the one who named, the person or the manager named, or an
            administrator who may know the manager's password: `accounts.link_holders`),
            `decider_departing`, `manager_departing` (approving a manager who is on notice or below someone
            who is: they would see the person's customers on their way out).
        ServiceError: `manager_cycle`; `manager_disabled` (the manager named can no longer sign in).
    """
    audit = {"subject_user_id": request.user_id}
    if not (decision := manager_decider(session, actor, request, step="approve" if approve else "refuse")):
        raise policy.Denied(decision, action=Action.MANAGER_APPROVE, **audit)
    if approve:
        if not request.manager.can_sign_in:
            raise ServiceError("manager_disabled", _l("%(manager)s can no longer sign in: name another manager.",
                                                      manager=request.manager.display_name))
        _refuse_cycle(session, request.user, request.manager)
        locked(session, User, request.user_id)  # in the chain's turn, before the record (`vault.db.locking`)
    request.status = RequestStatus.APPROVED if approve else RequestStatus.REFUSED
    request.decided_by_id, request.decided_at = actor.id, utcnow()
    detail = {"request_id": request.id, "to": request.manager_id, "requested_by_id": request.requested_by_id}
    rt.audit.record(session, action=AuditAction.MANAGER_APPROVE if approve else AuditAction.MANAGER_REFUSE,
                    actor=actor, ctx=ctx, detail=detail, **audit)
    if approve and request.user.manager_id != request.manager_id:
        _apply(rt, session, request.user, request.manager, actor=actor, ctx=ctx, request_id=request.id)
