"""Tasks with deadlines (分派交办 → 分类处置 → 限时办结): the rules (geo.ledger.tasks), the API
and pages (api.routers.tasks), and in Chromium the whole round — the office assigns, the
department answers, the office closes; an overdue task marked in 我的任务, on the card and kept
by the map's 逾期任务 filter.

Everything runs in a private database (demo_database("tasks")), served by the app's own role,
so the audit triggers and the role's rights are those of production.
"""

from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from geo.core.dates import beijing_day, today
from geo.core.model import User
from geo.core.settings import Settings
from geo.core.work import Task
from geo.ledger.rules import LONG_TEXT_CHARS
from geo.ledger.tasks import (
    TaskConflict,
    TaskNotFound,
    TaskRefused,
    TaskRuleError,
    close_task,
    compound_task_counts,
    county_departments,
    create_task,
    department_task_counts,
    is_overdue,
    list_tasks,
    overdue_tasks,
    reopen_task,
    reply_to_task,
    start_task,
)
from tests.conftest import PASSWORD, Server, add_people, app_role, sign_in
from tests.test_web_map import ARTIFACTS, MapPage, make_app

COUNTY = "629901"
LONG_AGO = date(2025, 3, 1)  # a day the overdue task was assigned on, due a week later


# -- the database -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def owner(demo_database):
    """The private database as its owner (the demo county, PEOPLE, a neighbouring county)."""
    with demo_database("tasks") as engine:
        add_people(engine)
        yield engine


@pytest.fixture(scope="module")
def app_db(cluster, owner):
    """The same database as the web app's role sees it."""
    engine = app_role(cluster, owner)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def app(app_db, tmp_path_factory):
    application = make_app(app_db)
    application.state.settings = Settings(data_dir=tmp_path_factory.mktemp("task-files"))
    return application


def person(db: Session, name: str) -> User:
    return db.scalar(select(User).where(User.name == name))


@pytest.fixture(scope="module")
def compounds(owner) -> dict[str, list[str]]:
    """Compound codes by the lead department of their ledger entry."""
    with owner.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.code, e.lead_department FROM compound c "
                "JOIN ledger_entry e ON e.compound_id = c.id WHERE c.county_code = :c "
                "ORDER BY c.code"
            ),
            {"c": COUNTY},
        ).all()
    found: dict[str, list[str]] = {}
    for code, lead in rows:
        found.setdefault(lead, []).append(code)
    return found


def assign(owner, code: str, department: str = "住建局", due: date | None = None, **kw) -> int:
    with Session(owner) as db:
        task = create_task(db, person(db, "办公室"), COUNTY, code, department, "补办竣工验收",
                           due or today() + timedelta(days=10), **kw)  # fmt: skip
        db.commit()
        return task.id


# -- the rules ---------------------------------------------------------------------------------


def test_office_assigns_department_answers_office_closes(owner, compounds):
    code = compounds["住建局"][0]
    task_id = assign(owner, code)
    with Session(owner) as db:
        task = db.get(Task, task_id)
        assert (task.status, task.version, task.created_by) == ("assigned", 1, "办公室")
        reply_to_task(db, person(db, "住建局张三"), task, "已组织联合验收", expected_version=1)
        db.commit()
        assert task.status == "in_progress" and task.version == 2
        moment = datetime(2026, 3, 1, 16, 30, tzinfo=UTC)  # 3月2日 00:30 in Beijing
        close_task(db, person(db, "办公室"), task, expected_version=2, at=moment)
        db.commit()
        assert task.status == "done" and task.done_on == date(2026, 3, 2)
        assert task.closed_by == "办公室"
        with pytest.raises(TaskRuleError, match="已办结"):
            reply_to_task(db, person(db, "住建局张三"), task, "补充", expected_version=3)
        reopen_task(db, person(db, "管理员"), task, expected_version=3)
        db.commit()
        assert task.status == "in_progress" and task.done_on is None
        [row] = list_tasks(db.connection(), COUNTY, compound=code)
        assert row["replies"] == 1 and row["label"] == "办理中"


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ("税务局李四", "reply"),  # another department
        ("查看员", "reply"),
        ("邻县编辑", "reply"),
        ("住建局张三", "close"),  # the department does not close its own task
        ("住建局张三", "create"),
        ("查看员", "create"),
        ("邻县编辑", "create"),
    ],
)
def test_who_may_not(owner, compounds, name, what):
    task_id = assign(owner, compounds["住建局"][1])
    with Session(owner) as db:
        user, task = person(db, name), db.get(Task, task_id)
        with pytest.raises(TaskRefused):
            if what == "reply":
                reply_to_task(db, user, task, "越权答复", expected_version=1)
            elif what == "close":
                close_task(db, user, task, expected_version=1)
            else:
                create_task(db, user, COUNTY, compounds["住建局"][1], "住建局", "x", today())
        db.rollback()
        assert db.get(Task, task_id).status == "assigned"


