"""Tasks with deadlines (分派交办 → 分类处置 → 限时办结): the JSON API and the work pages.

JSON (signed-in people of the county only; writes carry the CSRF token or a bearer token):
- `POST /api/tasks` — the office assigns a compound's problem to a department, due on a day.
- `GET /api/tasks` — the county's tasks, by department / status / overdue / compound.
- `GET /api/tasks/overdue` — the compounds with overdue tasks (codes, counts): the map's filter.
- `GET /api/tasks/departments` — the departments a task may go to.
- `GET /api/tasks/{id}` — one task with its replies.
- `POST /api/tasks/{id}/reply|start|close|reopen` — with the version read (409 when stale).

Pages (sign-in first, 303 to /signin otherwise): `/tasks/mine` (我的任务), `/tasks/{id}` (the
task, its replies, the forms its reader may use), `/tasks/new?compound=CODE` (the office).
The rules are geo.ledger.tasks'; every write goes through an audited session (api.auth).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from api.auth import current_user, editor_session, require, session, writer
from api.dependencies import RowId
from api.errors import AUTH_RESPONSES, StaleEdit
from api.pages import html_page
from api.routers.account import page_context, refused_page, to_sign_in
from geo.core.dates import BEIJING, cn_date, today
from geo.core.model import Role, User
from geo.core.work import OVERDUE_LABEL, TASK_STATUS_LABELS, TaskStatus
from geo.ledger.rules import LONG_TEXT_CHARS
from geo.ledger.tasks import (
    OPEN,
    STATUS_FILTERS,
    TaskConflict,
    TaskError,
    TaskNotFound,
    TaskRefused,
    close_task,
    compound_task_counts,
    create_task,
    describe_task,
    find_task,
    is_office_of,
    list_tasks,
    may_answer,
    may_read_tasks,
    read_task,
    reopen_task,
    reply_to_task,
    start_task,
    suggested_department,
)
from geo.ledger.users import county_departments, home_county

router = APIRouter(tags=["tasks"])

STATUS_OF = {TaskRefused: 403, TaskNotFound: 404, TaskConflict: 409}
OVERDUE = "overdue"  # the page's status filter also offers 逾期
FILTER_LABELS = {
    "": "全部", OPEN: "未办结", OVERDUE: OVERDUE_LABEL,
    **{status.value: label for status, label in TASK_STATUS_LABELS.items()},
}  # fmt: skip
DONE_WORDS = {
    "created": "已交办 / assigned", "reply": "已答复 / answered", "start": "已开始办理 / started",
    "close": "已办结 / done", "reopen": "已重新打开 / reopened",
}  # fmt: skip
DEFAULT_DAYS = 30  # the create form's due day: a month from today


class NewTask(BaseModel):
    compound: str = Field(description="小区编号 / compound code", max_length=100)
    department: str = Field(description="承办单位 / the department it goes to", max_length=200)
    action: str = Field(description="交办事项 / what is to be done", max_length=4000)
    due_on: str = Field(description="限时办结日期 / due day (2026-12-31 or 2026年12月31日)")
    county: str | None = Field(default=None, description="县代码；默认本人所在县 / county")


class Change(BaseModel):
    version: int = Field(description="读到的版本；已变则 409 / the version you read")


class Reply(Change):
    text: str = Field(description="答复内容 / what was done", max_length=4000)


CHANGE_RESPONSES = AUTH_RESPONSES | {
    409: {"description": "任务已被他人修改：detail 与 current（任务现状）/ changed meanwhile"}
}
Reader = Annotated[User, Depends(require(Role.VIEWER))]
Editing = Annotated[tuple[Session, User], Depends(editor_session())]


@contextmanager
def task_errors() -> Iterator[None]:
    """A TaskError as its HTTP answer: refused 403, not found 404, a rule broken 422."""
    try:
        yield
    except TaskError as exc:
        raise HTTPException(STATUS_OF.get(type(exc), 422), str(exc)) from None


def _county(user: User, county: str | None) -> str:
    county = county or home_county(user)
    if not may_read_tasks(user, county):
        raise HTTPException(403, f"{user.name} 无权查看该县任务 / not given this county")
    return county


def _detail(db: Session, user: User, task) -> dict[str, Any]:
    data = describe_task(db, task)
    data["may_answer"] = may_answer(user, task)
    data["may_close"] = is_office_of(user, task.county_code)
    return data


# -- JSON ---------------------------------------------------------------------------------------


@router.post(
    "/api/tasks",
    status_code=201,
    summary="交办任务（办公室）/ assign a task (office)",
    responses=AUTH_RESPONSES,
)
def post_task(new: NewTask, editing: Editing) -> dict:
    db, user = editing
    with task_errors():
        task = create_task(db, user, new.county or home_county(user), new.compound,
                           new.department, new.action, new.due_on)  # fmt: skip
        db.commit()
        return _detail(db, user, task)


@router.get("/api/tasks", summary="任务列表 / the county's tasks", responses=AUTH_RESPONSES)
def get_tasks(
    user: Reader,
    db: Annotated[Session, Depends(session)],
    county: str | None = None,
    department: Annotated[str | None, Query(description="承办单位 / department")] = None,
    status: Annotated[
        str | None, Query(description="assigned / in_progress / done / open（未办结）")
    ] = None,
    overdue: Annotated[bool | None, Query(description="逾期未办结 / overdue")] = None,
    compound: Annotated[str | None, Query(description="小区编号 / compound code")] = None,
) -> dict:
    county = _county(user, county)
    with task_errors():
        tasks = list_tasks(db.connection(), county, department=department, status=status,
                           overdue=overdue, compound=compound)  # fmt: skip
    return {
        "county": county,
        "on": today().isoformat(),
        "may_assign": is_office_of(user, county),
        "tasks": tasks,
    }


@router.get(
    "/api/tasks/overdue",
    summary="有逾期任务的小区 / compounds with overdue tasks",
    responses=AUTH_RESPONSES,
)
def get_overdue(
    user: Reader, db: Annotated[Session, Depends(session)], county: str | None = None
) -> dict:
    """Tasks change no map data (the tiles stay cached): the map filters by these codes."""
    county = _county(user, county)
    rows = compound_task_counts(db.connection(), county, only_overdue=True)
    return {
        "county": county,
        "on": today().isoformat(),
        "codes": [row["code"] for row in rows],
        "compounds": rows,
    }


@router.get(
    "/api/tasks/departments",
    summary="可交办的单位 / departments a task may go to",
    responses=AUTH_RESPONSES,
)
def get_departments(
    user: Reader, db: Annotated[Session, Depends(session)], county: str | None = None
) -> dict:
    county = _county(user, county)
    return {"county": county, "departments": county_departments(db.connection(), county)}


@router.get(
    "/api/tasks/{task_id}",
    summary="一个任务及其答复 / one task with its replies",
    responses=AUTH_RESPONSES,
)
def get_task(task_id: RowId, user: Reader, db: Annotated[Session, Depends(session)]) -> dict:
    with task_errors():
        return _detail(db, user, read_task(db, user, task_id))


def _change(db: Session, user: User, task_id: int, apply) -> dict:
    """Apply `apply(task)` to a task the user may read; 409 with the task as it is now when
    it changed meanwhile."""
    with task_errors():
        task = read_task(db, user, task_id)
        try:
            apply(task)
        except TaskConflict as exc:
            db.rollback()
            current = jsonable_encoder(_detail(db, user, find_task(db, task_id)))
            raise StaleEdit(str(exc), current) from None
        db.commit()
        return _detail(db, user, task)


@router.post(
    "/api/tasks/{task_id}/reply",
    summary="答复（承办单位）/ answer (department)",
    responses=CHANGE_RESPONSES,
)
def post_reply(task_id: RowId, reply: Reply, editing: Editing) -> dict:
    db, user = editing
    return _change(db, user, task_id,
                   lambda t: reply_to_task(db, user, t, reply.text, reply.version))  # fmt: skip


@router.post(
    "/api/tasks/{task_id}/start",
    summary="开始办理 / start (department)",
    responses=CHANGE_RESPONSES,
)
def post_start(task_id: RowId, change: Change, editing: Editing) -> dict:
    db, user = editing
    return _change(db, user, task_id, lambda t: start_task(db, user, t, change.version))


@router.post(
    "/api/tasks/{task_id}/close",
    summary="办结（办公室）/ close (office)",
    responses=CHANGE_RESPONSES,
)
def post_close(task_id: RowId, change: Change, editing: Editing) -> dict:
    db, user = editing
    return _change(db, user, task_id, lambda t: close_task(db, user, t, change.version))


@router.post(
    "/api/tasks/{task_id}/reopen",
    summary="重新打开（办公室）/ reopen (office)",
    responses=CHANGE_RESPONSES,
)
def post_reopen(task_id: RowId, change: Change, editing: Editing) -> dict:
    db, user = editing
    return _change(db, user, task_id, lambda t: reopen_task(db, user, t, change.version))


# -- pages --------------------------------------------------------------------------------------

PageUser = Annotated[User | None, Depends(current_user)]  # checks the CSRF token of a form


def _moment(at: datetime) -> str:
    """2026年1月5日 09:30, in Beijing time."""
    local = at.astimezone(BEIJING)
    return f"{cn_date(local.date())} {local:%H:%M}"


def _page(request: Request, user: User, template: str, status: int = 200, **context) -> Response:
    context |= {"cn_date": cn_date, "moment": _moment}
    return html_page(template, status, **page_context(request, user, **context))


def _refused(request: Request, user: User, exc: Exception, status: int = 403) -> Response:
    return refused_page(request, user, str(exc), ("/tasks/mine", "返回我的任务"), status, "任务")


@router.get("/tasks/mine", include_in_schema=False)
def mine_page(
    request: Request,
    user: PageUser,
    db: Annotated[Session, Depends(session)],
    county: str | None = None,
    department: str | None = None,
    status: str | None = None,
) -> Response:
    """我的任务: a department's own tasks; the office (and a reader of the whole county) all
    the county's, with a department filter. Open first by due day: the overdue lead."""
    if user is None:
        return to_sign_in(request)
    county = county or home_county(user)
    if not may_read_tasks(user, county):
        return _refused(request, user, TaskRefused("只能查看本县的任务 / only your county's tasks"))
    own = (user.department or "").strip() or None
    department = own or (department or "").strip() or None
    status = status if status in FILTER_LABELS else ""
    tasks = list_tasks(
        db.connection(), county, department=department,
        status=status if status in STATUS_FILTERS else None,
        overdue=True if status == OVERDUE else None,
    )  # fmt: skip
    return _page(
        request, user, "tasks_mine.html", title="我的任务", county=county, tasks=tasks,
        own_department=own, department=department or "", status_filter=status,
        departments=county_departments(db.connection(), county),
        statuses=FILTER_LABELS, may_assign=is_office_of(user, county),
        overdue=sum(task["overdue"] for task in tasks),
    )  # fmt: skip


