"""Registration rates (化解率), the ledger as of a date, and the weekly burn-down.

The definitions live here and nowhere else; docs/rates.md and the API description quote them.
All figures count homes (套) on the resolution ledger ("task units").
"""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import Connection, text

from geo import TitlemapError
from geo.core.dates import BEIJING_ZONE, today
from geo.core.model import BLOCKER_LABELS, STATUS_LABELS
from geo.core.rates import rate

RATE_DEFINITIONS = {
    "first_rate": (
        "首次登记化解率 = 所在楼栋已完成首次登记的任务套数 ÷ 任务套数 / "
        "first-registration rate = task units whose building completed first registration "
        "÷ task units"
    ),
    "transfer_rate": (
        "转移登记化解率 = 已转移登记到买受人名下的任务套数 ÷ 任务套数 / "
        "transfer-registration rate = task units transferred to their buyers ÷ task units"
    ),
    "overall_rate": (
        "总体登记率 = 登记在业主名下的套数 ÷ 范围内的套数。"
        "范围由县设定 (county.overall_rate_basis)："
        "sold（默认）= 台账小区的全部已售套数，其中非任务套数视为已登记；"
        "task = 任务套数（甘肃口径：已转移 ÷ 摸排套数）/ overall rate = units registered to "
        "owners ÷ units in scope; basis 'sold' (default): all sold units of ledger compounds, "
        "the non-task ones counting as registered; basis 'task': transferred ÷ task units"
    ),
}

GROUPS = ("county", "township", "compound", "lead_department", "blocker", "status")


@dataclass(frozen=True)
class Target:
    rate: Decimal
    deadline: date | None
    basis: str


def as_of_bound(as_of: date) -> str:
    """The first instant after `as_of` in Beijing time, as a timestamptz literal."""
    return f"{as_of + timedelta(days=1)} 00:00:00+08"


def entries_sql(as_of: date | None) -> str:
    """One row per ledger entry with its figures, now or as the history stood on `as_of`."""
    if as_of is None:
        return """
            SELECT e.id AS entry_id, e.compound_id, e.status, e.units_task,
                   e.units_first_registered AS first, e.units_transferred AS transferred,
                   e.blockers, e.lead_department
            FROM ledger_entry e WHERE e.county_code = :county
        """
    return """
        SELECT DISTINCT ON (ev.entry_id)
               ev.entry_id, e.compound_id, ev.state->>'status' AS status,
               (ev.state->>'units_task')::int AS units_task,
               (ev.state->>'units_first_registered')::int AS first,
               (ev.state->>'units_transferred')::int AS transferred,
               ARRAY(SELECT jsonb_array_elements_text(ev.state->'blockers')) AS blockers,
               ev.state->>'lead_department' AS lead_department
        FROM ledger_event ev
        JOIN ledger_entry e ON e.county_code = ev.county_code AND e.id = ev.entry_id
        WHERE ev.county_code = :county AND ev.at < CAST(:bound AS timestamptz)
        ORDER BY ev.entry_id, ev.at DESC, ev.id DESC
    """


GROUP_KEYS = {
    "county": ("c.county_code", "max(k.name)"),
    "township": ("t.code", "max(t.name)"),
    "compound": ("c.code", "max(c.name)"),
    "lead_department": ("coalesce(x.lead_department, '未定')", "NULL"),
    "blocker": ("b.blocker", "NULL"),
    "status": ("x.status", "NULL"),
}


def target(conn: Connection, county: str) -> Target:
    row = conn.execute(
        text("SELECT target_rate, target_deadline, overall_rate_basis FROM county WHERE code = :c"),
        {"c": county},
    ).first()
    if row is None:
        raise TitlemapError(f"没有这个县 / no such county: {county}")
    return Target(row.target_rate, row.target_deadline, row.overall_rate_basis)


def rates(
    conn: Connection, county: str, by: str = "county", as_of: date | None = None
) -> list[dict]:
    """Rates grouped `by` one of GROUPS; an entry with several blockers counts under each."""
    if by not in GROUPS:
        raise TitlemapError(f"不能按 {by!r} 分组 / cannot group by {by!r}; 可选 / one of {GROUPS}")
    goal = target(conn, county)
    key, label = GROUP_KEYS[by]
    blockers_join = (
        "CROSS JOIN LATERAL unnest(CASE WHEN cardinality(x.blockers) > 0 THEN x.blockers "
        "ELSE ARRAY['none'] END) AS b(blocker)"
        if by == "blocker"
        else ""
    )
    sql = f"""
        WITH x AS ({entries_sql(as_of)})
        SELECT {key} AS key, {label} AS label, count(*) AS compounds,
               sum(x.units_task) AS units_task, sum(x.first) AS first,
               sum(x.transferred) AS transferred,
               sum(greatest(coalesce(c.units_sold, x.units_task), x.units_task)) AS units_sold,
               count(*) FILTER (WHERE x.status = 'closed') AS closed
        FROM x JOIN compound c ON c.county_code = :county AND c.id = x.compound_id
        JOIN county k ON k.code = c.county_code
        LEFT JOIN township t ON t.county_code = c.county_code AND t.id = c.township_id
        {blockers_join}
        GROUP BY {key} ORDER BY {key}
    """
    params = {"county": county}
    if as_of:
        params["bound"] = as_of_bound(as_of)
    rows = conn.execute(text(sql), params).mappings().all()
    return [_figures(row, by, goal) for row in rows]


