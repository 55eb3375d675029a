"""Importing a ledger sheet into the database: match rows to compounds, check them, apply them
through geo.ledger.rules, report.

All-or-nothing: any refused row and nothing changes (unless `partial=True`, which applies the
good rows and reports the others). A row is refused only for what the file itself makes
impossible — no code and no name, a count that is not a whole number or is negative,
registered units above the task, dates that contradict each other — in the ledger's own words
(`check_entry`), so a sheet, the API and the CLI refuse the same things alike.

The county's words never refuse a row: statuses and blockers go through its vocabulary
(geo.core.vocabulary) and keep their text on the entry; an unknown status word takes the
status from the figures, an unknown blocker phrase becomes `other`; both are listed. A closed
row that breaks the county's closing rule is taken as recorded, with a warning. A compound not
yet on the ledger is opened (`open_entry`), one already on it gets `update_entry` with only the
fields whose cells differ, so re-importing the same file appends no event.
"""

import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session, load_only
from sqlalchemy.orm.attributes import set_committed_value

from geo import TitlemapError
from geo.core.dates import beijing_day, now
from geo.core.model import Compound, LedgerEntry, LedgerStatus
from geo.core.vocabulary import Vocabulary, load_vocabulary
from geo.io.developers import DeveloperBook, NewDeveloper
from geo.io.ledger_sheet.cells import (
    PARSERS,
    BlockerCell,
    CellError,
    StatusCell,
    name_key,
    parse_blockers,
    parse_key_code,
    parse_status,
    parse_text,
    parse_units,
)
from geo.io.ledger_sheet.columns import BY_FIELD, UNIT_FIELDS, Progress, is_blank, tick
from geo.io.ledger_sheet.read import Sheet, SheetRow, read_sheet
from geo.io.ledger_sheet.report import LedgerImportReport, RowIssue
from geo.ledger.rules import (
    EDITABLE,
    LedgerConflict,
    LedgerRuleError,
    check_entry,
    closing_breach,
    open_entry,
    status_from_figures,
    update_entry,
)


@dataclass
class _Plan:
    row: SheetRow
    code: str | None
    name: str | None
    fields: dict[str, Any]
    problems: list[str]
    compound_id: int | None = None
    compound_code: str | None = None
    unknown_status: str | None = None  # a status word no vocabulary maps
    unmapped: list[str] = field(default_factory=list)  # blocker phrases kept as `other`


@dataclass(frozen=True)
class _County:
    closing_rule: str
    columns: dict[str, str]  # remembered headers → fields


def _parse(row: SheetRow, labels: dict[str, str], words: Vocabulary) -> _Plan:
    code = parse_key_code(row.values.get("compound_code"))
    raw_name = row.values.get("compound_name")
    name = None if is_blank(raw_name) else str(raw_name).strip()
    plan = _Plan(row, code, name, {}, [])
    for name_of_field, value in row.values.items():
        column = BY_FIELD[name_of_field]
        if column.kind in ("key", "info"):
            continue
        try:
            if column.kind == "status":
                _take_status(plan, parse_status(value, words))
            elif column.kind == "blockers":
                _take_blockers(plan, parse_blockers(value, words))
            else:
                plan.fields[name_of_field] = PARSERS[column.kind](value)
        except ValueError as exc:  # CellError, or parse_date's DateError
            plan.problems.append(f"{labels[name_of_field]} {exc}")
    if code is None and name is None:
        plan.problems.append("缺少项目编号和项目名称 / no compound code or name")
    return plan


def _take_status(plan: _Plan, cell: StatusCell | None) -> None:
    """A blank status leaves the entry's as it is (a new entry starts 未启动)."""
    if cell is None:
        return
    plan.fields["status"] = cell.status  # None: from the figures, once they are known
    plan.fields["status_word"] = cell.word
    if cell.status is None:
        plan.unknown_status = cell.word


def _take_blockers(plan: _Plan, cell: BlockerCell) -> None:
    plan.fields["blockers"] = cell.codes
    plan.fields["blocker_words"] = cell.words
    plan.unmapped = cell.unmapped


def _check_rules(state: dict[str, Any]) -> list[str]:
    """What cannot be true of the entry the row would leave: the ledger's own rules."""
    try:
        check_entry(SimpleNamespace(**state))
    except LedgerRuleError as exc:
        return [str(exc)]
    return []


def _same(name: str, before: Any, after: Any) -> bool:
    if name in BY_FIELD and BY_FIELD[name].kind == "text":
        before = parse_text(before)
    return before == after


