"""Tasks: the office assigns a compound's problem to a department with a due day (分派交办),
the department answers (分类处置), the office closes it (限时办结).

Overdue (逾期) is not stored: a task not done whose due day has passed in Beijing — one rule,
`is_overdue` in Python and `OVERDUE_SQL` in queries, both against geo.core.dates.today().

Who may do what (geo.ledger.users says who is who):
- reading: the signed-in people of the task's county (and those given it); nobody else —
  tasks are the work, not the public map;
- assigning (`create_task`), closing (`close_task`) and reopening (`reopen_task`): the office
  of the compound's county (`is_office`: an admin, or an editor without a department);
- answering (`reply_to_task`, `start_task`): editors of the task's department, or the office.

Every change is checked against the version the person read (`expected_version`): a task
changed meanwhile is refused (TaskConflict), never overwritten. A reply moves the task on
(its version too), so whoever closes it has seen the last answer.
"""

from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, select, text
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from geo import TitlemapError
from geo.core.dates import DateError, beijing_day, cn_date, now, parse_date, today
from geo.core.model import Compound, Role, User
from geo.core.work import OVERDUE_LABEL, TASK_STATUS_LABELS, Task, TaskReply, TaskStatus
from geo.ledger.rules import LONG_TEXT_CHARS, SHORT_TEXT_CHARS
from geo.ledger.users import counties_of, county_departments, is_office, may

# A task row `t` not done whose due day is before :today (Beijing's day, passed in).
OVERDUE_SQL = "(t.status <> 'done' AND t.due_on < :today)"

OPEN = "open"  # a status filter: not done (交办 or 办理中)
STATUS_FILTERS = (*(s.value for s in TaskStatus), OPEN)
MAX_TASKS = 2_000  # rows a list gives at most


class TaskError(TitlemapError):
    """A task cannot be changed as asked (the subclasses say why)."""


class TaskRefused(TaskError):
    """Not this person's to do."""


class TaskNotFound(TaskError):
    """No such task or compound."""


class TaskConflict(TaskError):
    """The task changed since the person loaded it."""


class TaskRuleError(TaskError):
    """The values break a rule of tasks (an empty action, a due day in the past …)."""


def is_overdue(status: str, due_on: date, on: date | None = None) -> bool:
    """Whether a task is late on day `on` (today in Beijing by default): due before it and
    not done. Due today is not late yet."""
    return status != TaskStatus.DONE and due_on < (on or today())


def days_late(status: str, due_on: date, on: date | None = None) -> int:
    """How many days past its due day a task is on `on` (0 when not overdue)."""
    day = on or today()
    return (day - due_on).days if is_overdue(status, due_on, day) else 0


def status_label(status: str, due_on: date, on: date | None = None) -> str:
    """交办 / 办理中 / 已办结, or 逾期 for a task not done past its due day."""
    return OVERDUE_LABEL if is_overdue(status, due_on, on) else TASK_STATUS_LABELS[status]


# -- who may do what ---------------------------------------------------------------------------


def may_read_tasks(user: User | None, county: str) -> bool:
    """The county's own signed-in people, and those given it."""
    return user is not None and user.active and county in counties_of(user)


def is_office_of(user: User | None, county: str) -> bool:
    """The leading group's office of `county`: assigns, closes, reopens."""
    return may_read_tasks(user, county) and is_office(user)


def may_answer(user: User | None, task: Task) -> bool:
    """Editors of the task's department, or the office of its county."""
    if not may_read_tasks(user, task.county_code):
        return False
    if is_office(user):
        return True
    return may(user, Role.EDITOR) and (user.department or "").strip() == task.department


def _refuse_unless_reader(user: User | None, county: str) -> None:
    if not may_read_tasks(user, county):
        raise TaskRefused("只能查看本县的任务 / only your own county's tasks")


def _refuse_unless_office(user: User, county: str, what: str) -> None:
    if not is_office_of(user, county):
        raise TaskRefused(
            f"只有本县领导小组办公室可以{what} / only the county's office may do this "
            f"（{user.name}：{user.department or user.role}）"
        )


