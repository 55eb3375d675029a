"""Changing the ledger: the one way an entry is opened, edited or closed (挂账销号).

Every change appends a LedgerEvent with who, when, the fields before and after, and the
state after it, so the ledger as of any date can be rebuilt. An edit made on an old version
is refused (LedgerConflict), never merged over someone else's change.
"""

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from geo import TitlemapError
from geo.core.dates import beijing_day, cn_date, now
from geo.core.model import Blocker, Compound, LedgerEntry, LedgerEvent, LedgerStatus

# Fields a user may change, and those kept in each event's `state` snapshot.
EDITABLE = (
    "ledger_no", "units_task", "units_first_registered", "units_transferred", "status",
    "blockers", "blocker_note", "lead_department", "cooperating_departments",
    "supervising_leader", "plan", "task_force_lead", "deadline", "opened_on", "closed_on",
    "close_reason",
)  # fmt: skip
STATE = (
    "status", "units_task", "units_first_registered", "units_transferred", "blockers",
    "lead_department", "deadline", "closed_on",
)  # fmt: skip
UNIT_FIELDS = ("units_task", "units_first_registered", "units_transferred")
DATE_FIELDS = ("deadline", "opened_on", "closed_on")
LIST_FIELDS = ("blockers", "cooperating_departments")


class LedgerConflict(TitlemapError):
    """The entry changed since the editor loaded it."""


class LedgerRuleError(TitlemapError):
    """The change would make the ledger untrue."""


class LedgerNotFound(TitlemapError):
    """No ledger entry for that compound."""


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def snapshot(entry: LedgerEntry) -> dict[str, Any]:
    return {name: _json_value(getattr(entry, name)) for name in STATE}


def _coerce(name: str, value: Any) -> Any:
    """Values as the model keeps them; a clear error for what cannot be one."""
    if value is None or value == "":
        if name in UNIT_FIELDS or name == "status":
            raise LedgerRuleError(f"{name} 不能为空 / must not be empty")
        return [] if name in LIST_FIELDS else None
    try:
        if name in UNIT_FIELDS:
            if isinstance(value, bool) or int(value) != float(value):
                raise ValueError
            return int(value)
        if name in DATE_FIELDS:
            return value if isinstance(value, date) else date.fromisoformat(str(value))
        if name in LIST_FIELDS:
            items = value.split(",") if isinstance(value, str) else list(value)
            return [str(item).strip() for item in items if str(item).strip()]
        if name == "status":
            return LedgerStatus(value).value
    except ValueError:
        raise LedgerRuleError(f"{name} 的值无效 / invalid value for {name}: {value!r}") from None
    return str(value)


def check_entry(entry: LedgerEntry) -> None:
    """The rules every entry obeys, in words a ledger clerk uses: the one rule set the API, the
    CLI and the sheet import share. The database holds the row facts among them too (CHECK
    constraints, migration 0007), so no other writer can break them."""
    task, first, done = entry.units_task, entry.units_first_registered, entry.units_transferred
    if min(task, first, done) < 0:
        raise LedgerRuleError("套数不能为负 / unit counts must not be negative")
    if first > task:
        raise LedgerRuleError(
            f"首次登记套数 {first} 超过问题房屋套数 {task} / first registrations exceed task units"
        )
    if done > first:
        raise LedgerRuleError(
            f"转移登记套数 {done} 超过首次登记套数 {first} / transfers exceed first registrations"
        )
    unknown = sorted(set(entry.blockers or []) - {b.value for b in Blocker})
    if unknown:
        raise LedgerRuleError(f"未知卡点类别 / unknown blocker categories: {unknown}")
    if entry.status == LedgerStatus.CLOSED and done < task and not entry.close_reason:
        raise LedgerRuleError(
            f"销号需全部 {task} 套完成转移登记，或写明理由 / closing needs every task unit "
            f"transferred ({done}/{task}) or a written reason (close_reason)"
        )
    closed_on, opened_on = entry.closed_on, entry.opened_on
    if closed_on and entry.status != LedgerStatus.CLOSED:
        raise LedgerRuleError(
            f"填了销号日期 {cn_date(closed_on)}，但化解状态不是已销号 / a closing date on an "
            "entry that is not closed"
        )
    if closed_on and opened_on and closed_on < opened_on:
        raise LedgerRuleError(
            f"销号日期 {cn_date(closed_on)} 早于挂账日期 {cn_date(opened_on)} / closed before "
            "it was opened"
        )


def _action(before: str | None, after: str) -> str:
    if before == LedgerStatus.CLOSED and after != LedgerStatus.CLOSED:
        return "reopen"
    if after == LedgerStatus.CLOSED and before != LedgerStatus.CLOSED:
        return "close"
    return "update"


