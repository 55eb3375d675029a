"""The supervision bulletin (督查通报): periods, its figures against /api/stats, what a period
resolved, overdue tasks, the Word and PDF files, issuing (numbered, kept as printed) and the
command line."""

import re
import subprocess
from datetime import date, datetime
from io import BytesIO

import pytest
from docx import Document
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.app import create_app
from geo.core.dates import BEIJING, now, today
from geo.core.model import LedgerEntry
from geo.core.settings import Settings
from geo.ledger.bulletin import (
    TITLE,
    PeriodError,
    bulletin_figures,
    parse_period,
    week_period,
)
from geo.ledger.rules import update_entry
from tests.conftest import add_people, app_role, run_cli, sign_in

COUNTY = "629901"
W48 = ("2026-W48", date(2026, 11, 29))  # the demo's history ends on 28 November 2026


def squash(value: str) -> str:
    return re.sub(r"\s+", "", value)


def pdf_text(body: bytes, tmp_path, name: str = "bulletin.pdf") -> str:
    path = tmp_path / name
    path.write_bytes(body)
    result = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True, check=True
    )
    return result.stdout


def docx_text(body: bytes) -> tuple[list[str], list[list[list[str]]]]:
    document = Document(BytesIO(body))
    paragraphs = [p.text for p in document.paragraphs]
    tables = [
        [[cell.text for cell in row.cells] for row in table.rows] for table in document.tables
    ]
    return paragraphs, tables


# -- periods -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "key", "first", "last"),
    [
        ("2026-W48", "2026-W48", date(2026, 11, 23), date(2026, 11, 29)),
        ("2026w48", "2026-W48", date(2026, 11, 23), date(2026, 11, 29)),
        ("2026-W01", "2026-W01", date(2025, 12, 29), date(2026, 1, 4)),
        ("2026-11", "2026-11", date(2026, 11, 1), date(2026, 11, 30)),
        ("2028-2", "2028-02", date(2028, 2, 1), date(2028, 2, 29)),
        ("2026-11-01..2026-11-15", "2026-11-01..2026-11-15", date(2026, 11, 1), date(2026, 11, 15)),
        ("2026年11月1日至2026年11月15日", "2026-11-01..2026-11-15", date(2026, 11, 1),
         date(2026, 11, 15)),
    ],
)  # fmt: skip
def test_periods_are_read_as_offices_write_them(written, key, first, last):
    period = parse_period(written)
    assert (period.key, period.first, period.last) == (key, first, last)
    assert parse_period(period.key) == period


def test_the_previous_period_is_of_the_same_kind():
    assert parse_period("2026-W01").previous().key == "2025-W52"
    assert parse_period("2026-01").previous().key == "2025-12"
    assert parse_period("2026-11-16..2026-11-30").previous().key == "2026-11-01..2026-11-15"
    assert week_period(date(2026, 12, 7)).key == "2026-W50"


@pytest.mark.parametrize(
    ("written", "words"),
    [
        ("2026-W54", "第 54 周"),
        ("2026-13", "1–12"),
        ("2026-11-15..2026-11-01", "结束早于开始"),
        ("2026-01-01..2027-06-30", "366"),
        ("yesterday", "2026-W48"),
        ("", "period"),
        ("3026-W01", "年份"),
    ],
)
def test_a_wrong_period_is_one_clear_line(written, words):
    with pytest.raises(PeriodError) as refused:
        parse_period(written)
    message = str(refused.value)
    assert words in message and "\n" not in message


# -- the figures on the session database (read only) --------------------------------------------


@pytest.fixture(scope="module")
def reader_client(engine, people):
    client = TestClient(create_app(Settings(), engine))
    sign_in(client, "查看员")
    return client


