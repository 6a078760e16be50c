"""How fast the rendition engine turns uploads into stored pages, and how much memory it needs.

Run ``python bench/rendition_bench.py`` (``--quick`` for a short run; ``--smoke``, the fewest pages that take
every step and one office file of the four, is how the test suite checks that the bench still runs: its
figures mean nothing). One table is printed:

* throughput on a 200-page text PDF, pages per second, drawing only and drawing plus encoding in the
  stored page format (lossless: greyscale PNG or WebP);
* peak RSS of a fresh process that renders and encodes every page of a 20-page and of a 500-page PDF
  (goal: the same within a few MiB, that is, memory does not grow with the page count);
* for one small file of each accepted type, the time from ``render()`` to the last encoded page,
  including the office conversion through LibreOffice and the text layout, and the stored bytes; the
  one-off cost of loading the layout fonts is a row of its own.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# Run as a script from a checkout: make the project's packages importable without installing them.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image

from vault.rendering import render
from vault.rendering.fonts import register_fonts

# The input builders (reportlab, python-docx, openpyxl, python-pptx) are imported by the parent only, so
# the child's peak RSS is the engine's alone.
if __name__ == "__main__" and "--child" not in sys.argv:
    from tests.rendering.inputs import docx_bytes, image_bytes, odt_bytes, pdf_bytes, pptx_bytes, xlsx_bytes

RSS_GROWTH_GOAL_MIB = 20


def peak_rss_mib() -> float:
    """High-water mark of this process's resident memory, from the kernel."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmHWM not found in /proc/self/status")


def child(path: str) -> None:
    """Render and encode every page of the PDF at ``path``; print pages, seconds and peak RSS as JSON."""
    if path == "-":  # the baseline: interpreter and imports only
        print(json.dumps({"pages": 0, "seconds": 0, "stored": 0, "peak_rss_mib": peak_rss_mib()}))
        return
    start = time.perf_counter()
    stored = 0
    with render(path, "application/pdf", "bench.pdf") as rendition:
        for page in rendition.pages():
            stored += len(page.encode())
        count = rendition.page_count
    print(json.dumps({"pages": count, "seconds": time.perf_counter() - start, "stored": stored,
                      "peak_rss_mib": peak_rss_mib()}))


def measure_rss(pages: int) -> dict[str, float]:
    """Run :func:`child` in a fresh interpreter so earlier allocations do not count."""
    with tempfile.TemporaryDirectory(prefix="vault-rendition-bench-") as folder:
        path = Path(folder) / "bench.pdf"
        if pages:
            path.write_bytes(pdf_bytes(pages))
        output = subprocess.run([sys.executable, __file__, "--child", str(path) if pages else "-"], check=True,
                                capture_output=True, text=True).stdout
    return json.loads(output)


def throughput(pages: int) -> tuple[float, float]:
    """Pages per second over a ``pages``-page PDF: drawing only, then drawing and encoding."""
    data = pdf_bytes(pages)
    rates = []
    for encode in (False, True):
        start = time.perf_counter()
        with render(io.BytesIO(data), "application/pdf", "bench.pdf") as rendition:
            for page in rendition.pages():
                if encode:
                    page.encode()
        rates.append(pages / (time.perf_counter() - start))
    return rates[0], rates[1]


def _text() -> bytes:
    return "\n".join(f"Line {n}: Hello, Привет, 你好." for n in range(120)).encode()


def _markdown() -> bytes:
    rows = "\n".join(f"| {n} | Имя {n} | 城市 {n} |" for n in range(40))
    return f"# Report\n\nSome **bold** text.\n\n| id | name | city |\n|---|---|---|\n{rows}\n".encode()


def _csv() -> bytes:
    return "\n".join(["id,name,city"] + [f"{n},Имя {n},城市 {n}" for n in range(300)]).encode()


def _photo(fmt: str, **options: object) -> Callable[[], bytes]:
    return lambda: image_bytes(Image.effect_mandelbrot((2400, 1800), (-2, -1.2, 1, 1.2), 60).convert("RGB"),
                               fmt, **options)


def _tiff() -> bytes:
    frames = [Image.effect_noise((1240, 1754), 30).convert("RGB") for _ in range(3)]
    return image_bytes(frames[0], "TIFF", save_all=True, append_images=frames[1:], compression="tiff_lzw")