def update_entry(
    session: Session,
    entry: LedgerEntry,
    changes: dict[str, Any],
    user: str,
    note: str | None = None,
    expected_version: int | None = None,
    at: datetime | None = None,
) -> LedgerEvent | None:
    """Apply `changes` and append their event; None when nothing actually changed."""
    if expected_version is not None and expected_version != entry.version:
        raise LedgerConflict(
            f"台账已被他人修改（版本 {entry.version}，你的是 {expected_version}），请刷新后重改 / "
            "the entry changed since you loaded it: reload and edit again"
        )
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise LedgerRuleError(f"不能修改这些字段 / these fields cannot be edited: {unknown}")
    wanted = {name: _coerce(name, value) for name, value in changes.items()}
    before_status = entry.status
    if wanted.get("status") == LedgerStatus.CLOSED and before_status != LedgerStatus.CLOSED:
        wanted.setdefault("closed_on", beijing_day(at or now()))  # the county's day, not UTC's
    if (
        before_status == LedgerStatus.CLOSED
        and wanted.get("status", before_status) != before_status
    ):
        wanted.setdefault("closed_on", None)
    diff = {
        name: [_json_value(getattr(entry, name)), _json_value(value)]
        for name, value in wanted.items()
        if getattr(entry, name) != value
    }
    if not diff:
        return None
    for name, value in wanted.items():
        setattr(entry, name, value)
    check_entry(entry)
    entry.updated_by = user
    event = LedgerEvent(
        county_code=entry.county_code,
        entry=entry,
        at=at or now(),
        user_name=user,
        action=_action(before_status, entry.status),
        changes=diff,
        state=snapshot(entry),
        note=note,
    )
    session.add(event)
    try:
        session.flush()
    except StaleDataError:
        session.rollback()
        raise LedgerConflict(
            "台账刚被他人修改，请刷新后重改 / the entry changed meanwhile: reload and edit again"
        ) from None
    return event


def open_entry(
    session: Session,
    compound: Compound,
    fields: dict[str, Any],
    user: str,
    note: str | None = None,
    at: datetime | None = None,
    flush: bool = True,
) -> LedgerEntry:
    """Put a compound on the ledger (挂账) with its first event. `flush=False` leaves the
    INSERTs to the caller's next flush, so a sheet of thousands is written in batches."""
    if compound.ledger is not None:
        raise LedgerRuleError(f"{compound.name} 已在台账上 / is already on the ledger")
    unknown = sorted(set(fields) - set(EDITABLE))
    if unknown:
        raise LedgerRuleError(f"未知字段 / unknown fields: {unknown}")
    values = {name: _coerce(name, value) for name, value in fields.items()}
    values.setdefault("status", LedgerStatus.NOT_STARTED.value)
    values.setdefault("units_first_registered", 0)
    values.setdefault("units_transferred", 0)
    values.setdefault("blockers", [])
    values.setdefault("cooperating_departments", [])
    if "units_task" not in values:
        raise LedgerRuleError("挂账需填写问题房屋套数 / opening needs units_task")
    moment = at or now()
    values.setdefault("opened_on", beijing_day(moment))
    entry = LedgerEntry(county_code=compound.county_code, compound=compound, **values)
    entry.updated_by = user
    check_entry(entry)
    session.add(entry)
    session.add(
        LedgerEvent(
            county_code=compound.county_code,
            entry=entry,
            at=moment,
            user_name=user,
            action="open",
            changes={name: [None, _json_value(value)] for name, value in values.items()},
            state=snapshot(entry),
            note=note,
        )
    )
    if flush:
        session.flush()
    return entry


def find_entry(session: Session, county: str, compound_code: str) -> LedgerEntry:
    entry = session.scalar(
        select(LedgerEntry)
        .join(Compound)
        .where(Compound.county_code == county, Compound.code == compound_code)
    )
    if entry is None:
        raise LedgerNotFound(
            f"台账上没有小区 {compound_code} / no ledger entry for {compound_code}"
        )
    return entry


def describe(entry: LedgerEntry, with_history: bool = True) -> dict[str, Any]:
    """The entry as plain data, with its events oldest first."""
    data = {name: _json_value(getattr(entry, name)) for name in EDITABLE}
    data |= {
        "compound_code": entry.compound.code,
        "compound_name": entry.compound.name,
        "version": entry.version,
        "updated_by": entry.updated_by,
        "updated_at": entry.updated_at.isoformat() if entry.updated_at else None,
    }
    if with_history:
        data["history"] = [
            {
                "at": event.at.isoformat(),
                "user": event.user_name,
                "action": event.action,
                "changes": event.changes,
                "note": event.note,
            }
            for event in entry.events
        ]
    return data