def _changes(entry: LedgerEntry, fields: dict[str, Any]) -> dict[str, Any]:
    return {
        name: value
        for name, value in fields.items()
        if not _same(name, getattr(entry, name), value)
    }


def _by_figures(fields: dict[str, Any], counts: dict[str, Any]) -> None:
    """The status of a row whose status word nobody has mapped: from its counts."""
    known = all(counts.get(name) is not None for name in UNIT_FIELDS)
    if known and "status" in fields and fields["status"] is None:
        fields["status"] = status_from_figures(
            counts["units_task"], counts["units_first_registered"], counts["units_transferred"]
        )


def _new_fields(fields: dict[str, Any], today: date) -> dict[str, Any]:
    """Fields for open_entry: blank 首次/转移 count as 0, a blank 挂账日期 is the import day."""
    out = dict(fields)
    for name in ("units_first_registered", "units_transferred"):
        if out.get(name) is None:
            out[name] = 0
    _by_figures(out, out)
    if out.get("opened_on") is None:
        out.pop("opened_on", None)
    if out.get("status") == LedgerStatus.CLOSED.value and not out.get("closed_on"):
        out["closed_on"] = today
    return out


def _existing_fields(fields: dict[str, Any], entry: LedgerEntry) -> dict[str, Any]:
    """A row's fields over an entry: a blank task keeps the entry's, blank 首次/转移 are 0 (as
    Excel's SUM counts them)."""
    out = dict(fields)
    if "units_task" in out and out["units_task"] is None:
        del out["units_task"]
    for name in ("units_first_registered", "units_transferred"):
        if name in out and out[name] is None:
            out[name] = 0
    _by_figures(out, {name: out.get(name, getattr(entry, name)) for name in UNIT_FIELDS})
    return out


def _state_new(fields: dict[str, Any], today: date) -> dict[str, Any]:
    state = {name: None for name in EDITABLE} | {
        "status": LedgerStatus.NOT_STARTED.value,
        "blockers": [],
        "cooperating_departments": [],
        "opened_on": today,
    }
    return state | fields


def _state_after(entry: LedgerEntry, changes: dict[str, Any], today: date) -> dict[str, Any]:
    """The entry as update_entry would leave it (it dates a closing that gives no date)."""
    state = {name: getattr(entry, name) for name in EDITABLE} | changes
    closing = changes.get("status") == LedgerStatus.CLOSED and entry.status != LedgerStatus.CLOSED
    if closing and "closed_on" not in changes:
        state["closed_on"] = today
    reopening = entry.status == LedgerStatus.CLOSED and state["status"] != LedgerStatus.CLOSED
    if reopening and "closed_on" not in changes:
        state["closed_on"] = None
    return state


def _county(conn: Connection, county: str) -> _County:
    row = conn.execute(
        text("SELECT closing_rule, ledger_columns FROM county WHERE code = :c"), {"c": county}
    ).first()
    if row is None:
        raise TitlemapError(f"没有这个县 / no such county: {county}")
    return _County(row.closing_rule, dict(row.ledger_columns or {}))


