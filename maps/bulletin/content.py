"""What a bulletin prints, in order, as blocks both renderers lay out: Word (maps.bulletin.docx)
and PDF (maps.bulletin.pdf) show the same words and the same tables.

Blocks are read from the figures alone (geo.ledger.bulletin.bulletin_figures, or the figures an
issued bulletin kept), so an issued bulletin prints what it printed on the day.
"""

from dataclasses import dataclass, field
from datetime import date

from geo.core.dates import cn_date
from geo.ledger.bulletin import percent_text, points_text, signed

DRAFT_MARK = "（草稿）"


@dataclass(frozen=True)
class Table:
    caption: str
    headers: tuple[str, ...]
    rows: list[tuple[str, ...]]
    widths: tuple[float, ...]  # relative widths of the columns
    align: tuple[str, ...]  # left / center / right per column
    statuses: list[str] = field(default_factory=list)  # per row, for a swatch (PDF)


@dataclass(frozen=True)
class Block:
    kind: str  # title, draft, number, masthead, heading, para, table, map, note
    text: str = ""
    right: str = ""  # masthead: the date
    table: Table | None = None


def _day(value) -> str:
    return cn_date(date.fromisoformat(value)) if value else "—"


def _units(value) -> str:
    return "—" if value is None else f"{value:,}"


def number_text(figures: dict) -> str:
    return f"第 {figures['number']} 期"


def file_title(figures: dict) -> str:
    """督查通报第3期（2026-W48）: the file's name and the PDF's title."""
    draft = "草稿" if figures.get("draft") else ""
    return f"督查通报第{figures['number']}期{draft}（{figures['period']}）"


def overall_table(f: dict) -> Table:
    o, p, c = f["overall"], f["previous"]["figures"], f["change"]
    rows = [
        ("台账小区（个）", "compounds", _units, signed),
        ("已销号小区（个）", "closed", _units, signed),
        ("任务套数（套）", "units_task", _units, signed),
        ("已首次登记（套）", "units_first_registered", _units, signed),
        ("已转移登记（套）", "units_transferred", _units, signed),
        ("首次登记化解率", "first_rate", percent_text, points_text),
        ("转移登记化解率", "transfer_rate", percent_text, points_text),
        ("总体登记率", "overall_rate", percent_text, points_text),
    ]
    body = [(label, show(o.get(key)), show(p.get(key)), change(c.get(key)))
            for label, key, show, change in rows]  # fmt: skip
    body.append(("县定目标（总体登记率）", percent_text(f["target_rate"]), "", ""))
    previous = f"上期（截至{_day(f['previous']['as_of'])}）"
    return Table(
        "表1 总体进展",
        ("指标", f"本期（截至{_day(f['as_of'])}）", previous, "增减"),
        body,
        (3, 3, 3, 2.4),
        ("left", "right", "right", "right"),
    )


def ranking_table(caption: str, unit: str, rows: list[dict], with_overdue: bool) -> Table:
    headers = [
        "排名",
        unit,
        "台账小区",
        "任务套数",
        "本期化解（套）",
        "累计转移登记",
        "转移登记化解率",
    ]
    widths = [1.2, 3.2, 1.6, 1.8, 2.0, 2.0, 2.2]
    if with_overdue:
        headers.append("逾期任务")
        widths.append(1.6)
    body = []
    for r in rows:
        cells = [
            str(r["rank"]), r["name"], _units(r["compounds"]), _units(r["units_task"]),
            _units(r["resolved"]), _units(r["units_transferred"]), percent_text(r["transfer_rate"]),
        ]  # fmt: skip
        if with_overdue:
            cells.append(str(r["overdue"]))
        body.append(tuple(cells))
    align = ("center", "left", *("right",) * (len(headers) - 2))
    return Table(caption, tuple(headers), body, tuple(widths), align)


