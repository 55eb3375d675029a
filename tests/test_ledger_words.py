"""A county's ledger in its own words: headers read by meaning, blockers and statuses in the
county's words mapped and kept, signature and note lines left out, the 合计 row checked, the
county's closing rule (issue 14).

The county is not the demo: a database of its own with a fictional county (西河县) and its
compounds, and a workbook written the way its office keeps it — a title row, a 截至日期 line,
a two-row merged header with 已办首次登记套数 / 已办转移登记套数 under 登记进展, its own words,
closed rows below the all-transferred rule, a 合计 row one column off, a 注： line and the
signature line (填表单位：… 填表日期：…) — built here with openpyxl, never by the demo generator.
"""

from pathlib import Path

import openpyxl
import pytest
from openpyxl.styles import Alignment, Font
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo.checks.run import run_parcel_checks
from geo.db.engine import make_engine
from geo.io.ledger_sheet import (
    LedgerSheetError,
    import_ledger,
    parse_blockers,
    parse_columns,
    parse_status,
    read_sheet,
)
from geo.ledger.rules import LedgerRuleError, find_entry, update_entry
from geo.ledger.stats import rates
from geo.query.compounds import compound_card
from tests.conftest import run_cli
from tests.test_ledger_sheet import fingerprint  # row counts and digests: unchanged or not

COUNTY = "629907"
COUNTY_NAME = "西河县"

# (name, code or None, task, first, done, status, blockers) as the office typed them
ROWS = [
    ("西河花园", "XH-001", "100", 40, 10, "正在办理", "未竣工验收"),
    ("金城小区", None, 80, "80套", 30, "正在办理", "消防验收未通过、规划手续不全"),
    ("河畔人家", "XH-003", 60, 60, 60, "已化解", "无"),
    ("滨河苑", "XH-004", 50, 50, 20, "已化解", "开发商跑路"),  # closed, 20 of 50 transferred
    ("东方明珠", "XH-005", 30, 10, 0, "正在办理", "小区门口有棵树"),
    ("幸福家园", None, 40, 40, 35, "基本完成", "规划手续不全；开发商跑路"),  # a word nobody mapped
    ("阳光小区", "XH-007", 70, 20, 0, "停滞", "未竣工验收"),
    ("南苑新村", "XH-008", 25, 25, 0, "已化解", "消防验收未通过"),  # closed, none transferred
    ("北关小区", "XH-009", 90, 0, None, "未启动", None),
]
CODES = {name: f"XH-{k:03d}" for k, (name, *_) in enumerate(ROWS, start=1)}
TASK, FIRST, DONE = 545, 325, 155  # the rows' sums (by hand)
TOP = ["序号", "小区名称", "项目编号", "所在乡镇", "问题房屋套数", "登记进展", None, "化解进度",
       "存在问题", "牵头单位", "备注"]  # fmt: skip
SUB = {6: "已办首次登记套数", 7: "已办转移登记套数"}  # 1-based columns under 登记进展
SIGNATURE = "填表单位：西河县住房和城乡建设局（盖章）　　填表人：王五　　填表日期：2026年11月30日"
NOTE = "注：1.“已化解”指经县化解办认定销号；2.套数以不动产登记系统为准。"


# -- the county and its workbook -------------------------------------------------------------------


@pytest.fixture(scope="module")
def db(head_database):
    """A database with 西河县 and its nine compounds: no demo anywhere."""
    engine = make_engine(head_database("ledger_words_tests"))
    with engine.begin() as conn:
        conn.execute(
            text("""
                INSERT INTO county (code, name, province, gk_epsg, target_rate,
                                    overall_rate_basis, geom)
                VALUES (:c, :n, '甘肃省', 4544, 0.9, 'task',
                        ST_Multi(ST_MakeEnvelope(103.9, 35.8, 104.1, 35.9, 4490)))
            """),
            {"c": COUNTY, "n": COUNTY_NAME},
        )
        for k, name in enumerate(CODES, start=0):
            x = 103.95 + 0.004 * k
            conn.execute(
                text("""
                    INSERT INTO compound (county_code, code, name, units_sold, geom)
                    VALUES (:c, :code, :name, 200,
                            ST_Multi(ST_MakeEnvelope(:x, 35.85, :x + 0.002, 35.852, 4490)))
                """),
                {"c": COUNTY, "code": CODES[name], "name": name, "x": x},
            )
    yield engine
    engine.dispose()


