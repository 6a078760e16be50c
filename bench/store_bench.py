"""Encrypted upload and download through S3Store, next to plain minio on the same server in the same run.

Run ``python bench/store_bench.py`` (``--quick`` for smaller sizes). It starts a private SeaweedFS and
prints one table. ``--smoke`` is one round at one size just over a part, how the test suite checks that the
bench still runs (its figures mean nothing). The table:

* encrypt + PUT: plaintext generated on the fly -> ``EncryptingReader`` -> ``S3Store.put`` of unknown
  length, beside a plain minio ``put_object`` of the same number of bytes (known length, same part size
  and parallelism, no encryption). Goal: at least 0.9 of plain. A plain minio PUT told the length is
  unknown is shown too: minio then reads one byte ahead of every part and copies each part twice more,
  a cost our path pays whatever we do, since an encrypted upload's length is not known in advance.
* GET + decrypt: ``S3Store.open`` -> ``decrypt_stream``, beside a plain minio ``get_object`` read in
  1 MiB chunks. Goal: at least 0.85 of plain.

Both sides move the same ciphertext-sized byte count; MB/s is 10^6 of those bytes per second. Runs are
interleaved (ours and plain alternate, and which goes first alternates too) so a burst of load from
elsewhere hits both, and the best of a few runs is kept, the least disturbed. The machine should be
otherwise idle: SeaweedFS and the client share its cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Run as a script from a checkout: make the project's packages importable without installing them.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._source import GeneratedSource
from crypto.stream import EncryptingReader, associated_data, ciphertext_size, decrypt_stream
from storage import S3Store
from tests.fixtures.seaweed import SeaweedServer

MIB = 1 << 20
PUT_GOAL = 0.9
GET_GOAL = 0.85
# Rounds of (both PUTs, then both GETs twice): more for small objects, whose runs are short and
# therefore more easily disturbed by load from elsewhere.
ROUNDS_SMALL = 7
ROUNDS_LARGE = 3
LARGE = 256 * MIB
GET_SAMPLES_PER_ROUND = 2
READ_CHUNK = MIB




def cases(server: SeaweedServer, store: S3Store, size: int) -> dict[str, Callable[[], None]]:
    """The four measured operations for one plaintext size; each checks its own result."""
    client = server.client()
    key = os.urandom(32)
    data = associated_data(1, 1)
    wire_size = ciphertext_size(size)
    ours, plain, plain_unknown = f"ours-{size}", f"plain-{size}", f"plain-unknown-{size}"

    def our_put() -> None:
        reader = EncryptingReader(key, data, GeneratedSource(size))
        info = store.put(ours, reader)
        assert info.size == wire_size and reader.plaintext_bytes == size

    def plain_put(name: str = plain, length: int = wire_size) -> None:
        client.put_object(
            bucket_name=server.bucket,
            object_name=store.key_prefix + name,
            data=GeneratedSource(wire_size),
            length=length,
            part_size=store.part_size,
            num_parallel_uploads=store.parallel_uploads,
        )

    def plain_put_unknown() -> None:
        plain_put(plain_unknown, -1)

    def our_get() -> None:
        total = 0
        with store.open(ours) as stream:
            for chunk in decrypt_stream(key, data, stream):
                total += len(chunk)
        assert total == size

    def plain_get() -> None:
        total = 0
        response = client.get_object(bucket_name=server.bucket, object_name=store.key_prefix + plain)
        try:
            while chunk := response.read(READ_CHUNK):
                total += len(chunk)
        finally:
            response.close()
            response.release_conn()
        assert total == wire_size

    return {
        "our_put": our_put,
        "plain_put": plain_put,
        "plain_put_unknown": plain_put_unknown,
        "our_get": our_get,
        "plain_get": plain_get,
    }


def best_seconds(
    runs: dict[str, Callable[[], None]], cleanup: Callable[[], None], rounds: int
) -> dict[str, float]:
    """Fastest of the interleaved runs of each operation.

    Each round uploads the objects, then downloads ours and the plain one twice; downloads are cheap
    next to uploads, so they get more samples. The order within a group rotates from one group to the
    next, so no side always runs first or on a warmer server.
    """
    best = dict.fromkeys(runs, float("inf"))
    puts = ("our_put", "plain_put", "plain_put_unknown")
    gets = ("our_get", "plain_get")
    turn = 0
    for _ in range(rounds):
        for group in [puts] + [gets] * GET_SAMPLES_PER_ROUND:
            shift = turn % len(group)
            for name in group[shift:] + group[:shift]:
                start = time.perf_counter()
                runs[name]()
                best[name] = min(best[name], time.perf_counter() - start)
            turn += 1
        cleanup()
    return best


def human(size: int) -> str:
    return f"{size // (1 << 30)} GiB" if size >= 1 << 30 else f"{size // MIB} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a fast check")
    parser.add_argument("--smoke", action="store_true",
                        help="one round at one size just over a part: that the bench runs, its figures meaningless")
    args = parser.parse_args()
    sizes = [16 * MIB, 64 * MIB] if args.quick else [64 * MIB, 1 << 30]

    rows: list[tuple[str, ...]] = []
    with SeaweedServer(bucket="vault-bench") as server:
        store = server.store()
        if args.smoke:
            # Just over one part, so that uploads are multipart, as at every size of the full run.
            sizes = [store.part_size + MIB]
        for size in sizes:
            wire_size = ciphertext_size(size)

            def cleanup(size: int = size) -> None:
                # Through the store: on the Object Lock bucket it removes every version, plain ones too.
                for name in (f"ours-{size}", f"plain-{size}", f"plain-unknown-{size}"):
                    if store.exists(name):
                        store.delete(name)

            rounds = 1 if args.smoke else ROUNDS_LARGE if size >= LARGE else ROUNDS_SMALL
            seconds = best_seconds(cases(server, store, size), cleanup, rounds)
            for label, ours, plain, goal, unknown in (
                ("encrypt + PUT", "our_put", "plain_put", PUT_GOAL, "plain_put_unknown"),
                ("GET + decrypt", "our_get", "plain_get", GET_GOAL, None),
            ):
                our_rate = wire_size / seconds[ours] / 1e6
                plain_rate = wire_size / seconds[plain] / 1e6
                ratio = our_rate / plain_rate
                samples = rounds * (1 if unknown else GET_SAMPLES_PER_ROUND)
                unknown_cells = ("", "")
                if unknown:
                    unknown_rate = wire_size / seconds[unknown] / 1e6
                    unknown_cells = (f"{unknown_rate:,.0f} MB/s", f"{our_rate / unknown_rate:.2f}")
                rows.append((
                    label,
                    human(size),
                    str(samples),
                    f"{our_rate:,.0f} MB/s",
                    f"{plain_rate:,.0f} MB/s",
                    f"{ratio:.2f}",
                    f">= {goal}: {'met' if ratio >= goal else 'NOT met'}",
                    *unknown_cells,
                ))
        description = store.describe()

    header = (
        "operation", "plaintext", "best of", "ours (S3Store+crypto)", "plain minio", "ratio", "goal",
        "plain, length unknown", "ratio to it",
    )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    print(
        f"store bench: {description}; part size {store.part_size // MIB} MiB, "
        f"{store.parallel_uploads} parallel part uploads; runs interleaved; MB/s = 10^6 bytes/s"
    )
    for row in [header, tuple("-" * width for width in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":
    main()
