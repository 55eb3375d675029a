"""Fixtures: one private PostGIS cluster per test session, the demo county loaded once.

The cluster lives in a fresh folder under /tmp (reachable by the postgres user when tests run
as root) on a free port, with fsync off; it is stopped and removed at the end.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import psycopg
import pytest
import uvicorn
from sqlalchemy import Engine, make_url

from geo import demo as demo_county
from geo.db.cluster import LocalCluster
from geo.db.engine import make_engine
from geo.db.schema import upgrade
from geo.io.load import load_county

REPO = Path(__file__).resolve().parent.parent
TITLEMAP = Path(sys.executable).parent / "titlemap"
# The longest test files first (a loaded run's --durations, summed per file, stop 21): with
# `-n 2 --dist loadfile` each worker takes the next file in order, and a long file taken last
# leaves one core working alone at the end. The rest keep xdist's order (most tests first);
# pyproject.toml passes --no-loadscope-reorder so this order holds.
LONGEST_FIRST = ("test_print.py", "test_account.py", "test_cli.py", "test_onboard.py",
                 "test_bulletin.py", "test_counties.py", "test_citus.py", "test_files.py",
                 "test_reliability_hostile.py", "test_reliability_faults.py", "test_regions.py",
                 "test_api_tiles.py", "test_region_page.py", "test_web_map.py")  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    per_file: dict[str, int] = {}
    for item in items:
        per_file[item.path.name] = per_file.get(item.path.name, 0) + 1

    def rank(item: pytest.Item) -> tuple:
        name = item.path.name
        first = LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
        return (first, -per_file[name], str(item.path))

    items.sort(key=rank)  # stable: a file's own tests keep their order


CHROMIUM = "/usr/bin/chromium"  # Debian's (scripts/setup.sh); Playwright never downloads one
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    folder = Path(tempfile.mkdtemp(prefix="titlemap-test-", dir="/tmp"))
    local = LocalCluster(folder, free_port(), fsync=False)
    local.ensure_running()
    yield local
    local.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def admin_url(cluster: LocalCluster) -> str:
    """libpq URL of the cluster's `postgres` maintenance database, for CREATE DATABASE."""
    url = make_url(cluster.url()).set(drivername="postgresql", database="postgres")
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def new_database(admin_url: str):
    """A factory of empty databases in the test cluster: returns the SQLAlchemy URL."""

    def create(name: str, template: str | None = None) -> str:
        # a template is copied file by file (0.1 s): migrating and loading took seconds
        copy = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"{copy}')
        url = make_url(admin_url).set(drivername="postgresql+psycopg", database=name)
        return url.render_as_string(hide_password=False)

    return create


@pytest.fixture(scope="session")
def demo() -> demo_county.DemoCounty:
    return demo_county.generate(150, 1)


@pytest.fixture(scope="session")
def engine(cluster: LocalCluster, demo: demo_county.DemoCounty) -> Iterator[Engine]:
    """The session database: schema at head and the demo county loaded."""
    db_engine = make_engine(cluster.url())
    upgrade(db_engine)
    load_county(db_engine, demo, replace=True)
    yield db_engine
    db_engine.dispose()


def _template(new_database, name: str, fill: Callable[[Engine], object]) -> str:
    """A database `fill`ed once a session, to copy: its connections closed (a template in use
    cannot be copied)."""
    db_engine = make_engine(new_database(name))
    try:
        fill(db_engine)
    finally:
        db_engine.dispose()
    return name


@pytest.fixture(scope="session")
def head_database(new_database) -> Callable[[str], str]:
    """`head_database(name)`: the URL of a database of its own at the schema's head, empty."""
    template = _template(new_database, "titlemap_head_template", upgrade)
    return lambda name: new_database(name, template)