def _new_form(
    request: Request,
    user: User,
    db: Session,
    county: str,
    values: dict[str, str],
    status: int = 200,
    flash: str | None = None,
) -> Response:
    """The create form, filled with `values` (a refused one keeps what was typed)."""
    compound = values.get("compound", "")
    lead = suggested_department(db.connection(), county, compound) if compound else None
    first = today()
    form = {"compound": compound, "department": lead or "", "action": "",
            "due_on": (first + timedelta(days=DEFAULT_DAYS)).isoformat()} | values  # fmt: skip
    return _page(
        request, user, "tasks_new.html", status, title="交办任务", county=county, form=form,
        departments=county_departments(db.connection(), county), min_day=first.isoformat(),
        action_limit=LONG_TEXT_CHARS, flash=flash, flash_kind="error",
    )  # fmt: skip


@router.get("/tasks/new", include_in_schema=False)
def new_page(
    request: Request,
    user: PageUser,
    db: Annotated[Session, Depends(session)],
    compound: str = "",
    county: str | None = None,
) -> Response:
    if user is None:
        return to_sign_in(request)
    county = county or home_county(user)
    if not is_office_of(user, county):
        refusal = TaskRefused("只有本县领导小组办公室可以交办任务 / only the office assigns tasks")
        return _refused(request, user, refusal)
    return _new_form(request, user, db, county, {"compound": compound.strip()})


