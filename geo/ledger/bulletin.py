"""The supervision bulletin (督查通报): its periods, and every figure and sentence it prints.

A bulletin covers a period — an ISO week "2026-W48", a month "2026-11", or days
"2026-11-01..2026-11-15" — as Beijing days, and reports the ledger as of the period's last day
(today, for a period not yet over). `bulletin_figures` gathers what it prints into one plain
dict (JSON-able): the county's figures from geo.ledger.stats (the same as /api/stats), ranking
tables of lead departments and townships, overdue tasks (the rule of geo.ledger.tasks),
stalled compounds, the changes of the period from the ledger history, and the paragraphs of
sections 一 to 四. `issue_bulletin` keeps that dict in the bulletin table: an issued bulletin
is rendered from what it printed, whatever the ledger says later; a period not issued is a
draft, computed afresh.

Nothing here draws: maps/bulletin/ lays the figures out as Word and PDF.
"""

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from geo import TitlemapError
from geo.core.dates import BEIJING_ZONE, DateError, beijing_day, cn_date, now, parse_date, today
from geo.core.model import STATUS_LABELS, User
from geo.core.work import Bulletin
from geo.ledger.stats import as_of_bound, entries_sql, ledger_as_of, rates
from geo.ledger.tasks import overdue_tasks
from geo.ledger.users import counties_of, is_office

TITLE = "关于全县“登记难”问题化解工作进展情况的通报"
FIGURES_VERSION = 1  # the shape of a stored `figures`: renderers read older ones by it
STALLED_DAYS = 30  # an open entry with no ledger event for this many days is stalled
MAX_PERIOD_DAYS = 366
FIRST_YEAR, LAST_YEAR = 1900, 2100
NEW_ON_LEDGER = "新挂账"
STATUS_TEXT = {s.value: label for s, label in STATUS_LABELS.items()}
NUMERALS = "一二三四五六七八九十"

_WEEK = re.compile(r"(\d{4})-?W(\d{1,2})", re.IGNORECASE)
_MONTH = re.compile(r"(\d{4})-(\d{1,2})")
_RANGE = re.compile(r"(.+?)\s*(?:\.\.|至|~)\s*(.+)")


class PeriodError(TitlemapError):
    """A period that is not one (the message is one line)."""


class BulletinRefused(TitlemapError):
    """The user may not issue this county's bulletins."""


class BulletinIssued(TitlemapError):
    """The period is issued already: an issued bulletin is not issued again."""


# -- periods -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Beijing days `first` … `last`; `key` is how it is written and stored."""

    key: str
    kind: str  # week / month / days
    first: date
    last: date

    @property
    def label(self) -> str:
        if self.kind == "week":
            year, week, _ = self.first.isocalendar()
            return f"{year}年第{week}周（{_short(self.first)}至{_short(self.last)}）"
        if self.kind == "month":
            return f"{self.first.year}年{self.first.month}月"
        return f"{cn_date(self.first)}至{cn_date(self.last)}"

    def previous(self) -> "Period":
        """The period of the same kind just before this one."""
        if self.kind == "week":
            return week_period(self.first - timedelta(days=7))
        if self.kind == "month":
            return month_period(self.first - timedelta(days=1))
        length = self.last - self.first
        last = self.first - timedelta(days=1)
        return days_period(last - length, last)


def _short(day: date) -> str:
    return f"{day.month}月{day.day}日"


def week_period(day: date) -> Period:
    year, week, weekday = day.isocalendar()
    first = day - timedelta(days=weekday - 1)
    return Period(f"{year}-W{week:02d}", "week", first, first + timedelta(days=6))


def month_period(day: date) -> Period:
    first = day.replace(day=1)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return Period(f"{first.year}-{first.month:02d}", "month", first, last)


def days_period(first: date, last: date) -> Period:
    return Period(f"{first.isoformat()}..{last.isoformat()}", "days", first, last)