@pytest.fixture
def fresh(db):
    """西河县 with an empty ledger, nothing remembered, the all-transferred closing rule."""
    with db.begin() as conn:
        conn.execute(text("DELETE FROM ledger_event; DELETE FROM ledger_entry"))
        conn.execute(
            text("UPDATE county SET ledger_columns = '{}', closing_rule = 'all_transferred' "
                 "WHERE code = :c"),
            {"c": COUNTY},
        )  # fmt: skip
    return db


def county_workbook(path: Path, rows=ROWS, extra=(), transfer_header="已办转移登记套数") -> dict:
    """The office's workbook; returns the Excel row of each data row, the 合计 row, the note
    and the signature line."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "化解台账"
    last = openpyxl.utils.get_column_letter(len(TOP))
    sheet.append([f"{COUNTY_NAME}“登记难”问题化解台账"])
    sheet.merge_cells(f"A1:{last}1")
    sheet["A1"].font = Font(bold=True, size=16)
    sheet.append(["截至日期：2026年11月30日"])
    sheet.merge_cells(f"A2:{last}2")
    sheet.append(TOP)
    sub = SUB | {7: transfer_header}
    sheet.append([sub.get(k) for k in range(1, len(TOP) + 1)])
    for k in range(1, len(TOP) + 1):
        if k not in sub:
            letter = openpyxl.utils.get_column_letter(k)
            sheet.merge_cells(f"{letter}3:{letter}4")
    sheet.merge_cells("F3:G3")
    for cell in sheet[3] + sheet[4]:
        cell.alignment = Alignment(horizontal="center", wrap_text=True)
    placed: dict = {"rows": {}, "extra": []}
    for serial, (name, code, task, first, done, status, blockers) in enumerate(
        [*rows, *extra], start=1
    ):
        sheet.append([serial, name, code, "城关镇", task, first, done, status, blockers,
                      "住建局", "群众反映强烈" if serial % 4 == 0 else None])  # fmt: skip
        if serial > len(rows):
            placed["extra"].append(sheet.max_row)
        else:
            placed["rows"][name] = sheet.max_row
    sheet.append(["合计", None, None, None, TASK, FIRST + 2, DONE])  # 首次登记 off by 2
    sheet.merge_cells(f"A{sheet.max_row}:D{sheet.max_row}")
    placed["total"] = sheet.max_row
    sheet.append([])
    sheet.append([NOTE])
    sheet.merge_cells(f"A{sheet.max_row}:{last}{sheet.max_row}")
    placed["note"] = sheet.max_row
    # the signature line: not merged, a second sign-off word in a count column
    sheet.append([SIGNATURE, None, None, None, None, "审核人：李四"])
    placed["signature"] = sheet.max_row
    book.save(path)
    return placed


def entries(db) -> dict[str, dict]:
    """西河县's ledger entries by compound code."""
    sql = text("SELECT c.code, e.* FROM ledger_entry e JOIN compound c ON c.id = e.compound_id "
               "WHERE e.county_code = :c")  # fmt: skip
    with db.connect() as conn:
        return {row["code"]: dict(row) for row in conn.execute(sql, {"c": COUNTY}).mappings()}


# -- words and headers, cell by cell ---------------------------------------------------------------


def test_the_countys_words_are_mapped_and_kept():
    cell = parse_blockers("未竣工验收、消防验收未通过，规划手续不全；开发商跑路 小区门口有棵树")
    assert cell.codes == ["approvals", "developer", "other"]
    assert cell.words == [
        "未竣工验收",
        "消防验收未通过",
        "规划手续不全",
        "开发商跑路",
        "小区门口有棵树",
    ]
    assert cell.unmapped == ["小区门口有棵树"]
    # titlemap's own labels (what the export writes) keep no words; brackets stay one phrase
    own = parse_blockers("手续缺失（立项、规划、施工、竣工、消防、人防）；欠缴税费")
    assert (own.codes, own.words) == (["approvals", "taxes"], [])
    assert (parse_status("已化解").status, parse_status("已化解").word) == ("closed", "已化解")
    assert (parse_status("已销号").status, parse_status("已销号").word) == ("closed", None)
    assert (parse_status("快好了").status, parse_status("快好了").word) == (None, "快好了")


