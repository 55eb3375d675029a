"""The trace made readable (/history, /history.xlsx, /api/history, geo.query.audit): changes
made by different people, through the API and through geo functions, found again by person,
department, compound, Beijing day and kind; the page escapes what it shows and admits only
the county's signed-in people; the spreadsheet holds exactly the filtered rows, and taking it
is itself traced."""

from datetime import UTC, date, datetime, timedelta
from io import BytesIO
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from api.app import create_app
from geo.core.dates import BEIJING, now, today
from geo.core.model import Compound
from geo.core.settings import Settings
from geo.core.work import Task, TaskReply
from geo.db.audit import Actor, act_as
from geo.ledger.rules import find_entry, update_entry
from geo.query.audit import EMPTY, PAGE_SIZE, XLSX_COLUMNS, audit_people, audit_rows
from tests.conftest import OTHER_COUNTY, add_people, app_role, sign_in

COUNTY = "629901"
SCRIPT_PLAN = "<script>alert('留痕')</script>证缴分离"
OLD_DAY = date(2020, 1, 15)
LATE_DAY = date(2025, 3, 10)  # a row at 23:30 Beijing: still this day, though 15:30 UTC
BULK = 55  # rows of one actor: more than a page


def _audit_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one()


def _entry_id(engine, code: str) -> tuple[int, int]:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT e.id, c.id AS compound_id FROM ledger_entry e "
                 "JOIN compound c ON c.id = e.compound_id WHERE c.code = :code"),
            {"code": code},
        ).one()  # fmt: skip
    return row.id, row.compound_id


def _patch(client: TestClient, csrf: str, code: str, changes: dict) -> None:
    entry = client.get(f"/api/ledger/{code}").json()
    response = client.patch(f"/api/ledger/{code}", json={"version": entry["version"],
                            "changes": changes}, headers={"X-CSRF-Token": csrf})  # fmt: skip
    assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def world(demo_database, cluster, app_engine, demo):
    """A private demo county with PEOPLE, edited by several of them; yields what was done."""
    with demo_database("history") as owner:
        add_people(owner)
        app_db = app_role(cluster, owner)
        app = create_app(Settings(), app_db)

        ledger = demo.ledger.sort_values("compound_code")
        open_ = ledger[ledger.status != "closed"]
        housing = open_[open_.lead_department == "住建局"].compound_code.iloc[0]
        tax = open_[open_.lead_department == "税务局"].compound_code.iloc[0]
        office = open_[open_.lead_department == "自然资源局"].compound_code.iloc[0]

        # through the API, as three people
        zhang = TestClient(app)
        _patch(zhang, sign_in(zhang, "住建局张三"), housing, {"plan": SCRIPT_PLAN})
        li = TestClient(app)
        _patch(li, sign_in(li, "税务局李四"), tax, {"next_step": "督促补缴契税"})
        desk = TestClient(app)
        _patch(desk, sign_in(desk, "办公室"), office, {"supervising_leader": "王副县长"})

        # through geo functions, as the command line: an edit, a task and its reply
        with Session(owner) as session:
            act_as(session, Actor("命令行 测试员"))
            entry = find_entry(session, COUNTY, office)
            update_entry(session, entry, {"task_force_lead": "赵专班"}, "命令行 测试员")
            compound_id = session.scalar(select(Compound.id).where(Compound.code == office))
            task = Task(county_code=COUNTY, compound_id=compound_id, department="自然资源局",
                        action="核实规划条件", due_on=today() + timedelta(days=7),
                        created_by="命令行 测试员", created_at=now())  # fmt: skip
            session.add(task)
            session.flush()
            session.add(TaskReply(county_code=COUNTY, task_id=task.id, at=now(),
                                  user_name="命令行 测试员", text="已核实"))  # fmt: skip
            session.commit()

        # rows of chosen moments, as the owner may insert them (the log is append-only)
        housing_ids, tax_ids = _entry_id(owner, housing), _entry_id(owner, tax)
        late = datetime(LATE_DAY.year, LATE_DAY.month, LATE_DAY.day, 23, 30, tzinfo=BEIJING)
        moments = [
            (datetime(2020, 1, 15, 10, tzinfo=BEIJING), "住建局张三", "住建局", "旧方案",
             housing_ids),
            (late, "住建局张三", "住建局", "深夜的方案", housing_ids),
            (late + timedelta(hours=1), "住建局张三", "住建局", "次日凌晨的方案", housing_ids),
        ] + [
            (datetime(2024, 6, 1, tzinfo=UTC) + timedelta(minutes=k), "批量测试员", None,
             f"方案{k}", tax_ids)
            for k in range(BULK)
        ]  # fmt: skip
        with owner.begin() as conn:
            for at, actor, department, plan, (entry_id, compound_id) in moments:
                conn.execute(
                    text("INSERT INTO audit_log (at, actor, department, address, county_code, "
                         "object_kind, object_id, compound_id, action, before, after) VALUES "
                         "(:at, :actor, :dep, '10.0.0.9', :county, 'ledger_entry', :id, :cid, "
                         "'update', CAST(:before AS jsonb), CAST(:after AS jsonb))"),
                    {"at": at, "actor": actor, "dep": department, "county": COUNTY,
                     "id": str(entry_id), "cid": compound_id, "before": '{"plan": null}',
                     "after": f'{{"plan": "{plan}"}}'},
                )  # fmt: skip
            conn.execute(
                text("INSERT INTO audit_log (at, actor, county_code, object_kind, object_id, "
                     "action, after) VALUES ('2021-05-05 12:00+08', '=SUM(1,2)', :c, 'county', "
                     ":id, 'update', CAST(:after AS jsonb))"),
                {"c": COUNTY, "id": COUNTY, "after": '{"name": "=1+1"}'},
            )  # fmt: skip
        yield {
            "owner": owner, "app": app, "housing": housing, "tax": tax, "office": office,
        }  # fmt: skip
        app_db.dispose()