def _in_range(year: int, written: str) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise PeriodError(f"期间“{written}”的年份应在 {FIRST_YEAR}–{LAST_YEAR} / year out of range")


def parse_period(value: "str | Period") -> Period:
    """A period as written: 2026-W48 (ISO week), 2026-11 (month) or 2026-11-01..2026-11-15."""
    if isinstance(value, Period):
        return value
    written = unicodedata.normalize("NFKC", str(value or "")).strip()
    hint = "应如 2026-W48、2026-11 或 2026-11-01..2026-11-15 / e.g. 2026-W48, 2026-11 or a range"
    if not written:
        raise PeriodError(f"请给出期间（{hint}）/ a period is needed")
    if match := _WEEK.fullmatch(written):
        year, week = int(match.group(1)), int(match.group(2))
        _in_range(year, written)
        try:
            return week_period(date.fromisocalendar(year, week, 1))
        except ValueError:
            raise PeriodError(f"{year} 年没有第 {week} 周 / no ISO week {week} in {year}") from None
    if match := _MONTH.fullmatch(written):
        year, month = int(match.group(1)), int(match.group(2))
        _in_range(year, written)
        if not 1 <= month <= 12:
            raise PeriodError(f"月份应为 1–12：“{written}” / month must be 1–12")
        return month_period(date(year, month, 1))
    if match := _RANGE.fullmatch(written):
        try:
            first, last = parse_date(match.group(1)), parse_date(match.group(2))
        except DateError:
            first = last = None
        if first is None or last is None:
            raise PeriodError(f"“{written}”不是日期范围（{hint}）/ not a range of days")
        _in_range(first.year, written)
        _in_range(last.year, written)
        if last < first:
            raise PeriodError(f"“{written}”结束早于开始 / the range ends before it starts")
        if (last - first).days + 1 > MAX_PERIOD_DAYS:
            raise PeriodError(f"期间不超过 {MAX_PERIOD_DAYS} 天 / at most {MAX_PERIOD_DAYS} days")
        return days_period(first, last)
    raise PeriodError(f"“{written}”不是期间（{hint}）")


# -- words -------------------------------------------------------------------------------------


def percent_text(value: float | None) -> str:
    """87.65%: a rate as the bulletin prints it (two decimals, the rate's own precision)."""
    return "—" if value is None else f"{value * 100:.2f}%"


def points_text(value: float | None) -> str:
    """+1.25 个百分点: a change of a rate."""
    return "—" if value is None else f"{value:+.2f}个百分点"


def signed(value: int | None) -> str:
    return "—" if value is None else f"{value:+d}"


def _more(change: int | None, unit: str) -> str:
    """增加 5 套 / 减少 2 套 / 无变化: a count's change in words."""
    if not change:
        return "无变化"
    return f"增加{change}{unit}" if change > 0 else f"减少{-change}{unit}"