def test_a_countys_own_vocabulary_file_is_used(tmp_path: Path):
    from geo.core.vocabulary import load_vocabulary

    own = tmp_path / "西河县词表.toml"
    own.write_text('[blockers.planning_conflict]\nwords = ["小区门口有棵树"]\n', encoding="utf-8")
    cell = parse_blockers("小区门口有棵树", load_vocabulary(own))
    assert (cell.codes, cell.words, cell.unmapped) == (
        ["planning_conflict"], ["小区门口有棵树"], [])  # fmt: skip


def test_headers_are_read_by_meaning_and_signature_lines_left_out(tmp_path: Path):
    path = tmp_path / "西河县台账.xlsx"
    placed = county_workbook(path)
    sheet = read_sheet(path)
    assert sheet.header_rows == [3, 4]
    assert sheet.columns["units_first_registered"] == "已办首次登记套数"
    assert sheet.columns["units_transferred"] == "已办转移登记套数"
    assert sheet.matched_by["units_first_registered"] == "meaning"
    assert sheet.columns["status"] == "化解进度" and sheet.columns["blockers"] == "存在问题"
    assert sheet.ignored_columns == ["备注"]
    assert [row.row for row in sheet.rows] == list(placed["rows"].values())
    reasons = {item["row"]: item["reason"] for item in sheet.skipped}
    assert "合计" in reasons[placed["total"]]
    assert "签字" in reasons[placed["note"]] and "签字" in reasons[placed["signature"]]
    assert sheet.total_row["units_first_registered"] == FIRST + 2


def test_an_ambiguous_header_is_reported_not_guessed(tmp_path: Path):
    path = tmp_path / "含义不明.xlsx"
    county_workbook(path, transfer_header="首次及转移登记套数")
    sheet = read_sheet(path)
    assert "units_transferred" not in sheet.columns
    assert sheet.ambiguous_columns == [
        {"header": "首次及转移登记套数", "fields": ["units_first_registered", "units_transferred"]}
    ]
    named = read_sheet(path, given=parse_columns("首次及转移登记套数=units_transferred"))
    assert named.columns["units_transferred"] == "首次及转移登记套数"
    assert named.matched_by["units_transferred"] == "given" and not named.ambiguous_columns


def test_a_bad_columns_option_is_one_line():
    with pytest.raises(LedgerSheetError) as caught:
        parse_columns("已交证套数=交证")
    assert "已交证套数=交证" in str(caught.value) and "\n" not in str(caught.value)


# -- the import ------------------------------------------------------------------------------------


def test_the_countys_ledger_comes_in_whole_with_its_words(fresh, tmp_path: Path):
    path = tmp_path / "西河县“登记难”问题化解台账（11月）.xlsx"
    placed = county_workbook(path)
    report = import_ledger(fresh, path, COUNTY, "西河县化解办")
    assert report.ok, report.lines()
    assert len(report.opened) == len(ROWS) and not report.refused and not report.unmatched
    # the rates are the sheet's own: its 合计 of task and transfers, the rows' sum of 首次登记
    with fresh.connect() as conn:
        (county,) = rates(conn, COUNTY)
    assert (county["units_task"], county["units_first_registered"],
            county["units_transferred"]) == (TASK, FIRST, DONE)  # fmt: skip
    assert county["first_rate"] == round(FIRST / TASK, 4)
    assert county["transfer_rate"] == county["overall_rate"] == round(DONE / TASK, 4)
    # every mapped word keeps its text, on the entry and on the card
    now = entries(fresh)
    expected = {
        "XH-001": (["approvals"], ["未竣工验收"], "in_progress", "正在办理"),
        "XH-002": (["approvals"], ["消防验收未通过", "规划手续不全"], "in_progress", "正在办理"),
        "XH-003": ([], ["无"], "closed", "已化解"),
        "XH-004": (["developer"], ["开发商跑路"], "closed", "已化解"),
        "XH-005": (["other"], ["小区门口有棵树"], "in_progress", "正在办理"),
        "XH-006": (["approvals", "developer"], ["规划手续不全", "开发商跑路"], "first_registered",
                   "基本完成"),
        "XH-007": (["approvals"], ["未竣工验收"], "stalled", None),  # 停滞: titlemap's own word
        "XH-008": (["approvals"], ["消防验收未通过"], "closed", "已化解"),
        "XH-009": ([], [], "not_started", None),
    }  # fmt: skip
    got = {code: (e["blockers"], e["blocker_words"], e["status"], e["status_word"])
           for code, e in now.items()}  # fmt: skip
    assert got == expected
    with fresh.connect() as conn:
        card = compound_card(conn, COUNTY, "XH-005")["ledger"]
        closed = compound_card(conn, COUNTY, "XH-004")["ledger"]
    assert card["blockers"] == ["other"] and card["blocker_words"] == ["小区门口有棵树"]
    assert (closed["status"], closed["status_word"]) == ("closed", "已化解")
    # the report: the header mapping, the unmapped words, the 合计 difference, the closings
    lines = "\n".join(report.lines())
    assert "已办首次登记套数→首次登记套数（按含义" in lines
    assert "已办转移登记套数→转移登记套数" in lines and "存在问题→主要问题" in lines
    assert "未归类的卡点" in lines and "第{}行 XH-005：小区门口有棵树".format(
        placed["rows"]["东方明珠"]) in lines  # fmt: skip
    assert "未识别的化解状态" in lines and "“基本完成”→已首次登记" in lines
    assert report.totals == [{"row": placed["total"], "column": "已办首次登记套数",
                              "field": "units_first_registered", "sheet": FIRST + 2,
                              "rows": FIRST}]  # fmt: skip
    assert f"已办首次登记套数为 {FIRST + 2}，明细之和为 {FIRST}" in lines
    against = {(issue.row, issue.code) for issue in report.against_rule}
    assert against == {(placed["rows"]["滨河苑"], "XH-004"), (placed["rows"]["南苑新村"], "XH-008")}
    assert "销号不符合本县规则" in lines and "销号需全部 50 套完成转移登记" in lines


