"""A visit pack's page per compound: a large map of it with its parcels and planned-area
overlaps, its ledger card, blockers with the departments responsible, the plan and next steps,
its status history and room for notes."""

import math
from datetime import date
from io import BytesIO

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from geo.core.dates import beijing_day
from geo.query.selection import (
    BLOCKER_DEPARTMENT,
    BLOCKER_TEXT,
    STATUS_TEXT,
    CompoundFacts,
    Layers,
)
from maps.fonts import text_width_mm
from maps.print.furniture import MapFrame, graticule, map_frame, north_arrow, place_inset, scale_bar
from maps.print.geometry import draw_lines, draw_polygons
from maps.print.labels import label_planned, place_label
from maps.print.layers import draw_compounds, draw_context, draw_others
from maps.print.pack import StopPhoto, VisitPack, VisitStop
from maps.print.sheet import (
    A4_PORTRAIT,
    INK,
    OTHER_EDGE,
    OTHER_FILL,
    OUTLINE,
    Sheet,
    line_height,
    status_swatch,
)
from maps.print.text import blocker_short, clean, cn_date, fit, percent, short_date, units
from maps.print.titles import crs_note

ACTION_TEXT = {"open": "挂账", "update": "更新", "close": "销号", "reopen": "重新挂账"}
FIELD_TEXT = {
    "status": "状态",
    "units_task": "任务套数",
    "units_first_registered": "首次登记",
    "units_transferred": "转移登记",
    "blockers": "卡点",
    "blocker_note": "卡点说明",
    "lead_department": "牵头单位",
    "cooperating_departments": "配合单位",
    "supervising_leader": "包抓领导",
    "plan": "方案",
    "task_force_lead": "专班负责人",
    "deadline": "限时",
    "opened_on": "挂账日期",
    "closed_on": "销号日期",
    "close_reason": "销号理由",
    "ledger_no": "台账编号",
}
DEVELOPER_STATUS = {"blacklisted": "已列入失信名单", "unreachable": "失联"}
PHOTO_MM = (38.0, 30.0)  # the latest site photo at most this wide and high on the map


def _change_text(field_: str, change) -> str:
    name = FIELD_TEXT.get(field_, field_)
    try:
        before, after = change
    except (TypeError, ValueError):
        return f"{name}更新"

    def show(value) -> str:
        if value is None or value == [] or value == "":
            return "无"
        if field_ == "status":
            return STATUS_TEXT.get(value, str(value))
        if field_ in ("deadline", "opened_on", "closed_on") and isinstance(value, str):
            try:
                return short_date(date.fromisoformat(value[:10]))
            except ValueError:
                return clean(value)
        if field_ == "blockers" and isinstance(value, list):
            return "、".join(blocker_short(b) for b in value)
        if isinstance(value, list):
            return "、".join(map(str, value))
        return clean(value)

    if field_ in ("plan", "blocker_note", "close_reason"):
        return f"{name}已修改"
    if before is None:
        return f"{name} {show(after)}"
    return f"{name} {show(before)}→{show(after)}"


def _event_text(event) -> str:
    if event.action == "open":
        return "挂账" + (f"（{STATUS_TEXT.get(event.status, '')}）" if event.status else "")
    changes = [
        _change_text(k, v) for k, v in event.changes.items() if k not in ("closed_on", "updated_by")
    ]
    head = ACTION_TEXT.get(event.action, event.action)
    body = "；".join(changes)
    return body if event.action == "update" and body else f"{head}{'：' + body if body else ''}"


