"""The bulletin as PDF: A4 portrait pages flowing the blocks of maps.bulletin.content — the
same words and tables as the Word file — and the small map of the compounds that changed.

Drawn with the print module (maps.print): its embedded TrueType font (maps.fonts, text stays
searchable), its page sheets, tables, map layers and furniture, and its one PDF writer.
"""

from dataclasses import dataclass

from sqlalchemy import Connection

from geo import TitlemapError
from maps.bulletin.content import Block, Table, blocks, file_title
from maps.bulletin.map import draw_changes
from maps.print.furniture import line_legend, status_legend
from maps.print.sheet import (
    A4_PORTRAIT,
    INK,
    OTHER_EDGE,
    OTHER_FILL,
    Sheet,
    line_height,
    write_pdf,
)
from maps.print.table import Column, TableStyle, draw_table
from maps.print.text import clean, wrap

W, H = A4_PORTRAIT
LEFT, TOP, BOTTOM = 20.0, 18.0, 18.0  # mm; the footer sits in the bottom margin
WIDTH = W - 2 * LEFT
BODY_PT, LEADING = 10.0, 1.65
TABLE = TableStyle(size=7.5, min_size=6.5, pad=0.9)
MAP_H = 105.0  # mm
LEGEND_H = 2 * line_height(7, 1.55) + 2
RED = "#c00000"
TEXT_COLUMNS = {"小区", "交办事项", "牵头单位", "承办单位", "乡镇（街道）"}  # may wrap


@dataclass
class Cells:
    """A table row as maps.print.table.draw_table reads one."""

    values: tuple[str, ...]
    status: str = ""

    def overdue(self, _on) -> bool:
        return False  # the overdue table is all overdue: no row is marked apart


def _cell(k: int):
    return lambda _index, row: row.values[k]


class Flow:
    """Blocks laid down one under another, onto a new page when one is full."""

    def __init__(self) -> None:
        self.pages: list[Sheet] = []
        self.new_page()

    def new_page(self) -> None:
        self.pages.append(Sheet(W, H))
        self.y = TOP

    @property
    def sheet(self) -> Sheet:
        return self.pages[-1]

    @property
    def bottom(self) -> float:
        return H - BOTTOM

    def room(self, height: float) -> None:
        """A new page unless `height` mm fits below."""
        if self.y + height > self.bottom and self.y > TOP:
            self.new_page()

    def centred(self, text_: str, size: float, bold=False, color=INK, after=1.5) -> None:
        for line in wrap(clean(text_), WIDTH, size):
            self.room(line_height(size, 1.35))
            weight = "bold" if bold else "normal"
            self.sheet.text(W / 2, self.y, line, size=size, weight=weight, ha="center", color=color)
            self.y += line_height(size, 1.35)
        self.y += after

    def para(self, text_: str, size=BODY_PT, indent=True, after=1.0) -> None:
        text_ = clean(text_)
        shift = 2 * size / 72 * 25.4 if indent else 0.0  # two characters
        first = wrap(text_, WIDTH - shift, size)[0]
        lines = [first] + (
            [] if first == text_ else wrap(text_[len(first) :].lstrip(), WIDTH, size)
        )
        step = line_height(size, LEADING)
        for n, line in enumerate(lines):
            self.room(step)
            self.sheet.text(LEFT + (shift if n == 0 else 0), self.y, line, size=size)
            self.y += step
        self.y += after

    def heading(self, text_: str, keep: float) -> None:
        """A heading, on a new page unless `keep` mm of what follows fit under it."""
        self.room(line_height(12, 1.4) + 2.0 + keep)
        self.y += 1.5
        self.sheet.text(LEFT, self.y, text_, size=12, weight="bold")
        self.y += line_height(12, 1.4) + 0.5

    def masthead(self, office: str, day: str) -> None:
        self.sheet.text(LEFT, self.y, office, size=10.5)
        self.sheet.text(W - LEFT, self.y, day, size=10.5, ha="right")
        self.y += line_height(10.5, 1.3) + 1.2
        self.sheet.hline(LEFT, W - LEFT, self.y, lw=1.6, color=RED)
        self.y += 4.0

    def table(self, table: Table) -> None:
        total = sum(table.widths)
        columns = [
            Column(
                title,
                WIDTH * width / total,
                _cell(k),
                align,
                lines=3 if title in TEXT_COLUMNS else 1,
            )
            for k, (title, width, align) in enumerate(
                zip(table.headers, table.widths, table.align, strict=True)
            )
        ]
        statuses = table.statuses or [""] * len(table.rows)
        rows = [(i, Cells(values, status)) for i, (values, status) in
                enumerate(zip(table.rows, statuses, strict=True), start=1)]  # fmt: skip
        caption, size = table.caption, 9.0
        head = line_height(size, 1.4) + line_height(TABLE.size, 1.25) * 3  # caption + 2 rows
        while True:
            self.room(head)
            self.sheet.text(W / 2, self.y, caption, size=size, weight="bold", ha="center")
            self.y += line_height(size, 1.4)
            drawn = draw_table(
                self.sheet, LEFT, self.y, WIDTH, self.bottom, columns, rows, TABLE, None
            )
            if drawn == 0:
                if self.y <= TOP + head:
                    raise TitlemapError("表格一行也放不下 / a table row does not fit on the page")
                self.new_page()
                continue
            rows = rows[drawn:]
            if not rows:
                break
            self.new_page()
            caption = f"{table.caption}（续）"
        # draw_table ends with the table's bottom rule: the last line on the sheet
        self.y = float(self.sheet.ax.lines[-1].get_ydata()[0]) + 4.0

    def picture(self, conn: Connection, figures: dict) -> None:
        self.room(MAP_H + LEGEND_H + 8)
        self.sheet.text(
            W / 2, self.y, "本期化解状态变化小区分布示意图", size=9.0, weight="bold", ha="center"
        )
        self.y += line_height(9.0, 1.4)
        problem = draw_changes(self.sheet, conn, figures, LEFT, self.y, WIDTH, MAP_H)
        if problem:
            self.para(f"（{problem}）", indent=False)
            return
        self.y += MAP_H + 2.5
        below = status_legend(self.sheet, LEFT, self.y, size=7, columns=6, col_w=WIDTH / 6)
        others = [("其他小区（本期状态未变）", {"fill": OTHER_FILL, "color": OTHER_EDGE})]
        self.y = line_legend(self.sheet, LEFT, below, others, size=7, col_w=WIDTH) + 3.0

    def footer(self, figures: dict) -> None:
        mark = "草稿 · " if figures.get("draft") else ""
        for n, sheet in enumerate(self.pages, start=1):
            sheet.text(
                W / 2,
                H - BOTTOM + 6,
                f"{mark}第 {n} 页 / 共 {len(self.pages)} 页",
                size=8,
                ha="center",
                color="#444444",
            )


