"""The province overview page (/regions/{code}) in Chromium, and its A3 print through the API
and the command line, over a database of its own holding the demo province (four small
counties, geo.demo.province): the map draws a path per county, the ranking reads in rank order
and sorts on a header click, a county opens its own map, nothing leaves 127.0.0.1, and a
county named with markup is shown as text."""

import re
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from geo.core.settings import Settings
from geo.db.engine import make_engine
from geo.demo.province import generate_province, load_province
from geo.ledger.regions import overview
from maps.styles import TARGET_CLASSES, county_class
from tests.conftest import REPO, Server, app_role, run_cli
from tests.test_web_map import MapPage

pytestmark = pytest.mark.slow

PROVINCE = "620000"
COUNTIES = ["620101", "620102", "620201", "620202"]
XSS_COUNTY = "620202"
XSS_NAME = "<script>window.__xss=1</script>河县"
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="module")
def province(head_database):
    engine = make_engine(head_database("titlemap_region_page"))
    load_province(engine, generate_province(compounds=30))
    with engine.begin() as conn:
        conn.execute(text("UPDATE county SET name = :n WHERE code = :c"),
                     {"n": XSS_NAME, "c": XSS_COUNTY})  # fmt: skip
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def app_db(cluster, province):
    engine = app_role(cluster, province)  # the web app's own role
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def server(app_db):
    running = Server(create_app(Settings(), app_db))
    yield running
    running.stop()


@pytest.fixture
def page(browser, server):
    opened = MapPage(browser, server.base)
    opened.page.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    opened.page.goto(f"{server.base}/regions/{PROVINCE}")
    opened.until(
        "document.querySelectorAll('.tm-region-county').length > 0"
        " && document.querySelectorAll('.tm-region-burndown svg').length > 0"
    )
    yield opened
    opened.check_offline()


def ranking(page: MapPage) -> list[dict]:
    return page.js(
        """Array.from(document.querySelectorAll('.tm-region-table tbody tr')).map(tr => ({
             code: tr.getAttribute('data-code'), rank: Number(tr.cells[0].textContent),
             name: tr.cells[1].textContent, units: tr.cells[5].textContent}))"""
    )


def click_header(page: MapPage, title: str) -> None:
    page.page.locator(".tm-region-table thead th", has_text=title).click()


def test_the_page_draws_the_counties_ranks_and_burn_downs(page, province):
    with province.connect() as conn:
        figures = overview(conn, PROVINCE)
    expected = [row["code"] for row in figures["counties"]]  # by rank
    assert page.page.title() == f"{figures['region']['name']}不动产登记化解进度总览"
    paths = page.js(
        "Array.from(document.querySelectorAll('path.tm-region-county'))"
        ".map(p => p.getAttribute('data-code'))"
    )
    assert sorted(paths) == COUNTIES  # one path per county
    fills = page.js(
        "Array.from(document.querySelectorAll('path.tm-region-county'))"
        ".map(p => p.getAttribute('fill'))"
    )
    # each county in its class's colour, the class decided once (maps.styles.county_class)
    colour = {r["code"]: TARGET_CLASSES[county_class(r)]["colour"] for r in figures["counties"]}
    assert [fill.lower() for fill in fills] == [colour[code].lower() for code in paths]
    rows = ranking(page)
    assert [row["code"] for row in rows] == expected
    assert [row["rank"] for row in rows] == [row["rank"] for row in figures["counties"]]
    total = page.js("document.querySelector('.tm-region-table tfoot tr').textContent")
    assert "合计" in total and f"{figures['totals']['units_task']:,}" in total
    charts = page.js("document.querySelectorAll('.tm-region-burndown').length")
    assert charts == len(COUNTIES)
    assert page.js("document.querySelectorAll('.tm-region-pace').length") >= 1  # the pace line
    # the print link is there, for the same region
    href = page.js("document.querySelector('.tm-region-print').getAttribute('href')")
    assert href == f"/print/region/{PROVINCE}.pdf"
    ARTIFACTS.mkdir(exist_ok=True)
    page.page.screenshot(path=str(ARTIFACTS / "region_page.png"), full_page=True)


def test_a_header_click_sorts_the_ranking(page):
    def units() -> list[int]:
        return [int(row["units"].replace(",", "")) for row in ranking(page)]

    click_header(page, "任务套数")
    assert units() == sorted(units(), reverse=True)  # a figure: largest first
    click_header(page, "任务套数")
    assert units() == sorted(units())  # again: the other way
    click_header(page, "排名")
    assert [row["rank"] for row in ranking(page)] == sorted(row["rank"] for row in ranking(page))
    sorted_by = page.js(
        "document.querySelector('.tm-region-table thead th[aria-sort=\"ascending\"]').textContent"
    )
    assert sorted_by == "排名"