def next_steps(c: CompoundFacts, on: date) -> list[str]:
    """What remains, by whom and by when, from the ledger entry and its latest note."""
    if not c.on_ledger:
        return ["不在化解台账：核实是否漏报；属于化解范围的，按程序纳入台账（挂账）。"]
    steps = []
    task = c.units_task or 0
    first, done = c.units_first_registered or 0, c.units_transferred or 0
    if c.status == "closed":
        reason = f"（{clean(c.close_reason)}）" if c.close_reason else ""
        steps.append(f"已于 {cn_date(c.closed_on)} 销号{reason}；回访业主，巩固成果。")
        if done < task:
            steps.append(f"尚有 {task - done:,} 套未转移登记，跟踪办结。")
    else:
        if first < task:
            steps.append(f"首次登记：尚余 {task - first:,} 套（已完成 {first:,} / {task:,}）。")
        if done < task:
            steps.append(f"转移登记：尚余 {task - done:,} 套（已完成 {done:,} / {task:,}）。")
        if c.blockers:
            leads = list(dict.fromkeys(BLOCKER_DEPARTMENT.get(b, "—") for b in c.blockers))
            steps.append(f"破解卡点 {len(c.blockers)} 项：{'、'.join(leads)}分别牵头（见上表）。")
        if c.deadline:
            days = (c.deadline - on).days
            when = f"已逾期 {-days} 天，说明原因并重定时限" if days < 0 else f"剩 {days} 天"
            steps.append(f"限 {cn_date(c.deadline)} 前办结（{when}）。")
        if c.supervising_leader or c.task_force_lead:
            steps.append(
                f"包抓领导 {clean(c.supervising_leader)} 督办，专班负责人 "
                f"{clean(c.task_force_lead)} 推进并报告进展。"
            )
    if c.developer_status in DEVELOPER_STATUS:
        reason = f"（{clean(c.blacklist_reason)}）" if c.blacklist_reason else ""
        steps.append(
            f"开发企业{DEVELOPER_STATUS[c.developer_status]}{reason}：依法追责，不影响群众办证。"
        )
    latest = next((e for e in reversed(c.history) if e.note), None)
    if latest is not None:
        when = short_date(beijing_day(latest.at))
        steps.append(f"最近进展（{when}）：{clean(latest.note)}")
    return steps


def stop_page(pack: VisitPack, stop: VisitStop) -> Figure:
    c, selection = stop.facts, pack.selection
    on = selection.printed_on
    W, H = A4_PORTRAIT
    margin = 10.0
    inner = W - 2 * margin
    sheet = Sheet(W, H)

    # header: stop badge, name (wrapped or shrunk), status
    badge = 11.0
    sheet.rect(margin, margin, badge, badge, fc=INK, ec=INK)
    sheet.text(
        margin + badge / 2,
        margin + badge / 2,
        str(stop.number),
        size=13 if stop.number < 100 else 10,
        weight="bold",
        ha="center",
        va="center",
        color="white",
    )
    status_w = 34.0
    name_x = margin + badge + 3
    name_w = inner - badge - 3 - status_w - 3
    lines, size = fit(clean(c.name), name_w, 16, 3, 9)
    y = sheet.lines(name_x, margin - 0.6, lines, size, 1.12, weight="bold")
    sub = " · ".join(
        part
        for part in (
            clean(c.code),
            f"台账 {clean(c.ledger_no)}" if c.on_ledger else "不在台账",
            clean(c.township, ""),
            clean(c.address, ""),
        )
        if part
    )
    y = sheet.para(name_x, max(y, margin + 6) + 0.5, sub, name_w, 7.5, 2, 6.5, color="#333333")
    sx = W - margin - status_w
    status_swatch(sheet, sx, margin, status_w, 8.5, c.status, lw=0.6)
    sheet.rect(sx + 3, margin + 1.6, status_w - 6, 5.3, fc="white", ec="none", zorder=2)
    sheet.text(
        sx + status_w / 2,
        margin + 4.25,
        c.status_label,
        size=10,
        weight="bold",
        ha="center",
        va="center",
        zorder=3,
    )
    sheet.text(
        sx + status_w / 2,
        margin + 10.2,
        f"走访第 {stop.number} / {len(pack.stops)} 站",
        size=6.5,
        ha="center",
    )
    top = max(y, margin + badge + 3.5) + 2.5

    # map
    map_h = 104.0
    frame = map_frame(
        sheet, margin + 4, top, inner - 4, map_h, c.geom.bounds, selection.county.epsg, margin=0.22
    )
    step = _draw_stop_map(sheet, frame, pack, stop)
    y = top + map_h + 6.5

    # two columns: ledger card | blockers, parcels, overlaps
    gap = 5.0
    col_w = (inner - gap) / 2
    left_end = _ledger_card(sheet, margin, y, col_w, c, on)
    right_end = _blockers_block(sheet, margin + col_w + gap, y, col_w, c)
    y = max(left_end, right_end) + 3

    # plan and next steps
    y = _heading(sheet, margin, y, inner, "化解方案（一小区、一方案、一专班）")
    y = (
        sheet.para(
            margin,
            y,
            c.plan or ("尚未制定化解方案。" if c.on_ledger else "不在化解台账，无化解方案。"),
            inner,
            7.5,
            4,
            6.5,
        )
        + 1.2
    )
    y = _heading(sheet, margin, y, inner, "下一步")
    for i, step_text in enumerate(next_steps(c, on)[:8], start=1):
        lines, used = fit(clean(step_text), inner - 5, 7.2, 2, 6.5)
        sheet.text(margin, y, f"{i}.", size=used)
        y = sheet.lines(margin + 4.5, y, lines, used)
    y += 1.5

    # history: as many of the latest events as fit, oldest first
    footer = H - margin - 4
    notes_h = 16.0
    y = _heading(sheet, margin, y, inner, f"化解历程（共 {len(c.history)} 条）")
    _history(sheet, margin, y, inner, footer - notes_h - 2, c)
    ny = footer - notes_h
    sheet.text(margin, ny, "现场办公记录：", size=7, weight="bold")
    for i in range(3):
        sheet.hline(
            margin + 20 if i == 0 else margin, W - margin, ny + 4.2 + i * 5, lw=0.3, color="#8a8a8a"
        )
    sheet.text(
        margin, H - margin - 1, crs_note(selection, step), size=5.2, color="#444444", va="bottom"
    )
    sheet.text(
        W - margin,
        H - margin - 1,
        f"{clean(selection.county.name)} · 打印 {cn_date(on)} · 第 {stop.number + 1} 页 / "
        f"共 {pack.total_pages} 页",
        size=6,
        ha="right",
        va="bottom",
    )
    return sheet.fig