def _figures(row, by: str, goal: Target) -> dict:
    task, first, done, sold = row["units_task"], row["first"], row["transferred"], row["units_sold"]
    if goal.basis == "task":
        overall = rate(done, task)
    else:
        overall = rate(sold - task + done, sold)
    label = row["label"]
    if by == "blocker":
        label = next((v for k, v in BLOCKER_LABELS.items() if k.value == row["key"]), "无卡点")
    elif by == "status":
        label = next((v for k, v in STATUS_LABELS.items() if k.value == row["key"]), row["key"])
    elif label is None:
        label = row["key"]
    target_rate = float(goal.rate)
    return {
        "key": row["key"],
        "label": label,
        "compounds": row["compounds"],
        "closed": row["closed"],
        "units_task": task,
        "units_first_registered": first,
        "units_transferred": done,
        "units_sold": sold,
        "first_rate": rate(first, task),
        "transfer_rate": rate(done, task),
        "overall_rate": overall,
        "target_rate": target_rate,
        "meets_target": overall is not None and overall >= target_rate,
    }


def ledger_as_of(conn: Connection, county: str, as_of: date) -> list[dict]:
    """Every entry as the history stood at the end of `as_of` (Beijing time)."""
    sql = f"""
        WITH x AS ({entries_sql(as_of)})
        SELECT c.code, c.name, x.status, x.units_task, x.first AS units_first_registered,
               x.transferred AS units_transferred, x.blockers, x.lead_department
        FROM x JOIN compound c ON c.county_code = :county AND c.id = x.compound_id ORDER BY c.code
    """
    rows = conn.execute(text(sql), {"county": county, "bound": as_of_bound(as_of)}).mappings()
    return [dict(row) for row in rows]


def burndown(conn: Connection, county: str, until: date | None = None) -> list[dict]:
    """Open task units (任务套数 − 已转移) at the end of each week (Sunday, Beijing time), up
    to the week of `until` (default: today in Beijing).

    Built from the change each event makes to its entry's figures, summed per week and
    accumulated — one pass over the history, however many weeks.
    """
    sql = f"""
        WITH ev AS (
            SELECT ev.entry_id, ev.id,
                   (ev.at AT TIME ZONE '{BEIJING_ZONE}')::date AS day,
                   (ev.state->>'units_task')::int AS task,
                   (ev.state->>'units_first_registered')::int AS first,
                   (ev.state->>'units_transferred')::int AS done,
                   CASE WHEN ev.state->>'status' = 'closed' THEN 1 ELSE 0 END AS closed
            FROM ledger_event ev WHERE ev.county_code = :county
        ), delta AS (
            SELECT day,
                   task - coalesce(lag(task) OVER w, 0) AS d_task,
                   first - coalesce(lag(first) OVER w, 0) AS d_first,
                   done - coalesce(lag(done) OVER w, 0) AS d_done,
                   closed - coalesce(lag(closed) OVER w, 0) AS d_closed,
                   CASE WHEN lag(task) OVER w IS NULL THEN 1 ELSE 0 END AS d_entries
            FROM ev WINDOW w AS (PARTITION BY entry_id ORDER BY day, id)
        ), weekly AS (
            SELECT (day + (7 - extract(isodow FROM day))::int) AS week_end,
                   sum(d_task) AS d_task, sum(d_first) AS d_first, sum(d_done) AS d_done,
                   sum(d_closed) AS d_closed, sum(d_entries) AS d_entries
            FROM delta GROUP BY 1
        ), weeks AS (
            SELECT generate_series(min(week_end), CAST(:until AS date), interval '7 days')::date
                   AS week_end
            FROM weekly
        )
        SELECT w.week_end,
               sum(coalesce(d_entries, 0)) OVER o AS entries,
               sum(coalesce(d_task, 0)) OVER o AS units_task,
               sum(coalesce(d_first, 0)) OVER o AS units_first_registered,
               sum(coalesce(d_done, 0)) OVER o AS units_transferred,
               sum(coalesce(d_closed, 0)) OVER o AS closed
        FROM weeks w LEFT JOIN weekly USING (week_end)
        WINDOW o AS (ORDER BY w.week_end)
        ORDER BY w.week_end
    """
    until = until or today()  # Beijing's day, not the server's
    until = until + timedelta(days=(6 - until.weekday()))  # the Sunday ending that week
    rows = conn.execute(text(sql), {"county": county, "until": until}).mappings()
    series = []
    for row in rows:
        task, first, done = (
            row["units_task"],
            row["units_first_registered"],
            row["units_transferred"],
        )
        series.append(
            {
                "week_end": row["week_end"],
                "entries": int(row["entries"]),
                "closed": int(row["closed"]),
                "units_task": int(task),
                "units_first_registered": int(first),
                "units_transferred": int(done),
                "open_units": int(task - done),
                "first_rate": rate(first, task),
                "transfer_rate": rate(done, task),
            }
        )
    return series