def test_the_office_may_answer_and_the_department_start(owner, compounds):
    task_id = assign(owner, compounds["住建局"][2])
    with Session(owner) as db:
        task = db.get(Task, task_id)
        start_task(db, person(db, "住建局张三"), task, expected_version=1)
        assert task.status == "in_progress"
        with pytest.raises(TaskRuleError, match="不是交办"):
            start_task(db, person(db, "住建局张三"), task, expected_version=2)
        reply_to_task(db, person(db, "办公室"), task, "办公室督办", expected_version=2)
        db.commit()


def test_what_a_new_task_needs(owner, compounds):
    code = compounds["税务局"][0]
    with Session(owner) as db:
        office = person(db, "办公室")
        departments = county_departments(db.connection(), COUNTY)
        assert {"住建局", "税务局", "自然资源局"} <= set(departments) and "未定" not in departments

        def make(**kw):
            values = {"compound_code": code, "department": "税务局", "action": "追缴税费",
                      "due_on": date(2026, 5, 1), "on": date(2026, 4, 30)} | kw  # fmt: skip
            return create_task(db, office, COUNTY, **values)

        for kw, words in [
            ({"department": " "}, "承办单位不能为空"),
            ({"department": "外星局"}, "不在本县单位中"),
            ({"action": "  "}, "交办事项不能为空"),
            ({"action": "字" * (LONG_TEXT_CHARS + 1)}, f"超过 {LONG_TEXT_CHARS} 字"),
            ({"due_on": date(2026, 4, 29)}, "早于今天"),
            ({"due_on": "明天"}, "限时办结日期"),
            ({"due_on": ""}, "请填写限时办结日期"),
        ]:
            with pytest.raises(TaskRuleError, match=words):
                make(**kw)
        with pytest.raises(TaskNotFound):
            make(compound_code="NO-SUCH")
        due_today = make(due_on="2026年4月30日", action="  追缴税费  ")  # due today: allowed
        assert due_today.action == "追缴税费" and due_today.due_on == date(2026, 4, 30)
        db.rollback()


def test_overdue_turns_at_beijings_midnight():
    due = date(2026, 3, 1)
    assert not is_overdue("assigned", due, on=due)  # due today is not late yet
    assert is_overdue("in_progress", due, on=date(2026, 3, 2))
    assert not is_overdue("done", due, on=date(2026, 3, 9))
    before = datetime(2026, 3, 1, 15, 59, tzinfo=UTC)
    after = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)
    assert not is_overdue("assigned", due, on=beijing_day(before))  # 23:59 in Beijing
    assert is_overdue("assigned", due, on=beijing_day(after))  # 00:00 the next day


def test_the_lists_count_overdue_on_the_day_given(owner, compounds):
    code = compounds["自然资源局"][0]
    due = LONG_AGO + timedelta(days=7)
    at = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
    task_id = assign(owner, code, "自然资源局", due, on=LONG_AGO, at=at)
    with owner.connect() as conn:
        [on_time] = list_tasks(conn, COUNTY, compound=code, on=due)
        assert not on_time["overdue"] and on_time["label"] == "交办"
        assert list_tasks(conn, COUNTY, compound=code, overdue=True, on=due) == []
        [late] = list_tasks(conn, COUNTY, compound=code, overdue=True, on=due + timedelta(days=1))
        assert late["overdue"] and late["days_late"] == 1 and late["label"] == "逾期"
        assert late["created_at"] == at
        rows = overdue_tasks(conn, COUNTY, due + timedelta(days=3))
        mine = next(r for r in rows if r["id"] == task_id)
        assert mine["compound_code"] == code and mine["days_late"] == 3
        assert mine["department"] == "自然资源局" and mine["due_on"] == due
        assert task_id not in {r["id"] for r in overdue_tasks(conn, COUNTY, due)}
        counts = {r["code"]: r for r in compound_task_counts(conn, COUNTY, due, only_overdue=True)}
        assert code not in counts
        counts = {r["code"]: r for r in compound_task_counts(conn, COUNTY, only_overdue=True)}
        assert counts[code]["overdue"] == 1 and counts[code]["open"] >= 1
        by_department = {r["department"]: r for r in department_task_counts(conn, COUNTY)}
        assert by_department["自然资源局"]["overdue"] >= 1
        # a list is sorted by due day, open first: the overdue lead
        listed = list_tasks(conn, COUNTY)
        assert listed[0]["overdue"] and listed[0]["due_on"] <= due


