"""The fast check of verification: every chain at once, in one pass over the records in record order.

Along a chain record numbers grow with places (both are drawn under the chain's head lock), so in record
order each chain's records come in chain order. A record that does not come at its chain's next place,
does not chain, or sits at a checkpointed place with another MAC makes its chain a misfit: the careful
walk of that chain alone (vault.audit.verify) then finds, classifies and names the damage.

The same loop runs over the whole log in one process, or over one range of record numbers in each worker
process (vault.audit.range_workers): what a range needs is each chain's state at its first record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from vault.audit.chain import hmac_pads

# A chain's state during the pass: [next place, MAC of the record before it, number of the last record
# passed, {checkpointed place: (signed MAC, checkpoint name)}].
ChainState = list[Any]


def fit(batches: Iterable[list[tuple[Any, ...]]], key: bytes, state: dict[int, ChainState], odd: set[int],
        progress: Callable[[int], None] | None) -> None:
    """Pass the rows (seq, canonical text, mac, shard, place) of `batches` through the chains' `state`.

    A chain that misfits leaves `state` for `odd` (so each row costs one lookup to find its chain); rows
    of a chain not in `state` at all also mark it odd. `state` is updated in place for the others.
    """
    inner, outer = hmac_pads(key)
    inner_copy, outer_copy = inner.copy, outer.copy
    for batch in batches:
        for seq, text, mac, shard, place in batch:
            chain = state.get(shard)
            if chain is None:
                odd.add(shard)
                continue
            # HMAC-SHA256 inlined (see `hmac_pads`): this line runs once per record of the log.
            h = inner_copy()
            h.update((text + chain[1]).encode("utf-8"))
            o = outer_copy()
            o.update(h.digest())
            if place != chain[0] or o.hexdigest() != mac or (place in chain[3] and chain[3][place][0] != mac):
                odd.add(shard)
                del state[shard]
                continue
            chain[0], chain[1], chain[2] = place + 1, mac, seq
        if progress is not None:
            progress(len(batch))