def test_the_county_figures_are_those_of_api_stats(reader_client):
    period, end = W48
    figures = reader_client.get(f"/api/bulletins/{period}?county={COUNTY}").json()
    assert figures["draft"] is True and figures["as_of"] == end.isoformat()
    stats = reader_client.get(f"/api/stats?as_of={end}&county={COUNTY}").json()
    county_row = stats["rows"][0]
    for key in ("compounds", "closed", "units_task", "units_first_registered",
                "units_transferred", "first_rate", "transfer_rate", "overall_rate",
                "target_rate"):  # fmt: skip
        assert figures["overall"][key] == county_row[key], key
    by_department = reader_client.get(
        f"/api/stats?as_of={end}&county={COUNTY}&by=lead_department"
    ).json()["rows"]
    expected = {row["key"]: (row["units_task"], row["transfer_rate"]) for row in by_department}
    got = {row["name"]: (row["units_task"], row["transfer_rate"]) for row in figures["departments"]}
    assert got == expected
    rates = [row["transfer_rate"] for row in figures["departments"]]
    assert rates == sorted(rates, reverse=True)
    best, worst = figures["departments"][0], figures["departments"][-1]
    units_text = figures["text"]["units"][0]
    assert f"{best['name']}转移登记化解率最高" in units_text
    assert f"{worst['name']}最低" in units_text
    previous = reader_client.get(f"/api/stats?as_of=2026-11-22&county={COUNTY}").json()
    assert figures["previous"]["source"] == "ledger"
    assert (
        figures["previous"]["figures"]["units_transferred"]
        == (previous["rows"][0]["units_transferred"])
    )
    assert figures["change"]["units_transferred"] == (
        county_row["units_transferred"] - previous["rows"][0]["units_transferred"]
    )
    assert figures["resolved"] == figures["change"]["units_transferred"]


def test_reading_a_bulletin_needs_signing_in(engine):
    anonymous = TestClient(create_app(Settings(), engine))
    assert anonymous.get(f"/api/bulletins/2026-W48?county={COUNTY}").status_code == 401
    assert anonymous.get(f"/bulletins/2026-W48.docx?county={COUNTY}").status_code == 401
    browser = anonymous.get(
        "/bulletins/2026-W48.pdf", headers={"Accept": "text/html"}, follow_redirects=False
    )
    assert browser.status_code == 303 and browser.headers["location"].startswith("/signin?")
    page = anonymous.get("/bulletins", follow_redirects=False)
    assert page.status_code == 303 and "next=%2Fbulletins" in page.headers["location"]


def test_a_wrong_period_in_the_api_is_a_422_line(reader_client):
    response = reader_client.get("/api/bulletins/2026-W60")
    assert response.status_code == 422
    assert "第 60 周" in response.json()["detail"]


# -- a database of its own: the ledger changes, bulletins are issued ----------------------------


@pytest.fixture(scope="module")
def bdb(demo_database):
    with demo_database("bulletin") as db_engine:
        add_people(db_engine)
        yield db_engine


@pytest.fixture(scope="module")
def app_of_bdb(bdb, cluster):
    """The app on the bulletin database, connected as the web app's own role."""
    app_engine = app_role(cluster, bdb)
    yield create_app(Settings(), app_engine)
    app_engine.dispose()


def signed(app, name: str) -> tuple[TestClient, str]:
    client = TestClient(app)
    return client, sign_in(client, name)


def _quiet_entry(session: Session, before: datetime) -> LedgerEntry:
    """An open entry with a lead department, room for 3 more transfers and no event since
    `before`: an edit dated earlier than `before` lands in order in its history."""
    entry_id = session.execute(
        text(
            "SELECT e.id FROM ledger_entry e WHERE e.county_code = :c AND e.status <> 'closed' "
            "AND e.lead_department IS NOT NULL AND e.units_task - e.units_transferred >= 3 "
            "AND NOT EXISTS (SELECT 1 FROM ledger_event ev WHERE ev.entry_id = e.id "
            "AND ev.at >= :before) ORDER BY e.id LIMIT 1"
        ),
        {"c": COUNTY, "before": before},
    ).scalar_one()
    return session.get(LedgerEntry, entry_id)


def _transfer(session: Session, entry: LedgerEntry, units: int, at: datetime) -> None:
    done = entry.units_transferred + units
    changes = {"units_first_registered": max(entry.units_first_registered, done),
               "units_transferred": done}  # fmt: skip
    assert update_entry(session, entry, changes, "测试", "转移登记", at=at) is not None
    session.commit()


def test_a_transfer_in_the_period_is_resolved_this_period_for_its_department(bdb):
    with bdb.connect() as conn:
        before = bulletin_figures(conn, COUNTY, "2026-W47")
    with Session(bdb) as session:
        entry = _quiet_entry(session, datetime(2026, 11, 16, tzinfo=BEIJING))
        department = entry.lead_department
        _transfer(session, entry, 3, datetime(2026, 11, 18, 10, 30, tzinfo=BEIJING))
    with bdb.connect() as conn:
        after = bulletin_figures(conn, COUNTY, "2026-W47")
        next_week = bulletin_figures(conn, COUNTY, "2026-W48")

    def resolved(figures: dict) -> int:
        return next(d["resolved"] for d in figures["departments"] if d["name"] == department)

    assert resolved(after) == resolved(before) + 3
    assert after["resolved"] == before["resolved"] + 3
    assert after["overall"]["units_transferred"] == before["overall"]["units_transferred"] + 3
    # a week later it is part of the total, not of that week's progress
    assert (
        next_week["previous"]["figures"]["units_transferred"]
        == (after["overall"]["units_transferred"])
    )


