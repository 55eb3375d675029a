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

    def create(name: str) -> str:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
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


@pytest.fixture(scope="session")
def demo_database(new_database, demo) -> Callable[[str], AbstractContextManager[Engine]]:
    """`with demo_database(name) as engine:` a database of its own, schema at head, the demo
    county loaded: for tests that edit what other tests read."""

    @contextmanager
    def loaded(name: str) -> Iterator[Engine]:
        db_engine = make_engine(new_database(name))
        upgrade(db_engine)
        load_county(db_engine, demo)
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
