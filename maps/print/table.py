"""The area page's table of compounds: columns, widths, rows that fit, a total row."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from geo.query.selection import CompoundFacts
from maps.print.sheet import Sheet, align_x, line_height, status_swatch
from maps.print.text import blockers_short, clean, fit, percent, short_date, units


@dataclass
class Column:
    title: str
    width: float  # mm; 0 = share what is left
    get: Callable[[int, CompoundFacts], str]
    align: str = "left"
    lines: int = 1
    flex: float = 1.0  # share of the room left, for columns of width 0


def _deadline_cell(c: CompoundFacts, on: date) -> str:
    if not c.deadline:
        return "—"
    return short_date(c.deadline) + (" 逾期" if c.overdue(on) else "")


def area_columns(on: date, k: float = 1.0) -> list[Column]:
    """The area table's columns; widths in mm on A4, times `k` on larger paper."""
    return [
        Column("序号", 6.5 * k, lambda i, c: str(i), "center"),
        Column("小区名称", 0, lambda i, c: clean(c.name), lines=4, flex=0.8),
        Column("状态", 15 * k, lambda i, c: c.status_label),
        Column("任务套数", 10 * k, lambda i, c: units(c.units_task), "right"),
        Column("已登记", 10 * k, lambda i, c: units(c.units_transferred), "right"),
        Column("化解率", 10 * k, lambda i, c: percent(c.transfer_rate), "right"),
        Column("卡点", 0, lambda i, c: blockers_short(c), lines=3, flex=1.2),
        Column("牵头单位", 15 * k, lambda i, c: clean(c.lead_department), lines=2),
        Column("限时办结", 17.5 * k, lambda i, c: _deadline_cell(c, on), lines=2),
    ]


@dataclass
class TableStyle:
    size: float = 6.5
    min_size: float = 5.5
    pad: float = 0.75


def _widths(columns: list[Column], total: float) -> list[float]:
    fixed = sum(c.width for c in columns)
    weights = sum(c.flex for c in columns if not c.width) or 1.0
    room = max(total - fixed, 12.0 * weights)
    return [c.width or room * c.flex / weights for c in columns]


def _row_cells(columns, widths, index, c, style) -> tuple[list, float]:
    cells, tallest = [], 1
    for col, w in zip(columns, widths, strict=True):
        lines, size = fit(
            col.get(index, c), w - 2 * style.pad, style.size, col.lines, style.min_size
        )
        cells.append((lines, size))
        tallest = max(tallest, len(lines))
    height = line_height(style.size, 1.25) * tallest + 2 * style.pad
    return cells, height


def draw_table(
    sheet: Sheet,
    x,
    y,
    width,
    bottom,
    columns: list[Column],
    rows: list[tuple[int, CompoundFacts]],
    style: TableStyle,
    on: date,
    total_row: list[str] | None = None,
) -> int:
    """Draw as many rows as fit above `bottom`; returns how many were drawn."""
    widths = _widths(columns, width)
    head_h = line_height(style.size, 1.25) + 2 * style.pad + 0.6
    sheet.rect(x, y, sum(widths), head_h, fc="#e6e6e6", ec="none")
    cx = x
    for col, w in zip(columns, widths, strict=True):
        lines, size = fit(col.title, w - 2 * style.pad, style.size, 1, style.min_size - 1)
        sheet.text(
            align_x(cx, w, col.align, style.pad),
            y + head_h / 2,
            lines[0],
            size=size,
            weight="bold",
            ha=col.align,
            va="center",
        )
        cx += w
    sheet.hline(x, x + sum(widths), y, lw=0.8)
    sheet.hline(x, x + sum(widths), y + head_h, lw=0.5)
    cy = y + head_h
    total_h = line_height(style.size, 1.25) + 2 * style.pad if total_row else 0
    drawn = 0
    for n, (index, c) in enumerate(rows):
        cells, h = _row_cells(columns, widths, index, c, style)
        room = bottom - (total_h if n == len(rows) - 1 else 0)
        if cy + h > room:
            break
        if c.overdue(on):
            sheet.rect(x, cy, sum(widths), h, fc="#f2f2f2", ec="none", zorder=0.5)
        cx = x
        for col, w, (lines, size) in zip(columns, widths, cells, strict=True):
            if col.title == "状态":
                status_swatch(sheet, cx + style.pad, cy + style.pad + 0.2, 3.2, 2.4, c.status)
                sheet.lines(cx + style.pad + 4.2, cy + style.pad, lines, size, 1.25)
            else:
                anchor = align_x(cx, w, col.align, style.pad)
                weight = "bold" if col.title == "限时办结" and c.overdue(on) else "normal"
                sheet.lines(anchor, cy + style.pad, lines, size, 1.25, ha=col.align, weight=weight)
            cx += w
        cy += h
        sheet.hline(x, x + sum(widths), cy, lw=0.25, color="#9a9a9a")
        drawn += 1
    if total_row and drawn == len(rows):
        cx = x
        for col, w, value in zip(columns, widths, total_row, strict=True):
            sheet.text(
                align_x(cx, w, col.align, style.pad),
                cy + style.pad,
                value,
                size=style.size,
                weight="bold",
                ha=col.align,
            )
            cx += w
        cy += total_h
    sheet.hline(x, x + sum(widths), cy, lw=0.8)
    return drawn