def _heading(sheet: Sheet, x, y, width, title: str, size: float = 8.0) -> float:
    sheet.text(x, y, title, size=size, weight="bold")
    y += line_height(size, 1.2)
    sheet.hline(x, x + width, y, lw=0.6)
    return y + 1.0


def _ledger_card(sheet: Sheet, x, y, width, c: CompoundFacts, on: date) -> float:
    y = _heading(sheet, x, y, width, "台账卡片")
    size = 7.2
    key_w = 17.0
    task = c.units_task
    developer = clean(c.developer)
    if c.developer_status in DEVELOPER_STATUS:
        developer += f"（{DEVELOPER_STATUS[c.developer_status]}）"
    deadline = cn_date(c.deadline)
    if c.deadline and c.status != "closed":
        days = (c.deadline - on).days
        deadline += f"（逾期 {-days} 天）" if days < 0 else f"（剩 {days} 天）"
    rows = [
        ("化解状态", c.status_label),
        ("任务套数", f"{units(task)} 套" if task is not None else "—"),
        (
            "首次登记",
            f"{units(c.units_first_registered)} 套（{percent(c.first_rate)}）"
            if c.on_ledger
            else "—",
        ),
        (
            "转移登记",
            f"{units(c.units_transferred)} 套（{percent(c.transfer_rate)}）"
            if c.on_ledger
            else "—",
        ),
        (
            "已售套数",
            f"{units(c.units_sold)} 套 · {units(c.buildings)} 栋 · 占地 "
            f"{c.area_m2 / 10_000:.2f} 公顷",
        ),
        ("入住时间", cn_date(c.occupied_on)),
        ("开发企业", developer),
        ("包抓领导", clean(c.supervising_leader)),
        ("专班负责人", clean(c.task_force_lead)),
        ("牵头单位", clean(c.lead_department)),
        ("配合单位", "、".join(clean(d) for d in c.cooperating_departments) or "—"),
        ("挂账日期", cn_date(c.opened_on)),
        ("限时办结", deadline),
    ]
    if c.closed_on:
        rows.append(("销号日期", cn_date(c.closed_on)))
    for key, value in rows:
        lines, used = fit(value, width - key_w, size, 2, 6.2)
        sheet.text(x, y, key, size=6.6, color="#444444")
        weight = "bold" if key in ("化解状态", "限时办结") and "逾期" in value else "normal"
        if key == "化解状态":
            status_swatch(sheet, x + key_w, y + 0.2, 4, 2.6, c.status, lw=0.3)
            sheet.lines(x + key_w + 5.2, y, lines, used, weight="bold")
        else:
            sheet.lines(x + key_w, y, lines, used, weight=weight)
        y += line_height(size, 1.22) * len(lines) + 0.35
    return y


