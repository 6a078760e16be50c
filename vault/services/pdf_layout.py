"""Layout helpers of the PDF reports: table columns wide enough for their headers' words, and "page x of y".

A narrow column made reportlab split a header mid-word ("Looke / d up"), which reads as a typo on a
document meant for HR and lawyers. `fit_widths` widens each column to its header's longest word, using
the page's free width first and then room from the columns with the most to spare, so the table still
fits the page.

"page x of y" needs the page count before the first page is written; `NumberedCanvas` keeps each page's
drawing until the document is finished, then writes the pages with the total known (the usual two-pass
canvas of reportlab).
"""

from __future__ import annotations

from typing import Any

from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen import canvas

# Table cells' default left and right padding in reportlab (points), plus a point for rounding.
CELL_PADDING = 6 + 6 + 1


def minimum_width(header: str, font: str, size: float) -> float:
    """The narrowest column (points) in which no word of `header` is split."""
    words = header.split() or [""]
    return max(stringWidth(word, font, size) for word in words) + CELL_PADDING


def fit_widths(headers: list[str], widths: list[float], font: str, size: float,
               total: float | None = None) -> list[float]:
    """Column widths (points), each at least its header's longest word, within `total` (default: the sum
    of `widths`).

    Columns narrower than their minimum are widened: first into the room left in `total`, then with room
    taken from the columns with the most to spare beyond their own minimum (levelled, so a wide free-text
    column gives before a name column does). If the table cannot fit every header at all, the minimums
    win (the table grows) rather than a word being split.
    """
    minimums = [minimum_width(header, font, size) for header in headers]
    widened = [max(low, width) for low, width in zip(minimums, widths, strict=True)]
    limit = sum(widths) if total is None else max(total, sum(widths))
    excess = sum(widened) - limit
    if excess <= 0:
        return widened
    spare = [width - low for low, width in zip(minimums, widened, strict=True)]
    if sum(spare) <= excess:
        return minimums
    # The level L at which trimming every spare above L frees exactly `excess` (bisection).
    low_level, high_level = 0.0, max(spare)
    for _ in range(60):
        level = (low_level + high_level) / 2
        if sum(max(0.0, room - level) for room in spare) > excess:
            low_level = level
        else:
            high_level = level
    return [low + min(room, high_level) for low, room in zip(minimums, spare, strict=True)]


class NumberedCanvas(canvas.Canvas):
    """A canvas that writes "page x of y" at the bottom right of every page once the total is known."""

    font = ("Helvetica", 7)
    label = "page %(n)s of %(total)s"  # a report sets its translated format

    def draw_label(self, text: str) -> None:
        """Draw the page label at the bottom right (a report may draw it in its own faces)."""
        self.setFont(*self.font)
        self.drawRightString(self._pagesize[0] - self.margin, self.baseline, text)
    margin = 12 * 72 / 25.4  # 12 mm, in points
    baseline = 7 * 72 / 25.4  # 7 mm

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:  # reportlab's name
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for number, state in enumerate(self._pages, start=1):
            self.__dict__.update(state)
            self.saveState()
            self.draw_label(self.label % {"n": number, "total": total})
            self.restoreState()
            super().showPage()
        super().save()