def _refuse_unless_answering(user: User, task: Task) -> None:
    if not may_answer(user, task):
        raise TaskRefused(
            f"只有承办单位（{task.department}）或办公室可以办理 / only {task.department} or the "
            "office may answer this task"
        )


# -- values ------------------------------------------------------------------------------------


def _text(value: Any, label: str, limit: int) -> str:
    words = str(value or "").strip()
    if not words:
        raise TaskRuleError(f"{label}不能为空 / {label} must not be empty")
    if len(words) > limit:
        raise TaskRuleError(
            f"{label}超过 {limit} 字（{len(words)} 字）/ longer than {limit} characters"
        )
    return words


def _day(value: Any) -> date:
    try:
        day = parse_date(value)
    except DateError as exc:
        raise TaskRuleError(f"限时办结日期：{exc}") from None
    if day is None:
        raise TaskRuleError("请填写限时办结日期 / a due day is required")
    return day


def suggested_department(conn: Connection, county: str, compound_code: str) -> str | None:
    """The department a new task of a compound goes to first: its ledger's lead."""
    return conn.scalar(
        text(
            "SELECT e.lead_department FROM ledger_entry e JOIN compound c ON c.id = e.compound_id "
            "WHERE c.county_code = :c AND c.code = :code AND e.lead_department <> '未定'"
        ),
        {"c": county, "code": compound_code},
    )


# -- changes -----------------------------------------------------------------------------------


def find_task(session: Session, task_id: int) -> Task:
    task = session.get(Task, task_id)
    if task is None:
        raise TaskNotFound(f"没有这个任务 / no such task: {task_id}")
    return task


def read_task(session: Session, user: User | None, task_id: int) -> Task:
    """The task, for someone who may read it (TaskNotFound, TaskRefused otherwise)."""
    task = find_task(session, task_id)
    _refuse_unless_reader(user, task.county_code)
    return task


def create_task(
    session: Session,
    user: User,
    county: str,
    compound_code: str,
    department: str,
    action: str,
    due_on: date | str,
    *,
    on: date | None = None,
    at: datetime | None = None,
) -> Task:
    """Assign a compound's problem to a department (交办), due on a day not before `on`
    (today in Beijing; a test or a backfill passes another day, with `at` the moment)."""
    _refuse_unless_office(user, county, "交办任务")
    compound = session.scalar(
        select(Compound).where(Compound.county_code == county, Compound.code == compound_code)
    )
    if compound is None:
        raise TaskNotFound(f"本县没有小区 {compound_code} / no such compound in {county}")
    department = _text(department, "承办单位", SHORT_TEXT_CHARS)
    known = county_departments(session.connection(), county)
    if department not in known:
        raise TaskRuleError(
            f"承办单位“{department}”不在本县单位中（可选：{'、'.join(known) or '无'}）/ "
            "not a department of the county"
        )
    day = on or (beijing_day(at) if at else today())
    due = _day(due_on)
    if due < day:
        raise TaskRuleError(
            f"限时办结日期 {cn_date(due)} 早于今天 {cn_date(day)} / the due day is in the past"
        )
    task = Task(
        county_code=county,
        compound_id=compound.id,
        department=department,
        action=_text(action, "交办事项", LONG_TEXT_CHARS),
        due_on=due,
        status=TaskStatus.ASSIGNED.value,
        created_by=user.name,
        created_at=at or now(),
    )
    session.add(task)
    session.flush()
    return task


