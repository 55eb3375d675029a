"""Reliability, a full disk: the data directory on a small filesystem, filled, then an import.

    .venv/bin/python -m benchmarks.reliability disk [--disk-mb 400] [--disk-compounds 150]
                                                    [--disk-import 20000] [--headroom-mb 1]

Needs root (it mounts a tmpfs of --disk-mb under a temporary folder and unmounts it at the
end); otherwise it says so and returns. In that filesystem: a private cluster (its data
directory, WAL included) and titlemap's data directory (uploads). The demo county of
--disk-compounds is loaded, then a filler file takes all but --headroom-mb, and:

1. `titlemap import` of a file of --disk-import new compounds: it must fail with one line
   (exit ≠ 0, no traceback), leave every table as it was and no session behind, and the
   database must answer afterwards (PostgreSQL PANICs when it cannot write its WAL, and
   restarts itself: the harness says when it did);
2. the same import through the web (`POST /api/imports` as an admin): an error answer, not a
   hang, and nothing kept;
3. a file uploaded to a compound (`POST /api/compounds/{code}/files`): refused with a reason,
   no partial file left under files/;
then the filler is removed and the same import runs whole (the file was one it would import).
"""

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

from benchmarks.reliability import COUNTY, database, free_port, libpq, sessions
from benchmarks.reliability.edits import add_option
from benchmarks.reliability.faults import cli_env, fingerprint, import_file
from benchmarks.serve import Process
from geo.db.cluster import LocalCluster

TITLEMAP = Path(__file__).resolve().parent.parent.parent / ".venv" / "bin" / "titlemap"


def add_arguments(parser) -> None:
    add_option(parser, "--disk-mb", type=int, default=400, help="the small filesystem's size")
    add_option(parser, "--disk-compounds", type=int, default=150, help="the county loaded first")
    add_option(parser, "--disk-import", type=int, default=20_000, help="compounds imported")
    add_option(parser, "--headroom-mb", type=float, default=1.0, help="left free by the filler")


def can_mount() -> str | None:
    """Why a tmpfs cannot be mounted here (None: it can): tried on a 1 MB one."""
    if os.geteuid() != 0:
        return "needs root (mount -t tmpfs)"
    if shutil.which("mount") is None:
        return "no mount command"
    probe = Path(tempfile.mkdtemp(prefix="titlemap-mount-probe-"))
    try:
        mount_tmpfs(probe, 1)
    except subprocess.CalledProcessError:
        return "mount -t tmpfs refused here (a container without CAP_SYS_ADMIN?)"
    finally:
        unmount(probe)
        probe.rmdir()
    return None


def mount_tmpfs(where: Path, megabytes: int) -> None:
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0755", "tmpfs",
                    str(where)], check=True, capture_output=True)  # fmt: skip


def unmount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def fill(where: Path, headroom_mb: float) -> Path:
    """A file taking all the free space of `where`'s filesystem but `headroom_mb`."""
    filler = where / "filler"
    free = shutil.disk_usage(where).free - int(headroom_mb * 2**20)
    with open(filler, "wb") as out:
        chunk = b"\0" * 2**20
        while free > 0:
            out.write(chunk[: min(len(chunk), free)])
            free -= len(chunk)
    return filler


def panics(log_folder: Path, since: float) -> int:
    """PANIC lines PostgreSQL wrote to its logs after `since` (a restart after WAL failure)."""
    count = 0
    for path in log_folder.rglob("*.log"):
        if path.stat().st_mtime >= since:
            count += path.read_text(errors="replace").count("PANIC")
    return count