def test_a_county_named_with_markup_is_text(page):
    names = [row["name"] for row in ranking(page)]
    assert XSS_NAME in names
    labels = page.js(
        "Array.from(document.querySelectorAll('.tm-region-label-name')).map(n => n.textContent)"
    )
    assert XSS_NAME in labels
    assert page.js("window.__xss === undefined")
    assert page.js("document.querySelectorAll('.tm-region script').length") == 0


def test_a_click_on_a_county_opens_its_map(page, server):
    page.page.locator('path.tm-region-county[data-code="620101"]').click()
    page.page.wait_for_url(re.compile(r"/\?county=620101$"))
    page.until("window.titlemap && titlemap.app && titlemap.app.county === '620101'")


def test_a_row_links_to_the_county_map(page):
    link = page.js(
        "document.querySelector('.tm-region-table tbody tr[data-code=\"620201\"] a')"
        ".getAttribute('href')"
    )
    assert link == "/?county=620201"


# -- the print, through the API and the command line ----------------------------------------------


def pdf_words(path: Path) -> str:
    found = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True,
                           text=True, check=True)  # fmt: skip
    return re.sub(r"\s+", "", found.stdout)


def test_the_overview_prints_on_one_a3_page(app_db, province, tmp_path):
    client = TestClient(create_app(Settings(), app_db))
    answer = client.get(f"/print/region/{PROVINCE}.pdf")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    (ARTIFACTS / "print").mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "print" / "region-province.pdf"
    path.write_bytes(answer.content)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True).stdout
    assert re.search(r"Pages:\s+1\n", info) and "1190.55 x 841.89 pts (A3)" in info
    words = pdf_words(path)
    with province.connect() as conn:
        names = [row["name"] for row in overview(conn, PROVINCE)["counties"]]
    assert "不动产登记化解进度总览" in words and "合计" in words
    assert all(re.sub(r"\s+", "", name) in words for name in names)
    missing = client.get("/print/region/630000.pdf")
    assert missing.status_code == 404 and "没有这个省/市" in missing.json()["detail"]


def test_the_overview_prints_from_the_command_line(province, tmp_path):
    env = {"DATABASE_URL": province.url.render_as_string(hide_password=False), "COLUMNS": "200"}
    target = tmp_path / "总览.pdf"
    done = run_cli("print", "region", "620100", "--out", str(target), env=env)
    assert done.returncode == 0, done.stderr
    assert target.exists() and "2 个县区" in done.stdout
    words = pdf_words(target)
    with province.connect() as conn:
        inside = [row["name"] for row in overview(conn, "620100")["counties"]]
        outside = [row["name"] for row in overview(conn, "620200")["counties"]]
    assert all(name in words for name in inside)
    assert not any(name in words for name in outside if "<" not in name)  # the city's only
    refused = run_cli("print", "region", "630000", "--out", str(target), env=env)
    assert refused.returncode == 1 and "没有这个省/市" in refused.stderr


def test_the_page_frame_as_of_a_day_and_for_strangers(app_db, province):
    client = TestClient(create_app(Settings(), app_db))
    answer = client.get(f"/regions/{PROVINCE}?as_of=2026-06-30")
    assert answer.status_code == 200
    page = answer.text
    assert "2026年6月30日" in page and "打印 A3 总览" in page
    assert f"/print/region/{PROVINCE}.pdf?as_of=2026-06-30" in page
    assert f"/api/regions/{PROVINCE}/overview?as_of=2026-06-30" in page
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)  # no inline script (CSP)
    assert client.get("/regions/630000").status_code == 404
    assert client.get(f"/regions/{PROVINCE}?as_of=1800-01-01").status_code == 422
    city = ["620201", "620202"]
    with province.begin() as conn:  # a city whose maps are all closed: nobody may look
        conn.execute(text("UPDATE county SET map_public = false WHERE code = ANY(:c)"), {"c": city})
    try:
        fresh = TestClient(create_app(Settings(), app_db))
        away = fresh.get("/regions/620200", follow_redirects=False)
        assert away.status_code == 303 and away.headers["location"].startswith("/signin?next=")
        withheld = fresh.get(f"/api/regions/{PROVINCE}/overview").json()["withheld"]
        assert withheld == 2  # the province's page leaves them out, counted
    finally:
        with province.begin() as conn:
            conn.execute(text("UPDATE county SET map_public = true WHERE code = ANY(:c)"),
                         {"c": city})  # fmt: skip
