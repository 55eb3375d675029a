"""A county that is not the demo comes in from its own files, as its offices send them.

河湾县 (629911) is made up here, in an empty database: no demo, no SQL beyond creating the
county row. Its files are written the way each office keeps them — a zipped GBK Shapefile of
compounds naming developers the database does not know (one company written twice, once with
full-width brackets and 有限公司), a GeoPackage of parcels in the Gauss-Krüger zone with the zone
number in front, a planner's GeoJSON with 名称 and 类型 only, and GBK boundary TXTs numbering
their plots locally. Whatever is refused leaves the database exactly as it was.
"""

import json
import math
import zipfile
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer
from shapely.geometry import Polygon, box
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.app import create_app
from geo import TitlemapError
from geo.checks.run import run_parcel_checks
from geo.checks.stages import farthest_m
from geo.core.codes import make_credit_code, parcel_code
from geo.core.settings import Settings
from geo.db.engine import make_engine
from geo.io.developers import developer_key
from geo.io.exports import export_layer
from geo.io.importer import import_file
from geo.ledger.users import add_user
from tests.conftest import run_cli

COUNTY = "629911"
GK = 4544  # CGCS2000 3-degree zone 35 (central meridian 105°E), no zone prefix
TO_GK = Transformer.from_crs(4490, GK, always_xy=True)
TO_LONLAT = Transformer.from_crs(GK, 4490, always_xy=True)
X0, Y0 = (round(v) for v in TO_GK.transform(104.6, 36.1))  # 河湾县城, in GK metres
TABLES = ("county", "developer", "compound", "parcel", "compound_parcel", "planned_area")

GOOD_CODE = make_credit_code(COUNTY, "L2345678")  # 河湾县城建开发有限责任公司
LONGYUAN_CODE = make_credit_code("620102", "N3456789")  # registered in 兰州
TYPO_CODE = make_credit_code(COUNTY, "M8765432")
TYPO_CODE = TYPO_CODE[:17] + ("1" if TYPO_CODE[17] != "1" else "2")  # a wrong check character


def square(dx: float, dy: float, width: float = 80, height: float = 60) -> Polygon:
    """A rectangle `dx`, `dy` metres east and north of the town centre, in GK metres."""
    return box(X0 + dx, Y0 + dy, X0 + dx + width, Y0 + dy + height)


def lonlat(shape: Polygon) -> Polygon:
    return shapely.transform(shape, lambda xy: list(zip(*TO_LONLAT.transform(*xy.T), strict=True)))


@pytest.fixture(scope="module")
def db(head_database):
    """An empty database with 河湾县's row and the outline its land office sent as GeoJSON."""
    engine = make_engine(head_database("county_files"))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO county (code, name, province, target_rate) "
                          "VALUES (:c, '河湾县', '甘肃省', 0.9)"), {"c": COUNTY})  # fmt: skip
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def county(db, tmp_path_factory):
    folder = tmp_path_factory.mktemp("boundary")
    outline = {
        "type": "Feature",
        "properties": {"县名": "河湾县"},
        "geometry": shapely.geometry.mapping(lonlat(square(-8000, -8000, 16000, 16000))),
    }
    path = folder / "河湾县行政区界线.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [outline]},
                               ensure_ascii=False), "utf-8")  # fmt: skip
    report = import_file(db, path, COUNTY, "boundary")
    assert report.committed, report.lines()
    return db


def snapshot(engine) -> dict:
    with engine.connect() as conn:
        state = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}
        state["rows"] = conn.execute(text(
            "SELECT md5(string_agg(x::text, ',' ORDER BY x::text)) FROM ("
            "SELECT code || coalesce(name, '') AS x FROM compound UNION ALL "
            "SELECT name || coalesce(credit_code, '') FROM developer) t"
        )).scalar_one()  # fmt: skip
    return state


# -- compounds: a zipped GBK Shapefile naming developers --------------------------------------


