"""Changing the ledger: the one way an entry is opened, edited or closed (挂账销号).

Every change appends a LedgerEvent with who, when, the fields before and after, and the
state after it, so the ledger as of any date can be rebuilt. An edit made on an old version
is refused (LedgerConflict), never merged over someone else's change.

Two kinds of rule: `check_entry`, what cannot be true of any entry (counts, dates), refused
whoever writes; and `closing_breach`, the county's own closing rule (county.closing_rule), which
an edit must keep but a county's ledger sheet may break — the record is the county's: it is
taken as recorded, with a warning, and listed by the `closing_rule` check.
"""

from datetime import date, datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from geo import TitlemapError
from geo.core.dates import beijing_day, cn_date, now
from geo.core.model import (
    CLOSING_RULE_LABELS,
    Blocker,
    ClosingRule,
    Compound,
    LedgerEntry,
    LedgerEvent,
    LedgerStatus,
)

# Fields a user may change, and those kept in each event's `state` snapshot.
EDITABLE = (
    "ledger_no", "units_task", "units_first_registered", "units_transferred", "status",
    "blockers", "blocker_note", "lead_department", "cooperating_departments",
    "supervising_leader", "plan", "task_force_lead", "deadline", "opened_on", "closed_on",
    "close_reason", "status_word", "blocker_words", "measures", "next_step",
)  # fmt: skip
STATE = (
    "status", "units_task", "units_first_registered", "units_transferred", "blockers",
    "lead_department", "deadline", "closed_on",
)  # fmt: skip
UNIT_FIELDS = ("units_task", "units_first_registered", "units_transferred")
DATE_FIELDS = ("deadline", "opened_on", "closed_on")
LIST_FIELDS = ("blockers", "cooperating_departments", "blocker_words", "measures")
# The county's own words for a field: an edit of the field without them makes them stale.
WORDS_OF = {"status": "status_word", "blockers": "blocker_words"}
# How long a text may be, in characters, and how many items a list may hold: history keeps
# every value for good, so a pasted file would weigh on the entry and its card for ever.
LONG_TEXTS = ("plan", "blocker_note", "close_reason", "note", "next_step")
LONG_TEXT_CHARS, SHORT_TEXT_CHARS, MAX_LIST_ITEMS = 2_000, 200, 50
MAX_UNITS = 1_000_000  # more units than any compound has (and within the database's integer)


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


def _checked_text(name: str, value: str) -> str:
    """`value` for the text field `name` (or the event's note), refused when too long."""
    limit = LONG_TEXT_CHARS if name in LONG_TEXTS else SHORT_TEXT_CHARS
    if len(value) > limit:
        raise LedgerRuleError(
            f"{name} 超过 {limit} 字（{len(value)} 字）/ {name} is longer than {limit} "
            f"characters ({len(value)})"
        )
    return value


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
            return _checked_list(name, [str(item).strip() for item in items if str(item).strip()])
        if name == "status":
            return LedgerStatus(value).value
    except (ValueError, TypeError, OverflowError):  # 1e400 is a float: int() overflows
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:80] + "…"
        raise LedgerRuleError(f"{name} 的值无效 / invalid value for {name}: {shown}") from None
    return _checked_text(name, str(value))


def _checked_list(name: str, items: list[str]) -> list[str]:
    if len(items) > MAX_LIST_ITEMS:
        raise LedgerRuleError(
            f"{name} 超过 {MAX_LIST_ITEMS} 项 / {name} has more than {MAX_LIST_ITEMS} items"
        )
    return [_checked_text(name, item) for item in items]


def check_entry(entry: LedgerEntry) -> None:
    """The rules every entry obeys, in words a ledger clerk uses: the one rule set the API, the
    CLI and the sheet import share. The database holds them too (CHECK constraints, migrations
    0001 and 0007), so no other writer can break them. When an entry may be closed is the
    county's own rule: `closing_breach`."""
    task, first, done = entry.units_task, entry.units_first_registered, entry.units_transferred
    if min(task, first, done) < 0:
        raise LedgerRuleError("套数不能为负 / unit counts must not be negative")
    if max(task, first, done) > MAX_UNITS:
        raise LedgerRuleError(f"套数超过 {MAX_UNITS} / unit counts above {MAX_UNITS}")
    if first > task:
        raise LedgerRuleError(
            f"首次登记套数 {first} 超过问题房屋套数 {task} / first registrations exceed task units"
        )
    if done > task:
        raise LedgerRuleError(
            f"转移登记套数 {done} 超过问题房屋套数 {task} / transfers exceed task units"
        )
    if done > first:
        raise LedgerRuleError(
            f"转移登记套数 {done} 超过首次登记套数 {first} / transfers exceed first registrations"
        )
    unknown = sorted(set(entry.blockers or []) - {b.value for b in Blocker})
    if unknown:
        raise LedgerRuleError(f"未知卡点类别 / unknown blocker categories: {unknown}")
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


def closing_breach(entry: Any, rule: str) -> str | None:
    """Why a closed entry does not meet its county's closing rule (销号规则), in a clerk's
    words (Chinese / English); None when it does, or is not closed. `entry` is anything with
    the entry's fields (an entry, a row, a SimpleNamespace)."""
    if entry.status != LedgerStatus.CLOSED:
        return None
    task, first, done = entry.units_task, entry.units_first_registered, entry.units_transferred
    rule = ClosingRule(rule)
    if rule == ClosingRule.ALL_TRANSFERRED and done < task and not entry.close_reason:
        return (
            f"销号需全部 {task} 套完成转移登记，或写明理由 / closing needs every task unit "
            f"transferred ({done}/{task}) or a written reason (close_reason)"
        )
    if rule == ClosingRule.FIRST_REGISTERED and first < task:
        return (
            f"销号需全部 {task} 套完成首次登记 / closing needs every task unit first-registered "
            f"({first}/{task})"
        )
    return None


