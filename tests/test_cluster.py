"""The private local cluster: start, reuse, stop, and one-line errors for bad configuration."""

import shutil
import socket
import tempfile
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url

from geo import TitlemapError
from geo.db.cluster import LocalCluster, find_pg_bin
from tests.conftest import free_port


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def scratch_cluster():
    folder = Path(tempfile.mkdtemp(prefix="titlemap-scratch-", dir="/tmp"))
    local = LocalCluster(folder, free_port(), fsync=False)
    yield local
    local.stop()
    shutil.rmtree(folder, ignore_errors=True)


def test_session_cluster_is_running_and_reachable(cluster):
    status = cluster.status()
    assert status.initialised and status.running
    assert status.port == cluster.port
    with psycopg.connect(libpq(cluster.url())) as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0] == "titlemap"


def test_ensure_running_reuses_the_live_server(cluster):
    pid_before = (cluster.pgdata / "postmaster.pid").read_text().splitlines()[0]
    password_before = cluster.pwfile.read_text()
    cluster.ensure_running()
    assert (cluster.pgdata / "postmaster.pid").read_text().splitlines()[0] == pid_before
    assert cluster.pwfile.read_text() == password_before


def test_stop_then_start_keeps_the_data(scratch_cluster):
    url = libpq(scratch_cluster.ensure_running())
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (42)")
    assert scratch_cluster.stop() is True
    assert scratch_cluster.status().running is False
    assert scratch_cluster.stop() is False
    scratch_cluster.ensure_running()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT x FROM kept").fetchone()[0] == 42


def test_password_file_is_private(cluster):
    assert cluster.pwfile.stat().st_mode & 0o077 == 0


def test_port_taken_is_one_clear_line(scratch_cluster):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", scratch_cluster.port))
        squatter.listen()
        with pytest.raises(TitlemapError) as error:
            scratch_cluster.ensure_running()
    message = str(error.value)
    assert str(scratch_cluster.port) in message and "TITLEMAP_PG_PORT" in message
    assert "\n" not in message


@pytest.mark.parametrize("place", ["/proc/titlemap-data", "/dev/null/titlemap-data"])
def test_unwritable_data_dir_is_one_clear_line(place):
    with pytest.raises(TitlemapError) as error:
        LocalCluster(Path(place), free_port()).ensure_running()
    message = str(error.value)
    assert place in message and "TITLEMAP_DATA_DIR" in message
    assert "\n" not in message


def test_wrong_pg_bin_names_the_setting(tmp_path):
    with pytest.raises(TitlemapError, match="TITLEMAP_PG_BIN"):
        find_pg_bin(tmp_path)


def test_non_cluster_folder_is_not_overwritten(tmp_path_factory):
    folder = Path(tempfile.mkdtemp(prefix="titlemap-foreign-", dir="/tmp"))
    try:
        (folder / "pg").mkdir()
        (folder / "pg" / "precious.txt").write_text("keep me")
        with pytest.raises(TitlemapError, match="not empty"):
            LocalCluster(folder, free_port()).ensure_running()
        assert (folder / "pg" / "precious.txt").read_text() == "keep me"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