@pytest.fixture
def conn(world):
    with world["owner"].connect() as connection:
        yield connection


def _rows(conn, **filters) -> list[dict]:
    page = audit_rows(conn, COUNTY, limit=1000, **filters)
    assert page.total == len(page.rows)
    return page.rows


# -- geo.query.audit ------------------------------------------------------------------------------


def test_rows_by_person_read_as_words(conn, world):
    rows = _rows(conn, actor="住建局张三")
    assert rows and {r["actor"] for r in rows} == {"住建局张三"}
    edit = next(r for r in rows if r["compound_code"] == world["housing"] and r["address"]
                == "testclient")  # fmt: skip
    assert edit["action"] == "update" and edit["action_label"] == "修改"
    assert edit["kind_label"] == "台账" and edit["who"] == "住建局张三（住建局）"
    assert edit["compound"].startswith(world["housing"] + " ")
    assert len(edit["changes"]) == 1
    label, _, change = edit["changes"][0].partition("：")
    assert label == "化解方案" and change.endswith(" → " + SCRIPT_PLAN)
    assert "年" in edit["time"] and edit["at"].endswith("+08:00")
    sign_ins = [r for r in rows if r["action"] == "sign_in"]
    assert sign_ins and sign_ins[0]["action_label"] == "登录"
    assert sign_ins[0]["object"] == "用户 住建局张三"


def test_newest_first(conn):
    rows = _rows(conn)
    moments = [r["at"] for r in rows]
    assert moments == sorted(moments, reverse=True)


def test_by_department(conn):
    rows = _rows(conn, department="税务局")
    assert rows and {r["department"] for r in rows} == {"税务局"}
    assert any(r["changes"] == ["下一步：（空） → 督促补缴契税"] for r in rows), rows


def test_by_compound_code_and_name(conn, world):
    rows = _rows(conn, compound=world["housing"])
    assert {r["compound_code"] for r in rows} == {world["housing"]}
    assert len(rows) == 4  # the API's edit and the three inserted rows
    name = rows[0]["compound_name"]
    by_name = _rows(conn, compound=name[1:])  # part of the name
    assert world["housing"] in {r["compound_code"] for r in by_name}
    assert _rows(conn, compound="%") == []  # a LIKE wildcard is a character, not "anything"
    assert _rows(conn, compound="_") == []


def test_a_reply_belongs_to_its_tasks_compound(conn, world):
    rows = _rows(conn, compound=world["office"])
    kinds = {r["kind"] for r in rows}
    assert {"ledger_entry", "task", "task_reply"} <= kinds
    reply = next(r for r in rows if r["kind"] == "task_reply")
    assert reply["kind_label"] == "任务答复" and reply["compound_code"] == world["office"]
    assert "text：已核实" in reply["changes"]
    task = next(r for r in rows if r["kind"] == "task")
    assert "承办单位：自然资源局" in task["changes"]  # the column's own Chinese comment
    assert "状态：交办" in task["changes"]  # the map's label, the code as its word