def test_an_overdue_task_is_listed_with_its_department_and_days_late(bdb):
    with Session(bdb) as session:
        compound_id, code, name = session.execute(
            text("SELECT id, code, name FROM compound WHERE county_code = :c ORDER BY code "
                 "LIMIT 1"), {"c": COUNTY},
        ).one()  # fmt: skip
        session.execute(
            text(
                "INSERT INTO task (county_code, compound_id, department, action, due_on, status, "
                "created_by, created_at, version) VALUES (:c, :compound, '税务局', "
                "'核定并补缴契税', :due, 'assigned', '办公室', :created, 1)"
            ),
            {"c": COUNTY, "compound": compound_id, "due": date(2026, 11, 20),
             "created": datetime(2026, 11, 10, 9, tzinfo=BEIJING)},
        )  # fmt: skip
        session.commit()
    with bdb.connect() as conn:
        figures = bulletin_figures(conn, COUNTY, "2026-W48")
    late = [t for t in figures["overdue"] if t["action"] == "核定并补缴契税"]
    assert late == [
        {"task_id": late[0]["task_id"], "compound_code": code, "compound": name,
         "department": "税务局", "action": "核定并补缴契税", "due_on": "2026-11-20",
         "days_late": 9}
    ]  # fmt: skip
    tax = next(d for d in figures["departments"] if d["name"] == "税务局")
    assert tax["overdue"] >= 1
    assert any("逾期" in p and "税务局" in p for p in figures["text"]["problems"])
    assert any("税务局" in p and "逾期事项" in p for p in figures["text"]["requirements"])


def test_the_word_file_holds_the_ranking(app_of_bdb):
    client, _ = signed(app_of_bdb, "查看员")
    figures = client.get("/api/bulletins/2026-W48").json()
    response = client.get("/bulletins/2026-W48.docx")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    paragraphs, tables = docx_text(response.content)
    assert paragraphs[0] == TITLE and "（草稿）" in paragraphs[1]
    assert f"第 {figures['number']} 期" in paragraphs
    assert any(figures["office"] in p for p in paragraphs)
    ranking = next(t for t in tables if t[0][1] == "牵头单位")
    assert [row[1] for row in ranking[1:]] == [d["name"] for d in figures["departments"]]
    for row, d in zip(ranking[1:], figures["departments"], strict=True):
        assert row[0] == str(d["rank"])
        assert row[3] == f"{d['units_task']:,}"
        assert row[4] == f"{d['resolved']:,}"
        assert row[6] == f"{d['transfer_rate'] * 100:.2f}%"
        assert row[7] == str(d["overdue"])
    overdue = next(t for t in tables if t[0][:4] == ["序号", "小区", "承办单位", "交办事项"])
    assert any(row[3] == "核定并补缴契税" for row in overdue[1:])


def test_the_pdf_says_the_title_number_and_departments(app_of_bdb, tmp_path):
    client, _ = signed(app_of_bdb, "查看员")
    figures = client.get("/api/bulletins/2026-W48").json()
    response = client.get("/bulletins/2026-W48.pdf")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    words = squash(pdf_text(response.content, tmp_path))
    assert squash(TITLE) in words
    assert f"第{figures['number']}期" in words and "草稿" in words
    for department in figures["departments"]:
        assert department["name"] in words
    assert "本期化解状态变化小区分布示意图" in words or not figures["changed"]
    assert "核定并补缴契税" in words


