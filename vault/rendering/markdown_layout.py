"""Markdown to PDF by walking markdown-it-py's token stream into reportlab flowables.

No HTML is produced or interpreted anywhere: the parser runs with ``html=False``, so ``<script>`` and
other tags in the source stay literal text, and that text is escaped before it reaches reportlab's
Paragraph markup. Images are never fetched: an image becomes the words ``[image: alt]``. Links are drawn
as their text followed by the target in brackets, so a reader can see where a link points without any
link being live.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import BinaryIO

from markdown_it import MarkdownIt
from markdown_it.token import Token
from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle
from reportlab.platypus import Flowable, HRFlowable, LongTable, Paragraph, Spacer, TableStyle

from vault.rendering.fonts import MONO, SANS, markup
from vault.rendering.layout import FRAME_WIDTH, build_pdf, styles
from vault.rendering.text_layout import keep_spaces

_PARSER = MarkdownIt("commonmark", {"html": False}).enable("table")


def _inline(token: Token, base: str = SANS) -> str:
    """Paragraph markup for one ``inline`` token's children."""
    out: list[str] = []
    link_targets: list[str] = []
    for child in token.children or []:
        kind = child.type
        if kind == "text":
            out.append(markup(child.content, base))
        elif kind == "code_inline":
            out.append(f'<font face="{MONO}">{markup(child.content, MONO)}</font>')
        elif kind in ("softbreak",):
            out.append(" ")
        elif kind == "hardbreak":
            out.append("<br/>")
        elif kind == "strong_open":
            out.append("<b>")
        elif kind == "strong_close":
            out.append("</b>")
        elif kind == "em_open":
            out.append("<i>")
        elif kind == "em_close":
            out.append("</i>")
        elif kind == "link_open":
            link_targets.append(str(child.attrs.get("href", "")))
        elif kind == "link_close":
            target = link_targets.pop() if link_targets else ""
            if target:
                out.append(f" [{markup(target, base)}]")
        elif kind == "image":
            out.append(markup(f"[image: {child.content}]", base))
        else:  # html_inline cannot occur with html=False; anything new is shown as its source text
            out.append(markup(child.content, base))
    return "".join(out)


def _table(tokens: Sequence[Token], start: int, style_map: dict) -> tuple[LongTable, int]:
    """Build a LongTable from the tokens after ``table_open``; return it and the index after the table."""
    rows: list[list[Paragraph]] = []
    row: list[Paragraph] = []
    header_rows = 0
    in_head = False
    index = start
    while index < len(tokens) and tokens[index].type != "table_close":
        token = tokens[index]
        if token.type == "thead_open":
            in_head = True
        elif token.type == "thead_close":
            in_head = False
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close":
            rows.append(row)
            header_rows += in_head
        elif token.type == "inline":
            row.append(Paragraph(_inline(token), style_map["head" if in_head else "cell"]))
        index += 1
    width = max((len(r) for r in rows), default=1)
    for r in rows:
        r.extend(Paragraph("", style_map["cell"]) for _ in range(width - len(r)))
    table = LongTable(rows or [[""]], colWidths=[FRAME_WIDTH / width] * width, repeatRows=header_rows)
    table.setStyle(_TABLE_STYLE)
    return table, index + 1


_TABLE_STYLE = TableStyle([
    ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#999999")),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
])


def markdown_to_pdf(text: str, out: BinaryIO, title: str) -> None:
    """Lay Markdown ``text`` out as headings, paragraphs, lists, quotes, code blocks and tables."""
    style_map = styles()
    tokens = _PARSER.parse(text)
    story: list[Flowable] = []
    lists: list[list[int | None]] = []  # per open list: [next number or None for bullets]
    quote_depth = 0
    heading: str | None = None
    pending_bullet: str | None = None
    index = 0
    while index < len(tokens):
        token = tokens[index]
        kind = token.type
        if kind == "heading_open":
            heading = token.tag
        elif kind == "heading_close":
            heading = None
        elif kind == "bullet_list_open":
            lists.append([None])
        elif kind == "ordered_list_open":
            lists.append([int(token.attrs.get("start", 1) or 1)])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif kind == "list_item_open":
            number = lists[-1][0] if lists else None
            pending_bullet = "•" if number is None else f"{number}."
            if number is not None:
                lists[-1][0] = number + 1
        elif kind == "blockquote_open":
            quote_depth += 1
        elif kind == "blockquote_close":
            quote_depth -= 1
        elif kind == "inline":
            if heading:
                style = style_map[heading]
            elif quote_depth:
                style = style_map["quote"]
            else:
                style = style_map["body"]
            text_markup = _inline(token)
            indent = 14 * len(lists) + 14 * quote_depth
            if pending_bullet is not None:
                text_markup = f"{pending_bullet}&nbsp;{text_markup}"
                pending_bullet = None
            if indent:
                style = _indented(style, indent)
            story.append(Paragraph(text_markup, style))
        elif kind in ("fence", "code_block"):
            code = style_map["code"]
            indent = 14 * len(lists) + 14 * quote_depth
            for line in token.content.rstrip("\n").split("\n"):
                stripped = line.lstrip(" ")
                lead = "&nbsp;" * (len(line) - len(stripped))
                line_markup = lead + keep_spaces(markup(stripped, MONO)) or "&nbsp;"
                story.append(Paragraph(line_markup, _indented(code, indent + 8)))
            story.append(Spacer(1, 6))
        elif kind == "hr":
            story.append(HRFlowable(width="100%", thickness=0.6, color=colors.HexColor("#999999"),
                                    spaceBefore=4, spaceAfter=6))
        elif kind == "table_open":
            table, index = _table(tokens, index + 1, style_map)
            story.append(table)
            story.append(Spacer(1, 6))
            continue
        elif kind == "html_block":  # cannot occur with html=False; kept as literal text if it ever does
            story.append(Paragraph(markup(token.content), style_map["body"]))
        index += 1
    if not story:
        story.append(Spacer(1, 1))
    build_pdf(story, out, title)


def _indented(style: ParagraphStyle, indent: float) -> ParagraphStyle:
    if not indent:
        return style
    return ParagraphStyle(f"{style.name}+{indent}", parent=style, leftIndent=style.leftIndent + indent)
