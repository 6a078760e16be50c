"""Maintenance: the work that falls due with time rather than with a request.

Loans past their due time expire (their unused reservations are refunded), content URLs that expired
unused give their view back, viewer windows that passed get their closing record, deliveries whose
process died are settled as partial (`lost_deliveries`), pool claims nobody worked go back to the pool
(`pool.lapse_due`), letters withheld or failed that no repair may send any more, or whose link expired
longer ago than `VAULT_LETTER_KEEP_DAYS`, lose their kept address and text (`letters.forget_unsendable`),
and departures whose
last day has ended get their last-day steps (loans and
tokens revoked, sessions ended, the account disabled), and views whose early-warning rules could not run
after their opening are evaluated (`view_alerts.sweep`), so no alert is lost; the rules' daily tallies
of days their windows no longer reach are dropped (`view_facts.purge_tallies`). Access is already refused
without this work (`User.can_sign_in`, the loan's due time): the sweep makes the records and the counters say so.

An idle audit log is also signed after the checkpoint interval (`run_due_checkpoint`), so the newest
records never stay unsigned for long. The sweep runs as a unit of work of its own: from
`vault maintenance run` (for cron) and from the request pipeline at most once a minute per worker, after
the guard, before the request's own unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from vault.audit.checkpoints import SignedCheckpoint
from vault.core.context import AccessContext
from vault.models import utcnow
from vault.runtime import Runtime
from vault.services import departures, letters, loans, lost_deliveries, pool, view_alerts, view_facts, viewer


@dataclass(frozen=True)
class MaintenanceReport:
    loans_expired: int
    views_refunded: int
    departures_offboarded: tuple[int, ...]
    views_closed: int = 0
    views_evaluated: int = 0
    deliveries_lost: int = 0
    claims_lapsed: int = 0
    letters_forgotten: int = 0
    # How many of them for each reason (`letters.forget_unsendable`), in the order first met.
    letters_forgotten_by_reason: tuple[tuple[str, int], ...] = ()


def run(rt: Runtime, session: Session, *, ctx: AccessContext, now: datetime | None = None) -> MaintenanceReport:
    """Everything that is due at `now`, in the caller's unit of work (it does not commit)."""
    now = now or utcnow()
    swept = loans.sweep(rt, session, now=now, ctx=ctx)
    done = departures.run_due(rt, session, ctx=ctx, now=now)
    closed = viewer.close_lapsed(rt, session, now=now, ctx=ctx)
    evaluated = view_alerts.sweep(rt, session, now=now)
    view_facts.purge_tallies(session, rt.settings.working_hours, now)
    lost = lost_deliveries.settle_lost(rt, session, ctx=ctx, now=now)
    lapsed = pool.lapse_due(rt, session, ctx=ctx, now=now)
    forgot = letters.forget_unsendable(rt, session, ctx=ctx, now=now)
    return MaintenanceReport(loans_expired=swept.loans_expired, views_refunded=swept.views_refunded,
                             departures_offboarded=tuple(d.id for d in done), views_closed=closed,
                             views_evaluated=evaluated, deliveries_lost=lost, claims_lapsed=lapsed,
                             letters_forgotten=sum(len(ids) for ids in forgot.values()),
                             letters_forgotten_by_reason=tuple((code, len(ids)) for code, ids in forgot.items()))


def run_due_checkpoint(rt: Runtime, *, now: datetime | None = None) -> SignedCheckpoint | None:
    """Sign the audit head if its minute clock ran out; outside any unit of work (the checkpointer
    writes the store first and its own row after, in transactions of its own)."""
    if rt.audit.checkpoints is None:
        return None
    return rt.audit.checkpoints.write_if_stale(now)