COMPOUNDS = {
    "项目编号": ["HW-001", "HW-002", "HW-003", "HW-004"],
    "项目名称": ["滨河花园", "陇原小区", "城建家园", "南山雅苑"],
    "开发企业": ["陇原置业（兰州）有限公司", "陇原置业(兰州)", "河湾县城建开发有限责任公司",
                 "南山房地产开发有限公司"],
    "统一社会信用代码": ["", "", GOOD_CODE, TYPO_CODE],
    "已售套数": [120, 86, 240, 64],
    "交房日期": ["2016年5月20日", "2017年9月1日", "2015年12月30日", "2018年6月18日"],
}  # fmt: skip


def shapefile_zip(folder: Path, columns: dict, shapes: list, name: str = "河湾县小区") -> Path:
    """As a GIS office sends it: .shp, .shx, .dbf in GBK with its .cpg and .prj, in a folder."""
    shp = folder / f"{name}.shp"
    frame = gpd.GeoDataFrame(columns, geometry=shapes, crs=GK)
    pyogrio.write_dataframe(frame, shp, driver="ESRI Shapefile", encoding="GBK")
    archive = folder / f"{name}.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for part in folder.glob(f"{name}.*"):
            if part.suffix != ".zip":
                out.write(part, f"{name}/{part.name}")
    return archive


def compound_shapes(count: int) -> list[Polygon]:
    return [square(200 * k, 0) for k in range(count)]


def developers(engine) -> dict[str, str | None]:
    with engine.connect() as conn:
        sql = "SELECT name, credit_code FROM developer WHERE county_code = :c"
        return dict(conn.execute(text(sql), {"c": COUNTY}).all())


def test_developer_names_compare_without_company_form_or_bracket_width():
    assert developer_key("陇原置业（兰州）有限公司") == developer_key("陇原置业(兰州)")
    assert developer_key("河湾 城建开发有限责任公司") == developer_key("河湾城建开发")
    assert developer_key("南山集团股份有限公司") == developer_key("南山集团")
    assert developer_key("南山集团有限公司") != developer_key("南山有限公司")


def test_compounds_name_developers_the_database_does_not_know(county, tmp_path):
    path = shapefile_zip(tmp_path, COMPOUNDS, compound_shapes(4))
    with zipfile.ZipFile(path) as archive:
        assert any(name.endswith(".cpg") for name in archive.namelist())
    report = import_file(county, path, COUNTY, "compounds")
    assert report.ok and report.added == 4, report.lines()
    assert report.columns["developer"] == "开发企业"
    assert report.columns["developer_code"].startswith("统一社会信")  # cut at the .dbf's 10 bytes
    # One company written twice is one developer, named in its fullest spelling.
    assert sorted(report.new_developers) == sorted(
        ["陇原置业（兰州）有限公司", "河湾县城建开发有限责任公司", "南山房地产开发有限公司"]
    )
    assert any(line.startswith("新建开发企业 / new developers") for line in report.lines())
    stored = developers(county)
    assert stored == {
        "陇原置业（兰州）有限公司": None,
        "河湾县城建开发有限责任公司": GOOD_CODE,
        "南山房地产开发有限公司": TYPO_CODE,
    }  # the wrong code kept as given
    typo = [w for w in report.warnings if TYPO_CODE in w]
    assert len(typo) == 1 and typo[0].startswith("HW-004") and "第 18 位" in typo[0]
    with county.connect() as conn:
        same = conn.execute(text(
            "SELECT count(DISTINCT developer_id) FROM compound WHERE code IN ('HW-001', 'HW-002')"
        )).scalar_one()  # fmt: skip
    assert same == 1
    # The same file again: no developer made twice, nothing changed.
    again = import_file(county, path, COUNTY, "compounds")
    assert (again.added, again.updated, again.unchanged) == (0, 0, 4)
    assert again.new_developers == [] and developers(county) == stored
    # The parcel checks flag the wrong code, and the developer the file gave no code.
    with county.connect() as conn:
        found = run_parcel_checks(conn, COUNTY, workers=1).problems
    flagged = {p.related[0]: p.reason for p in found if p.check == "credit_code"}
    assert "第 18 位" in flagged["南山房地产开发有限公司"]
    assert "尚无统一社会信用代码" in flagged["陇原置业（兰州）有限公司"]
    assert "河湾县城建开发有限责任公司" not in flagged
    # A later file gives 陇原's code: the county's developer gets it, no second one is made.
    later = {"项目编号": ["HW-005"], "项目名称": ["陇原二期"], "开发企业": ["陇原置业(兰州)"],
             "统一社会信用代码": [LONGYUAN_CODE]}  # fmt: skip
    more = import_file(county, shapefile_zip(tmp_path, later, [square(1000, 0)], "二期"), COUNTY,
                       "compounds")  # fmt: skip
    assert more.ok and more.new_developers == [], more.lines()
    assert developers(county)["陇原置业（兰州）有限公司"] == LONGYUAN_CODE