def test_reimporting_the_countys_sheet_changes_nothing_and_the_export_keeps_its_words(
    fresh, tmp_path: Path
):
    from geo.io.ledger_sheet import export_ledger

    path = tmp_path / "西河县台账.xlsx"
    county_workbook(path)
    assert import_ledger(fresh, path, COUNTY, "first").ok
    before = fingerprint(fresh)
    again = import_ledger(fresh, path, COUNTY, "second")
    assert again.ok and again.events == 0 and fingerprint(fresh) == before
    exported = export_ledger(fresh, COUNTY, tmp_path / "export.xlsx")
    values = [c for row in openpyxl.load_workbook(exported).active.iter_rows(values_only=True)
              for c in row]  # fmt: skip
    assert (
        "小区门口有棵树" in values
        and "已化解" in values
        and "消防验收未通过、规划手续不全" in values
    )
    back = import_ledger(fresh, exported, COUNTY, "round trip")
    assert back.ok and back.events == 0 and fingerprint(fresh) == before


def test_impossible_rows_are_one_line_each_and_nothing_is_written(fresh, tmp_path: Path):
    path = tmp_path / "有误的台账.xlsx"
    bad = [
        ("西河花园", "XH-001", 100, "-5", 0, "正在办理", "未竣工验收"),  # replaces the good row 1
        ("金城小区", None, 20, 20, 25, "正在办理", None),  # transferred above the task
        (None, None, 30, 0, 0, "未启动", "欠缴税费"),  # no code and no name
    ]
    placed = county_workbook(path, rows=ROWS[2:], extra=bad)
    before = fingerprint(fresh)
    report = import_ledger(fresh, path, COUNTY, "someone")
    assert not report.applied and fingerprint(fresh) == before
    refused = {issue.row: "；".join(issue.problems) for issue in report.refused}
    assert set(refused) == set(placed["extra"])
    negative, above, nameless = placed["extra"]
    assert "已办首次登记套数 -5 是负数" in refused[negative]
    assert "转移登记套数 25 超过问题房屋套数 20" in refused[above]
    assert refused[nameless] == "缺少项目编号和项目名称 / no compound code or name"
    lines = report.lines()
    assert any("已拒绝，台账未作任何修改" in line for line in lines)
    for row in placed["extra"]:
        assert sum(line.strip().startswith(f"第{row}行") for line in lines) == 1
    partial = import_ledger(fresh, path, COUNTY, "someone", partial=True)
    assert partial.applied and len(partial.opened) == len(ROWS) - 2
    assert set(entries(fresh)) == {CODES[name] for name, *_ in ROWS[2:]}


