"""Printed maps: selection, the area page, the visit pack, fonts, and what a person sees.

PDFs are read back with poppler (pdffonts, pdftotext, pdfinfo) and their pages rendered with
pdftoppm into test-artifacts/print/ (git-ignored) for a person to look at.
"""

import itertools
import re
import subprocess
from datetime import date
from pathlib import Path

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.routers import print as print_router
from geo import TitlemapError
from geo.core.settings import Settings
from geo.query.selection import layers_in, select, visit_order
from maps.fonts import has_truetype_outlines, print_font, text_width_mm
from maps.print import area_pdf, plan_visit, render_visit
from maps.print.sheet import STATUS_HATCHES
from maps.print.text import clean, fit, wrap
from maps.styles import STATUS_COLOURS
from tests.conftest import REPO, run_cli

COUNTY = "629901"
ON = date(2026, 11, 28)
ARTIFACTS = REPO / "test-artifacts" / "print"
LONG_NAME = ("金色阳光花园" * 8 + "小区二期工程安置房项目一号地块")[:60]
MARKUP_NAME = '<b>幸福</b> & "家园" $\\frac{1}{2}$ {\\bf x} %d'


# -- helpers -------------------------------------------------------------------------------------


def save(pdf: bytes, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.pdf"
    path.write_bytes(pdf)
    return path


def pages_png(path: Path, first: int = 1, last: int | None = None, gray: bool = False) -> list:
    """Render pages to PNG beside the PDF (kept as test artefacts)."""
    prefix = path.with_suffix("").as_posix() + ("-gray" if gray else "")
    args = ["pdftoppm", "-r", "80", "-png", "-f", str(first), "-l", str(last or first)]
    subprocess.run([*args, *(["-gray"] if gray else []), str(path), prefix], check=True)
    return sorted(path.parent.glob(f"{Path(prefix).name}-*.png"))


def pdf_text(path: Path, page: int | None = None) -> str:
    args = ["pdftotext", "-enc", "UTF-8"]
    if page:
        args += ["-f", str(page), "-l", str(page)]
    return subprocess.run(
        [*args, str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def page_count(path: Path) -> int:
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    return int(re.search(r"Pages:\s+(\d+)", info.stdout).group(1))


def fonts(path: Path) -> str:
    result = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True)
    return result.stdout


def squash(value: str) -> str:
    return re.sub(r"\s+", "", value)


def assert_embedded_truetype(path: Path, copies: int | None = None) -> None:
    """The CJK font embedded as CID TrueType (subset, with its Unicode map); `copies`: how many
    times (one per drawing process: matplotlib once wrote one per 256 distinct characters)."""
    listing = fonts(path)
    family = print_font().family.replace(" ", "")
    rows = [line for line in listing.splitlines() if family in line.replace(" ", "")]
    assert rows, listing
    for row in rows:
        assert "CID TrueType" in row and " yes yes yes " in row, listing
    assert copies is None or len(rows) == copies, listing


@pytest.fixture(scope="module")
def client(engine):
    app = create_app(Settings(), engine)
    if not any(getattr(r, "path", "").startswith("/print") for r in app.routes):
        app.include_router(print_router.router)  # until api/app.py mounts it
    return TestClient(app)


# -- fonts and text ------------------------------------------------------------------------------


def test_the_print_font_is_chinese_truetype():
    font = print_font()
    assert has_truetype_outlines(font.path)
    noto = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
    if noto.exists():  # CFF outlines: matplotlib cannot embed them as TrueType
        assert not has_truetype_outlines(noto)
    assert text_width_mm("登记", 10) == pytest.approx(2 * 10 / 72 * 25.4, rel=0.02)


def test_wrap_fit_and_clean():
    lines = wrap(
        "一小区、一方案、一专班：先办后补，证缴分离。ABCDEFGHIJKLMNOPQRSTUVWXYZ" * 2, 30, 8
    )
    assert len(lines) > 2
    assert all(text_width_mm(line, 8) <= 30 + 3 for line in lines)  # a closing mark may hang
    assert not any(line[0] in "，。、" for line in lines)
    cut, size = fit(LONG_NAME, 25, 8, max_lines=2, min_size=6)
    assert len(cut) == 2 and size == 6 and cut[-1].endswith("…")
    assert clean("a\nb\x00c\t d") == "a b c d" and clean(None) == "—"


# -- selection -----------------------------------------------------------------------------------


def test_selecting_by_planned_area_matches_the_geometry(engine, demo):
    with engine.connect() as conn:
        selection = select(conn, COUNTY, planned_area="城东片区", printed_on=ON)
    east = demo.planned_areas.set_index("name").geometry["城东片区"]
    inside = demo.compounds[shapely.relate_pattern(demo.compounds.geometry, east, "T********")]
    assert [c.code for c in selection.compounds] == sorted(inside.code)
    assert selection.area.kind == "planned_area" and selection.area.outline is not None
    assert all(c.on_ledger for c in selection.compounds)  # the demo: none missed in 城东片区
    c = next(c for c in selection.compounds if c.history)
    assert c.history[0].action == "open" and c.history == sorted(c.history, key=lambda e: e.at)
    assert any(o.name == "城东片区" for o in c.overlaps)
    # geometries come in the county's Gauss-Krüger zone (metres)
    x0, y0, _, _ = selection.bounds
    assert 3.9e6 < y0 < 4.0e6 and 3e5 < x0 < 7e5


def test_selecting_by_township_bbox_and_list(engine, demo):
    with engine.connect() as conn:
        town = select(conn, COUNTY, township="城关街道")
        box = select(conn, COUNTY, bbox="104.09,35.84,104.10,35.85")
        codes = list(demo.compounds.code[[7, 2, 40]])
        listed = select(conn, COUNTY, compounds=[codes[0], demo.compounds.name[2], codes[2]])
        assert layers_in(conn, town.county, town.bounds).compounds
    code = demo.townships.set_index("name").code["城关街道"]
    assert {c.code for c in town.compounds} == set(
        demo.compounds.code[demo.compounds.township_code == code]
    )
    assert box.compounds and box.area.kind == "bbox"
    assert [c.code for c in listed.compounds] == codes  # the order given is the visit order


@pytest.mark.parametrize(
    ("choice", "words"),
    [
        ({"planned_area": "火星片区"}, "没有规划片区"),
        ({"township": "不存在镇"}, "没有乡镇"),
        ({"compounds": ["XQ-NOPE"]}, "没有这些小区"),
        ({"bbox": "100.0,30.0,100.1,30.1"}, "没有小区"),
        ({"bbox": "1,2"}, "bbox"),
        ({}, "只用一种方式"),
        ({"township": "城关街道", "planned_area": "城东片区"}, "只用一种方式"),
    ],
)
def test_a_bad_selection_says_what_to_change(engine, choice, words):
    with engine.connect() as conn, pytest.raises(TitlemapError, match=words):
        select(conn, COUNTY, **choice)


def test_visit_order_is_a_short_open_route():
    points = [(0, 0), (10, 0), (1, 0), (11, 0), (2, 0), (12, 0)]
    order = visit_order(points)
    assert sorted(order) == list(range(6))
    length = sum(abs(points[a][0] - points[b][0]) for a, b in itertools.pairwise(order))
    assert length == 12


def test_hatches_carry_the_status_without_colour():
    open_statuses = ("not_started", "stalled", "in_progress", "first_registered")
    hatches = [STATUS_HATCHES[s] for s in open_statuses]
    assert all(hatches) and len(set(hatches)) == len(hatches)
    assert set(STATUS_HATCHES) == set(STATUS_COLOURS)

    def grey(colour: str) -> float:
        r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
        return 0.299 * r + 0.587 * g + 0.114 * b

    plain = [s for s, h in STATUS_HATCHES.items() if not h]
    assert abs(grey(STATUS_COLOURS[plain[0]]) - grey(STATUS_COLOURS[plain[1]])) > 0.08


# -- the area page -------------------------------------------------------------------------------


def test_area_page_through_the_api(client, engine):
    response = client.get("/print/area.pdf", params={"planned_area": "城东片区", "date": ON})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert len(response.content) < 1_500_000
    path = save(response.content, "area-A4")
    assert_embedded_truetype(path)
    words = pdf_text(path)
    assert "示例县 城东片区 登记难化解现场办公图" in words
    assert "打印日期 2026年11月28日" in words
    with engine.connect() as conn:
        names = [c.name for c in select(conn, COUNTY, planned_area="城东片区").compounds]
    missing = [name for name in names if name not in words]
    assert not missing
    for label in ("化解状态", "比例尺 1:", "位置示意", "合计", "CGCS2000", "°"):
        assert label in words
    assert page_count(path) == 1
    assert pages_png(path) and pages_png(path, gray=True)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"planned_area": "火星片区"}, "没有规划片区"),
        ({"bbox": "100.0,30.0,100.1,30.1"}, "没有小区"),
        ({}, "只用一种方式"),
        ({"township": "城东街道", "paper": "B5"}, "纸张"),
    ],
)
def test_an_empty_or_unknown_selection_is_422_in_chinese(client, params, words):
    for path in ("/print/area.pdf", "/print/visit.pdf"):
        if "paper" in params and "visit" in path:
            continue
        response = client.get(path, params=params)
        assert response.status_code == 422, response.text
        assert words in response.json()["detail"]


