"""What marking a viewed page costs, and which copies of a marked page still give its view id back.

Run ``python bench/marking_bench.py`` (``--pages 10`` by default). It renders dense A4 text pages at
1240 x 1754 (as the viewer does), then prints:

* timings per page, median over the pages: the visible stamp (cached masks, so after the first page),
  embedding the invisible mark, decoding it, and encoding the stamped, marked page as WebP q80
  (method 0, as delivered) and PNG;
* whole documents: a stamped copy of a ``--pages`` page PDF, the same pages as a stamped image PDF,
  and tracing the copy through its metadata and, with metadata and text gone, through its pixels;
* robustness: for each attack, on how many of the pages (each with its own random 48-bit id) the
  decoder returned exactly that id; and for unmarked pages, noise and a wrong key, how many returned
  any id at all (the goal there is 0).
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

# Run as a script from a checkout: make the project's packages importable without installing them.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.marking.pages import render, text_pages, text_pdf
from tests.marking.test_forensic import ATTACKS
from vault.marking import StampText, decode, embed, stamp_page, stamp_pdf, trace, write_stamped_pages_pdf
from vault.rendering.page import encode_page
from vault.services.viewer import render_stamped

SECRET = b"bench-marking-secret"


def timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return (time.perf_counter() - started) * 1e3


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=10)
    args = parser.parse_args()
    rng = random.Random(2026)
    pages = text_pages(args.pages, seed=42)
    times: dict[str, list[float]] = {key: [] for key in ("stamp", "embed", "decode", "webp", "png")}
    ok = dict.fromkeys(ATTACKS, 0)
    sizes: dict[str, list[int]] = {"webp": [], "png": []}
    for number, page in enumerate(pages):
        view_id = rng.getrandbits(48)
        text = StampText("Anna Ivanova", "aivanova", datetime.now(UTC), view_id, "Head office",
                         "CONFIDENTIAL — GRADE 3")
        stamp_page(page, text)  # the first call builds the cached masks; a view's later pages reuse them
        stamped: list[Image.Image] = []
        times["stamp"].append(timed(lambda: stamped.append(stamp_page(page, text))))  # noqa: B023
        marked: list[Image.Image] = []
        times["embed"].append(timed(lambda: marked.append(embed(stamped[0], view_id, SECRET))))  # noqa: B023
        times["decode"].append(timed(lambda: decode(marked[0], SECRET)))  # noqa: B023
        webp: list[bytes] = []
        png: list[bytes] = []
        times["webp"].append(timed(lambda: webp.append(encode(marked[0], "WEBP", quality=80, method=0))))  # noqa: B023
        times["png"].append(timed(lambda: png.append(encode(marked[0], "PNG"))))  # noqa: B023
        sizes["webp"].append(len(webp[0]))
        sizes["png"].append(len(png[0]))
        for name, attack in ATTACKS.items():
            ok[name] += decode(attack(marked[0]), SECRET) == view_id
        print(f"  page {number + 1}/{len(pages)} done", file=sys.stderr, flush=True)

    false = {
        "unmarked page": sum(decode(page, SECRET) is not None for page in pages),
        "noise image": sum(decode(Image.fromarray(np.random.default_rng(i).integers(0, 256, (1754, 1240, 3),
                                                                                     dtype=np.uint8)), SECRET)
                           is not None for i in range(len(pages))),
        "wrong key": sum(decode(embed(page, 1, SECRET), b"another key") is not None for page in pages),
    }

    print()
    print(f"Marking a 1240 x 1754 text page, median of {len(pages)} pages, ms")
    header = f"{'step':<34} {'p50':>8} {'max':>8}"
    print(header)
    print("-" * len(header))
    labels = {"stamp": "visible stamp (cached masks)", "embed": "embed invisible mark",
              "decode": "decode mark (unattacked)", "webp": "encode WebP q80 method 0", "png": "encode PNG level 6"}
    for key, label in labels.items():
        print(f"{label:<34} {statistics.median(times[key]):8.1f} {max(times[key]):8.1f}")
    webp_kib, png_kib = statistics.median(sizes["webp"]) / 1024, statistics.median(sizes["png"]) / 1024
    print(f"sizes: WebP {webp_kib:.0f} KiB, PNG {png_kib:.0f} KiB")
    text = StampText("Anna Ivanova", "aivanova", datetime.now(UTC), 0x0123456789AB, "Head office",
                     "CONFIDENTIAL — GRADE 3")
    source = text_pdf(len(pages), seed=42)
    copy: list[bytes] = []
    pdf_ms = timed(lambda: copy.append(stamp_pdf(source, text, SECRET)))
    stored = [encode_page(page)[0] for page in pages]
    images_ms = timed(lambda: write_stamped_pages_pdf((render_stamped(page, text, SECRET) for page in stored), text,
                                                      SECRET, io.BytesIO()))
    trace_meta_ms = timed(lambda: trace(copy[0], SECRET))
    first_page = io.BytesIO()
    render(copy[0])[0].save(first_page, "PNG")
    trace_pixels_ms = timed(lambda: trace(first_page.getvalue(), SECRET))
    print()
    print(f"Whole documents ({len(pages)} pages), ms")
    print(f"  stamp_pdf (vector PDF, overlay built once)   {pdf_ms:8.1f}  ({pdf_ms / len(pages):.1f} per page; "
          f"{len(source) // 1024} KiB -> {len(copy[0]) // 1024} KiB)")
    print(f"  stamped pages PDF (viewer's JPEG pages)      {images_ms:8.1f}  ({images_ms / len(pages):.1f} per page)")
    print(f"  trace stamped PDF (metadata)                 {trace_meta_ms:8.1f}")
    print(f"  trace a PNG render of one page (pixels)      {trace_pixels_ms:8.1f}")
    print()
    print("Robustness: pages whose id came back exactly / pages")
    for name, count in ok.items():
        print(f"  {name:<24} {count:>3} / {len(pages)}")
    print("False reads: images that returned any id / images (goal 0)")
    for name, count in false.items():
        print(f"  {name:<24} {count:>3} / {len(pages)}")


if __name__ == "__main__":
    main()
