"""Rules on reading the audit log: who browses, exports and traces it.

The role gate (`ROLE_RULES`) opens the log to auditors only. The log names customers (a creation's details,
every list and read with the customers' ids, today's names beside each record on the desk), so, like the
departure report (`reporter_departing`), it is refused to an auditor on notice, who could otherwise export
the sales team's books in their last days: `reader_departing`, asked by the guard for every route of the
actions below, pages and API alike, and recorded there. Verifying the chain names no customer and stays open
to them; the operator's command line answers to no role and is not asked; a withdrawn notice gives the log
back.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from vault.core.actions import Action
from vault.models import User
from vault.policy.core import MESSAGES, Decision, allow, deny, standing_rule
from vault.policy.notice import on_notice

MESSAGES.update({
    "reader_departing": _l("People on notice read no audit log, which names customers; a colleague who is not "
                           "leaving does it."),
})


@standing_rule(Action.AUDIT_READ, Action.AUDIT_EXPORT)
def _reader(actor: User) -> Decision:
    """Whether `actor` may read, browse, export or trace the log (and fetch an export's manifest): never on
    notice (see the module docstring)."""
    return deny("reader_departing") if on_notice(actor) else allow()