@router.post("/tasks/new", include_in_schema=False)
def new_submit(
    request: Request,
    user: PageUser,
    db: Annotated[Session, Depends(session)],
    compound: Annotated[str, Form(max_length=100)] = "",
    department: Annotated[str, Form(max_length=200)] = "",
    action: Annotated[str, Form(max_length=4000)] = "",
    due_on: Annotated[str, Form(max_length=40)] = "",
    county: Annotated[str, Form(max_length=6)] = "",
) -> Response:
    if user is None:
        return to_sign_in(request)
    county = county or home_county(user)
    values = {"compound": compound, "department": department, "action": action, "due_on": due_on}
    with writer(request, user) as audited:
        try:
            task = create_task(audited, user, county, compound.strip(), department, action,
                               due_on)  # fmt: skip
            audited.commit()
        except TaskError as exc:
            audited.rollback()
            if isinstance(exc, TaskRefused):
                return _refused(request, user, exc)
            status = STATUS_OF.get(type(exc), 422)
            return _new_form(request, user, db, county, values, status, str(exc))
        return _back(task.id, "created")


def _back(task_id: int, done: str) -> RedirectResponse:
    return RedirectResponse(f"/tasks/{task_id}?{urlencode({'done': done})}", status_code=303)


def _task_page(
    request: Request, user: User, db: Session, task_id: int, status: int = 200, **context
) -> Response:
    try:
        task = read_task(db, user, task_id)
    except TaskError as exc:
        return _refused(request, user, exc, STATUS_OF.get(type(exc), 422))
    data = _detail(db, user, task)
    return _page(
        request, user, "tasks_task.html", status, title=f"任务 {task_id}", task=data,
        done=TaskStatus.DONE.value, assigned=TaskStatus.ASSIGNED.value,
        reply_limit=LONG_TEXT_CHARS, **context,
    )  # fmt: skip