@pytest.fixture(scope="session")
def demo_database(new_database, demo) -> Callable[[str], AbstractContextManager[Engine]]:
    """`with demo_database(name) as engine:` a database of its own, schema at head, the demo
    county loaded: for tests that edit what other tests read."""

    def fill(db_engine: Engine) -> None:
        upgrade(db_engine)
        load_county(db_engine, demo)

    template = _template(new_database, "titlemap_demo_template", fill)

    @contextmanager
    def loaded(name: str) -> Iterator[Engine]:
        db_engine = make_engine(new_database(name, template))
        try:
            yield db_engine
        finally:
            db_engine.dispose()

    return loaded


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without titlemap settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TITLEMAP_")}
    env.pop("DATABASE_URL", None)
    return env | (extra or {})


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 180):
    """Run the installed `titlemap` command as a user would; returns the CompletedProcess."""
    return subprocess.run(
        [str(TITLEMAP), *args],
        capture_output=True,
        text=True,
        env=cli_env(env),
        timeout=timeout,
        cwd=REPO,
    )


class Server:
    """The app served by uvicorn on 127.0.0.1 in a thread."""

    def __init__(self, app):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(10)


def app_role(cluster: LocalCluster, owner: Engine) -> Engine:
    """`owner`'s database as the web app's own role sees it (titlemap_app: rows, no DDL, the
    audit log only read and appended to). Dispose of it."""
    url = make_url(cluster.app_url()).set(database=owner.url.database)
    return make_engine(url.render_as_string(hide_password=False))


@pytest.fixture(scope="session")
def app_engine(cluster: LocalCluster, engine: Engine) -> Iterator[Engine]:
    """The session database as the web app's own role sees it."""
    app_db = app_role(cluster, engine)
    yield app_db
    app_db.dispose()


OTHER_COUNTY = "629902"  # a neighbour in the session database, for "another county's user"
PASSWORD = "正确的密码-2026"

# name → (county, role, department): the people of the demo county, signing in with PASSWORD
PEOPLE = {
    "办公室": ("629901", "editor", None),
    "住建局张三": ("629901", "editor", "住建局"),
    "税务局李四": ("629901", "editor", "税务局"),
    "查看员": ("629901", "viewer", None),
    "管理员": ("629901", "admin", None),
    "邻县编辑": (OTHER_COUNTY, "editor", None),
}


def add_people(engine: Engine, neighbours: bool = True) -> dict[str, int]:
    """PEOPLE in `engine`'s database, and the neighbouring county some of them need (without
    `neighbours`, the demo county's people only): name → id (anyone of those names there
    before is replaced)."""
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from geo.ledger.users import add_user

    ids = {}
    with Session(engine) as session:
        if neighbours:
            session.execute(
                text("INSERT INTO county (code, name, target_rate) VALUES (:c, '邻县', 0.9) "
                     "ON CONFLICT DO NOTHING"),
                {"c": OTHER_COUNTY},
            )  # fmt: skip
        for name, (county, role, department) in PEOPLE.items():
            if county == OTHER_COUNTY and not neighbours:
                continue
            session.execute(text("DELETE FROM app_user WHERE name = :n"), {"n": name})
            user, _ = add_user(session, county, name, role, password=PASSWORD,
                               department=department, with_token=False)  # fmt: skip
            ids[name] = user.id
        session.commit()
    return ids


@pytest.fixture(scope="session")
def people(engine: Engine) -> dict[str, int]:
    """The demo county's PEOPLE in the session database: name → id. (The session database
    keeps its one county: a neighbour is for databases of a test's own.)"""
    return add_people(engine, neighbours=False)


def sign_in(client, name: str, password: str = PASSWORD) -> str:
    """Sign `client` (a TestClient or httpx client) in through the form; returns the CSRF
    token its writes must carry (header X-CSRF-Token)."""
    response = client.post("/signin", data={"name": name, "password": password},
                           follow_redirects=False)  # fmt: skip
    assert response.status_code == 303, response.text
    me = client.get("/api/me").json()
    assert me["name"] == name
    return me["csrf"]


@pytest.fixture(scope="session")
def chromium():
    """Headless Chromium, launched once per test process (its Node driver and the browser took
    1–2 s to start for each module). Tests take `browser`."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (scripts/setup.sh installs it)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def browser(chromium):
    """The page tests' Chromium: the pages a module opened are closed when it ends."""
    yield chromium
    for context in chromium.contexts:
        context.close()
