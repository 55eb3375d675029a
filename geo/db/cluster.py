"""The private PostgreSQL + PostGIS cluster titlemap starts when no DATABASE_URL is given.

Layout of the data directory:
    pg/        the cluster (PGDATA)
    run/       its unix socket (kept short: the socket path limit is ~107 bytes)
    pg.log     the server log
    password   the generated password of the `titlemap` role (mode 600): owns the tables,
               runs migrations and the command line
    app_password  that of `titlemap_app`, the role the web app connects as: no DDL, and
               only SELECT and INSERT on the audit log (geo.db.schema.grant_app_role)

As root, the server binaries run as the `postgres` user (initdb refuses root), so that user
owns pg/, run/ and pg.log, and must be able to reach the data directory.
"""

import fcntl
import os
import pwd
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from geo import TitlemapError

DB_NAME = "titlemap"
DB_USER = "titlemap"
APP_USER = "titlemap_app"
INSTALL_HINT = "sudo apt-get install postgresql-postgis（或运行 make run / or run make run）"


def find_pg_bin(configured: Path | None = None) -> Path:
    """The directory holding initdb/pg_ctl: configured, Debian's newest, or on PATH."""
    if configured:
        if not (configured / "pg_ctl").exists():
            raise TitlemapError(f"TITLEMAP_PG_BIN={configured} 下没有 pg_ctl / no pg_ctl there")
        return configured
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if debian:
        return debian[-1].parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    raise TitlemapError(f"未找到 PostgreSQL 服务器 / PostgreSQL server not found: {INSTALL_HINT}")


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


@dataclass
class ClusterStatus:
    initialised: bool
    running: bool
    port: int | None
    data_dir: Path

    def describe(self) -> str:
        if not self.initialised:
            return f"未初始化 / not initialised ({self.data_dir})"
        if not self.running:
            return f"已停止 / stopped ({self.data_dir})"
        return f"运行中 / running on 127.0.0.1:{self.port} ({self.data_dir})"