def answers(url_pg: str, limit: float = 30) -> float | None:
    """Seconds until the database answers a query again (None: not within `limit`)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        try:
            with psycopg.connect(url_pg, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return round(time.monotonic() - started, 2)
        except psycopg.Error:
            time.sleep(0.2)
    return None


def cli_import(gpkg: Path, url: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = cli_env(url) | {"TITLEMAP_DATA_DIR": str(data_dir)}
    command = [str(TITLEMAP), "import", str(gpkg), "--layer", "compounds", "--county", COUNTY]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def summary(done: subprocess.CompletedProcess) -> dict:
    text = (done.stdout + done.stderr).strip()
    lines = text.splitlines()
    return {"exit": done.returncode, "last_line": lines[-1][:200] if lines else "",
            "traceback": "Traceback" in text}  # fmt: skip


def web_attempts(url: str, data_dir: Path, gpkg: Path, photo: Path) -> dict:
    """The import and an upload through the served app, disk full."""
    from benchmarks.reliability.hostile import editor_token  # an editor token, private db
    from geo.db.engine import make_engine

    engine = make_engine(url)
    try:
        token = editor_token(engine, role="admin")
    finally:
        engine.dispose()
    env = {"DATABASE_URL": url, "TITLEMAP_COUNTY": COUNTY, "TITLEMAP_DATA_DIR": str(data_dir)}
    port = free_port()
    server = Process("titlemap-disk", [str(TITLEMAP), "serve", "--port", str(port),
                                       "--no-access-log"], env, port, "/health")  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=server.base, timeout=120, headers=headers) as client:
            code = client.get("/api/compounds", params={"limit": 1}).json()["features"][0]
            code = code["properties"]["code"]
            started = time.monotonic()
            with gpkg.open("rb") as f:
                imported = client.post("/api/imports", data={"layer": "compounds"},
                                       files={"file": (gpkg.name, f)})  # fmt: skip
            import_s = time.monotonic() - started
            with photo.open("rb") as f:
                uploaded = client.post(f"/api/compounds/{code}/files",
                                       files={"file": (photo.name, f, "image/jpeg")})  # fmt: skip
        log = Path(server.log.name).read_text(errors="replace")
    finally:
        server.stop()
    files = data_dir / "files"
    return {
        "import": {
            "status": imported.status_code,
            "seconds": round(import_s, 2),
            "detail": imported.text[:300],
        },
        "upload": {"status": uploaded.status_code, "detail": uploaded.text[:300]},
        "files_left": sorted(str(p.relative_to(files)) for p in files.rglob("*") if p.is_file())
        if files.exists()
        else [],
        "tracebacks_in_log": log.count("Traceback"),
    }


def a_photo(folder: Path) -> Path:
    """A JPEG of noise, a few MB: more than the headroom left on the full disk."""
    import numpy as np
    from PIL import Image

    path = folder / "现场照片.jpg"
    noise = np.random.default_rng(1).integers(0, 256, (1500, 2000, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path, quality=95)
    return path


def run(args) -> dict:
    why = can_mount()
    if why:
        print(f"  [disk] skipped: {why}", flush=True)
        return {"ran": False, "why": why}
    folder = Path(tempfile.mkdtemp(prefix="titlemap-reliability-disk-", dir="/tmp"))
    folder.chmod(0o755)
    small = folder / "small"
    mount_tmpfs(small, args.disk_mb)
    cluster = LocalCluster(small / "cluster", free_port(), fsync=False)
    try:
        cluster.ensure_running()
        url = database(cluster, f"disk_{args.disk_compounds}", args.disk_compounds)
        url_pg = libpq(url)
        data_dir = small / "data"
        data_dir.mkdir(mode=0o755)
        gpkg = import_file(args.disk_import, folder)  # on the big disk: only the writes are short
        photo = a_photo(folder)
        before = fingerprint(url_pg)
        filler = fill(small, args.headroom_mb)
        result: dict = {"disk_mb": args.disk_mb, "free_mb_when_full":
                        round(shutil.disk_usage(small).free / 2**20, 2)}  # fmt: skip
        started = time.time()
        result["cli_import"] = summary(cli_import(gpkg, url, data_dir))
        result["cli_import"]["answers_again_after_s"] = answers(url_pg)
        result["cli_import"]["unchanged"] = fingerprint(url_pg) == before
        result["web"] = web_attempts(url, data_dir, gpkg, photo)
        result["web"]["answers_again_after_s"] = answers(url_pg)
        result["web"]["unchanged"] = fingerprint(url_pg) == before
        result["postgres_panics"] = panics(small / "cluster", started)
        with psycopg.connect(url_pg, autocommit=True) as watch:
            result["sessions_left"] = sessions(watch, watch.info.dbname)
        filler.unlink()
        whole = summary(cli_import(gpkg, url, data_dir))
        result["then_whole"] = whole | {"compounds_added": fingerprint(url_pg)["compounds"]
                                        - before["compounds"]}  # fmt: skip
        return result
    finally:
        cluster.stop()
        unmount(small)
        shutil.rmtree(folder, ignore_errors=True)
