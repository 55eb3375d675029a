"""A county comes in from its own folder in one go: `titlemap onboard FOLDER --county CODE`.

柳川县 (629915) is made by tests/county_folder.py the way its offices send their files — a GBK
Shapefile in a zip, a GeoPackage of two layers in the prefixed Gauss-Krüger zone, a planner's
GeoJSON without codes, a GBK CSV of complaints under a title line, a survey's TXT with local
plot numbers, the ledger workbook with its title, merged two-row header, words, 合计 and
signature, the 失信名单, and the junk of a real folder — and onboarded into an EMPTY database
with the documented commands, through the real `titlemap` command.
"""

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.app import create_app
from geo.core.model import STATUS_LABELS, LedgerStatus
from geo.core.settings import Settings
from geo.db.engine import make_engine
from geo.io.developer_list import import_developers
from geo.io.onboard import onboard, parse_layers
from geo.ledger.counties import add_county
from geo.ledger.stats import rates
from geo.ledger.users import add_user
from tests import county_folder as lc
from tests.conftest import run_cli

TABLES = ("county", "township", "developer", "compound", "parcel", "compound_parcel",
          "planned_area", "complaint", "ledger_entry", "ledger_event")  # fmt: skip
PLAN_LINE = re.compile(r"^\d+\. \S+ (\w+) ← (.+?)：\d+ 行或要素", re.M)