def import_ledger(
    engine: Engine,
    path: str | Path,
    county: str,
    user: str,
    partial: bool = False,
    progress: Progress | None = None,
    *,
    file_name: str | None = None,
    dry_run: bool = False,
    at: datetime | None = None,
    vocabulary: Vocabulary | None = None,
    columns: dict[str, str] | None = None,
    conn: Connection | None = None,
    sheet: Sheet | None = None,
) -> LedgerImportReport:
    """Import a ledger spreadsheet into `county`'s ledger as `user`.

    `vocabulary` maps the county's status and blocker words (default: the shipped one);
    `columns` maps its own headers to fields (columns.parse_columns of --columns) on top of
    those remembered for the county, and is remembered in turn once the import is applied.
    Raises LedgerSheetError when the file cannot be read as a ledger at all. Otherwise returns
    the report; with any refused row nothing is written unless `partial`. `dry_run` checks and
    reports without writing. Every event carries the note "导入 <file name>". Developers the
    开发企业 column names are matched or created (`geo.io.developers`) for compounds without one.
    With `conn`, the import runs in a savepoint of the caller's transaction (onboarding a
    folder in one go); the caller commits. `sheet` is the file already read (onboarding reads
    it to recognise it) with the county's remembered headers.
    """
    started = time.perf_counter()
    words = vocabulary or load_vocabulary()
    with nullcontext(conn) if conn is not None else engine.connect() as reading:
        own = _county(reading, county)
    given = own.columns | (columns or {})
    sheet = sheet or read_sheet(path, progress, name=file_name, given=given)
    report = LedgerImportReport(
        file_name=sheet.file_name, county=county, user=user, kind=sheet.kind,
        encoding=sheet.encoding, sheet_name=sheet.sheet_name, header_rows=sheet.header_rows,
        columns=sheet.columns, ignored_columns=sheet.ignored_columns, rows=len(sheet.rows),
        blank_rows=sheet.blank_rows, skipped=sheet.skipped, partial=partial, dry_run=dry_run,
        matched_by=sheet.matched_by, ambiguous_columns=sheet.ambiguous_columns,
        closing_rule=own.closing_rule, given_columns=dict(given),
    )  # fmt: skip
    moment = at or now()
    today = beijing_day(moment)
    note = f"导入 {sheet.file_name}"
    joined = {} if conn is None else {"join_transaction_mode": "create_savepoint"}
    with Session(conn or engine, expire_on_commit=False, **joined) as session:
        conn = session.connection()
        # One import per county at a time; entries locked against edits while we work.
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"ledger:{county}"})
        compounds = conn.execute(
            text("SELECT id, code, name, developer_id FROM compound WHERE county_code = :c"),
            {"c": county},
        ).all()
        entries = {
            entry.compound_id: entry
            for entry in session.scalars(
                select(LedgerEntry).where(LedgerEntry.county_code == county).with_for_update()
            )
        }
        plans = _match(sheet, compounds, words, report, progress)
        todo = _validate(plans, entries, today, report)
        report.refused.sort(key=lambda issue: issue.row)
        sheet_ids = {plan.compound_id for plan in plans if plan.compound_id is not None}
        names = {c.id: (c.code, c.name) for c in compounds}
        report.missing = [
            {"code": names[cid][0], "name": names[cid][1]}
            for cid in sorted(entries, key=lambda cid: names[cid][0])
            if cid not in sheet_ids
        ]
        _check_totals(sheet, plans, report)
        if report.refused and not partial:
            session.rollback()
            report.seconds = round(time.perf_counter() - started, 3)
            return report
        _plan_report(todo, entries, report)
        named = _developers_named(conn, county, todo, compounds, report)
        if dry_run:
            session.rollback()
            report.seconds = round(time.perf_counter() - started, 3)
            return report
        _apply(session, todo, entries, user, note, moment, progress, report)
        if report.applied:
            _link_developers(conn, county, named)
            if columns:
                _remember_columns(conn, county, given)
                report.columns_remembered = True
            session.commit()
        else:
            session.rollback()
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _remember_columns(conn: Connection, county: str, given: dict[str, str]) -> None:
    """The county's own header mapping, used by its next import without --columns."""
    statement = text("UPDATE county SET ledger_columns = :columns WHERE code = :c")
    conn.execute(statement.bindparams(bindparam("columns", type_=JSONB)),
                 {"columns": given, "c": county})  # fmt: skip


def _developers_named(conn: Connection, county: str, todo: list, compounds: list,
                      report: LedgerImportReport) -> tuple[DeveloperBook | None, dict]:  # fmt: skip
    """The developers the 开发企业 column names for compounds that have none yet: (the book
    that creates them, {compound id: developer id or one to create}). A name the compound's
    own developer does not go by is noted, not taken: the compound file's word stands."""
    cells = [(plan, parse_text(plan.row.values.get("developer"))) for plan, _ in todo]
    cells = [(plan, name) for plan, name in cells if name]
    if not cells:
        return None, {}
    book = DeveloperBook.of(conn, county)
    current = {c.id: c.developer_id for c in compounds}
    found: dict[str, int | NewDeveloper | ValueError] = {}
    links: dict[int, int | NewDeveloper] = {}
    for plan, name in cells:
        if name not in found:
            try:
                found[name] = book.resolve(name, None, f"第{plan.row.row}行")
            except ValueError as exc:
                found[name] = exc
        developer, own = found[name], current.get(plan.compound_id)
        if isinstance(developer, ValueError):
            report.warnings.append(f"第{plan.row.row}行：{developer}")
        elif own is None:
            links[plan.compound_id] = developer
        elif developer != own:
            report.warnings.append(
                f"第{plan.row.row}行：开发企业“{name}”与小区图层所记不同，未改 / the compound "
                "file names another developer: kept"
            )
    new = dict.fromkeys(d.name for d in links.values() if isinstance(d, NewDeveloper))
    report.new_developers = list(new)
    report.warnings += book.warnings
    return book, links