def test_by_kind(conn):
    rows = _rows(conn, kind="task")
    assert rows and {r["kind"] for r in rows} == {"task"}
    assert {r["actor"] for r in rows} == {"命令行 测试员"}
    assert _rows(conn, kind="bulletin") == []


def test_by_beijing_days_inclusive(conn):
    rows = _rows(conn, since=LATE_DAY, until=LATE_DAY)
    assert [r["changes"] for r in rows] == [["化解方案：（空） → 深夜的方案"]]
    assert rows[0]["time"] == "2025年3月10日 23:30:00"
    next_day = _rows(conn, since=LATE_DAY + timedelta(days=1), until=date(2025, 3, 11))
    assert [r["changes"] for r in next_day] == [["化解方案：（空） → 次日凌晨的方案"]]
    old = _rows(conn, until=date(2020, 12, 31))
    assert [r["changes"][0] for r in old] == ["化解方案：（空） → 旧方案"]
    recent = _rows(conn, since=today())
    assert recent and all(r["at"] >= today().isoformat() for r in recent)
    assert not any("旧方案" in "".join(r["changes"]) for r in recent)


def test_filters_combine_and_errors_are_one_line(conn, world):
    rows = _rows(conn, actor="张三", kind="ledger_entry", since=OLD_DAY, until=OLD_DAY)
    assert len(rows) == 1
    with pytest.raises(Exception, match="unknown kind"):
        audit_rows(conn, COUNTY, kind="nothing")
    with pytest.raises(Exception, match="ends before it starts"):
        audit_rows(conn, COUNTY, since=date(2026, 2, 1), until=date(2026, 1, 1))


def test_paging(conn):
    first = audit_rows(conn, COUNTY, actor="批量测试员", limit=PAGE_SIZE)
    second = audit_rows(conn, COUNTY, actor="批量测试员", limit=PAGE_SIZE, offset=PAGE_SIZE)
    assert first.total == second.total == BULK
    assert len(first.rows) == PAGE_SIZE and len(second.rows) == BULK - PAGE_SIZE
    assert first.rows[0]["changes"] == [f"化解方案：{EMPTY} → 方案{BULK - 1}"]
    assert second.rows[-1]["changes"] == [f"化解方案：{EMPTY} → 方案0"]


# -- the page, the JSON, the spreadsheet ----------------------------------------------------------


def _client(world, name: str | None = None) -> TestClient:
    client = TestClient(world["app"])
    if name:
        sign_in(client, name)
    return client


def test_the_page_escapes_what_it_shows(world):
    client = _client(world, "查看员")
    before = _audit_count(world["owner"])
    response = client.get("/history", params={"compound": world["housing"]})
    assert response.status_code == 200, response.text
    page = response.text
    assert "&lt;script&gt;alert(&#39;留痕&#39;)&lt;/script&gt;证缴分离" in page
    assert "<script" not in page
    assert "化解方案" in page and "共 4 条" in page
    assert "住建局张三" in page and world["housing"] in page
    assert _audit_count(world["owner"]) == before  # reading changes nothing


def test_the_page_filters_pages_and_links_the_export(world):
    client = _client(world, "管理员")
    first = client.get("/history", params={"person": "批量测试员"})
    assert first.status_code == 200
    assert first.text.count("方案") >= PAGE_SIZE and "方案4<" not in first.text
    assert f"共 {BULK} 条" in first.text and "第 1 / 2 页" in first.text
    assert 'href="/history.xlsx?person=%E6' in first.text  # the export keeps the filters
    second = client.get("/history", params={"person": "批量测试员", "page": 2})
    assert "方案4<" in second.text and "方案54<" not in second.text
    assert "上一页" in second.text and "下一页" not in second.text
    options = client.get("/history").text
    assert '<option value="住建局">住建局</option>' in options  # departments of the log
    assert '<option value="task">任务</option>' in options


def test_a_wrong_date_is_one_line_on_the_page(world):
    response = _client(world, "查看员").get("/history", params={"from": "昨天"})
    assert response.status_code == 422
    assert "不是日期" in response.text