def test_a_change_on_an_old_version_is_refused(owner, compounds):
    task_id = assign(owner, compounds["住建局"][3])
    with Session(owner) as first, Session(owner) as second:
        mine, theirs = first.get(Task, task_id), second.get(Task, task_id)
        reply_to_task(first, person(first, "住建局张三"), mine, "已受理", expected_version=1)
        first.commit()
        with pytest.raises(TaskConflict, match="刷新"):  # read version 1, now 2
            close_task(second, person(second, "办公室"), theirs, expected_version=1)
        second.rollback()
        theirs = second.get(Task, task_id)
        assert theirs.version == 2
        # loaded at version 2 with no version given, changed underneath: refused at the flush
        first.execute(text("UPDATE task SET version = 3, status = 'in_progress' WHERE id = :i"),
                      {"i": task_id})  # fmt: skip
        first.commit()
        with pytest.raises(TaskConflict):
            close_task(second, person(second, "办公室"), theirs, expected_version=None)


# -- the API -----------------------------------------------------------------------------------


def client_of(app, name: str | None = None) -> tuple[TestClient, dict]:
    client = TestClient(app)
    headers = {"X-CSRF-Token": sign_in(client, name)} if name else {}
    return client, headers


def test_reading_needs_a_person_of_the_county(app, owner, compounds):
    task_id = assign(owner, compounds["住建局"][4])
    anonymous = TestClient(app)
    for url in ("/api/tasks", f"/api/tasks/{task_id}", "/api/tasks/overdue"):
        assert anonymous.get(url).status_code == 401, url
    assert anonymous.post("/api/tasks", json={}).status_code == 401
    page = anonymous.get("/tasks/mine?status=open", follow_redirects=False)
    assert page.status_code == 303
    assert parse_qs(urlparse(page.headers["location"]).query)["next"] == ["/tasks/mine?status=open"]
    viewer, _ = client_of(app, "查看员")
    listed = viewer.get("/api/tasks", params={"compound": compounds["住建局"][4]}).json()
    assert task_id in {t["id"] for t in listed["tasks"]} and listed["may_assign"] is False
    neighbour, _ = client_of(app, "邻县编辑")
    assert neighbour.get("/api/tasks", params={"county": COUNTY}).status_code == 403
    assert neighbour.get(f"/api/tasks/{task_id}").status_code == 403
    assert neighbour.get("/api/tasks/overdue", params={"county": COUNTY}).status_code == 403
    assert neighbour.get("/api/tasks").json()["tasks"] == []  # its own county has none
    assert neighbour.get(f"/tasks/{task_id}").status_code == 403