def url_of(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def snapshot(engine) -> dict[str, str]:
    """Every table's rows, digested: equal snapshots, nothing written."""
    with engine.connect() as conn:
        return {t: conn.execute(text(
            f"SELECT count(*) || ':' || md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), "
            f"'')) FROM {t} t")).scalar_one() for t in TABLES}  # fmt: skip


def empty_database(new_database, name: str):
    """A database as a new install has it: `titlemap db upgrade`, nothing else."""
    url = new_database(name)
    result = run_cli("db", "upgrade", env={"DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    return make_engine(url)


def county_database(head_database, name: str, *others: tuple[str, str]):
    """A database holding 柳川县 (and `others`, (code, name) each), nothing else."""
    engine = make_engine(head_database(name))
    with engine.connect() as conn:
        for code, county in ((lc.CODE, lc.NAME), *others):
            add_county(conn, code, county)
    return engine


def by_name(conn, sql: str) -> dict:
    """The rows of `sql` by their `name`."""
    return {row.name: row for row in conn.execute(text(sql))}


def planned(stdout: str) -> dict[str, str]:
    """The plan's `N. 标签 layer ← file：…` lines as {file: layer}."""
    return {source: layer for layer, source in PLAN_LINE.findall(stdout)}


def onboard_cli(engine, folder: Path, *extra: str):
    return run_cli("onboard", str(folder), "--county", lc.CODE, *extra,
                   env={"DATABASE_URL": url_of(engine)}, timeout=300)  # fmt: skip


# -- the whole folder, from an empty database -------------------------------------------------


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> lc.Facts:
    return lc.build(tmp_path_factory.mktemp("liuchuan") / "柳川县资料")


@pytest.fixture(scope="module")
def dry(new_database, folder):
    """A dry run on an empty database: (the engine, the command's result)."""
    engine = empty_database(new_database, "onboard_dry")
    before = snapshot(engine)
    result = onboard_cli(engine, folder.folder, "--name", lc.NAME, "--dry-run")
    yield engine, result, before
    engine.dispose()


@pytest.fixture(scope="module")
def onboarded(new_database, folder):
    """柳川县 onboarded for real, the county created by --name."""
    engine = empty_database(new_database, "onboard_real")
    result = onboard_cli(engine, folder.folder, "--name", lc.NAME)
    assert result.returncode == 0, result.stdout + result.stderr
    yield engine, result
    engine.dispose()


def test_the_plan_names_each_files_layer_and_a_dry_run_writes_nothing(dry):
    engine, result, before = dry
    assert result.returncode == 0, result.stdout + result.stderr
    assert planned(result.stdout) == lc.EXPECTED
    assert "README.txt：不是 titlemap 读得懂的文件" in result.stdout  # listed, not guessed
    ignored = next(line for line in result.stdout.splitlines() if line.startswith("已忽略"))
    assert all(name in ignored for name in lc.IGNORED)
    assert "将新建县 629915 柳川县" in result.stdout
    assert "EPSG:4523" in result.stdout and "滨河安置小区-1" in result.stdout  # CRS, local plots
    assert "试算，未写入任何数据" in result.stdout
    assert snapshot(engine) == before  # not even the county


def test_the_rates_are_the_spreadsheets_own_totals(onboarded):
    engine, _ = onboarded
    with engine.connect() as conn:
        (row,) = rates(conn, lc.CODE)
    assert {k: row[k] for k in lc.TOTALS} == lc.TOTALS
    assert row["first_rate"] == pytest.approx(380 / 480, abs=1e-3)
    assert row["transfer_rate"] == pytest.approx(260 / 480, abs=1e-3)
    client = TestClient(create_app(Settings(county=lc.CODE), engine))
    (served,) = client.get("/api/stats").json()["rows"]
    assert {k: served[k] for k in lc.TOTALS} == lc.TOTALS


def test_every_compound_is_on_the_map_and_the_default_county_is_the_only_one(onboarded):
    engine, _ = onboarded
    client = TestClient(create_app(Settings(county="629901"), engine))  # the demo's code
    page = client.get("/")
    assert page.status_code == 200 and "柳川县" in page.text
    features = client.get("/api/compounds").json()["features"]
    assert sorted(f["properties"]["code"] for f in features) == [r[0] for r in lc.COMPOUNDS]
    assert all(f["geometry"]["type"] == "MultiPolygon" for f in features)
    assert create_app(Settings(county=lc.CODE), engine).state.default_county == lc.CODE


def test_each_mapped_word_kept_its_original_text(onboarded):
    engine, _ = onboarded
    with engine.connect() as conn:
        entries = by_name(conn, "SELECT c.name, e.status, e.status_word, e.blockers, "
                          "e.blocker_words FROM ledger_entry e JOIN compound c "
                          "ON c.id = e.compound_id")  # fmt: skip
        kinds = dict(conn.execute(text("SELECT name, kind || '/' || coalesce(kind_word, '') "
                                       "FROM planned_area")).all())  # fmt: skip
        plots = conn.execute(text("SELECT code FROM parcel WHERE code LIKE '滨河%' ORDER BY 1"))
        plots = plots.scalars().all()
    for name, _, _, _, _, _, status, blockers in lc.LEDGER:
        entry = entries[name]  # no word kept where the county wrote titlemap's own (未启动)
        assert (entry.status_word or STATUS_LABELS[LedgerStatus(entry.status)]) == status
        assert entries[name].blocker_words == re.split("、", blockers)
    assert entries["金城雅苑"].status == "closed" and entries["南山小区"].blockers == ["developer"]
    assert entries["幸福里"].blockers == ["other"]  # 历史遗留问题: kept as written
    assert kinds == {"老城更新片区": "urban_renewal/城市更新", "滨河路": "planned_road/规划道路",
                     "东湖片区": "district/片区", "火车站周边": "other/综合整治"}  # fmt: skip
    assert plots == ["滨河安置小区-1", "滨河安置小区-2"]


def test_the_blacklist_and_the_developers_named_come_in(onboarded):
    engine, result = onboarded
    with engine.connect() as conn:
        found = by_name(conn, "SELECT name, credit_code, credit_status, blacklist_reason, "
                        "blacklisted_on, contact FROM developer")  # fmt: skip
        owner = conn.execute(text(
            "SELECT d.name FROM compound c JOIN developer d ON d.id = c.developer_id "
            "WHERE c.code = 'LC-006'")).scalar_one()  # fmt: skip
    for name, code, reason, _, _, _ in lc.BLACKLIST:
        assert found[name].credit_status == "blacklisted" and found[name].credit_code == code
        assert found[name].blacklist_reason == reason
    assert str(found["南山建设集团有限公司"].blacklisted_on) == "2025-03-15"
    assert str(found["鸿运置业有限公司"].blacklisted_on) == "2023-06-30"
    assert found["金城房地产开发有限公司"].contact == "李强 0931-8123456"
    # one company written two ways in the compound file is one developer, not blacklisted
    assert found["柳川置业（兰州）有限公司"].credit_status == "normal"
    assert "柳川置业(兰州)" not in found
    # the ledger's 开发企业 column names the developer of a compound the file left without one
    assert owner == "幸福房地产开发有限公司"
    assert "幸福房地产开发有限公司" in result.stdout


def test_onboarding_the_same_folder_again_changes_nothing(onboarded, folder):
    engine, _ = onboarded
    before = snapshot(engine)
    again = onboard_cli(engine, folder.folder)
    assert again.returncode == 0, again.stdout + again.stderr
    assert snapshot(engine) == before


# -- a refusal anywhere ------------------------------------------------------------------------


def test_one_impossible_row_writes_nothing_and_partial_takes_the_rest(new_database, tmp_path):
    engine = empty_database(new_database, "onboard_bad")
    env = {"DATABASE_URL": url_of(engine)}
    added = run_cli("county", "add", lc.CODE, "--name", lc.NAME, env=env)
    assert added.returncode == 0, added.stderr
    rows = [*lc.LEDGER]
    rows[1] = ("河东家园", "LC-002", "柳川置业(兰州)", 80, 80, 90, "正在办理", "未竣工验收")
    facts = lc.build(tmp_path / "柳川县", ledger_rows=rows)
    bad_row = facts.ledger_rows["河东家园"]
    before = snapshot(engine)
    refused = onboard_cli(engine, facts.folder)
    assert refused.returncode == 1
    lines = [line for line in refused.stdout.splitlines()
             if line.startswith(f"  {lc.LEDGER_FILE} ")]  # fmt: skip
    assert lines == [f"  {lc.LEDGER_FILE} 第{bad_row}行 LC-002 河东家园：转移登记套数 90 超过"
                     "问题房屋套数 80 / transfers exceed task units"], refused.stdout  # fmt: skip
    assert "被拒绝 1 条" in refused.stdout and "未写入任何数据" in refused.stdout
    assert snapshot(engine) == before  # the boundary, compounds, developers … all rolled back
    taken = onboard_cli(engine, facts.folder, "--partial")
    assert taken.returncode == 0, taken.stdout + taken.stderr
    with engine.connect() as conn:
        on_ledger = conn.execute(text(
            "SELECT c.name FROM ledger_entry e JOIN compound c ON c.id = e.compound_id"
        )).scalars().all()  # fmt: skip
        compounds = conn.execute(text("SELECT count(*) FROM compound")).scalar_one()
    assert sorted(on_ledger) == sorted(r[0] for r in lc.LEDGER if r[0] != "河东家园")
    assert compounds == len(lc.COMPOUNDS)


def test_a_layer_named_by_hand_and_a_file_in_doubt(head_database, tmp_path, folder):
    engine = make_engine(head_database("onboard_layers"))
    doubt = tmp_path / "资料"
    lc._geojson(doubt / "新建图层.geojson",
                [({"名称": f"地块{k}"}, lc.gk_box(200 * k, 0)) for k in range(5)])  # fmt: skip
    result = onboard(engine, doubt, lc.CODE, name=lc.NAME, dry_run=True)
    assert result.files == [] and "无法判断" in result.unplaced[0].how  # listed, not guessed
    given = onboard(engine, doubt, lc.CODE, name=lc.NAME, dry_run=True,
                    layers=parse_layers(["新建图层.geojson=planned"]))  # fmt: skip
    assert [(p.source, p.layer, p.given) for p in given.files] == [
        ("新建图层.geojson", "planned", True)
    ]
    assert given.refusals() == [] and given.files[0].report.added == 5
    wrong = run_cli("onboard", str(doubt), "--county", lc.CODE, "--layer", "新建图层=parks",
                    env={"DATABASE_URL": url_of(engine)})  # fmt: skip
    assert wrong.returncode == 1 and wrong.stdout == ""
    assert wrong.stderr.count("\n") == 1 and "FILE=layer" in wrong.stderr
    missing = run_cli("onboard", str(doubt), "--county", lc.CODE,
                      env={"DATABASE_URL": url_of(engine)})  # fmt: skip
    assert missing.returncode == 1 and "--name" in missing.stderr
    engine.dispose()


# -- the developers list on its own ----------------------------------------------------------------


def test_a_developers_table_as_a_gbk_csv_refuses_a_row_without_a_name_or_code(
    head_database, tmp_path
):
    engine = county_database(head_database, "onboard_developers")
    path = tmp_path / "开发企业名录.csv"
    rows = ["柳川县房地产开发企业名录,,,,",
            "企业名称,统一社会信用代码,联系人,联系电话,信用状态",
            f"金城房地产开发有限公司,{lc.JINCHENG_CODE},李强,0931-8123456,正常",
            ",,王五,13800000000,失联",
            "南山建设集团有限公司,,张伟,,失联企业"]  # fmt: skip
    path.write_bytes("\r\n".join(rows).encode("gbk"))
    env = {"DATABASE_URL": url_of(engine)}
    refused = run_cli("import", str(path), "--county", lc.CODE, "--layer", "developers", env=env)
    assert refused.returncode == 1
    assert "第 4 行: 缺少企业名称和统一社会信用代码" in refused.stdout
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM developer")).scalar_one() == 0
    report = import_developers(engine, path, lc.CODE, partial=True)
    assert report.committed and report.added == 2 and len(report.refused) == 1
    with engine.connect() as conn:
        found = dict(conn.execute(text("SELECT name, credit_status FROM developer")).all())
    assert found == {"金城房地产开发有限公司": "normal", "南山建设集团有限公司": "unreachable"}
    engine.dispose()


# -- the same over the API -------------------------------------------------------------------------


def test_the_upload_gives_the_same_plan(head_database, folder):
    engine = county_database(head_database, "onboard_api", ("629916", "邻县"))
    with Session(engine) as session:
        editor = add_user(session, lc.CODE, "柳川编辑", "editor")[1]
        other = add_user(session, "629916", "邻县编辑", "editor")[1]
        session.commit()
    client = TestClient(create_app(Settings(), engine))
    files = [("files", (p.relative_to(folder.folder).as_posix(), p.read_bytes()))
             for p in sorted(folder.folder.rglob("*")) if p.is_file()]  # fmt: skip
    before = snapshot(engine)
    answer = client.post("/api/onboard", files=files, data={"dry_run": "true"},
                         headers={"Authorization": f"Bearer {editor}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert {f["source"]: f["layer"] for f in body["files"]} == lc.EXPECTED
    assert [u["source"] for u in body["unplaced"]] == list(lc.UNPLACED)
    assert body["refused"] == [] and not body["written"] and body["county"] == lc.CODE
    assert snapshot(engine) == before
    refused = client.post("/api/onboard", files=files[:2], data={"county": lc.CODE},
                          headers={"Authorization": f"Bearer {other}"})  # fmt: skip
    assert refused.status_code == 403
    assert client.post("/api/onboard", files=files[:2]).status_code == 401
    engine.dispose()


# -- a city of counties that came in from their own files (issue 17) -------------------------


def test_a_city_holds_the_onboarded_county_beside_another_and_sums_them(demo_database, folder):
    # 柳川县 from its offices' folder, beside the demo county, under a city added by command:
    # its row is its own spreadsheet's totals and the city's totals are the counties' sums.
    from geo.ledger.regions import overview

    with demo_database("onboard_city") as engine:
        result = onboard_cli(engine, folder.folder, "--name", lc.NAME)
        assert result.returncode == 0, result.stdout + result.stderr
        added = run_cli("region", "add", "629900", "示例市", env={"DATABASE_URL": url_of(engine)})
        assert added.returncode == 0 and "629900" in added.stdout, added.stderr
        with engine.connect() as conn:
            city = overview(conn, "629900")
            (demo,) = rates(conn, "629901")
    rows = {row["code"]: row for row in city["counties"]}
    assert set(rows) == {"629901", lc.CODE} and city["withheld"] == 0
    assert {k: rows[lc.CODE][k] for k in lc.TOTALS} == lc.TOTALS
    assert {k: rows["629901"][k] for k in lc.TOTALS} == {k: demo[k] for k in lc.TOTALS}
    for key in (*lc.TOTALS, "compounds", "units_sold"):
        assert city["totals"][key] == rows["629901"][key] + rows[lc.CODE][key], key