def _blockers_block(sheet: Sheet, x, y, width, c: CompoundFacts) -> float:
    y = _heading(sheet, x, y, width, "卡点与责任单位")
    size = 7.0
    if not c.blockers:
        y = sheet.para(x, y, "无卡点" if c.on_ledger else "不在台账", width, size)
    for b in c.blockers:
        dept = BLOCKER_DEPARTMENT.get(b, "—")
        label = BLOCKER_TEXT.get(b, b)
        dept_w = text_width_mm(dept, size) + 2
        lines, used = fit(label, width - dept_w - 3, size, 2, 6.2)
        sheet.text(x, y, "■", size=5.5, color="#555555")
        sheet.lines(x + 3, y, lines, used)
        sheet.text(x + width, y, dept, size=size, ha="right", weight="bold")
        y += line_height(size, 1.22) * len(lines) + 0.3
    if c.blocker_note:
        y = sheet.para(
            x, y + 0.4, f"说明：{clean(c.blocker_note)}", width, 6.6, 3, 6.0, color="#333333"
        )
    coop = "、".join(clean(d) for d in c.cooperating_departments)
    if coop:
        y = sheet.para(x, y + 0.3, f"配合：{coop}", width, 6.6, 2, 6.0, color="#333333")
    y += 1.5
    y = _heading(sheet, x, y, width, f"宗地（{len(c.parcels)} 宗）", 7.5)
    size = 6.4
    if not c.parcels:
        y = sheet.para(x, y, "无宗地记录（需核实用地手续）", width, size)
    for p in c.parcels[:5]:
        parts = [clean(p.code), f"{p.area_m2:,.0f} m²"]
        if p.recorded_area_m2:
            diff = (p.area_m2 - p.recorded_area_m2) / p.recorded_area_m2
            parts.append(f"登记 {p.recorded_area_m2:,.0f}（{diff:+.1%}）")
        if p.premium_owed > 0.5:
            parts.append(f"欠缴出让金 {p.premium_owed / 10_000:,.0f} 万元")
        y = sheet.para(x, y, " · ".join(parts), width, size, 2, 5.8)
    if len(c.parcels) > 5:
        y = sheet.para(x, y, f"另有 {len(c.parcels) - 5} 宗", width, size)
    y += 1.2
    shown = [o for o in c.overlaps if o.kind != "planning_area"]
    y = _heading(sheet, x, y, width, "规划叠加", 7.5)
    if not shown:
        y = sheet.para(x, y, "与规划道路、绿地无重叠", width, size)
    for o in shown[:4]:
        text_ = f"{clean(o.name)}：{o.area_m2:,.0f} m²（占小区 {o.share:.0%}）"
        y = sheet.para(x, y, text_, width, size, 2, 5.8)
    return y