def test_the_api_round(app, owner, compounds):
    code = compounds["住建局"][5]
    office, oh = client_of(app, "办公室")
    new = {"compound": code, "department": "住建局", "action": "联合验收",
           "due_on": (today() + timedelta(days=5)).isoformat()}  # fmt: skip
    assert office.post("/api/tasks", json=new).status_code == 403  # no CSRF token
    created = office.post("/api/tasks", json=new, headers=oh)
    assert created.status_code == 201, created.text
    task = created.json()
    assert task["status"] == "assigned" and task["label"] == "交办" and task["replies"] == []
    assert task["may_close"] is True and task["compound_code"] == code
    url = f"/api/tasks/{task['id']}"

    other, other_h = client_of(app, "税务局李四")
    refused = other.post(f"{url}/reply", json={"version": 1, "text": "越权"}, headers=other_h)
    assert refused.status_code == 403 and "住建局" in refused.json()["detail"]
    viewer, vh = client_of(app, "查看员")
    assert viewer.post("/api/tasks", json=new, headers=vh).status_code == 403
    answer = {"version": 1, "text": "x"}
    assert viewer.post(f"{url}/reply", json=answer, headers=vh).status_code == 403
    neighbour, nh = client_of(app, "邻县编辑")
    elsewhere = new | {"county": COUNTY}
    assert neighbour.post("/api/tasks", json=elsewhere, headers=nh).status_code == 403
    assert neighbour.post(f"{url}/close", json={"version": 1}, headers=nh).status_code == 403

    department, dh = client_of(app, "住建局张三")
    assert department.post("/api/tasks", json=new, headers=dh).status_code == 403
    answer = {"version": 1, "text": "已组织验收"}
    answered = department.post(f"{url}/reply", json=answer, headers=dh)
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "in_progress" and answered.json()["version"] == 2
    assert answered.json()["replies"][0]["department"] == "住建局"
    assert department.post(f"{url}/close", json={"version": 2}, headers=dh).status_code == 403
    stale = office.post(f"{url}/close", json={"version": 1}, headers=oh)
    assert stale.status_code == 409
    current = stale.json()["current"]
    assert current["version"] == 2 and current["status"] == "in_progress"
    closed = office.post(f"{url}/close", json={"version": 2}, headers=oh)
    assert closed.status_code == 200 and closed.json()["status"] == "done"
    assert closed.json()["done_on"] == today().isoformat()
    again = office.post(f"{url}/close", json={"version": 3}, headers=oh)
    assert again.status_code == 422 and "已办结" in again.json()["detail"]
    past = office.post("/api/tasks", json=new | {"due_on": "2020-01-01"}, headers=oh)
    assert past.status_code == 422 and "早于今天" in past.json()["detail"]
    assert office.get("/api/tasks/999999").status_code == 404
    mine = department.get("/api/tasks", params={"department": "住建局", "status": "done"}).json()
    assert task["id"] in {t["id"] for t in mine["tasks"]}
    assert department.get("/api/tasks", params={"status": "nonsense"}).status_code == 422


def test_writes_are_traced_with_their_person(app, owner, compounds):
    office, oh = client_of(app, "办公室")
    new = {"compound": compounds["税务局"][1], "department": "税务局", "action": "追缴契税",
           "due_on": today().isoformat()}  # fmt: skip
    task_id = office.post("/api/tasks", json=new, headers=oh).json()["id"]
    department, dh = client_of(app, "税务局李四")
    department.post(f"/api/tasks/{task_id}/reply", json={"version": 1, "text": "已发催缴通知"},
                    headers=dh)  # fmt: skip
    with owner.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT object_kind, action, actor, department FROM audit_log "
                "WHERE (object_kind = 'task' AND object_id = :i) OR (object_kind = 'task_reply' "
                "AND after->>'task_id' = :i) ORDER BY id"
            ),
            {"i": str(task_id)},
        ).all()
    traced = [tuple(r) for r in rows]
    assert ("task", "insert", "办公室", None) in traced
    assert ("task_reply", "insert", "税务局李四", "税务局") in traced
    assert ("task", "update", "税务局李四", "税务局") in traced  # assigned → in_progress


def test_the_overdue_compounds_for_the_map(app, owner, compounds):
    code = compounds["自然资源局"][1]
    assign(owner, code, "自然资源局", LONG_AGO + timedelta(days=7), on=LONG_AGO,
           at=datetime(2025, 3, 1, 2, 0, tzinfo=UTC))  # fmt: skip
    viewer, _ = client_of(app, "查看员")
    body = viewer.get("/api/tasks/overdue").json()
    assert code in body["codes"] and body["on"] == today().isoformat()
    with owner.connect() as conn:
        expected = {r["compound_code"] for r in overdue_tasks(conn, COUNTY)}
    assert set(body["codes"]) == expected
    row = next(r for r in body["compounds"] if r["code"] == code)
    assert row["overdue"] >= 1
    # the map narrows to them with the compound filter's `code`
    shown = viewer.get("/api/compounds/summary", params={"code": body["codes"]}).json()
    assert shown["compounds"] == len(expected)