def test_a_refused_compound_file_creates_no_developer(county, tmp_path):
    columns = {
        "项目编号": ["HW-101", None, "HW-103"],
        "项目名称": ["新城一号", "新城二号", "新城三号"],
        "开发企业": ["新城置业有限公司", "新城置业有限公司", "河西建设有限公司"],
        "已售套数": ["40", "12", "-5"],
    }
    before = snapshot(county)
    shapes = [square(200 * k, 400) for k in range(3)]
    report = import_file(county, shapefile_zip(tmp_path, columns, shapes, "新城"), COUNTY,
                         "compounds")  # fmt: skip
    why = dict(report.refused)
    assert set(why) == {"要素 2", "HW-103"} and not report.committed, report.lines()
    assert "缺少编号" in why["要素 2"] and "已售套数" in why["HW-103"]
    assert report.new_developers == [] and snapshot(county) == before
    # --partial writes the good compound, and only the developer it names.
    partial = import_file(county, shapefile_zip(tmp_path, columns, shapes, "新城2"), COUNTY,
                          "compounds", partial=True)  # fmt: skip
    assert partial.committed and partial.added == 1
    assert partial.new_developers == ["新城置业有限公司"]
    assert "河西建设有限公司" not in developers(county)


# -- parcels: a GeoPackage in the GK zone with its zone number ---------------------------------


def test_parcels_in_a_zone_with_its_number_in_front(county, tmp_path):
    prefixed = [shapely.affinity.translate(s, 35_000_000) for s in compound_shapes(2)]
    frame = gpd.GeoDataFrame({
        "宗地代码": [parcel_code(COUNTY, 1, 2, "GB", 1), parcel_code(COUNTY, 1, 2, "GB", 2)],
        "用地面积（平方米）": [4800, 4800],
        "地类编码": ["0701", "0701"],
        "权利性质": ["出让", "出让"],
        "项目编号": ["HW-001", "HW-002"],
    }, geometry=prefixed, crs=4523)  # fmt: skip
    path = tmp_path / "河湾县宗地.gpkg"
    pyogrio.write_dataframe(frame, path, driver="GPKG", layer="宗地")
    report = import_file(county, path, COUNTY, "parcels")
    assert report.ok and report.added == 2, report.lines()
    assert report.crs == "EPSG:4523"
    with county.connect() as conn:
        linked = conn.execute(text(
            "SELECT c.code FROM compound_parcel l JOIN compound c ON c.id = l.compound_id "
            "JOIN parcel p ON p.id = l.parcel_id WHERE p.code = :p"),
            {"p": parcel_code(COUNTY, 1, 2, "GB", 1)}).scalars().all()  # fmt: skip
    assert linked == ["HW-001"]


# -- planned areas: a planner's GeoJSON with 名称 and 类型 --------------------------------------


PLANNED = [
    ("老城区城市更新", "城市更新", 0),
    ("纬二路", "规划道路", 1),
    ("高铁新区", "高铁新区", 2),
    ("南关历史文化街区", "历史文化街区", 3),
    ("纬二路", "规划道路", 4),  # the same road name twice, in two places
]


def planner_file(path: Path, rows: list[tuple[str | None, str, int]]) -> Path:
    features = [
        {"type": "Feature", "properties": {"名称": name, "类型": kind},
         "geometry": shapely.geometry.mapping(lonlat(square(600 * k, 2000, 400, 300)))}
        for name, kind, k in rows
    ]  # fmt: skip
    collection = {"type": "FeatureCollection", "features": features}
    path.write_text(json.dumps(collection, ensure_ascii=False), "utf-8")
    return path