def _history(sheet: Sheet, x, y, width, bottom, c: CompoundFacts) -> float:
    size = 6.4
    widths = (17.0, 0.0, 30.0)
    body_w = width - widths[0] - widths[2]
    rows = []
    for event in c.history:
        when = beijing_day(event.at)
        what = _event_text(event)
        note = clean(event.note, "")
        text_ = f"{what}。{note}" if note and note not in what else what
        lines, used = fit(text_, body_w - 2, size, 2, 5.8)
        who, _ = fit(clean(event.user), widths[2] - 1, size, 1, 5.5)
        rows.append((short_date(when), lines, used, who[0]))
    if not rows:
        return sheet.para(x, y, "无记录", width, size)
    step = line_height(size, 1.2)
    heights = [len(r[1]) * step + 0.5 for r in rows]
    room = bottom - y
    keep = len(rows)
    while keep and sum(heights[-keep:]) > room:
        keep -= 1
    if keep < len(rows):
        room -= step
        while keep and sum(heights[-keep:]) > room:
            keep -= 1
        sheet.text(x, y, f"…… 较早的 {len(rows) - keep} 条从略", size=size - 0.4, color="#555555")
        y += step
    for (when, lines, used, who), h in zip(
        rows[-keep:] if keep else [], heights[-keep:], strict=False
    ):
        sheet.text(x, y, when, size=size)
        sheet.lines(x + widths[0], y, lines, used, 1.2)
        sheet.text(x + width, y, who, size=size, ha="right", color="#444444")
        y += h
    return y


def _draw_stop_map(sheet: Sheet, frame: MapFrame, pack: VisitPack, stop: VisitStop) -> int:
    ax, c, layers = frame.ax, stop.facts, stop.layers
    draw_context(ax, layers, 6.0, frame)
    others = [(code, name, g) for code, name, _s, g in layers.compounds if code != c.code]
    draw_others(ax, [g for _, _, g in others], lw=0.4)
    neighbour_parcels = [g for code, g in layers.parcels if code not in {p.code for p in c.parcels}]
    draw_lines(
        ax,
        neighbour_parcels,
        colors="#b5b5b5",
        linewidths=0.3,
        zorder=3.1,
        linestyles=[(0, (2, 1))],
    )
    draw_compounds(ax, [(c.status, c.geom)], alpha=0.55, lw=1.6)
    # planned roads and green space cutting through: drawn over the compound
    cuts = [o for o in c.overlaps if o.kind in ("planned_road", "green_space") and o.share < 0.999]
    for o in cuts:
        draw_polygons(
            ax,
            [o.geom],
            facecolors="white",
            edgecolors=OUTLINE,
            linewidths=0.9,
            hatch="\\\\\\\\",
            alpha=0.85,
            zorder=5,
        )
    draw_lines(
        ax,
        [p.geom for p in c.parcels],
        colors=INK,
        linewidths=0.9,
        zorder=5.5,
        linestyles=[(0, (5, 1.2))],
    )
    taken: list = [
        place_inset(
            sheet, frame, [c.geom, *(g for _, _, g in others)], pack.view, 30.0, 24.0, c.geom
        )
    ]
    if stop.photo is not None:
        taken.append(_photo(sheet, frame, taken[0], stop.photo))
    # the compound's name at its centre
    centre = c.geom.representative_point()
    name_lines, used = fit(
        clean(c.name), max(min(frame.mm(math.sqrt(c.area_m2)), 60), 30), 9, 3, 6.5
    )
    place_label(
        ax,
        frame,
        taken,
        centre.x,
        centre.y,
        name_lines,
        used,
        offsets=((0, 0),),
        force=True,
        bold_text=True,
        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": INK, "lw": 0.5, "alpha": 0.9},
    )
    for o in cuts:
        p = o.geom.representative_point()
        label = [f"{clean(o.name)}", f"重叠 {o.area_m2:,.0f} m²（{o.share:.0%}）"]
        place_label(
            ax,
            frame,
            taken,
            p.x,
            p.y,
            label,
            6.0,
            color=OUTLINE,
            bold_text=True,
            offsets=((0, 0), (0, 6), (0, -6), (14, 0), (-14, 0), (0, 12), (0, -12)),
            bbox={"boxstyle": "square,pad=0.15", "fc": "white", "ec": OUTLINE, "lw": 0.4},
        )
    for p in c.parcels:
        point = p.geom.representative_point()
        code = clean(p.code)
        label = f"宗地 {code[-7:]}" if len(code) == 19 else code
        place_label(
            ax,
            frame,
            taken,
            point.x,
            point.y,
            [label],
            5.8,
            offsets=((0, -4), (0, 4), (0, -8), (0, 8)),
            bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8},
        )
    x0, y0, x1, y1 = frame.window
    for _code, name, g in others:
        p = g.representative_point()
        if not (x0 < p.x < x1 and y0 < p.y < y1):
            continue
        lines, used = fit(clean(name), 24, 6.0, 2, 5.5)
        place_label(
            ax,
            frame,
            taken,
            p.x,
            p.y,
            lines,
            used,
            color="#555555",
            offsets=((0, 0), (0, 5), (0, -5)),
        )
    cut_codes = {o.code for o in cuts}
    layers = Layers(
        layers.compounds,
        [a for a in layers.planned_areas if a[0] not in cut_codes],
        layers.context,
        layers.townships,
    )
    label_planned(ax, frame, layers, 6.0, taken)
    scale_bar(sheet, frame)
    north_arrow(sheet, frame)
    step = graticule(sheet, frame, lines=3)
    # a compact legend under the map
    ly = frame.y + frame.h + 3.6
    items = [
        ("本小区（按化解状态着色）", None),
        ("宗地界线", "parcel"),
        ("规划道路/绿地重叠", "cut"),
        ("规划片区界线", "planned"),
        ("其他小区", "other"),
    ]
    lx = frame.x + 12
    for label, kind in items:
        if kind is None:
            status_swatch(sheet, lx, ly - 1.2, 5, 2.4, c.status, lw=0.3)
        elif kind == "parcel":
            sheet.ax.plot([lx, lx + 5], [ly, ly], color=INK, linewidth=0.9, linestyle=(0, (5, 1.2)))
        elif kind == "cut":
            sheet.rect(lx, ly - 1.2, 5, 2.4, fc="white", ec=OUTLINE, lw=0.5, hatch="\\\\\\\\")
        elif kind == "planned":
            sheet.ax.plot(
                [lx, lx + 5], [ly, ly], color=OUTLINE, linewidth=1.1, linestyle=(0, (4, 1.5))
            )
        else:
            sheet.rect(lx, ly - 1.2, 5, 2.4, fc=OTHER_FILL, ec=OTHER_EDGE, lw=0.4)
        sheet.text(lx + 6, ly, label, size=6, va="center")
        lx += 9 + text_width_mm(label, 6) + 2
    return step