@router.get("/tasks/{task_id}", include_in_schema=False)
def task_page(
    request: Request,
    task_id: RowId,
    user: PageUser,
    db: Annotated[Session, Depends(session)],
    done: str | None = None,
) -> Response:
    if user is None:
        return to_sign_in(request)
    flash = DONE_WORDS.get(done or "")
    return _task_page(request, user, db, task_id, flash=flash, flash_kind="ok")


def _submit(request: Request, user: User | None, task_id: int, done: str, apply) -> Response:
    """A form on the task page: apply it in an audited session, back to the page."""
    if user is None:
        return to_sign_in(request)
    with writer(request, user) as audited:
        try:
            apply(audited, read_task(audited, user, task_id))
            audited.commit()
        except TaskError as exc:
            audited.rollback()
            status = STATUS_OF.get(type(exc), 422)
            return _task_page(request, user, audited, task_id, status, flash=str(exc),
                              flash_kind="error")  # fmt: skip
    return _back(task_id, done)


Version = Annotated[int, Form()]


@router.post("/tasks/{task_id}/reply", include_in_schema=False)
def reply_submit(
    request: Request,
    task_id: RowId,
    user: PageUser,
    version: Version,
    text: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    return _submit(request, user, task_id, "reply",
                   lambda db, t: reply_to_task(db, user, t, text, version))  # fmt: skip


@router.post("/tasks/{task_id}/start", include_in_schema=False)
def start_submit(request: Request, task_id: RowId, user: PageUser, version: Version) -> Response:
    return _submit(request, user, task_id, "start",
                   lambda db, t: start_task(db, user, t, version))  # fmt: skip


@router.post("/tasks/{task_id}/close", include_in_schema=False)
def close_submit(request: Request, task_id: RowId, user: PageUser, version: Version) -> Response:
    return _submit(request, user, task_id, "close",
                   lambda db, t: close_task(db, user, t, version))  # fmt: skip


@router.post("/tasks/{task_id}/reopen", include_in_schema=False)
def reopen_submit(request: Request, task_id: RowId, user: PageUser, version: Version) -> Response:
    return _submit(request, user, task_id, "reopen",
                   lambda db, t: reopen_task(db, user, t, version))  # fmt: skip