def planned_rows(engine) -> dict[str, tuple[str, str | None, str]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT code, kind, kind_word, name FROM planned_area "
                                 "WHERE county_code = :c"), {"c": COUNTY})  # fmt: skip
        return {row.code: (row.kind, row.kind_word, row.name) for row in rows}


def test_a_planners_file_with_names_and_kinds_only(county, tmp_path):
    report = import_file(county, planner_file(tmp_path / "规划片区.geojson", PLANNED), COUNTY,
                         "planned")  # fmt: skip
    assert report.ok and report.added == 5, report.lines()
    assert planned_rows(county) == {
        "老城区城市更新": ("urban_renewal", "城市更新", "老城区城市更新"),
        "纬二路": ("planned_road", "规划道路", "纬二路"),
        "纬二路-2": ("planned_road", "规划道路", "纬二路"),  # the one further east
        "高铁新区": ("district", "高铁新区", "高铁新区"),
        "南关历史文化街区": ("other", "历史文化街区", "南关历史文化街区"),
    }
    assert report.unknown_words == {"历史文化街区": 1}
    assert any("历史文化街区" in line and "其他" in line for line in report.lines())
    # Listed in another order, the same areas keep their codes.
    again = import_file(county, planner_file(tmp_path / "再次.geojson", PLANNED[::-1]), COUNTY,
                        "planned")  # fmt: skip
    assert (again.added, again.updated, again.unchanged) == (0, 0, 5), again.lines()


def test_a_planned_area_with_no_code_and_no_name_is_the_one_refused(county, tmp_path):
    before = {k: v for k, v in planned_rows(county).items()}
    rows = [("西关片区", "片区", 6), (None, "规划绿地", 7)]
    report = import_file(county, planner_file(tmp_path / "缺名.geojson", rows), COUNTY, "planned")
    assert report.refused == [("要素 2", "缺少编号和名称 / no code and no name")]
    assert not report.committed and planned_rows(county) == before


def test_a_file_without_codes_names_its_columns(county, tmp_path):
    columns = {"小区名称": ["无编号小区"], "地址": ["河湾县北街 1 号"]}
    path = tmp_path / "无编号.gpkg"
    pyogrio.write_dataframe(gpd.GeoDataFrame(columns, geometry=[square(0, 3000)], crs=GK), path)
    with pytest.raises(TitlemapError) as refused:
        import_file(county, path, COUNTY, "compounds")
    assert "小区名称、地址" in str(refused.value) and "[]" not in str(refused.value)


def county_words(folder: Path) -> Path:
    path = folder / "河湾县词表.toml"
    path.write_text('[planned_kinds.planning_area]\nwords = ["历史文化街区"]\n', "utf-8")
    return path