def test_pages_the_office_and_the_department_use(app, owner, compounds):
    code = compounds["住建局"][6]
    office, oh = client_of(app, "办公室")
    form = office.get(f"/tasks/new?compound={code}")
    assert form.status_code == 200 and 'name="csrf_token"' in form.text
    assert '<option value="住建局" selected>' in form.text  # the ledger's lead department
    due = (today() + timedelta(days=3)).isoformat()
    fields = {"compound": code, "department": "住建局", "action": "<b>补办</b>消防验收",
              "due_on": due, "csrf_token": oh["X-CSRF-Token"]}  # fmt: skip
    assert office.post("/tasks/new", data=fields | {"csrf_token": "x"}).status_code == 403
    wrong = office.post("/tasks/new", data=fields | {"due_on": "2020-01-01"})
    assert wrong.status_code == 422 and "早于今天" in wrong.text and "补办" in wrong.text
    made = office.post("/tasks/new", data=fields, follow_redirects=False)
    assert made.status_code == 303, made.text
    page_url = made.headers["location"].split("?")[0]
    page = office.get(made.headers["location"])
    assert "已交办" in page.text and "&lt;b&gt;补办&lt;/b&gt;" in page.text
    assert "<b>补办" not in page.text
    assert 'action="' + page_url + '/close"' in page.text and "<script>" not in page.text

    department, dh = client_of(app, "住建局张三")
    assert department.get("/tasks/new").status_code == 403
    mine = department.get("/tasks/mine").text
    assert "补办" in mine and 'name="department"' not in mine  # its own department only
    task_page = department.get(page_url).text
    assert "提交答复" in task_page and "/close" not in task_page
    version = department.get("/api/tasks/" + page_url.rsplit("/", 1)[1]).json()["version"]
    reply = {"text": "已约消防部门现场验收", "version": version, "csrf_token": dh["X-CSRF-Token"]}
    answered = department.post(page_url + "/reply", data=reply)
    assert answered.status_code == 200 and "已答复" in answered.text and "办理中" in answered.text
    stale = department.post(page_url + "/reply", data=reply)  # the old version again
    assert stale.status_code == 409 and "刷新" in stale.text
    other, th = client_of(app, "税务局李四")
    refused = other.post(page_url + "/reply", data=reply | {"csrf_token": th["X-CSRF-Token"]})
    assert refused.status_code == 403
    version = office.get("/api/tasks/" + page_url.rsplit("/", 1)[1]).json()["version"]
    closed = office.post(page_url + "/close", data={"version": version,
                                                    "csrf_token": oh["X-CSRF-Token"]})  # fmt: skip
    assert closed.status_code == 200 and "已办结" in closed.text and "重新打开" in closed.text


# -- in the browser ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(app):
    running = Server(app)
    yield running
    running.stop()


def signed_in_page(browser, server, name: str) -> MapPage:
    page = MapPage(browser, server.base)
    page.page.goto(server.base + "/signin")
    page.page.fill("input[name=name]", name)
    page.page.fill("input[name=password]", PASSWORD)
    page.page.click("button[type=submit]")
    page.page.wait_for_url(server.base + "/")
    return page


@pytest.mark.slow
def test_the_round_in_the_pages(browser, server, compounds):
    code = compounds["住建局"][7]
    office = signed_in_page(browser, server, "办公室")
    department = signed_in_page(browser, server, "住建局张三")
    try:
        office.page.goto(f"{server.base}/tasks/new?compound={code}")
        office.page.select_option("select[name=department]", "住建局")
        office.page.fill("textarea[name=action]", "补办规划核实，月底前完成")
        office.page.fill("input[name=due_on]", (today() + timedelta(days=7)).isoformat())
        office.page.click("button:has-text('交办')")
        office.page.wait_for_selector(".tm-flash.tm-ok")
        task_url = office.page.url.split("?")[0]
        assert "已交办" in office.page.inner_text(".tm-flash")
        assert office.page.inner_text(".tm-task-state") == "交办"

        department.page.goto(server.base + "/tasks/mine")
        row = department.page.locator("tr", has_text="补办规划核实")
        assert row.count() == 1 and "交办" in row.inner_text()
        row.locator("a").last.click()
        department.page.wait_for_url(task_url)
        department.page.fill("textarea[name=text]", "已联系规划部门，下周现场核实")
        department.page.click("button:has-text('提交答复')")
        department.page.wait_for_selector(".tm-flash.tm-ok")
        assert department.page.inner_text(".tm-task-state") == "办理中"
        assert "下周现场核实" in department.page.inner_text(".tm-task-replies")
        assert department.page.locator("button:has-text('办结')").count() == 0
        # a paper goes with the answer (the compound files API, by task_id)
        department.page.wait_for_selector("form.tm-task-upload:not([hidden])")
        department.page.set_input_files("form.tm-task-upload input[type=file]", {
            "name": "核实意见.pdf", "mimeType": "application/pdf",
            "buffer": b"%PDF-1.4\n%%EOF\n"})  # fmt: skip
        department.page.fill("form.tm-task-upload input[name=title]", "规划核实意见")
        department.page.click("button:has-text('上传文件')")
        department.page.wait_for_selector(".tm-task-files li a")
        assert department.page.inner_text(".tm-task-files li a") == "规划核实意见（核实意见.pdf）"

        office.page.goto(task_url)
        office.page.click("button:has-text('办结')")
        office.page.wait_for_selector(".tm-flash.tm-ok")
        assert office.page.inner_text(".tm-task-state") == "已办结"
        assert "下周现场核实" in office.page.inner_text(".tm-task-replies")
        office.page.wait_for_selector(".tm-task-files:not([hidden]) li a")
        assert office.page.locator("form.tm-task-upload").is_hidden()  # done: nothing to attach
        department.page.goto(server.base + "/tasks/mine")
        assert "已办结" in department.page.locator("tr", has_text="补办规划核实").inner_text()
        office.page.goto(task_url)
        office.page.screenshot(path=str(ARTIFACTS / "tasks_task.png"), full_page=True)
        assert not office.errors and not department.errors
    finally:
        office.page.close()
        department.page.close()