def _check_version(task: Task, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != task.version:
        raise TaskConflict(
            f"任务已被他人修改（版本 {task.version}，你的是 {expected_version}），请刷新后重试 / "
            "the task changed since you loaded it: reload and try again"
        )


def _flush(session: Session) -> None:
    try:
        session.flush()
    except StaleDataError:
        session.rollback()
        raise TaskConflict(
            "任务刚被他人修改，请刷新后重试 / the task changed meanwhile: reload and try again"
        ) from None


def _not_done(task: Task) -> None:
    if task.status == TaskStatus.DONE:
        raise TaskRuleError(
            "任务已办结（办公室可重新打开）/ the task is done (the office may reopen it)"
        )


def reply_to_task(
    session: Session,
    user: User,
    task: Task,
    words: str,
    expected_version: int | None,
    at: datetime | None = None,
) -> TaskReply:
    """The department's answer (what was done); an assigned task is then in progress."""
    _refuse_unless_answering(user, task)
    _check_version(task, expected_version)
    _not_done(task)
    moment = at or now()
    reply = TaskReply(
        county_code=task.county_code,
        task_id=task.id,
        at=moment,
        user_name=user.name,
        department=user.department,
        text=_text(words, "答复内容", LONG_TEXT_CHARS),
    )
    session.add(reply)
    if task.status == TaskStatus.ASSIGNED:
        task.status = TaskStatus.IN_PROGRESS.value
    task.updated_at = moment  # a new version: whoever closes it has read this answer
    _flush(session)
    return reply


def start_task(session: Session, user: User, task: Task, expected_version: int | None) -> Task:
    """交办 → 办理中: the department has taken it up."""
    _refuse_unless_answering(user, task)
    _check_version(task, expected_version)
    if task.status != TaskStatus.ASSIGNED:
        raise TaskRuleError(
            f"任务状态为{TASK_STATUS_LABELS[task.status]}，不是交办 / the task is not assigned"
        )
    task.status = TaskStatus.IN_PROGRESS.value
    _flush(session)
    return task


def close_task(
    session: Session,
    user: User,
    task: Task,
    expected_version: int | None,
    at: datetime | None = None,
) -> Task:
    """已办结, on the Beijing day of `at` (now)."""
    _refuse_unless_office(user, task.county_code, "办结任务")
    _check_version(task, expected_version)
    _not_done(task)
    task.status = TaskStatus.DONE.value
    task.done_on = beijing_day(at or now())
    task.closed_by = user.name
    _flush(session)
    return task


def reopen_task(session: Session, user: User, task: Task, expected_version: int | None) -> Task:
    """A closed task back to 办理中 (the office found it not done after all)."""
    _refuse_unless_office(user, task.county_code, "重新打开任务")
    _check_version(task, expected_version)
    if task.status != TaskStatus.DONE:
        raise TaskRuleError("任务尚未办结 / the task is not done")
    task.status = TaskStatus.IN_PROGRESS.value
    task.done_on = None
    task.closed_by = None
    _flush(session)
    return task


# -- reading -----------------------------------------------------------------------------------

_COLUMNS = f"""
    t.id, t.county_code, c.code AS compound_code, c.name AS compound_name, t.department,
    t.action, t.due_on, t.status, t.created_by, t.created_at, t.done_on, t.closed_by,
    t.version, {OVERDUE_SQL} AS overdue,
    CASE WHEN {OVERDUE_SQL} THEN :today - t.due_on ELSE 0 END AS days_late,
    (SELECT count(*) FROM task_reply r WHERE r.task_id = t.id) AS replies
"""


def _row(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    data["status_label"] = TASK_STATUS_LABELS[data["status"]]
    data["label"] = OVERDUE_LABEL if data["overdue"] else data["status_label"]
    return data


def list_tasks(
    conn: Connection,
    county: str,
    *,
    department: str | None = None,
    status: str | None = None,
    overdue: bool | None = None,
    compound: str | None = None,
    task_id: int | None = None,
    on: date | None = None,
    limit: int = MAX_TASKS,
) -> list[dict[str, Any]]:
    """The county's tasks, open ones first by due day (the overdue come first), then the done.
    `status`: assigned / in_progress / done, or open (not done); `on`: the day overdue is
    counted on (today in Beijing)."""
    where, params = ["t.county_code = :county"], {"county": county, "today": on or today()}
    if department:
        where.append("t.department = :department")
        params["department"] = department.strip()
    if status:
        if status not in STATUS_FILTERS:
            raise TaskRuleError(f"未知任务状态 / unknown status {status!r}: {list(STATUS_FILTERS)}")
        where.append("t.status <> 'done'" if status == OPEN else "t.status = :status")
        params["status"] = status
    if overdue is not None:
        where.append(OVERDUE_SQL if overdue else f"NOT {OVERDUE_SQL}")
    if compound:
        where.append("c.code = :compound")
        params["compound"] = compound.strip()
    if task_id is not None:
        where.append("t.id = :task_id")
        params["task_id"] = task_id
    rows = conn.execute(
        text(
            f"SELECT {_COLUMNS} FROM task t JOIN compound c ON c.id = t.compound_id "
            f"WHERE {' AND '.join(where)} "
            "ORDER BY t.status = 'done', t.due_on, t.id LIMIT :limit"
        ),
        params | {"limit": min(limit, MAX_TASKS)},
    )
    return [_row(row) for row in rows]


def describe_task(session: Session, task: Task, on: date | None = None) -> dict[str, Any]:
    """One task as plain data (dates as dates), with its replies oldest first."""
    [data] = list_tasks(session.connection(), task.county_code, task_id=task.id, on=on)
    replies = session.scalars(
        select(TaskReply).where(TaskReply.task_id == task.id).order_by(TaskReply.at, TaskReply.id)
    )
    data["replies"] = [
        {"at": r.at, "user": r.user_name, "department": r.department, "text": r.text}
        for r in replies
    ]
    return data


def compound_task_counts(
    conn: Connection, county: str, on: date | None = None, only_overdue: bool = False
) -> list[dict[str, Any]]:
    """Per compound with open tasks: its code, name, open and overdue counts (for the map)."""
    having = f"HAVING count(*) FILTER (WHERE {OVERDUE_SQL}) > 0" if only_overdue else ""
    rows = conn.execute(
        text(
            "SELECT c.code, c.name, count(*) AS open, "
            f"count(*) FILTER (WHERE {OVERDUE_SQL}) AS overdue "
            "FROM task t JOIN compound c ON c.id = t.compound_id "
            f"WHERE t.county_code = :county AND t.status <> 'done' GROUP BY c.code, c.name "
            f"{having} ORDER BY c.code"
        ),
        {"county": county, "today": on or today()},
    )
    return [dict(row._mapping) for row in rows]


def department_task_counts(
    conn: Connection, county: str, on: date | None = None
) -> list[dict[str, Any]]:
    """Per department (for a bulletin's ranking): tasks, assigned, in progress, done, done
    late (after the due day), overdue now; by department name."""
    rows = conn.execute(
        text(
            "SELECT t.department, count(*) AS tasks, "
            "count(*) FILTER (WHERE t.status = 'assigned') AS assigned, "
            "count(*) FILTER (WHERE t.status = 'in_progress') AS in_progress, "
            "count(*) FILTER (WHERE t.status = 'done') AS done, "
            "count(*) FILTER (WHERE t.status = 'done' AND t.done_on > t.due_on) AS done_late, "
            f"count(*) FILTER (WHERE {OVERDUE_SQL}) AS overdue "
            "FROM task t WHERE t.county_code = :county GROUP BY t.department ORDER BY 1"
        ),
        {"county": county, "today": on or today()},
    )
    return [dict(row._mapping) for row in rows]


def overdue_tasks(conn: Connection, county: str, on: date | None = None) -> list[dict[str, Any]]:
    """The county's overdue tasks on `on` (today in Beijing), the longest late first: id,
    compound_code, compound_name, department, action, due_on (a date), status, days_late."""
    rows = conn.execute(
        text(
            "SELECT t.id, c.code AS compound_code, c.name AS compound_name, t.department, "
            "t.action, t.due_on, t.status, :today - t.due_on AS days_late "
            "FROM task t JOIN compound c ON c.id = t.compound_id "
            f"WHERE t.county_code = :county AND {OVERDUE_SQL} "
            "ORDER BY t.due_on, t.department, t.id"
        ),
        {"county": county, "today": on or today()},
    )
    return [dict(row._mapping) for row in rows]