def _points(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round((a - b) * 100, 2)


def _plain(value: Any) -> Any:
    """JSON-able: dates as ISO, Decimals as numbers, tuples as lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _names(items: list[str], most: int = 6) -> str:
    items = list(dict.fromkeys(items))
    shown = "、".join(items[:most])
    return shown + (f"等{len(items)}个" if len(items) > most else "")


# -- the figures -------------------------------------------------------------------------------

OVERALL_KEYS = (
    "compounds", "closed", "units_task", "units_first_registered", "units_transferred",
    "units_sold", "first_rate", "transfer_rate", "overall_rate", "target_rate", "meets_target",
)  # fmt: skip
COUNT_KEYS = ("compounds", "closed", "units_task", "units_first_registered", "units_transferred")
RATE_KEYS = ("first_rate", "transfer_rate", "overall_rate")


def _county(conn: Connection, county: str):
    row = conn.execute(
        text("SELECT code, name, target_rate, target_deadline FROM county WHERE code = :c"),
        {"c": county},
    ).first()
    if row is None:
        raise TitlemapError(f"没有这个县 / no such county: {county}")
    return row


def _overall(conn: Connection, county: str, as_of: date) -> dict:
    """The county's row of geo.ledger.stats.rates as of the end of `as_of`."""
    rows = rates(conn, county, by="county", as_of=as_of)
    if rows:
        return {k: rows[0][k] for k in OVERALL_KEYS}
    empty = dict.fromkeys(OVERALL_KEYS, 0) | dict.fromkeys(RATE_KEYS)
    return empty | {"target_rate": float(_county(conn, county).target_rate), "meets_target": False}


def issued_rows(conn: Connection, county: str) -> list[dict]:
    """The county's issued bulletins, newest number first (without their figures)."""
    rows = conn.execute(
        text(
            "SELECT number, period, issued_at, issued_by, figures->>'period_label' AS label, "
            "figures->>'as_of' AS as_of FROM bulletin WHERE county_code = :c ORDER BY number DESC"
        ),
        {"c": county},
    ).mappings()
    return [
        {
            "number": r["number"],
            "period": r["period"],
            "period_label": r["label"] or r["period"],
            "as_of": r["as_of"],
            "issued_at": r["issued_at"].isoformat(),
            "issued_on": beijing_day(r["issued_at"]).isoformat(),
            "issued_by": r["issued_by"],
        }
        for r in rows
    ]


def issued_figures(conn: Connection, county: str, period: "str | Period") -> dict | None:
    """What the issued bulletin of `period` printed; None when the period is not issued."""
    key = parse_period(period).key
    return conn.execute(
        text("SELECT figures FROM bulletin WHERE county_code = :c AND period = :p"),
        {"c": county, "p": key},
    ).scalar()


def next_number(conn: Connection, county: str) -> int:
    last = conn.execute(
        text("SELECT max(number) FROM bulletin WHERE county_code = :c"), {"c": county}
    ).scalar()
    return (last or 0) + 1


def _previous(conn: Connection, county: str, period: Period, as_of: date) -> dict:
    """What this bulletin is compared with: the last issued bulletin before it (as it printed
    them), else the ledger at the end of the period before."""
    row = conn.execute(
        text(
            "SELECT number, figures FROM bulletin WHERE county_code = :c AND period <> :p "
            "AND figures->>'as_of' < :as_of ORDER BY figures->>'as_of' DESC, number DESC LIMIT 1"
        ),
        {"c": county, "p": period.key, "as_of": as_of.isoformat()},
    ).first()
    if row is not None:
        figures = row.figures
        return {
            "source": "bulletin",
            "number": row.number,
            "period": figures["period"],
            "as_of": figures["as_of"],
            "figures": {k: figures["overall"].get(k) for k in OVERALL_KEYS},
        }
    day = period.first - timedelta(days=1)
    return {
        "source": "ledger",
        "number": None,
        "period": period.previous().key,
        "as_of": day.isoformat(),
        "figures": _overall(conn, county, day),
    }


def _change(now_: dict, before: dict) -> dict:
    change = {}
    for key in COUNT_KEYS:
        a, b = now_.get(key), before.get(key)
        change[key] = None if a is None or b is None else int(a) - int(b)
    for key in RATE_KEYS:
        change[key] = _points(now_.get(key), before.get(key))
    return change


def _township_of(conn: Connection, county: str) -> dict[str, str | None]:
    rows = conn.execute(
        text(
            "SELECT c.code, t.code AS township FROM compound c "
            "LEFT JOIN township t ON t.id = c.township_id WHERE c.county_code = :c"
        ),
        {"c": county},
    )
    return {r.code: r.township for r in rows}


def overdue_as_of(conn: Connection, county: str, as_of: date) -> list[dict]:
    """Tasks overdue on `as_of` (geo.ledger.tasks.overdue_tasks, its one rule): compound,
    department, action, due day, days late. The rule reads a task's status now: a draft of a
    past period leaves out a task done since."""
    return [
        {
            "task_id": t["id"],
            "compound_code": t["compound_code"],
            "compound": t["compound_name"],
            "department": t["department"],
            "action": t["action"],
            "due_on": t["due_on"].isoformat(),
            "days_late": int(t["days_late"]),
        }
        for t in overdue_tasks(conn, county, on=as_of)
    ]


def stalled_as_of(conn: Connection, county: str, as_of: date) -> list[dict]:
    """Open entries with no ledger event for STALLED_DAYS days or more at the end of `as_of`."""
    sql = f"""
        WITH x AS ({entries_sql(as_of)}),
        last AS (
            SELECT entry_id, max(at) AS at FROM ledger_event
            WHERE county_code = :county AND at < CAST(:bound AS timestamptz) GROUP BY entry_id
        )
        SELECT c.code, c.name, x.status, coalesce(x.lead_department, '未定') AS department,
               x.units_task, x.transferred,
               (last.at AT TIME ZONE '{BEIJING_ZONE}')::date AS last_day
        FROM x JOIN last USING (entry_id) JOIN compound c ON c.id = x.compound_id
        WHERE x.status <> 'closed'
          AND (last.at AT TIME ZONE '{BEIJING_ZONE}')::date <= CAST(:quiet_since AS date)
        ORDER BY last_day, c.code
    """
    params = {
        "county": county,
        "bound": as_of_bound(as_of),
        "quiet_since": as_of - timedelta(days=STALLED_DAYS),
    }
    return [
        {
            "compound_code": r.code,
            "compound": r.name,
            "status": r.status,
            "status_label": STATUS_TEXT.get(r.status, r.status),
            "department": r.department,
            "units_task": r.units_task,
            "units_transferred": r.transferred,
            "last_event_on": r.last_day.isoformat(),
            "days_quiet": (as_of - r.last_day).days,
        }
        for r in conn.execute(text(sql), params)
    ]


def _compound_points(conn: Connection, county: str, codes: list[str]) -> dict[str, tuple]:
    rows = conn.execute(
        text(
            "SELECT c.code, ST_X(p) AS lon, ST_Y(p) AS lat, t.name AS township "
            "FROM compound c LEFT JOIN township t ON t.id = c.township_id, "
            "ST_PointOnSurface(c.geom) AS p WHERE c.county_code = :c AND c.code = ANY(:codes)"
        ),
        {"c": county, "codes": codes},
    )
    return {r.code: (round(r.lon, 6), round(r.lat, 6), r.township) for r in rows}


def _changes(conn: Connection, county: str, period: Period, as_of: date):
    """Per compound: the ledger at the period's start and end (from the history's events)."""
    before = {r["code"]: r for r in ledger_as_of(conn, county, period.first - timedelta(days=1))}
    after = {r["code"]: r for r in ledger_as_of(conn, county, as_of)}
    resolved = {
        code: row["units_transferred"]
        - (before[code]["units_transferred"] if code in before else 0)
        for code, row in after.items()
    }
    changed = [
        (code, row) for code, row in after.items()
        if code not in before or before[code]["status"] != row["status"]
    ]  # fmt: skip
    points = _compound_points(conn, county, [code for code, _ in changed])
    listed = []
    for code, row in changed:
        old = before.get(code)
        lon, lat, township = points.get(code, (None, None, None))
        listed.append(
            {
                "compound_code": code,
                "compound": row["name"],
                "township": township,
                "department": row["lead_department"] or "未定",
                "status_before": old["status"] if old else None,
                "status_before_label": STATUS_TEXT.get(old["status"], old["status"])
                if old
                else NEW_ON_LEDGER,
                "status": row["status"],
                "status_label": STATUS_TEXT.get(row["status"], row["status"]),
                "units_task": row["units_task"],
                "units_transferred_before": old["units_transferred"] if old else 0,
                "units_transferred": row["units_transferred"],
                "lon": lon,
                "lat": lat,
            }
        )
    return resolved, after, listed


def _ranking(rows: list[dict], resolved: dict, overdue: dict, key_of) -> list[dict]:
    """rates() rows with what the period resolved and the overdue tasks, best rate first."""
    resolved_by: dict = {}
    for code, units in resolved.items():
        resolved_by[key_of(code)] = resolved_by.get(key_of(code), 0) + units
    table = []
    for row in rows:
        name = row["label"] if row["label"] is not None else "未定"
        table.append(
            {
                "key": row["key"],
                "name": name,
                "compounds": row["compounds"],
                "closed": row["closed"],
                "units_task": row["units_task"],
                "units_first_registered": row["units_first_registered"],
                "units_transferred": row["units_transferred"],
                "resolved": int(resolved_by.get(row["key"], 0)),
                "first_rate": row["first_rate"],
                "transfer_rate": row["transfer_rate"],
                "overdue": overdue.get(name, 0),
            }
        )
    table.sort(
        key=lambda r: (
            r["transfer_rate"] is None,
            -(r["transfer_rate"] or 0),
            -r["resolved"],
            r["name"],
        )
    )
    for rank, row in enumerate(table, start=1):
        row["rank"] = rank
    return table


def bulletin_figures(
    conn: Connection, county: str, period: "str | Period", number: int | None = None
) -> dict:
    """Everything the bulletin of `period` prints, computed from the ledger now (a draft)."""
    period = parse_period(period)
    info = _county(conn, county)
    as_of = min(period.last, today())  # a period not over yet: as the ledger stands today
    overall = _overall(conn, county, as_of)
    target = float(info.target_rate)
    overall["gap_points"] = (
        None
        if overall["overall_rate"] is None
        else round(max(target - overall["overall_rate"], 0) * 100, 2)
    )
    previous = _previous(conn, county, period, as_of)
    resolved, entries, changed = _changes(conn, county, period, as_of)
    overdue = overdue_as_of(conn, county, as_of)
    late_by_department: dict[str, int] = {}
    for task in overdue:
        late_by_department[task["department"]] = late_by_department.get(task["department"], 0) + 1
    department_of = {code: (row["lead_department"] or "未定") for code, row in entries.items()}
    township_of = _township_of(conn, county)
    departments = _ranking(
        rates(conn, county, by="lead_department", as_of=as_of), resolved, late_by_department,
        lambda code: department_of.get(code),
    )  # fmt: skip
    townships = _ranking(
        rates(conn, county, by="township", as_of=as_of), resolved, {}, township_of.get
    )
    blockers = [
        {"blocker": r["key"], "label": r["label"], "open": r["compounds"] - r["closed"]}
        for r in rates(conn, county, by="blocker", as_of=as_of)
        if r["key"] != "none" and r["compounds"] > r["closed"]
    ]
    blockers.sort(key=lambda b: (-b["open"], b["blocker"]))
    figures = {
        "version": FIGURES_VERSION,
        "county": info.code,
        "county_name": info.name,
        "title": TITLE,
        "number": number or next_number(conn, county),
        "office": f"{info.name}“登记难”问题化解工作领导小组办公室",
        "period": period.key,
        "period_kind": period.kind,
        "period_label": period.label,
        "first_day": period.first,
        "last_day": period.last,
        "as_of": as_of,
        "date": today(),
        "draft": True,
        "issued_at": None,
        "issued_by": None,
        "target_rate": target,
        "target_deadline": info.target_deadline,
        "overall": overall,
        "previous": previous,
        "change": _change(overall, previous["figures"]),
        "resolved": int(sum(resolved.values())),
        "departments": departments,
        "townships": townships,
        "overdue": overdue,
        "stalled": stalled_as_of(conn, county, as_of),
        "stalled_days": STALLED_DAYS,
        "blockers": blockers[:5],
        "changed": changed,
    }
    figures["text"] = bulletin_text(figures)
    return _plain(figures)


# -- the sentences -------------------------------------------------------------------------------


def bulletin_text(f: dict) -> dict[str, list[str]]:
    """The paragraphs of sections 一 to 四, from the figures."""
    return {
        "overall": _overall_text(f),
        "units": _units_text(f),
        "problems": _problems_text(f),
        "requirements": _requirements_text(f),
    }


def _overall_text(f: dict) -> list[str]:
    o, p, c = f["overall"], f["previous"], f["change"]
    as_of = f["as_of"] if isinstance(f["as_of"], date) else date.fromisoformat(f["as_of"])
    target = percent_text(f["target_rate"])
    if o["overall_rate"] is None:
        goal = f"县定年度目标为总体登记率达到{target}。"
    elif o["meets_target"]:
        goal = f"已达到县定年度目标（{target}）。"
    else:
        goal = f"距县定年度目标（{target}）还差{o['gap_points']:.2f}个百分点。"
    first = (
        f"截至{cn_date(as_of)}，全县纳入化解台账小区{o['compounds']}个，问题房屋{o['units_task']}套；"
        f"已完成首次登记{o['units_first_registered']}套，首次登记化解率{percent_text(o['first_rate'])}；"
        f"已完成转移登记{o['units_transferred']}套，转移登记化解率{percent_text(o['transfer_rate'])}；"
        f"总体登记率{percent_text(o['overall_rate'])}，{goal}已销号小区{o['closed']}个。"
    )
    then = date.fromisoformat(p["as_of"]) if isinstance(p["as_of"], str) else p["as_of"]
    last = f"上期（第{p['number']}期）" if p["source"] == "bulletin" else "上期末"
    second = (
        f"与{last}（截至{cn_date(then)}）相比，首次登记{_more(c['units_first_registered'], '套')}、"
        f"转移登记{_more(c['units_transferred'], '套')}，"
        f"销号小区{_more(c['closed'], '个')}；"
        f"转移登记化解率变化{points_text(c['transfer_rate'])}，"
        f"总体登记率变化{points_text(c['overall_rate'])}。"
    )
    return [first, second]


def _ends(rows: list[dict]) -> tuple[dict | None, dict | None]:
    ranked = [r for r in rows if r["transfer_rate"] is not None]
    if len(ranked) < 2:
        return None, None
    return ranked[0], ranked[-1]


def _units_text(f: dict) -> list[str]:
    paragraphs = []
    for kind, rows in (("牵头单位", f["departments"]), ("乡镇（街道）", f["townships"])):
        best, worst = _ends(rows)
        if best is None:
            continue
        most = max(rows, key=lambda r: (r["resolved"], -r["rank"]))
        line = (
            f"从{kind}看，{best['name']}转移登记化解率最高（{percent_text(best['transfer_rate'])}），"
            f"{worst['name']}最低（{percent_text(worst['transfer_rate'])}）"
        )
        if worst["overdue"]:
            line += f"，且有{worst['overdue']}项交办任务逾期"
        line += "。"
        if most["resolved"] > 0:
            line += f"本期{most['name']}化解最多，转移登记{most['resolved']}套。"
        idle = [
            r["name"]
            for r in rows
            if r["resolved"] <= 0 and r["units_task"] > r["units_transferred"]
        ]
        if idle:
            line += f"{_names(idle)}本期无新增转移登记。"
        paragraphs.append(line)
    paragraphs.append(f"本期全县共新增转移登记{f['resolved']}套。各单位进展情况见下表。")
    return paragraphs


def _problems_text(f: dict) -> list[str]:
    out = []
    n = 0
    as_of = cn_date(date.fromisoformat(str(f["as_of"])))
    overdue = f["overdue"]
    if overdue:
        n += 1
        departments = [t["department"] for t in overdue]
        out.append(
            f"（{NUMERALS[n - 1]}）交办任务逾期未办结。截至{as_of}，有{len(overdue)}项交办任务"
            f"超过限时办结日期仍未办结，涉及{_names(departments)}；逾期最长的{overdue[0]['compound']}"
            f"“{overdue[0]['action']}”已逾期{max(t['days_late'] for t in overdue)}天。"
        )
    stalled = f["stalled"]
    if stalled:
        n += 1
        out.append(
            f"（{NUMERALS[n - 1]}）部分小区推进停滞。{len(stalled)}个未销号小区"
            f"连续{f['stalled_days']}天以上台账无更新，"
            f"如{_names([s['compound'] for s in stalled], 5)}，"
            f"涉及{_names([s['department'] for s in stalled])}。"
        )
    if f["blockers"]:
        n += 1
        words = "、".join(f"{b['label']}{b['open']}个" for b in f["blockers"][:3])
        out.append(f"（{NUMERALS[n - 1]}）卡点问题仍较集中。未销号小区中，{words}。")
    if not out:
        out.append("本期无逾期交办任务和停滞小区。")
    return out


def _requirements_text(f: dict) -> list[str]:
    out = []
    ranked = [r for r in f["departments"] if r["transfer_rate"] is not None]
    last = ranked[-2:] if len(ranked) >= 4 else ranked[-1:]
    if len(ranked) >= 2 and last:
        out.append(
            f"{_names([r['name'] for r in last])}要对照县定目标，倒排工期、挂图作战，"
            "逐小区研究化解措施，确保下期通报前取得明显进展。"
        )
    late = [t["department"] for t in f["overdue"]]
    if late:
        out.append(
            f"{_names(late)}要对逾期事项限期办结，并于3个工作日内向领导小组办公室书面说明逾期原因"
            "和办结时限；逾期仍未办结的，提请县纪委监委跟进督办。"
        )
    out.append(
        "各牵头单位要坚持“一小区、一方案、一专班”，对停滞小区逐一研判，"
        "落实“证缴分离、先办后补”等措施，及时更新化解台账，做到应销尽销。"
    )
    return [f"（{NUMERALS[i]}）{line}" for i, line in enumerate(out)]


# -- issuing -------------------------------------------------------------------------------------


def bulletin_of(conn: Connection, county: str, period: "str | Period") -> dict:
    """The bulletin of `period`: as issued, else a draft computed now."""
    return issued_figures(conn, county, period) or bulletin_figures(conn, county, period)


def may_issue(user: User, county: str) -> bool:
    """The leading group's office of the county issues its bulletins."""
    return user.active and is_office(user) and county in counties_of(user)


def issue_bulletin(
    session: Session, county: str, period: "str | Period", user: "User | str"
) -> Bulletin:
    """Issue the bulletin of an ended period under the next number, keeping what it prints.
    `user` is the person issuing (the office), or the name the command line records."""
    period = parse_period(period)
    if isinstance(user, User):
        if not may_issue(user, county):
            raise BulletinRefused(
                f"{user.name} 不能印发督查通报：须为本县领导小组办公室 / only the county's office "
                "may issue bulletins"
            )
        name = user.name
    else:
        name = str(user)
    if period.last >= today():
        raise TitlemapError(
            f"{period.label}尚未结束，结束后方可印发（可先预览草稿）/ the period has not ended: "
            "preview the draft until then"
        )
    # one issuer at a time per county: numbers follow each other without gaps or twins
    session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('bulletin:' || :c))"), {"c": county}
    )
    existing = session.scalar(
        select(Bulletin).where(Bulletin.county_code == county, Bulletin.period == period.key)
    )
    if existing is not None:
        raise BulletinIssued(
            f"{period.label}的通报已于{cn_date(beijing_day(existing.issued_at))}印发（第{existing.number}期），"
            f"不再重复印发 / already issued as number {existing.number}"
        )
    conn = session.connection()
    number = next_number(conn, county)
    figures = bulletin_figures(conn, county, period, number)
    moment = now()
    figures |= {
        "draft": False,
        "issued_at": moment.isoformat(),
        "issued_by": name,
        "date": beijing_day(moment).isoformat(),
    }
    row = Bulletin(
        county_code=county, period=period.key, number=number, issued_at=moment,
        issued_by=name, figures=figures,
    )  # fmt: skip
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise BulletinIssued(f"{period.label}的通报刚被他人印发 / issued meanwhile") from None
    return row
