"""Marking pages as seen, not carried away: visible stamps, invisible view ids, stamped PDFs, tracing.

``stamp_page`` draws who viewed a page and when; ``embed``/``decode`` hide and read a 48-bit view id in
the pixels; ``write_stamped_pdf``/``write_stamped_pages_pdf`` write a stamped copy carrying the id in
metadata, text and pixels (``view_overlay``: the part of a PDF copy's stamp that needs no PDF, made ahead);
``trace`` finds the id in a leaked file (``trace_apart``: in a fork held to a memory cap and a time limit).
Nothing here touches the database or the web layer.
"""

from vault.marking.errors import MarkingError
from vault.marking.forensic import Mark, decode, embed, embed_grey, read_mark
from vault.marking.pdf import stamp_pdf, view_overlay, write_stamped_pages_pdf, write_stamped_pdf
from vault.marking.stamp import StampText, stamp_grey_in_place, stamp_page
from vault.marking.trace import TraceResult, trace, trace_apart

__all__ = ["Mark", "MarkingError", "StampText", "TraceResult", "decode", "embed", "embed_grey", "read_mark",
           "stamp_grey_in_place", "stamp_page", "stamp_pdf", "trace", "trace_apart", "view_overlay",
           "write_stamped_pages_pdf", "write_stamped_pdf"]
