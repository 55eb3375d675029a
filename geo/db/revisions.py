"""Each county's data revision, kept in memory while PostgreSQL says when it changes.

Every cache of drawn data (tiles, ETags, extents, OGC counts, check reports) keys on the
county's data revision (`data_revision`, bumped by triggers on every change: migration 0003).
Reading it is one query, the whole cost of answering a cached tile. A server therefore
`watch`es its engine: a thread LISTENs on CHANNEL (migration 0004 notifies it on every
change of a revision, at commit) and `read` keeps each county's revision until told it moved.

Correctness comes first, the memory second:
- nothing is kept while the listener is not connected (at start, after a lost connection:
  it reconnects and forgets everything it knew, since notices may have been missed);
- a read that raced with a notice is not kept (a generation count);
- a commit in this process forgets at once (engine events), so a client that saved an edit
  sees it on its next request without waiting for the notice;
- other processes' edits (another worker, the command line) show once their notice arrives,
  a few milliseconds after their commit.
"""

import logging
import threading
import time
import weakref

import psycopg
from sqlalchemy import Connection, Engine, event, text

from geo.db.distribute import placed_by_citus
from geo.db.engine import driver_dsn

CHANNEL = "titlemap_data_revision"  # migration 0004
HEARTBEAT = 10.0  # seconds between checks that the listening connection is alive
WAKE = 0.5  # seconds the listener waits for notices before looking whether to stop
RETRY = 1.0  # seconds before listening again after a lost connection

log = logging.getLogger(__name__)

_READ = text("SELECT revision, changed_at FROM data_revision WHERE county_code = :c")


def read_revision(conn: Connection, county: str) -> tuple:
    """(revision, changed_at) of the county from the database; (0, None) for none."""
    row = conn.execute(_READ, {"c": county}).first()
    return (row.revision, row.changed_at) if row else (0, None)


class RevisionWatcher:
    """The revisions of one database's counties, kept while a LISTEN connection is up."""

    def __init__(self, engine: Engine):
        self.dsn = driver_dsn(engine)
        self.users = 0
        self._known: dict[str, tuple] = {}
        self._generation = 0
        self._listening = False
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._outage = False
        self._thread: threading.Thread | None = None
        self.on_shards: bool | None = None  # Citus, once the listener has looked

    @property
    def listening(self) -> bool:
        return self._listening

    def known(self, county: str) -> tuple | None:
        """The county's revision if held in memory (no database), else None."""
        return self._known.get(county)

    def read(self, conn: Connection, county: str) -> tuple:
        """The county's revision: from memory, else read (and kept if nothing moved meanwhile)."""
        with self._lock:
            generation, held = self._generation, self._known.get(county)
        if held is not None:
            return held
        value = read_revision(conn, county)
        with self._lock:
            if self._listening and generation == self._generation:
                self._known[county] = value
        return value

    def forget(self, county: str | None = None) -> None:
        """Drop what is held (one county, or all) and void reads under way."""
        with self._lock:
            self._generation += 1
            if county is None:
                self._known.clear()
            else:
                self._known.pop(county, None)

    def start(self) -> None:
        if self._thread is None:
            self._stopping.clear()
            thread = threading.Thread(target=self._run, name="titlemap-revisions", daemon=True)
            self._thread = thread
            thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=WAKE + 5)
            self._thread = None
        self._set_listening(False)

    def wait_listening(self, timeout: float = 5.0) -> bool:
        """Block until the listener is connected, at most `timeout` seconds."""
        return self._ready.wait(timeout)

    def _set_listening(self, on: bool) -> None:
        with self._lock:
            self._listening = on
            self._generation += 1
            self._known.clear()
        (self._ready.set if on else self._ready.clear)()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._listen()
            except Exception as exc:  # a lost or refused connection: read from the database
                if not self._outage:  # said once per outage, not every RETRY seconds
                    log.warning("数据修订监听中断，改为逐次查询 / revision listener lost: %s", exc)
                self._outage = True
            self._set_listening(False)
            self._stopping.wait(RETRY)

    def _listen(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=10) as conn:
            self.on_shards = _on_shards(conn)
            if self.on_shards:
                # Citus: the revisions change on the workers, whose notices never reach this
                # coordinator (docs/scale.md): read each time, as without a listener
                log.info(
                    "数据修订在 Citus 分片上，不监听 / revisions on Citus shards: not listening"
                )
                conn.close()
                self._stopping.wait()
                return
            conn.execute(f"LISTEN {CHANNEL}")
            if self._outage:
                log.warning("数据修订监听已恢复 / revision listener back")
                self._outage = False
            self._set_listening(True)
            checked = time.monotonic()
            while not self._stopping.is_set():
                for notice in conn.notifies(timeout=WAKE):
                    self.forget(notice.payload or None)
                if time.monotonic() - checked > HEARTBEAT:
                    conn.execute("SELECT 1")  # a dead connection raises here
                    checked = time.monotonic()


def _on_shards(conn: psycopg.Connection) -> bool:
    """Whether data_revision is a distributed Citus table here (geo.db.distribute)."""
    return placed_by_citus(lambda sql: conn.execute(sql).fetchone()[0], "data_revision")


_WATCHERS: "weakref.WeakKeyDictionary[Engine, RevisionWatcher]" = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def watcher_of(engine: Engine) -> RevisionWatcher | None:
    return _WATCHERS.get(engine)


def watch(engine: Engine) -> RevisionWatcher:
    """Start keeping `engine`'s revisions in memory (counted: `unwatch` as often)."""
    with _GUARD:
        watcher = _WATCHERS.get(engine)
        if watcher is None:
            watcher = _WATCHERS[engine] = RevisionWatcher(engine)
            _forget_on_commit(engine, watcher)
        watcher.users += 1
        watcher.start()
    return watcher


def unwatch(engine: Engine) -> None:
    with _GUARD:
        watcher = _WATCHERS.get(engine)
        if watcher is None:
            return
        watcher.users -= 1
        if watcher.users <= 0:
            watcher.stop()


def _forget_on_commit(engine: Engine, watcher: RevisionWatcher) -> None:
    # Before the commit (the "commit" event) and again when the connection is back in the
    # pool (after it): a revision read between the two is not kept past the second.
    @event.listens_for(engine, "commit")
    def _committing(conn) -> None:
        conn.info["titlemap_committed"] = True
        watcher.forget()

    @event.listens_for(engine, "checkin")
    def _returned(dbapi_connection, record) -> None:
        if record.info.pop("titlemap_committed", False):
            watcher.forget()


def data_version(conn: Connection, county: str) -> tuple:
    """The county's (revision, changed_at): from memory where its engine is watched."""
    watcher = _WATCHERS.get(conn.engine)
    if watcher is not None and watcher.listening:
        return watcher.read(conn, county)
    return read_revision(conn, county)


def known_version(engine: Engine, county: str) -> tuple | None:
    """The county's revision if it is held in memory for `engine`: no database; else None."""
    watcher = _WATCHERS.get(engine)
    return watcher.known(county) if watcher is not None and watcher.listening else None
