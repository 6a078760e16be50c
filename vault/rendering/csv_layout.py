"""CSV to PDF as one LongTable whose header row repeats on every page."""

from __future__ import annotations

import csv
import io
from typing import BinaryIO

from reportlab.lib import colors
from reportlab.platypus import LongTable, Paragraph, Spacer, TableStyle

from vault.rendering.errors import RenditionFailed
from vault.rendering.fonts import markup
from vault.rendering.layout import FRAME_WIDTH, build_pdf, styles

# Columns beyond this are dropped with a note: at 60 columns an A4 cell is under 3 mm wide.
MAX_COLUMNS = 40

_STYLE = TableStyle([
    ("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#999999")),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
    ("LEFTPADDING", (0, 0), (-1, -1), 2),
    ("RIGHTPADDING", (0, 0), (-1, -1), 2),
])


def _dialect(sample: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        return csv.excel


def csv_to_pdf(text: str, out: BinaryIO, title: str, max_rows: int = 10_000) -> None:
    """Lay CSV ``text`` out as a table; the first row is taken as the header, ``max_rows`` rows at most."""
    style_map = styles()
    try:
        rows = list(csv.reader(io.StringIO(text), _dialect(text[:65536])))
    except csv.Error as exc:
        raise RenditionFailed("The CSV file could not be read as a table.") from exc
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    story: list = []
    if not rows:
        story.append(Spacer(1, 1))
        build_pdf(story, out, title)
        return
    if len(rows) > max_rows:
        story.append(Paragraph(markup(f"Only the first {max_rows:,} of {len(rows):,} rows are shown."),
                               style_map["body"]))
        rows = rows[:max_rows]
    width = min(max(len(row) for row in rows), MAX_COLUMNS)
    if any(len(row) > MAX_COLUMNS for row in rows):
        story.append(Paragraph(markup(f"Only the first {MAX_COLUMNS} columns are shown."), style_map["body"]))
    cells = []
    for number, row in enumerate(rows):
        style = style_map["head" if number == 0 else "cell"]
        padded = row[:width] + [""] * (width - len(row[:width]))
        cells.append([Paragraph(markup(value), style) for value in padded])
    table = LongTable(cells, colWidths=[FRAME_WIDTH / width] * width, repeatRows=1)
    table.setStyle(_STYLE)
    story.append(table)
    build_pdf(story, out, title)