def _keep(block: Block | None) -> float:
    """How much of `block` must follow its heading on the same page (mm)."""
    if block is None:
        return 0.0
    if block.kind == "map":
        return MAP_H + LEGEND_H + 8
    if block.kind == "table":
        return line_height(9.0, 1.4) + 3 * line_height(TABLE.size, 1.25)
    return 3 * line_height(BODY_PT, LEADING)


def _lay_out(flow: Flow, block: Block, after: Block | None, conn, figures: dict) -> None:
    if block.kind == "title":
        flow.y += 4
        flow.centred(block.text, 16, bold=True, after=1.0)
    elif block.kind == "draft":
        flow.centred(block.text, 13, bold=True, color=RED, after=1.0)
    elif block.kind == "number":
        flow.centred(block.text, 11, after=3.0)
    elif block.kind == "masthead":
        flow.masthead(block.text, block.right)
    elif block.kind == "note":
        flow.para(block.text, size=8.5, indent=False, after=1.5)
    elif block.kind == "heading":
        flow.heading(block.text, _keep(after))
    elif block.kind == "para":
        flow.para(block.text)
    elif block.kind == "table" and block.table is not None:
        flow.table(block.table)
    elif block.kind == "map":
        flow.picture(conn, figures)


def _pages(conn: Connection, figures: dict):
    flow = Flow()  # made inside write_pdf: the print settings (font) hold while it draws
    laid = blocks(figures)
    for block, after in zip(laid, [*laid[1:], None], strict=True):
        _lay_out(flow, block, after, conn, figures)
    flow.footer(figures)
    for sheet in flow.pages:
        yield sheet.fig


def bulletin_pdf(conn: Connection, figures: dict) -> bytes:
    """The bulletin as PDF bytes; `conn` gives the compounds' outlines for the map."""
    return write_pdf(_pages(conn, figures), file_title(figures))
