"""A leaver's customers go to the pool instead of to a successor, one handover item at a time, through the
departure page: left without an owner, audited, counted as handed over, so the departure can complete."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import login
from tests.pool.scene import OwnerChanges, audited, owner_of
from vault.core.context import AccessContext
from vault.models import Customer, CustomerCoOwner, Departure, HandoverItem, Role, Segment, User, utcnow
from vault.services import departures, pool

CTX = AccessContext.cli()


def test_the_administrator_returns_one_leavers_customer_to_the_pool_and_the_departure_completes(app, rt, users):
    adm = users.make("adm", Role.ADMIN)
    sam, sue = users.make("sam", Role.BORROWER), users.make("sue", Role.BORROWER)
    users.make("bob", Role.BORROWER)
    with rt.db.session() as session:
        kept = Customer(name="Kept Ltd", segment=Segment.ORDINARY, owner_id=sam.id)
        pooled = Customer(name="Pooled Ltd", segment=Segment.ORDINARY, owner_id=sam.id)
        session.add_all([kept, pooled])
        session.flush()
        departure = departures.start_departure(rt, session, session.get(User, adm.id), session.get(User, sam.id),
                                               last_day=(utcnow() + timedelta(days=10)).date(),
                                               successor=session.get(User, sue.id), ctx=CTX)
        session.commit()
        departure_id, kept_id, pooled_id = departure.id, kept.id, pooled.id
        item_id = next(i.id for i in departure.items if i.customer_id == pooled_id)
    assert owner_of(rt, pooled_id) == sue.id  # the successor received both at the notice

    client = app.test_client()
    token = login(client, "adm")
    page = client.get(f"/departures/{departure_id}").get_data(as_text=True)
    assert '<option value="-1"' in page  # "Return to the shared pool", on every item
    with OwnerChanges() as changes:
        done = client.post(f"/departures/{departure_id}/items/{item_id}/reassign",
                           data={"csrf_token": token, "to_user": "-1"})
    assert done.status_code == 302, done.get_data(as_text=True)[:300]
    assert changes.seen == []  # nobody became the owner
    assert owner_of(rt, pooled_id) is None and owner_of(rt, kept_id) == sue.id
    with rt.db.session() as session:
        item = session.get(HandoverItem, item_id)
        assert item.pooled_at is not None and item.to_user_id is None and item.settled
        co_owners = set(session.scalars(CustomerCoOwner.__table__.select()
                                        .where(CustomerCoOwner.customer_id == pooled_id)))
        assert not co_owners  # the leaver does not stay on a customer nobody takes over
    [record] = audited(rt, "pool:return")
    assert record.customer_id == pooled_id and record.actor_id == adm.id
    # Back in the pool, a colleague may claim it; the departure completes with the other one handed over.
    with rt.db.session() as session:
        pool.claim(rt, session, session.get(User, users.make("bea", Role.BORROWER).id), pooled_id, ctx=CTX)
        departures.complete(rt, session, session.get(User, adm.id), session.get(Departure, departure_id), ctx=CTX)
        session.commit()
        assert session.get(Departure, departure_id).status == "completed"