@pytest.mark.slow
def test_an_overdue_task_in_the_list_on_the_card_and_the_filter(
    browser,
    server,
    owner,
    app,
    compounds,
):
    code = compounds["住建局"][8]
    late_id = assign(owner, code, "住建局", LONG_AGO + timedelta(days=7), on=LONG_AGO,
                     at=datetime(2025, 3, 1, 2, 0, tzinfo=UTC))  # fmt: skip
    with owner.connect() as conn:
        late_codes = {r["compound_code"] for r in overdue_tasks(conn, COUNTY)}
        late_here = [r for r in overdue_tasks(conn, COUNTY) if r["compound_code"] == code]
    assert code in late_codes
    page = signed_in_page(browser, server, "住建局张三")
    try:
        page.page.goto(server.base + "/tasks/mine")
        first = page.page.locator("tbody tr").first
        assert "逾期" in first.inner_text() and first.get_attribute("class") == "tm-overdue"
        page.page.screenshot(path=str(ARTIFACTS / "tasks_mine.png"), full_page=True)
        row = page.page.locator(f"tr[data-task='{late_id}']")
        assert row.get_attribute("class") == "tm-overdue" and "逾期" in row.inner_text()

        page.open()
        page.js(f"titlemap.app.openCard({code!r}) && 1")
        page.page.wait_for_selector(".tm-task-section:not([hidden]) h4")
        section = page.page.locator(".tm-task-section")
        assert section.locator(".tm-task-late").inner_text() == f"逾期 {len(late_here)}"
        link = section.locator(f"a[href='/tasks/{late_id}']")
        assert link.inner_text() == "补办竣工验收"
        assert section.locator(".tm-task-new").count() == 0  # the department assigns nothing
        section.scroll_into_view_if_needed()
        section.screenshot(path=str(ARTIFACTS / "tasks_card_section.png"))
        page.page.click(".tm-close")

        every = len(page.drawn())
        page.page.locator(".tm-check", has_text="逾期任务").click()  # 只看有逾期任务的小区
        page.page.wait_for_timeout(50)
        page.wait()
        page.until("titlemap.app.filters.overdue_tasks === true")
        page.wait()
        assert set(page.drawn()) == late_codes and len(late_codes) < every
        assert f"符合条件的小区 {len(late_codes)} 个" in page.page.inner_text(".tm-summary")
        page.screenshot("tasks_filter")
        page.page.click("text=清除筛选")
        page.wait()
        assert len(page.drawn()) == every
        page.check_offline()
    finally:
        page.page.close()


@pytest.mark.slow
def test_anonymous_readers_see_no_tasks_on_the_map(browser, server, compounds):
    page = MapPage(browser, server.base)
    try:
        page.open()
        page.js(f"titlemap.app.openCard({compounds['住建局'][8]!r}) && 1")
        page.page.wait_for_selector(".tm-card:not([hidden]) .tm-card-name")
        page.wait()
        assert page.page.locator(".tm-task-section:not([hidden])").count() == 0
        assert page.page.locator(".tm-check", has_text="逾期任务").count() == 0
        assert not any("/api/tasks" in url for url in page.requests)
        page.check_offline()
    finally:
        page.page.close()