class LocalCluster:
    """Create, start, stop and describe the private cluster in `data_dir`."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        pg_bin: Path | None = None,
        fsync: bool = True,
        settings: tuple[str, ...] = (),
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self._pg_bin = pg_bin
        self.fsync = fsync
        self.settings = settings  # more postgresql.conf lines, e.g. a Citus node's (geo.db.citus)
        self.pgdata = self.data_dir / "pg"
        self.sockdir = self.data_dir / "run"
        self.logfile = self.data_dir / "pg.log"
        self.pwfile = self.data_dir / "password"
        self.app_pwfile = self.data_dir / "app_password"
        self.as_postgres = os.geteuid() == 0

    # -- facts -------------------------------------------------------------------------------

    @property
    def pg_bin(self) -> Path:
        if self._pg_bin is None or not (self._pg_bin / "pg_ctl").exists():
            self._pg_bin = find_pg_bin(self._pg_bin)
        return self._pg_bin

    def status(self) -> ClusterStatus:
        initialised = (self.pgdata / "PG_VERSION").exists()
        port = self._running_port() if initialised else None
        return ClusterStatus(initialised, port is not None, port, self.data_dir)

    def url(self) -> str:
        password = quote(self.pwfile.read_text().strip(), safe="")
        port = self._running_port() or self.port
        return f"postgresql+psycopg://{DB_USER}:{password}@127.0.0.1:{port}/{DB_NAME}"

    def app_url(self) -> str:
        """The URL of the web app's own role (created on first use)."""
        if not self.app_pwfile.exists():
            self._ensure_app_role()
        password = quote(self.app_pwfile.read_text().strip(), safe="")
        port = self._running_port() or self.port
        return f"postgresql+psycopg://{APP_USER}:{password}@127.0.0.1:{port}/{DB_NAME}"

    # -- actions -----------------------------------------------------------------------------

    def ensure_running(self) -> str:
        """Initialise if needed, start if stopped; return the SQLAlchemy URL."""
        self._check_data_dir()
        with self._lock():
            if not (self.pgdata / "PG_VERSION").exists():
                self._initdb()
            if self._running_port() is None:
                self._start()
        return self.url()

    def stop(self) -> bool:
        """Stop the server; False if it was not running."""
        if self._running_port() is None:
            return False
        self._run([self.pg_bin / "pg_ctl", "stop", "-D", self.pgdata, "-m", "fast", "-w"])
        return True

    # -- internals ---------------------------------------------------------------------------

    def _check_data_dir(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            probe = self.data_dir / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise TitlemapError(
                f"数据目录不可写 / data directory not writable: {self.data_dir} ({exc.strerror})；"
                "请设置 TITLEMAP_DATA_DIR 为可写目录 / set TITLEMAP_DATA_DIR to a writable folder"
            ) from None
        if self.as_postgres:
            self.data_dir.chmod(0o755)
            ok = subprocess.run(
                ["runuser", "-u", "postgres", "--", "test", "-x", str(self.data_dir)],
                capture_output=True,
            )
            if ok.returncode != 0:
                raise TitlemapError(
                    f"postgres 用户进不了数据目录 / the postgres user cannot reach {self.data_dir}"
                    "（如 /root 之下 / e.g. under /root）：设置 TITLEMAP_DATA_DIR=/var/lib/titlemap"
                )

    @contextmanager
    def _lock(self) -> Iterator[None]:
        # Two commands starting the cluster at once must not both run initdb.
        with open(self.data_dir / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _owned(self, path: Path, directory: bool = True) -> None:
        """Create a path the server user owns."""
        if directory:
            path.mkdir(mode=0o700, exist_ok=True)
        else:
            path.touch(mode=0o600, exist_ok=True)
        if self.as_postgres:
            entry = pwd.getpwnam("postgres")
            shutil.chown(path, entry.pw_uid, entry.pw_gid)

    def _run(self, args: list, **kwargs) -> subprocess.CompletedProcess:
        command = [str(a) for a in args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, **kwargs)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            last = detail[-1] if detail else f"exit {result.returncode}"
            raise TitlemapError(f"{Path(command[-len(args)]).name} 失败 / failed: {last}")
        return result

    def _initdb(self) -> None:
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise TitlemapError(
                f"{self.pgdata} 不是空目录也不是数据库集群 / not empty and not a cluster: "
                "请移走它 / move it away"
            )
        password = secrets.token_urlsafe(24)
        self.pwfile.write_text(password + "\n")
        self.pwfile.chmod(0o600)
        self._owned(self.pgdata)
        self._owned(self.sockdir)
        self._owned(self.logfile, directory=False)
        # initdb reads the password from a file the server user can read; removed right after.
        init_pw = self.sockdir / "initpw"
        self._owned(init_pw, directory=False)
        init_pw.write_text(password + "\n")
        try:
            self._run(
                [
                    self.pg_bin / "initdb",
                    "-D", self.pgdata,
                    "-U", DB_USER,
                    f"--pwfile={init_pw}",
                    "--auth=scram-sha-256",
                    "-E", "UTF8",
                    "--locale=C",
                ]
            )  # fmt: skip
        finally:
            init_pw.unlink(missing_ok=True)
        settings = [
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.sockdir}'",
            "max_connections = 50",
            "shared_buffers = 256MB",
        ]
        if not self.fsync:
            settings += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        settings += self.settings
        with open(self.pgdata / "postgresql.auto.conf", "a") as conf:
            conf.write("\n# titlemap\n" + "\n".join(settings) + "\n")

    def _start(self) -> None:
        if not port_is_free(self.port):
            raise TitlemapError(
                f"端口 {self.port} 已被占用 / port {self.port} is taken："
                "请设置 TITLEMAP_PG_PORT 为空闲端口 / set TITLEMAP_PG_PORT to a free port"
            )
        self._owned(self.sockdir)
        self._owned(self.logfile, directory=False)
        self._run(
            [
                self.pg_bin / "pg_ctl", "start", "-D", self.pgdata, "-w", "-t", "60",
                "-l", self.logfile, "-o", f"-p {self.port}",
            ]
        )  # fmt: skip
        self._create_database()

    def _create_database(self) -> None:
        import psycopg

        password = self.pwfile.read_text().strip()
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=DB_USER, password=password,
            dbname="postgres", autocommit=True,
        ) as conn:  # fmt: skip
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME])
            if exists.fetchone() is None:
                conn.execute(f'CREATE DATABASE "{DB_NAME}"')
        if not self.app_pwfile.exists():
            self._ensure_app_role()

    def _ensure_app_role(self) -> None:
        """The web app's login role, without superuser or DDL rights; its password is set
        afresh with the file, so the two always agree."""
        import psycopg
        from psycopg import sql

        password = secrets.token_urlsafe(24)
        with psycopg.connect(
            host="127.0.0.1", port=self._running_port() or self.port, user=DB_USER,
            password=self.pwfile.read_text().strip(), dbname="postgres", autocommit=True,
        ) as conn:  # fmt: skip
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [APP_USER])
            verb = "ALTER" if exists.fetchone() else "CREATE"
            conn.execute(
                sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                    sql.SQL(verb), sql.Identifier(APP_USER), sql.Literal(password)
                )
            )
        self.app_pwfile.write_text(password + "\n")
        self.app_pwfile.chmod(0o600)

    def _running_port(self) -> int | None:
        """The port of the live server, read from postmaster.pid; None if it is not running."""
        pidfile = self.pgdata / "postmaster.pid"
        try:
            lines = pidfile.read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, owned by postgres
        return port
