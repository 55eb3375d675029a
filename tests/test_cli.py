"""The `titlemap` command as a user types it: start, demo, serve, and one-line errors."""

import socket
import subprocess
import time

import httpx
import psycopg
import pytest
from sqlalchemy import make_url

from tests.conftest import REPO, TITLEMAP, cli_env, free_port, run_cli


def assert_one_clear_line(result, *words: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]


@pytest.fixture(scope="module")
def first_demo(new_database):
    """A database of its own, filled by `titlemap demo` as a user would."""
    url = new_database("cli_demo")
    return url, run_cli("demo", env={"DATABASE_URL": url})


@pytest.fixture(scope="module")
def demo_db(first_demo):
    return first_demo[0]


def test_demo_loads_once_and_reports(first_demo):
    demo_db, first = first_demo
    assert first.returncode == 0, first.stderr
    assert "compound" in first.stdout
    again = run_cli("demo", env={"DATABASE_URL": demo_db})
    assert again.returncode == 0, again.stderr
    assert "already loaded" in again.stdout
    libpq = make_url(demo_db).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(libpq) as conn:
        compounds = conn.execute("SELECT count(*), count(DISTINCT code) FROM compound").fetchone()
    assert compounds[0] == compounds[1] >= 150


def test_db_status_names_postgis(demo_db):
    result = run_cli("db", "status", env={"DATABASE_URL": demo_db})
    assert result.returncode == 0, result.stderr
    assert "PostGIS 3." in result.stdout and "schema 00" in result.stdout


def test_serve_answers_with_the_demo_compounds(demo_db):
    port = free_port()
    env = {"DATABASE_URL": demo_db}
    server = subprocess.Popen(
        [str(TITLEMAP), "serve", "--port", str(port)],
        env=cli_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        body = wait_for_json(f"http://127.0.0.1:{port}/api/compounds?limit=10000")
        assert len(body["features"]) >= 150
        assert all("status" in f["properties"] for f in body["features"])
        health = httpx.get(f"http://127.0.0.1:{port}/health").json()
        assert health["status"] == "ok"
    finally:
        server.terminate()
        server.wait(timeout=10)


def wait_for_json(url: str, seconds: float = 30) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        try:
            response = httpx.get(url, timeout=10)
            if response.status_code == 200:
                return response.json()
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"no answer from {url}")
        time.sleep(0.3)


def test_serve_on_a_taken_port_is_one_clear_line(demo_db):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = run_cli("serve", "--port", str(port), env={"DATABASE_URL": demo_db})
    assert_one_clear_line(result, str(port), "TITLEMAP_PORT")


def test_database_without_postgis_is_one_clear_line(new_database):
    bare = new_database("no_postgis")
    result = run_cli("serve", "--port", str(free_port()), env={"DATABASE_URL": bare})
    assert_one_clear_line(result, "PostGIS", "titlemap db upgrade")


