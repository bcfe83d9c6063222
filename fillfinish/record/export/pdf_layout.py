"""PDF layout for the batch record export: page geometry, fonts (a Unicode font when the record needs one), styles,
escaped paragraphs, grids, the numbered page canvas, and entry data as text.

Used by fillfinish/record/export/pdf.py, which lays out the sections.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from fillfinish.record.names import escape_text

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph, Table, TableStyle

from fillfinish.record.chain import canonical_json
from fillfinish.record.export.summary import RecordSnapshot, fmt_time

PAGE = A4
MARGIN = 1.5 * cm
FRAME_WIDTH = PAGE[0] - 2 * MARGIN
STATUS_COLOURS = {
    "pass": colors.HexColor("#d5f0dc"),
    "attention": colors.HexColor("#fdebc8"),
    "fail": colors.HexColor("#f6d0cc"),
    "n/a": colors.HexColor("#e6e6e6"),
}
EXCEPTION_ENTRY_KINDS = frozenset({"alarm", "deviation", "exception", "safe_state", "interlock", "recovery",
                                   "command_refused", "operator", "alarm_ack", "alarm_clear"})
"""Entry kinds printed in red in the full entry list."""
UNICODE_FONT = "FillfinishDejaVu"
MAX_CELL_CHARS = 3000
"""Longest text printed in one cell (about half a page in the entry list's small print)."""
ROWS_PER_TABLE = 250
"""The entry list is set as several tables of this many rows (reportlab splits long tables in quadratic time)."""


def _needs_unicode(snap: RecordSnapshot) -> bool:
    """True when some text of the record cannot be shown in WinAnsi (the standard fonts' encoding)."""
    h = snap.header
    texts = [h.product, h.product_code, h.lot, h.operator, h.recipe_name, h.recipe_version, h.mode]
    texts += [f"{e.kind}{e.actor}{canonical_json(e.data)}" for e in snap.entries]
    try:
        "".join(texts).encode("cp1252")
    except UnicodeEncodeError:
        return True
    return False


def _fonts(snap: RecordSnapshot) -> tuple[str, str]:
    """(regular, bold) font names for this record: Helvetica, or embedded DejaVu Sans when the text needs it."""
    if not _needs_unicode(snap):
        return "Helvetica", "Helvetica-Bold"
    if UNICODE_FONT not in pdfmetrics.getRegisteredFontNames():
        import matplotlib

        folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
        pdfmetrics.registerFont(TTFont(UNICODE_FONT, str(folder / "DejaVuSans.ttf")))
        pdfmetrics.registerFont(TTFont(UNICODE_FONT + "-Bold", str(folder / "DejaVuSans-Bold.ttf")))
        pdfmetrics.registerFontFamily(UNICODE_FONT, normal=UNICODE_FONT, bold=UNICODE_FONT + "-Bold",
                                      italic=UNICODE_FONT, boldItalic=UNICODE_FONT + "-Bold")
    return UNICODE_FONT, UNICODE_FONT + "-Bold"


class _Styles:
    """The paragraph styles of one document (built for its fonts)."""

    def __init__(self, regular: str, bold: str) -> None:
        """Make body, small, tiny, heading and title styles in `regular`/`bold`."""
        self.regular, self.bold = regular, bold
        self.body = ParagraphStyle("body", fontName=regular, fontSize=8.5, leading=10.5, alignment=TA_LEFT)
        self.small = ParagraphStyle("small", parent=self.body, fontSize=7.5, leading=9)
        self.tiny = ParagraphStyle("tiny", parent=self.body, fontSize=6, leading=7.2)
        self.tiny_red = ParagraphStyle("tiny_red", parent=self.tiny, textColor=colors.HexColor("#a61b0f"))
        self.mono = ParagraphStyle("mono", parent=self.body, fontName="Courier", fontSize=7, leading=8.5)
        self.h1 = ParagraphStyle("h1", parent=self.body, fontName=bold, fontSize=15, leading=19, spaceAfter=4)
        self.h2 = ParagraphStyle("h2", parent=self.body, fontName=bold, fontSize=11, leading=14, spaceBefore=10,
                                 spaceAfter=4, textColor=colors.HexColor("#1f3a5f"))
        self.box_title = ParagraphStyle("box_title", parent=self.body, fontName=bold, fontSize=11, leading=14)


def _cut(text: Any) -> str:
    """Record text escaped for a paragraph: cut at MAX_CELL_CHARS (so that no table row can outgrow a page; the JSON
    and BatchML exports keep everything), control characters shown escaped (\\n, \\x1b, so a newline in an actor
    or reason can never print a line of its own, issue 6 point 7), XML special characters escaped."""
    text = str(text)
    if len(text) > MAX_CELL_CHARS:
        text = text[:MAX_CELL_CHARS] + f" ... [{len(text) - MAX_CELL_CHARS:,} more characters: see the JSON export]"
    return escape(escape_text(text))


def _p(text: Any, style: ParagraphStyle) -> Paragraph:
    """A paragraph of plain text (never read as markup; see _cut)."""
    return Paragraph(_cut(text), style)


def _p_lines(lines: Sequence[Any], style: ParagraphStyle) -> Paragraph:
    """A paragraph of several lines of record text, each as _p makes it, joined by real line breaks."""
    return Paragraph("<br/>".join(_cut(line) for line in lines), style)


def _grid(rows: list[list[Any]], widths: Sequence[float], *, header: bool = True, repeat: bool = False,
          extra: Sequence[tuple[Any, ...]] = ()) -> Table:
    """A table with thin grid lines, an optional shaded header row and extra style commands."""
    table = Table(rows, colWidths=list(widths), repeatRows=1 if repeat else 0)
    style: list[tuple[Any, ...]] = [
        ("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#9aa5b1")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
    ]
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde4ec")))
    table.setStyle(TableStyle(style + list(extra)))
    return table


def _canvas_class(snap: RecordSnapshot, regular: str) -> type[Canvas]:
    """A canvas that holds pages back until the end so every footer can say 'page X of Y'."""
    h = snap.header
    left = f"Batch record {h.batch_id}  |  {h.product_code}  |  lot {h.lot}"
    generated = f"generated {fmt_time(snap.generated_at)}"

    class NumberedCanvas(Canvas):
        """reportlab canvas with deferred page output and a running header and footer."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            """Start with no pages saved."""
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:  # noqa: N802 - reportlab's name
            """Keep the finished page's state; it is drawn in save() once the page count is known."""
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            """Draw header and footer on every kept page, then write the document."""
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self._furniture(total)
                super().showPage()
            super().save()

        def _furniture(self, total: int) -> None:
            """Running header line and the footer with batch id, generation time and 'page X of Y'."""
            width, height = PAGE
            self.saveState()
            self.setStrokeColor(colors.HexColor("#9aa5b1"))
            self.setLineWidth(0.4)
            self.line(MARGIN, height - MARGIN + 12, width - MARGIN, height - MARGIN + 12)
            self.line(MARGIN, MARGIN - 12, width - MARGIN, MARGIN - 12)
            self.setFont(regular, 7)
            self.setFillColor(colors.HexColor("#44505c"))
            self.drawString(MARGIN, height - MARGIN + 16, f"Electronic batch record  |  {h.product}")
            self.drawRightString(width - MARGIN, height - MARGIN + 16, h.batch_id)
            self.drawString(MARGIN, MARGIN - 22, left)  # two footer lines: the lot can be long
            self.drawString(MARGIN, MARGIN - 31, generated)
            self.drawRightString(width - MARGIN, MARGIN - 22, f"page {self._pageNumber} of {total}")
            self.restoreState()

    return NumberedCanvas


def data_text(data: dict[str, Any]) -> str:
    """All of an entry's data as 'key=value ...' in key order, numbers at full precision (nothing cut or rounded)."""
    parts = []
    for key in sorted(data):
        value = data[key]
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True,
                                                                separators=(",", ":"))
        parts.append(f"{key}={shown}")
    return " ".join(parts)