def accepted_types() -> list[tuple[str, Callable[[], bytes], str, str]]:
    """(label, input builder, declared media type, file name) for one file of each accepted type."""
    return [
        ("PDF, 10 text pages", lambda: pdf_bytes(10), "application/pdf", "a.pdf"),
        ("PNG 2400×1800", _photo("PNG"), "image/png", "a.png"),
        ("JPEG 2400×1800", _photo("JPEG", quality=90), "image/jpeg", "a.jpg"),
        ("WebP 2400×1800", _photo("WEBP", quality=90), "image/webp", "a.webp"),
        ("TIFF, 3 frames", _tiff, "image/tiff", "a.tif"),
        ("text, 120 lines, 3 scripts", _text, "text/plain", "a.txt"),
        ("Markdown, 40-row table", _markdown, "text/markdown", "a.md"),
        ("CSV, 300 rows", _csv, "text/csv", "a.csv"),
        ("docx (python-docx, 61 paragraphs)", docx_bytes, "application/octet-stream", "a.docx"),
        ("xlsx (openpyxl, 22 rows)", xlsx_bytes, "application/octet-stream", "a.xlsx"),
        ("pptx (python-pptx, 3 slides)", pptx_bytes, "application/octet-stream", "a.pptx"),
        ("odt (minimal)", odt_bytes, "application/octet-stream", "a.odt"),
    ]


# Office files all take the same path (LibreOffice to PDF, then drawing), some 1.5 s each: --smoke keeps one.
OFFICE_LEFT_OUT_OF_SMOKE = ("a.xlsx", "a.pptx", "a.odt")


def per_type(smoke: bool = False) -> list[tuple[str, int, float, int]]:
    """(label, pages, seconds from render() to the last encoded page, stored bytes) for each type."""
    results = []
    for label, build, media_type, name in accepted_types():
        if smoke and name in OFFICE_LEFT_OUT_OF_SMOKE:
            continue
        data = build()
        start = time.perf_counter()
        stored = 0
        with render(io.BytesIO(data), media_type, name) as rendition:
            if not rendition.has_preview:
                raise SystemExit(f"{label}: no preview ({rendition.reason})")
            for page in rendition.pages():
                stored += len(page.encode())
            pages = rendition.page_count
        results.append((label, pages, time.perf_counter() - start, stored))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller documents, for a fast check")
    parser.add_argument("--smoke", action="store_true",
                        help="the fewest pages, one office file: that the bench runs, its figures meaningless")
    parser.add_argument("--child", metavar="PDF", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    throughput_pages = 2 if args.smoke else 50 if args.quick else 200
    rss_pages = (1, 2) if args.smoke else (20, 100) if args.quick else (20, 500)
    # A first render warms PDFium; the fonts are loaded once per process, timed on their own.
    with render(io.BytesIO(pdf_bytes(1)), "application/pdf", "warm.pdf") as rendition:
        list(rendition.pages())
    start = time.perf_counter()
    register_fonts()
    fonts_seconds = time.perf_counter() - start
    draw_rate, encode_rate = throughput(throughput_pages)
    baseline = measure_rss(0)
    rss = [measure_rss(pages) for pages in rss_pages]
    types = per_type(args.smoke)

    rows: list[tuple[str, ...]] = [
        (f"PDF {throughput_pages} pages, draw only", f"{draw_rate:,.0f} pages/s", "", ""),
        (f"PDF {throughput_pages} pages, draw + encode", f"{encode_rate:,.0f} pages/s", "", ""),
    ]
    rows.append(("peak RSS, interpreter + imports only", f"{baseline['peak_rss_mib']:.0f} MiB", "", ""))
    for result in rss:
        rows.append((f"peak RSS, {int(result['pages'])}-page PDF, fresh process",
                     f"{result['peak_rss_mib']:.0f} MiB",
                     f"{result['pages'] / result['seconds']:,.0f} pages/s",
                     f"{result['stored'] / result['pages'] / 1024:,.0f} KiB/page"))
    growth = rss[-1]["peak_rss_mib"] - rss[0]["peak_rss_mib"]
    rows.append((f"  growth {int(rss[0]['pages'])} -> {int(rss[-1]['pages'])} pages", f"{growth:+.1f} MiB",
                 f"goal <= {RSS_GROWTH_GOAL_MIB} MiB: {'met' if growth <= RSS_GROWTH_GOAL_MIB else 'NOT met'}", ""))
    rows.append(("text fonts, first use in a process", f"{fonts_seconds * 1000:,.0f} ms", "once per process", ""))
    for label, pages, seconds, stored in types:
        rows.append((label, f"{seconds * 1000:,.0f} ms", f"{pages} page{'s' if pages != 1 else ''}",
                     f"{stored / pages / 1024:,.0f} KiB/page"))

    header = ("measure", "result", "detail", "stored")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    print("rendition bench: pages 1240 px wide, stored losslessly (grey pages PNG, colour pages WebP); "
          "one process, one thread")
    for row in [header, tuple("-" * width for width in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":
    main()