def overdue_table(caption: str, tasks: list[dict]) -> Table:
    body = [
        (str(i), t["compound"], t["department"], t["action"], _day(t["due_on"]),
         str(t["days_late"]))
        for i, t in enumerate(tasks, start=1)
    ]  # fmt: skip
    return Table(
        caption,
        ("序号", "小区", "承办单位", "交办事项", "限时办结", "逾期天数"),
        body,
        (1.0, 3.0, 2.0, 4.6, 2.6, 1.6),
        ("center", "left", "left", "left", "left", "right"),
    )


def stalled_table(caption: str, stalled: list[dict]) -> Table:
    body = [
        (str(i), s["compound"], s["department"], s["status_label"], _units(s["units_task"]),
         _day(s["last_event_on"]), str(s["days_quiet"]))
        for i, s in enumerate(stalled, start=1)
    ]  # fmt: skip
    return Table(
        caption,
        ("序号", "小区", "牵头单位", "状态", "任务套数", "台账最后更新", "无更新天数"),
        body,
        (1.0, 3.4, 2.0, 1.8, 1.6, 2.8, 1.6),
        ("center", "left", "left", "left", "right", "left", "right"),
        [s["status"] for s in stalled],
    )


def changed_table(caption: str, changed: list[dict]) -> Table:
    body = [
        (str(i), c["compound"], c["township"] or "—", c["department"], c["status_before_label"],
         c["status_label"], f"{_units(c['units_transferred_before'])}→"
         f"{_units(c['units_transferred'])}")
        for i, c in enumerate(changed, start=1)
    ]  # fmt: skip
    return Table(
        caption,
        ("序号", "小区", "乡镇（街道）", "牵头单位", "原状态", "状态", "转移登记（套）"),
        body,
        (1.0, 3.4, 2.2, 2.0, 2.0, 2.2, 2.4),
        ("center", "left", "left", "left", "left", "left", "right"),
        [c["status"] for c in changed],
    )


def blocks(f: dict) -> list[Block]:
    """The bulletin from its heading to its last table, in reading order."""
    out = [Block("title", f["title"])]
    if f.get("draft"):
        out.append(Block("draft", DRAFT_MARK))
    out.append(Block("number", number_text(f)))
    out.append(Block("masthead", f["office"], right=_day(f["date"])))
    out.append(
        Block("note", f"通报期间：{f['period_label']}；数据截至{_day(f['as_of'])}（北京时间）。")
    )
    n = 1
    out.append(Block("heading", "一、总体进展"))
    out += [Block("para", p) for p in f["text"]["overall"]]
    out.append(Block("table", table=overall_table(f)))
    out.append(Block("heading", "二、各单位进展情况"))
    out += [Block("para", p) for p in f["text"]["units"]]
    n += 1
    out.append(Block("table", table=ranking_table(f"表{n} 牵头单位进展排名", "牵头单位",
                                                  f["departments"], True)))  # fmt: skip
    if f["townships"]:
        n += 1
        towns = ranking_table(f"表{n} 乡镇（街道）进展排名", "乡镇（街道）", f["townships"], False)
        out.append(Block("table", table=towns))
    out.append(Block("heading", "三、存在的问题"))
    out += [Block("para", p) for p in f["text"]["problems"]]
    if f["overdue"]:
        n += 1
        out.append(Block("table", table=overdue_table(f"表{n} 逾期未办结的交办任务", f["overdue"])))
    if f["stalled"]:
        n += 1
        caption = f"表{n} 连续{f['stalled_days']}天以上无台账更新的小区"
        out.append(Block("table", table=stalled_table(caption, f["stalled"])))
    out.append(Block("heading", "四、下步要求"))
    out += [Block("para", p) for p in f["text"]["requirements"]]
    out.append(Block("heading", "附：本期化解状态变化的小区"))
    if f["changed"]:
        n += 1
        out.append(Block("map"))
        out.append(Block("table", table=changed_table(f"表{n} 本期化解状态变化的小区",
                                                      f["changed"])))  # fmt: skip
    else:
        out.append(Block("para", "本期无化解状态变化的小区。"))
    return out