def test_only_the_office_issues_and_the_issued_bulletin_keeps_what_it_printed(
    app_of_bdb, bdb, tmp_path
):
    anonymous = TestClient(app_of_bdb)
    assert anonymous.post("/api/bulletins/2026-W48/issue").status_code == 401
    for name in ("查看员", "住建局张三"):
        client, csrf = signed(app_of_bdb, name)
        refused = client.post("/api/bulletins/2026-W48/issue", headers={"X-CSRF-Token": csrf})
        assert refused.status_code == 403, (name, refused.text)
    office, csrf = signed(app_of_bdb, "办公室")
    assert office.post("/api/bulletins/2026-W48/issue").status_code == 403  # no CSRF token
    not_over = office.post(
        f"/api/bulletins/{week_period(today()).key}/issue", headers={"X-CSRF-Token": csrf}
    )
    assert not_over.status_code == 422 and "尚未结束" in not_over.json()["detail"]

    issued = office.post("/api/bulletins/2026-W48/issue", headers={"X-CSRF-Token": csrf})
    assert issued.status_code == 201, issued.text
    body = issued.json()
    assert body["number"] == 1 and body["issued_by"] == "办公室"
    with bdb.connect() as conn:
        trace = conn.execute(
            text("SELECT actor, action FROM audit_log WHERE object_kind = 'bulletin' "
                 "ORDER BY id DESC LIMIT 1")
        ).one()  # fmt: skip
    assert tuple(trace) == ("办公室", "insert")

    figures = office.get("/api/bulletins/2026-W48").json()
    assert figures["draft"] is False and figures == body["figures"]
    word = office.get("/bulletins/2026-W48.docx").content
    printed = pdf_text(office.get("/bulletins/2026-W48.pdf").content, tmp_path, "issued.pdf")
    assert "草稿" not in squash(printed) and "第1期" in squash(printed)
    this_week = week_period(today()).key
    draft_before = office.get(f"/api/bulletins/{this_week}").json()

    with Session(bdb) as session:  # the ledger moves on after the bulletin was issued
        entry = _quiet_entry(session, now())
        _transfer(session, entry, 2, now())

    assert office.get("/api/bulletins/2026-W48").json() == figures
    assert office.get("/bulletins/2026-W48.docx").content == word
    again = pdf_text(office.get("/bulletins/2026-W48.pdf").content, tmp_path, "again.pdf")
    assert again == printed
    draft_after = office.get(f"/api/bulletins/{this_week}").json()
    assert draft_after["draft"] is True
    assert draft_after["overall"]["units_transferred"] == (
        draft_before["overall"]["units_transferred"] + 2
    )
    twice = office.post("/api/bulletins/2026-W48/issue", headers={"X-CSRF-Token": csrf})
    assert twice.status_code == 409 and "第1期" in twice.json()["detail"]


def test_numbers_follow_each_other_and_the_page_lists_them(app_of_bdb):
    office, csrf = signed(app_of_bdb, "办公室")
    page = office.get("/bulletins?period=2026-W49")
    assert page.status_code == 200
    assert "印发第 2 期" in page.text and 'name="csrf_token"' in page.text
    assert "<script>" not in page.text
    form = {"period": "2026-W49", "county": COUNTY, "csrf_token": csrf}
    posted = office.post("/bulletins/issue", data=form, follow_redirects=False)
    assert posted.status_code == 303, posted.text
    assert "issued=2" in posted.headers["location"]
    figures = office.get("/api/bulletins/2026-W49").json()
    assert figures["number"] == 2 and figures["draft"] is False
    assert figures["previous"]["source"] == "bulletin" and figures["previous"]["number"] == 1
    assert "上期（第1期）" in figures["text"]["overall"][1]
    listed = office.get("/api/bulletins").json()["bulletins"]
    assert [b["number"] for b in listed] == [2, 1]
    assert [b["period"] for b in listed] == ["2026-W49", "2026-W48"]
    assert office.get("/api/bulletins/2026-11").json()["number"] == 3  # the next draft
    page = office.get("/bulletins").text
    assert "第 2 期" in page and "/bulletins/2026-W48.docx" in page
    neighbour, _ = signed(app_of_bdb, "邻县编辑")
    assert neighbour.get(f"/api/bulletins/2026-W48?county={COUNTY}").status_code == 403


def test_the_command_line_writes_word_and_pdf(bdb, tmp_path):
    env = {"DATABASE_URL": bdb.url.render_as_string(hide_password=False)}
    word = tmp_path / "通报.docx"
    result = run_cli("bulletin", "--period", "2026-W48", "--county", COUNTY, "--out", str(word),
                     env=env, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr
    paragraphs, _tables = docx_text(word.read_bytes())
    assert paragraphs[0] == TITLE and "第 1 期" in paragraphs
    assert not any("草稿" in p for p in paragraphs)  # W48 was issued: the issued one
    pdf = tmp_path / "通报.pdf"
    result = run_cli("bulletin", "--period", "2026-W48", "--county", COUNTY, "--out", str(pdf),
                     env=env, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr
    words = squash(pdf_text(pdf.read_bytes(), tmp_path, "cli.pdf"))
    assert squash(TITLE) in words and "第1期" in words
    wrong = run_cli("bulletin", "--period", "2026-W60", env=env)
    assert wrong.returncode == 1 and "Traceback" not in wrong.stderr
    assert len([line for line in wrong.stderr.splitlines() if line.strip()]) == 1
