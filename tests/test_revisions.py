"""Data revisions held in memory while PostgreSQL notifies changes (geo.db.revisions): read once,
forgotten on a change from any process, never kept while the listener is down; and the tile
route answering a cached tile with no database at all, and building one on its asyncio pool."""

import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from sqlalchemy import Engine, event, text

from api.app import create_app
from geo.core.settings import Settings
from geo.db import revisions
from geo.db.engine import driver_dsn
from geo.query.compounds import data_version
from tests.conftest import Server
from tests.test_api_tiles import expected_in_tile, town_tile
from tests.test_web_map import decode_mvt

COUNTY = "629901"


@pytest.fixture(scope="module")
def db(demo_database) -> Iterator[Engine]:
    with demo_database("revisions") as engine:
        yield engine


@pytest.fixture
def watcher(db) -> Iterator[revisions.RevisionWatcher]:
    watching = revisions.watch(db)
    assert watching.wait_listening(10), "the listener did not connect"
    yield watching
    revisions.unwatch(db)


@pytest.fixture
def statements(db) -> Iterator[list[str]]:
    """Every statement the engine sends, while the test runs."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(statement)

    event.listen(db, "before_cursor_execute", record)
    yield seen
    event.remove(db, "before_cursor_execute", record)


def edit_elsewhere(
    db: Engine, sql: str = f"UPDATE county SET name = name WHERE code = '{COUNTY}'", **params
) -> None:
    """An edit by another process: its own connection, not through this engine."""
    with psycopg.connect(driver_dsn(db), autocommit=True) as conn:
        conn.execute(sql, params or None)


def features(tile: bytes) -> list[str]:
    return sorted(repr(sorted(f.items())) for f in decode_mvt(tile)["compounds"])


def revision_in_db(db: Engine) -> tuple:
    with db.connect() as conn:
        return revisions.read_revision(conn, COUNTY)


def eventually(check, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return False


def test_read_once_then_from_memory(db, watcher, statements):
    with db.connect() as conn:
        first = data_version(conn, COUNTY)
        reads = sum("data_revision" in s for s in statements)
        again = [data_version(conn, COUNTY) for _ in range(5)]
    assert reads == 1
    assert again == [first] * 5
    assert sum("data_revision" in s for s in statements) == 1
    assert revisions.known_version(db, COUNTY) == first


def test_an_edit_by_another_process_is_noticed(db, watcher):
    with db.connect() as conn:
        before = data_version(conn, COUNTY)
    edit_elsewhere(db)
    assert eventually(lambda: revisions.known_version(db, COUNTY) is None), "no notice arrived"
    with db.connect() as conn:
        after = data_version(conn, COUNTY)
    assert after[0] == before[0] + 1
    assert after == revision_in_db(db)


def test_a_commit_here_is_seen_at_once(db, watcher):
    with db.connect() as conn:
        before = data_version(conn, COUNTY)
    with db.begin() as conn:
        conn.execute(text("UPDATE county SET name = name WHERE code = :c"), {"c": COUNTY})
    # no waiting for the notice: the commit itself made the watcher forget
    with db.connect() as conn:
        assert data_version(conn, COUNTY)[0] == before[0] + 1


def test_a_read_racing_a_change_is_not_kept(db, watcher):
    def change_meanwhile(conn, cursor, statement, parameters, context, executemany) -> None:
        if "data_revision" in statement:
            watcher.forget(COUNTY)  # what a notice arriving during the read does

    watcher.forget()
    event.listen(db, "after_cursor_execute", change_meanwhile)
    try:
        with db.connect() as conn:
            data_version(conn, COUNTY)
    finally:
        event.remove(db, "after_cursor_execute", change_meanwhile)
    assert revisions.known_version(db, COUNTY) is None


def test_nothing_is_kept_while_the_listener_is_down(db, watcher):
    with db.connect() as conn:
        data_version(conn, COUNTY)
    assert revisions.known_version(db, COUNTY) is not None
    with psycopg.connect(driver_dsn(db), autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE query LIKE 'LISTEN%%' AND datname = current_database()"
        ).fetchone()[0]
    assert killed == 1
    assert eventually(lambda: not watcher.listening)
    assert revisions.known_version(db, COUNTY) is None
    edit_elsewhere(db)  # a change nobody is told of: read from the database meanwhile
    with db.connect() as conn:
        assert data_version(conn, COUNTY) == revision_in_db(db)
    assert watcher.wait_listening(10), "the listener did not come back"
    with db.connect() as conn:
        assert data_version(conn, COUNTY) == revision_in_db(db)


def test_a_cached_tile_needs_no_database(db, statements):
    app = create_app(Settings(), db)
    running = Server(app)  # serving: the app watches its engine, opens its asyncio pool
    try:
        assert revisions.watcher_of(db).wait_listening(10)
        x, y = town_tile(db)
        path = f"{running.base}/tiles/compounds/14/{x}/{y}.mvt?county={COUNTY}"
        first = httpx.get(path)
        assert first.status_code == 200 and len(first.content) > 1000
        statements.clear()
        again = httpx.get(path)
        assert again.content == first.content
        assert again.headers["etag"] == first.headers["etag"]
        revalidated = httpx.get(path, headers={"If-None-Match": first.headers["etag"]})
        assert revalidated.status_code == 304
        assert statements == []  # neither the revision nor the tile was read

        app.state.tile_cache.clear()
        before = app.state.async_pool.get_stats().get("requests_num", 0)
        rebuilt = httpx.get(path)
        assert rebuilt.content == first.content
        assert statements == []
        # built on the event loop's asyncio pool, not in a thread with the engine's
        assert app.state.async_pool.get_stats().get("requests_num", 0) == before + 1

        inside = sorted(expected_in_tile(db, 14, x, y))[0]
        edit_elsewhere(db, f"UPDATE compound SET name = name WHERE code = '{inside}'")
        assert eventually(lambda: httpx.get(path).headers["etag"] != first.headers["etag"])
        after = httpx.get(path, headers={"If-None-Match": first.headers["etag"]})
        assert after.status_code == 200
        # a no-op edit: the same compounds (in another order: the row moved), a new tag
        assert features(after.content) == features(first.content)
    finally:
        running.stop()
    assert not revisions.watcher_of(db).listening  # stopped with the server
