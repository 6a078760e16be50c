"""Which chain a record joins: the log is N independent HMAC chains ("shards"), each with its own head row.

One chain with one head row made every audited act in the product queue on that row's lock. With N
chains, acts append in parallel as long as they land in different chains, and each chain keeps every
property the single one had (contiguous, each record MAC'd over its place and the MAC before it).

The shard is a stable function of the *actor*: `1 + actor_id mod N`, or, for acts without a person's id
(the system, an operator at the command line, an unknown name at sign-in), `1 + CRC-32(name) mod N`.
Why the actor: a person's acts happen one after another anyway (one browser, one token), so putting
them in one chain costs no parallelism and keeps a person's history in one unbroken chain, in the order it
happened; different people are the independent acts, and consecutive user ids spread evenly over the
chains. A document or customer key would not do: the many views of one popular document would all queue
on one head again. A transaction keeps the shard of its first record for all later ones, so it holds at
most one head lock and two transactions can never wait on each other's heads (no deadlock).

Shard 0 is the single chain of before sharding, closed: it is verified like any other but never appended
to. Shards are numbered from 1, and a change of N only changes where new records go.
"""

from __future__ import annotations

import zlib


def shard_for(actor_id: int | None, actor_name: str | None, shards: int) -> int:
    """The shard (1..`shards`) a record of this actor joins."""
    shards = max(1, shards)
    if actor_id is not None:
        return 1 + actor_id % shards
    return 1 + zlib.crc32((actor_name or "").encode("utf-8")) % shards