def _photo(sheet: Sheet, frame: MapFrame, inset: tuple, photo: StopPhoto) -> tuple:
    """The compound's latest site photo in the map corner the overview inset left free (top
    left or bottom right: the north arrow and the scale bar hold the others), its date under
    it; returns the GK box labels keep out of."""
    with Image.open(BytesIO(photo.jpeg)) as image:
        pixels = np.asarray(image.convert("RGB"))
    rows, columns = pixels.shape[:2]
    w = min(PHOTO_MM[0], PHOTO_MM[1] * columns / rows)
    h, caption = w * rows / columns, 4.2
    box_w, box_h = w + 2, h + 2 + caption
    if inset[0] < (frame.window[0] + frame.window[2]) / 2:  # the inset is top left
        x, y = frame.x + frame.w - box_w - 1, frame.y + frame.h - box_h - 1
    else:
        x, y = frame.x + 1, frame.y + 1
    sheet.rect(x, y, box_w, box_h, fc="white", ec=INK, lw=0.5, zorder=25)
    ax = sheet.axes(x + 1, y + 1, w, h, zorder=6)
    ax.imshow(pixels, aspect="auto", interpolation="antialiased")
    ax.set_axis_off()
    when = cn_date(beijing_day(photo.at))
    sheet.text(x + 1, y + h + 1.5, f"现场照片 {when}", size=5.8, zorder=26)
    return frame.reserve(x, y, box_w, box_h)
