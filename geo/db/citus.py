"""A Citus cluster on loopback: a coordinator and two workers, each a private LocalCluster.

Layout of `folder`: coordinator/, worker1/, worker2/ — each laid out as geo.db.cluster says.
Every node preloads citus and has the titlemap database with the citus and postgis
extensions (citus first: it must be the first extension created). The nodes share one
password per role: the coordinator's, which Citus gives its connections to the other nodes
through `pg_dist_authinfo` (no trust authentication needed). The application connects to the
coordinator only (`url()`); docs/scale.md says what runs where.

Built with scripts/build-citus.sh (vendor/citus): `citus_available()` says whether it is.
"""

from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy import make_url

from geo import TitlemapError
from geo.db.cluster import APP_USER, DB_NAME, DB_USER, ClusterStatus, LocalCluster, find_pg_bin

NODE_SETTINGS = (
    "shared_preload_libraries = 'citus'",
    "max_connections = 100",  # the coordinator's connections to shards come on top of the app's
    "max_worker_processes = 16",  # Citus runs a maintenance worker per database
    "citus.shard_count = 8",  # a few shards per worker: enough to spread a province's counties
    # triggers on distributed tables run on the shards (geo.db.distribute: data revisions)
    "citus.enable_unsafe_triggers = on",
    # a join on ids alone (compound.id = ledger_entry.compound_id) without the county on both
    # sides cannot be routed: repartitioned instead of refused (docs/scale.md lists them)
    "citus.enable_repartition_joins = on",
    # SET LOCAL titlemap.actor … reaches the workers' audit triggers (geo.db.audit)
    "citus.propagate_set_commands = 'local'",
)
NODES = ("coordinator", "worker1", "worker2")
HOST = "127.0.0.1"


def citus_available(pg_bin: Path | None = None) -> bool:
    """Whether citus.so is installed for the PostgreSQL the clusters run."""
    lib = find_pg_bin(pg_bin).parent / "lib" / "citus.so"
    return lib.exists()


class CitusCluster:
    """Start, stop and describe a coordinator and two workers in `folder` on `ports`
    (the coordinator's first)."""

    def __init__(self, folder: Path, ports: tuple[int, int, int], fsync: bool = True) -> None:
        if len(ports) != len(NODES):
            raise TitlemapError(f"需要 {len(NODES)} 个端口 / {len(NODES)} ports needed: {ports}")
        self.folder = Path(folder).absolute()
        self.nodes = [
            LocalCluster(self.folder / name, port, fsync=fsync, settings=NODE_SETTINGS)
            for name, port in zip(NODES, ports, strict=True)
        ]

    @property
    def coordinator(self) -> LocalCluster:
        return self.nodes[0]

    @property
    def workers(self) -> list[LocalCluster]:
        return self.nodes[1:]

    def url(self) -> str:
        """The SQLAlchemy URL of the titlemap database on the coordinator."""
        return self.coordinator.url()

    def app_url(self) -> str:
        return self.coordinator.app_url()

    def status(self) -> list[tuple[str, ClusterStatus]]:
        return [(name, node.status()) for name, node in zip(NODES, self.nodes, strict=True)]

    def ensure_running(self) -> str:
        """Initialise and start what is not, join the workers; return the coordinator's URL."""
        if not citus_available():
            raise TitlemapError(
                "未安装 Citus / Citus is not installed: 运行 / run scripts/build-citus.sh"
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.folder.stat().st_mode & 0o055 == 0:
            self.folder.chmod(0o755)  # the postgres user reaches the nodes' folders (as root)
        for node in self.nodes:
            node.ensure_running()
        passwords = {DB_USER: _password(self.coordinator.pwfile), APP_USER: self._app_password()}
        for node in self.nodes:
            self._share_passwords(node, passwords)
        return self.database(DB_NAME)

    def database(self, name: str) -> str:
        """The URL of database `name` on the coordinator, created on every node and joined
        (Citus keeps its nodes and shards per database) when missing."""
        for node in self.nodes:
            with _connect(node, "postgres") as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
                if exists.fetchone() is None:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            with _connect(node, name) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS citus")
                conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
                self._sign_in_info(conn)
        self._join(name)
        return make_url(self.url()).set(database=name).render_as_string(hide_password=False)

    def stop(self) -> bool:
        """Stop every node; False if none was running."""
        stopped = [node.stop() for node in self.nodes]
        return any(stopped)

    # -- internals ---------------------------------------------------------------------------

    def _app_password(self) -> str:
        self.coordinator.app_url()  # makes the role and its file when missing
        return _password(self.coordinator.app_pwfile)

    def _share_passwords(self, node: LocalCluster, passwords: dict[str, str]) -> None:
        """The coordinator's passwords on a worker."""
        if node is not self.coordinator and _password(node.pwfile) != passwords[DB_USER]:
            with _connect(node, "postgres") as conn:
                for role, password in passwords.items():
                    conn.execute(
                        sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                            sql.Identifier(role), sql.Literal(password)
                        )
                    )
            node.pwfile.write_text(passwords[DB_USER] + "\n")
            node.app_pwfile.write_text(passwords[APP_USER] + "\n")

    def _sign_in_info(self, conn: psycopg.Connection) -> None:
        """How a node signs in to the others (every node connects to every other: the
        coordinator to the shards, a worker to the coordinator and to other workers). Kept per
        node and database: Citus does not copy pg_dist_authinfo to the workers."""
        passwords = {DB_USER: _password(self.coordinator.pwfile), APP_USER: self._app_password()}
        for role, password in passwords.items():
            conn.execute(
                "INSERT INTO pg_dist_authinfo (nodeid, rolename, authinfo) "
                "VALUES (0, %s, %s) ON CONFLICT (nodeid, rolename) "
                "DO UPDATE SET authinfo = excluded.authinfo",
                [role, f"password={password}"],
            )

    def _join(self, dbname: str) -> None:
        """The coordinator knows itself and the workers."""
        with _connect(self.coordinator, dbname) as conn:
            known = {row[0] for row in conn.execute("SELECT nodeport FROM pg_dist_node")}
            if self.coordinator.port not in known:
                conn.execute(
                    "SELECT citus_set_coordinator_host(%s, %s)", [HOST, self.coordinator.port]
                )
            for worker in self.workers:
                if worker.port not in known:
                    conn.execute("SELECT citus_add_node(%s, %s)", [HOST, worker.port])


def _password(pwfile: Path) -> str:
    return pwfile.read_text().strip()


def _connect(node: LocalCluster, dbname: str = DB_NAME) -> psycopg.Connection:
    return psycopg.connect(
        host=HOST, port=node.port, user=DB_USER, password=_password(node.pwfile),
        dbname=dbname, autocommit=True,
    )  # fmt: skip
