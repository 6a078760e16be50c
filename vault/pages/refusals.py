"""Refusals a page answers by showing its form again, as typed, instead of a page of their own.

The rule (`policy.shows_form_again`): a refusal for what was typed (a slip, `policy.SLIPS`) or for a step still
to take elsewhere first (`policy.STEPS_FIRST`) answers the same page again, with what was typed kept and the
reason beside its field; the refusal is recorded like any other; and the page's read, when it names customers
or files, is recorded once more, marked `again`, and kept with `keep_work()` though the answer is an error.
Each page applies the last part where it reads; the recording of the refusal is here, once for every page.
"""

from __future__ import annotations

from flask import current_app

from vault import policy
from vault.web.pipeline import record_refusal


def record_form_refusal(exc: policy.Denied) -> None:
    """Record a refusal the page is about to answer by showing its form again: in a unit of its own, the act
    rolled back, exactly as a refusal answered by a page of its own is (`pipeline.record_refusal`), so a slip
    or a missing step is in the log and, where it counts, counted.

    Should the record fail, the form is still shown (the failure is logged for the operator): the person
    keeps what they typed, and the act was refused and rolled back all the same."""
    try:
        record_refusal(exc)
    except Exception:
        current_app.logger.exception("could not record a refusal")