def _link_developers(conn: Connection, county: str, named: tuple) -> None:
    """Create the developers named and set them on the compounds that had none."""
    book, links = named
    if not links:
        return
    book.write(conn, county, list(links.values()))
    ids = [d.id if isinstance(d, NewDeveloper) else d for d in links.values()]
    conn.execute(
        text("UPDATE compound c SET developer_id = t.d FROM unnest(CAST(:c AS integer[]), "
             "CAST(:d AS integer[])) AS t(c, d) WHERE c.id = t.c AND c.developer_id IS NULL"),
        {"c": list(links), "d": ids},
    )  # fmt: skip


def _plan_report(todo: list, entries: dict[int, LedgerEntry], report: LedgerImportReport) -> None:
    for plan, fields in todo:
        if plan.compound_id not in entries:
            report.opened.append({"row": plan.row.row, "code": plan.compound_code})
        elif fields:
            item = {"row": plan.row.row, "code": plan.compound_code, "fields": list(fields)}
            report.updated.append(item)
        else:
            report.unchanged += 1
    report.events = len(report.opened) + len(report.updated)


def _match(
    sheet: Sheet,
    compounds: list,
    words: Vocabulary,
    report: LedgerImportReport,
    progress: Progress | None,
) -> list[_Plan]:
    by_code = {c.code: c for c in compounds}
    by_name: dict[str, list] = {}
    for c in compounds:
        by_name.setdefault(name_key(c.name), []).append(c)
    plans = [_parse(row, sheet.columns, words) for row in sheet.rows]
    seen: dict[tuple[str, str], int] = {}  # sheet key → first row
    first_of: dict[int, int] = {}  # compound id → first row
    duplicate: dict[int, str] = {}
    for done, plan in enumerate(plans, start=1):
        tick(progress, "check", done, len(plans))
        key = ("code", plan.code) if plan.code else ("name", name_key(plan.name or ""))
        if plan.code is None and plan.name is None:
            continue
        if key in seen:
            what = "项目编号" if key[0] == "code" else "项目名称"
            duplicate[plan.row.row] = (
                f"与第{seen[key]}行{what}重复 / same {key[0]} as row {seen[key]}"
            )
            duplicate.setdefault(
                seen[key], f"与第{plan.row.row}行{what}重复 / same {key[0]} as row {plan.row.row}"
            )
            continue
        seen[key] = plan.row.row
        found = None
        if plan.code:
            found = by_code.get(plan.code)
            if found is None:
                hint = ""
                if plan.name and len(by_name.get(name_key(plan.name), [])) == 1:
                    other = by_name[name_key(plan.name)][0].code
                    hint = f"（同名小区的编号是 {other} / the compound of that name is {other}）"
                problem = f"库中没有项目编号 {plan.code}{hint} / no compound with this code"
                report.unmatched.append(RowIssue(plan.row.row, plan.code, plan.name, [problem]))
            elif plan.name and name_key(plan.name) != name_key(found.name):
                report.warnings.append(
                    f"第{plan.row.row}行：项目编号 {plan.code} 在库中名为“{found.name}”，表中写作"
                    f"“{plan.name}” / the database names this compound differently"
                )
        else:
            candidates = by_name.get(name_key(plan.name or ""), [])
            if len(candidates) == 1:
                found = candidates[0]
            elif not candidates:
                problem = f"库中没有名为“{plan.name}”的小区 / no compound of this name"
                report.unmatched.append(RowIssue(plan.row.row, None, plan.name, [problem]))
            else:
                codes = "、".join(sorted(c.code for c in candidates))
                problem = f"名称对应多个小区：{codes} / several compounds have this name"
                report.ambiguous.append(RowIssue(plan.row.row, None, plan.name, [problem]))
        if found is not None:
            if found.id in first_of:
                earlier = first_of[found.id]
                duplicate[plan.row.row] = (
                    f"与第{earlier}行是同一小区 {found.code} / the same compound as row {earlier}"
                )
                duplicate.setdefault(
                    earlier,
                    f"与第{plan.row.row}行是同一小区 {found.code} / the same compound as row "
                    f"{plan.row.row}",
                )
            else:
                first_of[found.id] = plan.row.row
                plan.compound_id, plan.compound_code = found.id, found.code
    for plan in plans:
        if plan.row.row in duplicate:
            plan.problems.append(duplicate[plan.row.row])
    return plans


