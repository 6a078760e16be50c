"""The customer the record pages are tried on: Nordlicht Handel, a VIP customer of Bob's, whose manager is Hana."""

from __future__ import annotations

from typing import Any

from tests.support.factories import make_customer
from vault.core.context import AccessContext
from vault.models import Role, Segment
from vault.services import accounts, customers, managers, records


def nordlicht(rt: Any, users: Any, record: dict[str, Any], *, hana_co_owns: bool = False) -> dict[str, int]:
    """Bob owns the customer, its record holding `record`; Hana manages Bob (and with `hana_co_owns` co-owns
    the customer too); Bea is a borrower with nothing to do with it. The ids of the customer, Bob and Hana."""
    bob = users.make("bob", Role.BORROWER)
    hana = users.make("hana", Role.BORROWER)
    users.make("bea", Role.BORROWER)
    with rt.db.session() as session:
        managers.set_manager(rt, session, accounts.get_user(session, "bob"), accounts.get_user(session, "hana"),
                             actor=None)
        customer = make_customer(session, owner_id=bob.id, name="Nordlicht Handel", segment=Segment.VIP)
        if hana_co_owns:
            customers.add_co_owner(rt, session, None, customer, accounts.get_user(session, "hana"),
                                   ctx=AccessContext.cli())
        records.edit(rt, session, None, customer, record, ctx=AccessContext.cli())
        session.commit()
        return {"customer": customer.id, "bob": bob.id, "hana": hana.id}