def test_columns_named_once_are_remembered_for_the_next_import(fresh, db, tmp_path: Path):
    """December's sheet calls its transfers 已交证套数, which no rule knows: named once with
    --columns, then read so without it, through the `titlemap ledger import` command."""
    url = db.url.render_as_string(hide_password=False)
    env = {"DATABASE_URL": url}
    november = tmp_path / "11月.xlsx"
    county_workbook(november)
    first = run_cli("ledger", "import", str(november), "--county", COUNTY, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    december = tmp_path / "12月.xlsx"
    later = [(n, c, t, f, 15 if c == "XH-001" else d, s, b) for n, c, t, f, d, s, b in ROWS]
    county_workbook(december, rows=later, transfer_header="已交证套数")
    unknown = run_cli("ledger", "import", str(december), "--county", COUNTY, "--dry-run", env=env)
    assert "未导入的列 / columns not imported: 已交证套数" in unknown.stdout
    named = run_cli("ledger", "import", str(december), "--county", COUNTY,
                    "--columns", "已交证套数=units_transferred，备注=-", env=env)  # fmt: skip
    assert named.returncode == 0, named.stdout + named.stderr
    assert "已交证套数→转移登记套数（指定" in named.stdout and "已记住" in named.stdout
    with db.connect() as conn:
        remembered = conn.execute(
            text("SELECT ledger_columns FROM county WHERE code = :c"), {"c": COUNTY}
        ).scalar_one()
    assert remembered == {"已交证套数": "units_transferred", "备注": "-"}
    assert entries(db)["XH-001"]["units_transferred"] == 15
    january = tmp_path / "1月.xlsx"
    county_workbook(january, rows=[(n, c, t, f, 40 if c == "XH-001" else d, s, b)
                                   for n, c, t, f, d, s, b in later],
                    transfer_header="已交证套数")  # fmt: skip
    again = run_cli("ledger", "import", str(january), "--county", COUNTY, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "已交证套数→转移登记套数（指定" in again.stdout
    assert entries(db)["XH-001"]["units_transferred"] == 40


def test_the_import_endpoint_takes_the_countys_columns(fresh, tmp_path: Path):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from geo.core.settings import Settings
    from geo.ledger.users import add_user

    with Session(fresh) as session:
        session.execute(text("DELETE FROM app_user WHERE county_code = :c"), {"c": COUNTY})
        _, token = add_user(session, COUNTY, "西河县化解办", "editor")
        session.commit()
    client = TestClient(create_app(Settings(county=COUNTY), fresh))
    path = tmp_path / "12月.xlsx"
    county_workbook(path, transfer_header="已交证套数")

    def upload(**form):
        with path.open("rb") as handle:
            return client.post("/api/ledger/import", data=form,
                               files={"file": (path.name, handle, "application/octet-stream")},
                               headers={"Authorization": f"Bearer {token}"})  # fmt: skip

    before = fingerprint(fresh)
    bad = upload(columns="已交证套数=交证")
    assert bad.status_code == 422 and "已交证套数=交证" in bad.json()["detail"]
    assert fingerprint(fresh) == before
    response = upload(columns="已交证套数=转移登记套数")  # our header names the field too
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] and body["columns"]["units_transferred"] == "已交证套数"
    assert body["matched_by"]["units_transferred"] == "given" and body["columns_remembered"]
    assert entries(fresh)["XH-001"]["units_transferred"] == 10
    assert "已交证套数→转移登记套数（指定" in body["message"]


# -- the closing rule ------------------------------------------------------------------------------


def set_rule(db, rule: str) -> None:
    with db.begin() as conn:
        conn.execute(text("UPDATE county SET closing_rule = :r WHERE code = :c"),
                     {"r": rule, "c": COUNTY})  # fmt: skip


def closing_problems(db) -> set[str]:
    with db.connect() as conn:
        report = run_parcel_checks(conn, COUNTY, workers=1)
    return {p.compound for p in report.problems if p.check == "closing_rule"}


def test_the_check_lists_closings_against_the_countys_rule(fresh, tmp_path: Path):
    path = tmp_path / "台账.xlsx"
    county_workbook(path)
    assert import_ledger(fresh, path, COUNTY, "x").ok
    assert closing_problems(fresh) == {"XH-004", "XH-008"}  # 20/50 and 0/25 transferred
    with fresh.connect() as conn:
        problem = next(p for p in run_parcel_checks(conn, COUNTY, workers=1).problems
                       if p.compound == "XH-004" and p.check == "closing_rule")  # fmt: skip
    assert "不符合本县销号规则“全部转移登记（或写明理由）”：销号需全部 50 套" in problem.reason
    assert problem.value == 30 and problem.reason_en.startswith("compound XH-004 is closed")
    set_rule(fresh, "first_registered")  # both have every unit first-registered
    assert closing_problems(fresh) == set()
    with fresh.begin() as conn:
        conn.execute(text("UPDATE ledger_entry SET units_first_registered = 40 WHERE compound_id = "
                          "(SELECT id FROM compound WHERE code = 'XH-004')"))  # fmt: skip
    assert closing_problems(fresh) == {"XH-004"}
    set_rule(fresh, "as_recorded")
    assert closing_problems(fresh) == set()


def test_edits_keep_the_countys_rule_and_imports_take_the_record(fresh, tmp_path: Path):
    path = tmp_path / "台账.xlsx"
    county_workbook(path)
    assert import_ledger(fresh, path, COUNTY, "x").ok
    with Session(fresh) as session:
        # closed against the rule by the county's record: still editable
        recorded = find_entry(session, COUNTY, "XH-004")
        assert update_entry(session, recorded, {"plan": "先办后补"}, "editor") is not None
        # an edit that closes against the rule is refused, in the rule's words
        going = find_entry(session, COUNTY, "XH-001")  # 40 first-registered, 10 transferred
        with pytest.raises(LedgerRuleError, match="销号需全部 100 套完成转移登记"):
            update_entry(session, going, {"status": "closed"}, "editor")
        session.rollback()
    set_rule(fresh, "first_registered")
    with Session(fresh) as session:
        going = find_entry(session, COUNTY, "XH-001")
        with pytest.raises(LedgerRuleError, match="销号需全部 100 套完成首次登记"):
            update_entry(session, going, {"status": "closed", "close_reason": "理由"}, "editor")
        session.rollback()
        stuck = find_entry(session, COUNTY, "XH-006")  # 40 of 40 first-registered
        update_entry(session, stuck, {"status": "closed"}, "editor")
        assert (stuck.status, stuck.status_word) == ("closed", None)  # the old word is stale
        session.rollback()
    set_rule(fresh, "as_recorded")
    with Session(fresh) as session:
        going = find_entry(session, COUNTY, "XH-009")  # nothing registered at all
        assert update_entry(session, going, {"status": "closed"}, "editor") is not None
        session.rollback()


# -- the card, in the browser ----------------------------------------------------------------------

HTML_WORD = '<img src=x onerror="window.__xss=9">'


@pytest.mark.slow
def test_the_card_shows_the_countys_words_as_text(browser, fresh, tmp_path: Path):
    """Under the categories, "县台账原文：…" with the county's words — text, never HTML."""
    from api.app import create_app
    from geo.core.settings import Settings
    from maps.webmap import Basemap
    from tests.conftest import Server
    from tests.test_web_map import MapPage

    path = tmp_path / "台账.xlsx"
    county_workbook(path)
    assert import_ledger(fresh, path, COUNTY, "x").ok
    with fresh.begin() as conn:
        conn.execute(
            text("UPDATE ledger_entry SET blocker_words = blocker_words || CAST(:w AS text) "
                 "WHERE compound_id = (SELECT id FROM compound WHERE code = 'XH-005')"),
            {"w": HTML_WORD},
        )  # fmt: skip
    app = create_app(Settings(county=COUNTY), fresh)
    if not any(getattr(route, "path", None) == "/" for route in app.routes):
        from api.routers import web

        app.include_router(web.router)
    app.state.basemap = Basemap()
    server = Server(app)
    try:
        page = MapPage(browser, server.base).open()
        page.js("titlemap.app.openCard('XH-005') && 1")
        page.page.wait_for_selector(".tm-card:not([hidden]) .tm-card-words")
        shown = page.page.inner_text(".tm-card-words")
        assert shown == f"县台账原文：小区门口有棵树、{HTML_WORD}；化解状态“正在办理”"
        assert page.page.locator(".tm-card img").count() == 0
        assert page.js("window.__xss") is None and not page.errors
    finally:
        server.stop()