def closing_rule_of(session: Session, county: str) -> str:
    """The county's closing rule (county.closing_rule)."""
    rule = session.execute(
        text("SELECT closing_rule FROM county WHERE code = :c"), {"c": county}
    ).scalar()
    if rule is None:
        raise TitlemapError(f"没有这个县 / no such county: {county}")
    return rule


def status_from_figures(task: int, first: int, done: int) -> str:
    """The status the counts alone say, for a status word no vocabulary maps: never closed,
    which only the county's record can say."""
    if task > 0 and first >= task:
        return LedgerStatus.FIRST_REGISTERED.value
    if first > 0 or done > 0:
        return LedgerStatus.IN_PROGRESS.value
    return LedgerStatus.NOT_STARTED.value


def _keeps_closing_rule(session: Session, entry: LedgerEntry, before: dict[str, Any]) -> None:
    """Refuse an edit that closes the entry against its county's rule, or makes a closed entry
    break it; one already closed against it (taken as the county recorded it) stays editable."""
    if entry.status != LedgerStatus.CLOSED:
        return
    rule = closing_rule_of(session, entry.county_code)
    breach = closing_breach(entry, rule)
    if breach and closing_breach(SimpleNamespace(**before), rule) is None:
        raise LedgerRuleError(breach)


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
    as_recorded: bool = False,
    progress: bool = False,
) -> LedgerEvent | None:
    """Apply `changes` and append their event; None when nothing actually changed — unless
    `progress` and a `note`: a person's dated progress note on its own (a meeting held, a fee
    collected) is then an event of its own ("progress", no field changed).

    A closing against the county's rule is refused, unless `as_recorded` (the county's own
    ledger sheet: the import warns instead). A status or blockers edit without the county's
    words drops the old words, which no longer say what the entry holds."""
    if expected_version is not None and expected_version != entry.version:
        raise LedgerConflict(
            f"台账已被他人修改（版本 {entry.version}，你的是 {expected_version}），请刷新后重改 / "
            "the entry changed since you loaded it: reload and edit again"
        )
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise LedgerRuleError(f"不能修改这些字段 / these fields cannot be edited: {unknown}")
    if note:
        _checked_text("note", note)
    wanted = {name: _coerce(name, value) for name, value in changes.items()}
    for name, words in WORDS_OF.items():
        if name in wanted and words not in wanted and wanted[name] != getattr(entry, name):
            wanted[words] = _coerce(words, None)
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
        return _progress(session, entry, user, note, at) if progress and note else None
    before = {name: getattr(entry, name) for name in EDITABLE}
    for name, value in wanted.items():
        setattr(entry, name, value)
    check_entry(entry)
    if not as_recorded:
        _keeps_closing_rule(session, entry, before)
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


def _progress(
    session: Session, entry: LedgerEntry, user: str, note: str, at: datetime | None
) -> LedgerEvent:
    event = LedgerEvent(
        county_code=entry.county_code, entry=entry, at=at or now(), user_name=user,
        action="progress", changes={}, state=snapshot(entry), note=note,
    )  # fmt: skip
    session.add(event)
    session.flush()
    return event


def following_figures(entry: Any, changes: dict[str, Any]) -> dict[str, Any]:
    """`changes` with the status the new unit counts say (status_from_figures), when they
    change the counts, name no status, and the entry is open (closing is 销号's own step)."""
    if "status" in changes or entry.status == LedgerStatus.CLOSED:
        return changes
    if not set(UNIT_FIELDS) & set(changes):
        return changes
    try:
        task, first, done = (int(changes.get(name, getattr(entry, name))) for name in UNIT_FIELDS)
    except (TypeError, ValueError, OverflowError):
        return changes  # update_entry says what is wrong with the value
    return changes | {"status": status_from_figures(task, first, done)}


def closing_needs(entry: Any, rule: str) -> dict[str, Any]:
    """What closing (销号) `entry` (anything with its fields) needs under the county's rule, in
    closing_breach's own words: a written reason (`needs_reason`; `reason_hint` says why), or
    nothing can close it yet (`refusal`)."""

    def breach(reason: str | None) -> str | None:
        closed = vars(entry) | {"status": LedgerStatus.CLOSED.value, "close_reason": reason}
        return closing_breach(SimpleNamespace(**closed), rule)

    plain, with_reason = breach(None), breach("理由 / a reason")
    return {
        "rule": rule,
        "label": CLOSING_RULE_LABELS[ClosingRule(rule)],
        "needs_reason": plain is not None and with_reason is None,
        "reason_hint": plain,
        "refusal": with_reason,
    }


def open_entry(
    session: Session,
    compound: Compound,
    fields: dict[str, Any],
    user: str,
    note: str | None = None,
    at: datetime | None = None,
    flush: bool = True,
    as_recorded: bool = False,
) -> LedgerEntry:
    """Put a compound on the ledger (挂账) with its first event. `flush=False` leaves the
    INSERTs to the caller's next flush, so a sheet of thousands is written in batches.
    `as_recorded` takes a closed entry against the county's rule (update_entry says how)."""
    if compound.ledger is not None:
        raise LedgerRuleError(f"{compound.name} 已在台账上 / is already on the ledger")
    unknown = sorted(set(fields) - set(EDITABLE))
    if unknown:
        raise LedgerRuleError(f"未知字段 / unknown fields: {unknown}")
    if note:
        _checked_text("note", note)
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
    if not as_recorded:
        _keeps_closing_rule(session, entry, {"status": None})
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