def _validate(
    plans: list[_Plan], entries: dict[int, LedgerEntry], today: date, report: LedgerImportReport
) -> list[tuple[_Plan, dict[str, Any]]]:
    """Rows to apply with their fields (new) or changes (existing); refused rows reported,
    the county's words and rule noted."""
    todo = []
    for plan in plans:
        problems = list(plan.problems)
        entry = entries.get(plan.compound_id) if plan.compound_id else None
        state = None
        if not problems and entry is None:
            fields = _new_fields(plan.fields, today)
            if fields.get("units_task") is None:
                problems.append("挂账需填写问题房屋套数 / a new ledger entry needs its task units")
            else:
                state = _state_new(fields, today)
        elif not problems:
            fields = _changes(entry, _existing_fields(plan.fields, entry))
            state = _state_after(entry, fields, today)
        if state is not None:
            problems += _check_rules(state)
        if problems:
            report.refused.append(RowIssue(plan.row.row, plan.code, plan.name, problems))
        elif plan.compound_id is not None:
            todo.append((plan, fields))
            _note_words(plan, state, report)
    return todo


def _note_words(plan: _Plan, state: dict[str, Any], report: LedgerImportReport) -> None:
    """What the report lists of a row taken: words no vocabulary maps, a closing against the
    county's rule (taken as recorded)."""
    where = {"row": plan.row.row, "code": plan.compound_code}
    if plan.unknown_status:
        report.unknown_statuses.append(where | {"word": plan.unknown_status,
                                                "status": state["status"]})  # fmt: skip
    if plan.unmapped:
        report.unmapped_blockers.append(where | {"words": plan.unmapped})
    breach = closing_breach(SimpleNamespace(**state), report.closing_rule)
    if breach:
        report.against_rule.append(RowIssue(plan.row.row, plan.compound_code, plan.name, [breach]))


def _check_totals(sheet: Sheet, plans: list[_Plan], report: LedgerImportReport) -> None:
    """Warn when the sheet's own 合计 row disagrees with the sum of its rows."""
    if not sheet.total_row:
        return
    for name in UNIT_FIELDS:
        if name not in sheet.columns:
            continue
        try:
            written = parse_units(sheet.total_row.get(name))
        except CellError:
            written = None
        if written is None:
            continue
        summed = sum(plan.fields.get(name) or 0 for plan in plans)
        if written != summed:
            report.totals.append({"row": sheet.total_row["row"], "column": sheet.columns[name],
                                  "field": name, "sheet": written, "rows": summed})  # fmt: skip
            report.warnings.append(
                f"第{sheet.total_row['row']}行合计的{sheet.columns[name]}为 {written}，明细之和为 "
                f"{summed} / the sheet's total of {sheet.columns[name]} is {written}, its rows add "
                f"up to {summed}"
            )


def _apply(
    session: Session,
    todo: list,
    entries: dict[int, LedgerEntry],
    user: str,
    note: str,
    moment: datetime,
    progress: Progress | None,
    report: LedgerImportReport,
) -> None:
    new_ids = [plan.compound_id for plan, _ in todo if plan.compound_id not in entries]
    compounds: dict[int, Compound] = {}
    for start in range(0, len(new_ids), 5000):
        chunk = new_ids[start : start + 5000]
        query = (
            select(Compound)
            .options(load_only(Compound.id, Compound.county_code, Compound.code, Compound.name))
            .where(Compound.id.in_(chunk))
        )
        for compound in session.scalars(query):
            set_committed_value(compound, "ledger", None)  # known: not on the ledger yet
            compounds[compound.id] = compound
    total = len(todo)
    for done, (plan, fields) in enumerate(todo, start=1):
        tick(progress, "apply", done, total)
        try:
            entry = entries.get(plan.compound_id)
            if entry is None:
                open_entry(session, compounds[plan.compound_id], fields, user, note, at=moment,
                           flush=False, as_recorded=True)  # fmt: skip
            elif fields and update_entry(session, entry, fields, user, note, at=moment,
                                         as_recorded=True) is None:  # fmt: skip
                raise LedgerRuleError("核对与写入不一致 / the checked change did not apply")
        except (LedgerRuleError, LedgerConflict) as exc:
            # Checked beforehand, so this is a race or a rule the checks do not know: stop.
            report.refused.append(RowIssue(plan.row.row, plan.code, plan.name, [str(exc)]))
            report.opened, report.updated, report.unchanged, report.events = [], [], 0, 0
            return
    session.flush()  # the new entries and their events, in batches
    if progress is not None:
        progress("apply", total, total)
    report.applied = True