def test_postgis_that_cannot_be_enabled_is_one_clear_line(new_database, admin_url):
    bare = make_url(new_database("no_rights"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS clerk")
        conn.execute("CREATE ROLE clerk LOGIN PASSWORD 'clerk'")
    clerk = bare.set(username="clerk", password="clerk").render_as_string(hide_password=False)
    result = run_cli("db", "upgrade", env={"DATABASE_URL": clerk})
    assert_one_clear_line(result, "PostGIS", "CREATE EXTENSION postgis")


def test_help_lists_every_command_though_each_run_loads_only_its_own():
    """cli.main mounts a sub-app when its word is typed (SUB_APPS): help must still list all."""
    from cli.main import SUB_APPS

    top = run_cli("--help")
    assert top.returncode == 0, top.stderr
    for name in SUB_APPS:
        assert name.split()[0] in top.stdout, name
    db = run_cli("db", "--help")
    assert db.returncode == 0 and "citus" in db.stdout and "upgrade" in db.stdout, db.stdout


def test_unreachable_database_is_one_clear_line():
    url = f"postgresql://someone:pw@127.0.0.1:{free_port()}/gone"
    result = run_cli("db", "status", env={"DATABASE_URL": url})
    assert_one_clear_line(result, "cannot connect", "DATABASE_URL")
    # a command that meets the database only inside its work (it printed a traceback)
    result = run_cli("user", "list", "--county", "629901", env={"DATABASE_URL": url})
    assert_one_clear_line(result, "cannot connect", "/gone", "DATABASE_URL")
    assert "pw" not in result.stderr


def test_unwritable_data_dir_is_one_clear_line():
    result = run_cli("db", "start", env={"TITLEMAP_DATA_DIR": "/proc/titlemap"})
    assert_one_clear_line(result, "/proc/titlemap", "TITLEMAP_DATA_DIR")


def test_malformed_database_url_is_one_clear_line():
    result = run_cli("db", "status", env={"DATABASE_URL": "mysql://x@y/z"})
    assert_one_clear_line(result, "PostgreSQL")


def test_server_without_postgis_says_how_to_install_it(new_database, admin_url):
    """A server lacking the PostGIS package: shadow its extension list with an empty one."""
    url = make_url(new_database("no_package"))
    with psycopg.connect(url.set(drivername="postgresql").render_as_string(False)) as conn:
        conn.execute("CREATE SCHEMA bare")
        conn.execute(
            "CREATE VIEW bare.pg_available_extensions AS "
            "SELECT * FROM pg_catalog.pg_available_extensions WHERE name <> 'postgis'"
        )
        conn.commit()
    shadowed = url.update_query_dict({"options": "-csearch_path=bare,pg_catalog"})
    result = run_cli(
        "db", "upgrade", env={"DATABASE_URL": shadowed.render_as_string(hide_password=False)}
    )
    assert_one_clear_line(result, "PostGIS", "apt-get install postgresql-postgis")


def test_user_add_prints_a_working_token(demo_db):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from geo.core.settings import Settings
    from geo.db.engine import make_engine

    result = run_cli("user", "add", "王editor", "--role", "editor", env={"DATABASE_URL": demo_db})
    assert result.returncode == 0, result.stderr
    token = result.stdout.split("token:")[1].split()[0]
    again = run_cli("user", "add", "王editor", env={"DATABASE_URL": demo_db})
    assert_one_clear_line(again, "王editor")
    engine = make_engine(demo_db)
    client = TestClient(create_app(Settings(), engine))
    code = client.get("/api/ledger").json()["entries"][0]["code"]
    entry = client.get(f"/api/ledger/{code}").json()
    response = client.patch(
        f"/api/ledger/{code}",
        json={"version": entry["version"], "changes": {"task_force_lead": "王五"}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["history"][-1]["user"] == "王editor"
    engine.dispose()


def test_stats_prints_the_three_rates(demo_db):
    result = run_cli("stats", "--by", "township", env={"DATABASE_URL": demo_db, "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    for words in ("首次登记化解率", "转移登记化解率", "总体登记率", "城关街道"):
        assert words in result.stdout
    bad = run_cli("stats", "--as-of", "yesterday", env={"DATABASE_URL": demo_db})
    assert_one_clear_line(bad, "YYYY-MM-DD")


def test_user_for_an_unknown_county_is_one_clear_line(demo_db):
    result = run_cli("user", "add", "李四", "--county", "999999", env={"DATABASE_URL": demo_db})
    assert_one_clear_line(result, "999999")


def test_import_and_ledger_round_trip_through_the_command_line(demo_db, tmp_path):
    env = {"DATABASE_URL": demo_db, "COLUMNS": "200"}
    gpkg = REPO / "data" / "demo" / "示例县.gpkg"
    again = run_cli("import", str(gpkg), "--layer", "compounds", env=env)
    assert again.returncode == 0, again.stderr
    assert "新增 / added 0" in again.stdout
    sheet = tmp_path / "台账.xlsx"
    exported = run_cli("ledger", "export", str(sheet), env=env)
    assert exported.returncode == 0, exported.stderr
    assert sheet.exists()
    reimported = run_cli("ledger", "import", str(sheet), env=env)
    assert reimported.returncode == 0, reimported.stdout + reimported.stderr
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a workbook")
    refused = run_cli("ledger", "import", str(broken), env=env)
    assert_one_clear_line(refused, "broken.xlsx")