def test_area_on_a3_from_the_command_line(cluster, engine, tmp_path):
    target = tmp_path / "城关街道.pdf"
    env = {"DATABASE_URL": cluster.url()}
    done = run_cli("print", "area", "--township", "城关街道", "--paper", "A3",
                   "--date", "2026-11-28", "--out", str(target), env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "城关街道" in done.stdout
    path = save(target.read_bytes(), "area-A3-township")
    assert "示例县 城关街道 登记难化解现场办公图" in pdf_text(path, 1)
    assert len(set(pdf_text(path))) > 256  # more distinct characters than one old subset held
    assert_embedded_truetype(path, copies=1)
    pages_png(path, 1, page_count(path))
    bad = run_cli("print", "area", "--planned-area", "火星片区", env=env)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "没有规划片区" in bad.stderr


# -- the visit pack ------------------------------------------------------------------------------


@pytest.mark.slow
def test_visit_pack_has_a_cover_and_a_page_per_compound(client, engine):
    area = "老城区城市更新片区"
    response = client.get("/print/visit.pdf", params={"planned_area": area, "date": ON})
    assert response.status_code == 200, response.text
    path = save(response.content, "visit-urban-renewal")
    with engine.connect() as conn:
        selection = select(conn, COUNTY, planned_area=area, printed_on=ON)
        pack = plan_visit(conn, selection)
    assert page_count(path) == len(selection.compounds) + 1
    assert len(response.content) < 6_000_000
    assert_embedded_truetype(path)
    cover = pdf_text(path, 1)
    assert f"示例县 {area} 现场办公资料" in cover
    assert all(stop.facts.name in cover for stop in pack.stops)
    for stop in pack.stops:  # the pages follow the route on the cover
        words = pdf_text(path, stop.number + 1)
        assert stop.facts.name in words and stop.facts.code in words
        for heading in ("台账卡片", "卡点与责任单位", "化解方案", "下一步", "化解历程"):
            assert heading in words
    pages_png(path, 1, 3)
    pages_png(path, 2, 2, gray=True)


@pytest.mark.slow
def test_two_processes_draw_the_same_pack(engine):
    with engine.connect() as conn:
        selection = select(conn, COUNTY, township="城东街道", printed_on=ON)
        selection.compounds = selection.compounds[:5]
        pack = plan_visit(conn, selection)
    seen = []
    one = save(render_visit(pack, workers=1), "visit-one-process")
    two = save(render_visit(pack, workers=2, progress=lambda d, t: seen.append((d, t))), "visit-2")
    assert page_count(one) == page_count(two) == 6
    assert seen[-1] == (6, 6)
    assert squash(pdf_text(one)) == squash(pdf_text(two))
    assert_embedded_truetype(two)


@pytest.fixture(scope="module")
def odd_names(demo_database):
    """A database of its own where two compounds of 城东片区 carry awkward names."""
    with demo_database("print_names") as db:
        with db.connect() as conn:
            codes = [c.code for c in select(conn, COUNTY, planned_area="城东片区").compounds[:2]]
        with db.begin() as conn:
            for code, name in zip(codes, (LONG_NAME, MARKUP_NAME), strict=True):
                conn.execute(
                    text("UPDATE compound SET name = :n WHERE code = :c"), {"n": name, "c": code}
                )
        yield db, codes


@pytest.mark.slow
def test_long_and_markup_names_do_not_break_a_page(odd_names):
    db, codes = odd_names
    assert len(LONG_NAME) == 60
    with db.connect() as conn:
        selection = select(conn, COUNTY, planned_area="城东片区", printed_on=ON)
        area = save(area_pdf(conn, selection), "area-odd-names")
        listed = select(conn, COUNTY, compounds=codes, printed_on=ON)
        visit = save(render_visit(plan_visit(conn, listed), workers=1), "visit-odd-names")
    assert page_count(area) == 1
    words = squash(pdf_text(area))
    assert squash(MARKUP_NAME) in words and LONG_NAME[:12] in words
    assert page_count(visit) == 3
    assert squash(LONG_NAME) in squash(pdf_text(visit, 2))  # wrapped, never cut, on its page
    assert MARKUP_NAME in pdf_text(visit, 3)  # printed as typed: no mathtext, no markup
    pages_png(area)
    pages_png(visit, 1, 3)