def test_anonymous_goes_to_sign_in_and_comes_back(world):
    client = _client(world)
    for path in ("/history?person=x", "/history.xlsx"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        target = urlsplit(response.headers["location"])
        assert target.path == "/signin"
        assert parse_qs(target.query)["next"] == [path]
    assert client.get("/api/history").status_code == 401


def test_another_countys_user_is_refused(world):
    client = _client(world, "邻县编辑")
    page = client.get("/history", params={"county": COUNTY})
    assert page.status_code == 403 and "无权查看" in page.text
    assert "住建局张三" not in page.text.split("</header>")[1]
    assert client.get("/history.xlsx", params={"county": COUNTY}).status_code == 403
    assert client.get("/api/history", params={"county": COUNTY}).status_code == 403
    own = client.get("/api/history")  # their own county: no edits of ours there
    assert own.status_code == 200 and own.json()["county"] == OTHER_COUNTY
    assert all(r["actor"] != "住建局张三" for r in own.json()["rows"])


def test_the_json_gives_the_same_rows(world, conn):
    client = _client(world, "查看员")
    response = client.get("/api/history", params={"department": "住建局", "from": "2025-03-10",
                                                   "to": "2025年3月11日"})  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    expected = audit_rows(conn, COUNTY, department="住建局", since=LATE_DAY,
                          until=date(2025, 3, 11))  # fmt: skip
    assert body["total"] == 2 and body["rows"] == expected.rows
    assert body["filters"] == {"department": "住建局", "since": "2025-03-10",
                               "until": "2025-03-11"}  # fmt: skip
    assert client.get("/api/history", params={"kind": "nothing"}).status_code == 422


def test_the_export_holds_exactly_the_filtered_rows_and_is_traced(world, conn):
    client = _client(world, "住建局张三")
    response = client.get("/history.xlsx", params={"person": "住建局张三", "kind": "ledger_entry"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(BytesIO(response.content)).active
    values = list(sheet.iter_rows(values_only=True))
    assert "629901" in values[0][0] and "留痕记录" in values[0][0]
    assert "人员：住建局张三" in values[1][0] and "对象：台账" in values[1][0]
    assert "导出人：住建局张三" in values[1][0]
    assert list(values[2]) == [name for name, _ in XLSX_COLUMNS]
    assert sheet.freeze_panes == "A4"
    assert sheet.column_dimensions["I"].width == XLSX_COLUMNS[-1][1]
    expected = audit_rows(conn, COUNTY, actor="住建局张三", kind="ledger_entry", limit=1000)
    data = values[3:]
    assert len(data) == expected.total == 4
    assert [row[1] for row in data] == [r["time"] for r in expected.rows]
    assert {row[2] for row in data} == {"住建局张三"}
    assert any(row[8] and SCRIPT_PLAN in row[8] for row in data)
    assert f"共 {len(data)} 条" in values[1][0]

    traced = audit_rows(conn, COUNTY, kind="audit_log", limit=1)
    assert traced.total >= 1
    export = traced.rows[0]
    assert export["action"] == "export" and export["action_label"] == "导出"
    assert export["actor"] == "住建局张三" and export["department"] == "住建局"
    assert export["address"] == "testclient"
    assert "条数：4" in export["changes"]
    assert any(line.startswith("筛选条件：人员：住建局张三") for line in export["changes"])


def test_the_export_says_when_it_was_cut(world, monkeypatch):
    monkeypatch.setattr("api.routers.history.EXPORT_CAP", 10)
    client = _client(world, "查看员")
    response = client.get("/history.xlsx", params={"person": "批量测试员"})
    values = list(load_workbook(BytesIO(response.content)).active.iter_rows(values_only=True))
    assert "符合条件的共 55 条，仅导出最新的 10 条" in values[1][0]
    assert len(values) == 3 + 10
    assert values[3][8] == f"化解方案：{EMPTY} → 方案{BULK - 1}"


def test_the_export_writes_text_never_a_formula(world):
    client = _client(world, "查看员")
    response = client.get("/history.xlsx", params={"person": "=SUM"})
    sheet = load_workbook(BytesIO(response.content)).active
    assert sheet["C4"].value == "=SUM(1,2)" and sheet["C4"].data_type == "s"
    assert sheet["I4"].value == "name：=1+1"
    assert sheet["F4"].value == "县设置 629901"


def test_the_departments_offered_follow_the_log(world, conn):
    _, departments = audit_people(conn, COUNTY)
    assert {"住建局", "税务局"} <= set(departments) and "信访局" not in departments
    with world["owner"].begin() as owner:
        owner.execute(text("INSERT INTO audit_log (actor, department, county_code, object_kind, "
                           "action) VALUES ('信访员', '信访局', :c, 'task', 'insert')"),
                      {"c": COUNTY})  # fmt: skip
    people, departments = audit_people(conn, COUNTY)  # the memo reads the new rows
    assert "信访局" in departments and "信访员" in people
    assert {"住建局", "税务局"} <= set(departments)