def test_the_command_takes_the_countys_own_words(county, tmp_path):
    path = planner_file(tmp_path / "街区.geojson", [("东关历史文化街区", "历史文化街区", 8)])
    done = run_cli(
        "import",
        str(path),
        "--layer",
        "planned",
        "--county",
        COUNTY,
        "--vocabulary",
        str(county_words(tmp_path)),
        env={"DATABASE_URL": county.url.render_as_string(hide_password=False)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert planned_rows(county)["东关历史文化街区"] == ("planning_area", "历史文化街区",
                                                       "东关历史文化街区")  # fmt: skip


def test_the_api_takes_the_countys_words_from_its_settings(county, tmp_path):
    with Session(county) as session:
        _, token = add_user(session, COUNTY, "规划股", "editor")
        session.commit()
    client = TestClient(create_app(Settings(vocabulary=county_words(tmp_path)), county))
    path = planner_file(tmp_path / "西关.geojson", [("西关历史文化街区", "历史文化街区", 9)])
    with path.open("rb") as handle:
        answer = client.post(
            "/api/imports",
            headers={"Authorization": f"Bearer {token}"},
            data={"layer": "planned"},
            files={"file": ("规划.geojson", handle, "application/geo+json")},
        )
    assert answer.status_code == 200, answer.text
    assert planned_rows(county)["西关历史文化街区"][0] == "planning_area"


# -- a survey's plots, numbered before their 宗地代码 -------------------------------------------


def survey_txt(path: Path, plots: list[tuple[str, Polygon]], project: str | None) -> Path:
    """A 勘测定界 TXT in GBK with CRLF: X northing, Y easting, each ring closed."""
    lines = ["[属性描述]", "格式版本号=1.01版本", "数据产生单位=河湾县自然资源局勘测队",
             "坐标系=2000国家大地坐标系", "几度分带=3", "投影类型=高斯克吕格", "计量单位=米",
             "带号=35", "精度=0.001", "转换参数=,,,,,,"]  # fmt: skip
    if project:
        lines.append(f"项目名称={project}")
    lines.append("[地块坐标]")
    for number, shape in plots:
        ring = list(shape.exterior.coords)
        lines.append(f"{len(ring)},{shape.area / 10_000:.4f},{number},{project or ''}{number}号地,"
                     "面,,城镇住宅用地,0701,@")  # fmt: skip
        lines += [f"J{k % (len(ring) - 1) + 1},1,{y:.3f},{x:.3f}" for k, (x, y) in enumerate(ring)]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
    return path


def test_plots_without_a_parcel_code_come_in_by_their_numbers(county, tmp_path):
    first = survey_txt(tmp_path / "滨河安置小区勘测定界.txt",
                       [("1", square(0, -1000)), ("2", square(200, -1000)),
                        ("地块三", square(400, -1000))], "滨河安置小区")  # fmt: skip
    report = import_file(county, first, COUNTY, "parcels")
    assert report.ok and report.added == 3, report.lines()
    assert any("尚无宗地代码" in note for note in report.notes)
    # Another survey numbers its plot "1" too: kept apart by the file's own name.
    second = survey_txt(tmp_path / "城北地块.txt", [("1", square(600, -1000))], None)
    assert import_file(county, second, COUNTY, "parcels").added == 1
    local = {"滨河安置小区-1", "滨河安置小区-2", "滨河安置小区-地块三", "城北地块-1"}
    with county.connect() as conn:
        codes = set(conn.execute(text("SELECT code FROM parcel WHERE county_code = :c"),
                                 {"c": COUNTY}).scalars())  # fmt: skip
        problems = run_parcel_checks(conn, COUNTY, workers=1).problems
    assert local <= codes
    assert {p.parcel for p in problems if p.check == "no_parcel_code"} == local
    assert not {p.parcel for p in problems if p.check == "parcel_code"} & local
    # Sent back to the surveyor and returned, the plots keep their codes.
    sent = export_layer(county, COUNTY, "parcels", tmp_path / "发勘测队.txt", codes=sorted(local))
    back = import_file(county, sent, COUNTY, "parcels")
    assert back.ok and back.added == 0, back.lines()  # updated to the millimetre, not added
    with county.connect() as conn:
        assert set(conn.execute(text("SELECT code FROM parcel")).scalars()) == codes
    # A code meant as a 宗地代码 but mistyped is still refused, in one line.
    typo = survey_txt(tmp_path / "错码.txt", [(f"{COUNTY}00100GB1", square(800, -1000))], None)
    refused = import_file(county, typo, COUNTY, "parcels")
    assert not refused.committed and "宗地代码应为 19 位" in refused.refused[0][1]


# -- how far land reaches beyond its parcels ----------------------------------------------------


def test_the_depth_beyond_parcels_is_that_of_the_farthest_point_not_vertex():
    # A C of parcels round a square court with a 10 m mouth: every corner of the court lies on
    # the parcels and the mouth is 5 m from them, yet the court's centre is 30 m from them.
    parcels = box(0, 0, 100, 100).difference(box(20, 20, 80, 80)).difference(box(80, 45, 100, 55))
    court = box(0, 0, 100, 100).difference(parcels)
    assert farthest_m(court, parcels) == pytest.approx(30, abs=0.05)
    # A bow-tie repaired into two triangles leaves two triangles of the box outside it, every
    # corner on the parcels; the middle of the box's long side lies 30·50/√(30²+50²) m away.
    tie = shapely.make_valid(Polygon([(0, 0), (100, 60), (100, 0), (0, 60)]))
    below = box(0, 0, 100, 30).difference(tie)
    assert farthest_m(below, tie) == pytest.approx(1500 / math.hypot(30, 50), abs=0.02)
