"""Benchmark: the web map's first render and page weight, titlemap vs a plain folium page.

    .venv/bin/python benchmarks/map.py [--sizes 150,100000] [--runs 5] [--keep DIR]
                                        [--plain-timeout 300] [--json FILE] [--url SIZE=URL]

For each county size it generates the demo county (seed 1), loads it into a private PostGIS
cluster under /tmp (or DIR with --keep, which then keeps the cluster and reuses the loaded
counties on the next run; `--url 100000=postgresql://…` uses a database already holding
that county instead), serves the app with uvicorn on 127.0.0.1 and opens, in headless
Chromium (/usr/bin/chromium, a fresh browser context each run):

- titlemap's page `/` — the compounds drawn from vector tiles, the rest fetched by view;
- the reference: a plain folium page of the same compounds (`folium.GeoJson` of every compound
  with its status colour, folium's defaults otherwise, Leaflet from the app instead of the CDN
  so both pages run offline), served as a file by the same server.

First render = from navigation start to the first frame painted after the compounds are drawn
(titlemap: the compound layer's first `load`; plain: the `load` event). Page weight = the HTML
document, and all bytes transferred until first render. Run 1 of titlemap meets a cold tile
cache (the server just started); the median is over the later runs. Targets at 100 000
compounds: first render ≤ 2 s, HTML ≤ 2 MB.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import folium
import psycopg
import uvicorn
from fastapi.responses import FileResponse
from sqlalchemy import make_url, text

from api.app import create_app
from geo import demo as demo_county
from geo.core.settings import Settings
from geo.db.cluster import LocalCluster
from geo.db.engine import make_engine
from geo.db.schema import upgrade
from geo.io.load import load_county
from maps.styles import STATUS_COLOURS
from maps.webmap import Basemap, local_assets

TARGET_RENDER_MS = 2000
TARGET_HTML_BYTES = 2 * 1024 * 1024
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]  # fmt: skip
AFTER_PAINT = "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(0))))"
WEIGHT = """(until => {
  const nav = performance.getEntriesByType('navigation')[0];
  const res = performance.getEntriesByType('resource').filter(e => e.responseEnd <= until);
  return {html: nav.encodedBodySize, html_decoded: nav.decodedBodySize,
          bytes: nav.transferSize + res.reduce((s, e) => s + e.transferSize, 0),
          requests: 1 + res.length};
})"""


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def machine() -> dict:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 // 1024
    chromium = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "chromium": chromium.strip(),
        "folium": folium.__version__,
        "load_average": os.getloadavg()[0],
    }


def database(cluster: LocalCluster, name: str, size: int) -> str:
    """The URL of a database holding the demo county of `size` compounds (loaded if needed)."""
    admin = make_url(cluster.url()).set(drivername="postgresql", database="postgres")
    url = make_url(cluster.url()).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(url)
    upgrade(engine)
    with engine.connect() as conn:
        have = conn.execute(text("SELECT count(*) FROM compound")).scalar_one()
    if have != size:
        started = time.perf_counter()
        county = demo_county.generate(size, 1)
        print(f"  generated {size} compounds in {time.perf_counter() - started:.0f} s", flush=True)
        started = time.perf_counter()
        load_county(engine, county, replace=True)
        print(f"  loaded in {time.perf_counter() - started:.0f} s", flush=True)
        # settle the fresh tables now, so autovacuum does not run during the measurements
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return url


def plain_folium_page(engine, path: Path) -> int:
    """The reference page: every compound in one folium.GeoJson, coloured by status."""
    with engine.connect() as conn:
        body = conn.execute(
            text("""
                SELECT json_build_object('type', 'FeatureCollection', 'features', json_agg(
                    json_build_object('type', 'Feature',
                        'geometry', ST_AsGeoJSON(c.geom, 7)::json,
                        'properties', json_build_object('code', c.code, 'name', c.name,
                            'status', coalesce(e.status, 'not_on_ledger')))))::text
                FROM compound c LEFT JOIN ledger_entry e ON e.compound_id = c.id
            """)
        ).scalar_one()
    data = json.loads(body)
    xs = [pt[0] for f in data["features"] for pt in f["geometry"]["coordinates"][0][0]]
    ys = [pt[1] for f in data["features"] for pt in f["geometry"]["coordinates"][0][0]]
    m = folium.Map(tiles=None, location=[sum(ys) / len(ys), sum(xs) / len(xs)], zoom_start=12)
    js, css = local_assets()
    m.default_js = [js[0]]  # Leaflet from the app, so the reference runs offline too
    m.default_css = [css[0]]
    folium.GeoJson(
        data,
        name="小区",
        style_function=lambda f: {
            "fillColor": STATUS_COLOURS[f["properties"]["status"]],
            "color": "#333333",
            "weight": 0.6,
            "fillOpacity": 0.75,
        },
        tooltip=folium.GeoJsonTooltip(["name"]),
    ).add_to(m)
    m.fit_bounds([[min(ys), min(xs)], [max(ys), max(xs)]])
    m.save(str(path))
    return path.stat().st_size


class Server:
    """The app under uvicorn in a process of its own, as `titlemap serve` runs it (in this
    process it would share the interpreter lock with the browser's driver)."""

    def __init__(self, url: str, plain: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", url, str(self.port), str(plain)]
        )
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.base + "/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("the app did not start")
            time.sleep(0.1)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=20)


def serve(url: str, port: int, plain: Path) -> None:
    engine = make_engine(url)
    uvicorn.run(make_app(engine, plain), host="127.0.0.1", port=port, log_level="warning")


def make_app(engine, plain: Path):
    app = create_app(Settings(), engine)
    if not any(getattr(route, "path", None) == "/" for route in app.routes):
        from api.routers import web

        app.include_router(web.router)
    app.state.basemap = Basemap()
    app.add_api_route("/plain.html", lambda: FileResponse(plain, media_type="text/html"))
    return app


def measure_titlemap(browser, base: str) -> dict:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        page.goto(base + "/", wait_until="commit")
        page.wait_for_function(
            "window.titlemap && titlemap.app && titlemap.app.timing.firstRender !== null",
            timeout=120_000,
        )
        page.evaluate(AFTER_PAINT)
        painted = page.evaluate("performance.now()")
        first = page.evaluate("titlemap.app.timing.firstRender")
        weight = page.evaluate(WEIGHT + f"({first})")
        drawn = page.evaluate("titlemap.app.drawn()")
        page.wait_for_function("titlemap.app.idle()", timeout=120_000)
        return {
            "first_render_ms": round(first),
            "painted_ms": round(painted),
            "compounds_drawn": len(drawn["codes"]) + drawn["counted"],
            **weight,
        }
    finally:
        context.close()


def measure_plain(browser, base: str, timeout_s: float) -> dict:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        page.goto(base + "/plain.html", wait_until="load", timeout=timeout_s * 1000)
        page.evaluate(AFTER_PAINT)
        painted = page.evaluate("performance.now()")
        weight = page.evaluate(WEIGHT + f"({painted})")
        drawn = page.evaluate("document.querySelectorAll('path.leaflet-interactive').length")
        return {"first_render_ms": round(painted), "compounds_drawn": drawn, **weight}
    except Exception as exc:  # a timeout or a crashed tab is the result
        return {"first_render_ms": None, "error": str(exc).splitlines()[0][:200]}
    finally:
        context.close()


def run_size(cluster, browser, size, runs, plain_timeout, folder: Path, url: str | None):
    print(f"\n== {size} compounds", flush=True)
    url = url or database(cluster(), f"bench_map_{size}", size)
    engine = make_engine(url)
    plain = folder / f"plain_{size}.html"
    started = time.perf_counter()
    plain_bytes = plain_folium_page(engine, plain)
    print(f"  plain folium page: {plain_bytes / 1e6:.1f} MB built in "
          f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
    engine.dispose()
    server = Server(url, plain)  # answered /health: connections up, tile cache cold
    try:
        ours = []
        for run in range(runs):
            ours.append(measure_titlemap(browser, server.base))
            print(f"  titlemap run {run + 1}: {ours[-1]}", flush=True)
        reference = measure_plain(browser, server.base, plain_timeout)
        print(f"  plain folium: {reference}", flush=True)
    finally:
        server.stop()
    warm = ours[1:] or ours
    return {
        "compounds": size,
        "titlemap": {
            "cold_first_render_ms": ours[0]["first_render_ms"],
            "first_render_ms": round(statistics.median(r["first_render_ms"] for r in warm)),
            "html_bytes": ours[0]["html"],
            "html_decoded_bytes": ours[0]["html_decoded"],
            "bytes_until_render": ours[0]["bytes"],
            "requests_until_render": ours[0]["requests"],
            "compounds_drawn": ours[0]["compounds_drawn"],
            "runs": ours,
        },
        "plain_folium": reference | {"html_file_bytes": plain_bytes},
    }


def report(results: list[dict], info: dict) -> str:
    lines = [
        f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB; {info['os']}; "
        f"{info['chromium']}; folium {info['folium']}; load average at start "
        f"{info['load_average']:.1f}",
        "",
        "| compounds | page | first render | HTML | bytes until render | requests |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for r in results:
        t, p = r["titlemap"], r["plain_folium"]
        lines.append(
            f"| {r['compounds']:,} | titlemap | {t['first_render_ms']:,} ms "
            f"(cold {t['cold_first_render_ms']:,} ms) | {t['html_decoded_bytes'] / 1024:.0f} KB"
            f" | {t['bytes_until_render'] / 1024:.0f} KB | {t['requests_until_render']} |"
        )
        if p.get("first_render_ms") is None:
            render = f"no render ({p.get('error', '?')})"
            transferred, requests = "—", "—"
        else:
            render = f"{p['first_render_ms']:,} ms"
            transferred, requests = f"{p['bytes'] / 1024:,.0f} KB", str(p["requests"])
        lines.append(
            f"| {r['compounds']:,} | plain folium GeoJson | {render} | "
            f"{p['html_file_bytes'] / 1024:,.0f} KB | {transferred} | {requests} |"
        )
        if p.get("first_render_ms"):
            lines.append(
                f"| | ratio plain ÷ titlemap | "
                f"{p['first_render_ms'] / t['first_render_ms']:.1f}× | "
                f"{p['html_file_bytes'] / t['html_decoded_bytes']:.0f}× | | |"
            )
    big = [r for r in results if r["compounds"] >= 100_000]
    for r in big:
        t = r["titlemap"]
        ok_render = max(t["first_render_ms"], t["cold_first_render_ms"]) <= TARGET_RENDER_MS
        ok_html = t["html_decoded_bytes"] <= TARGET_HTML_BYTES
        lines.append(
            f"\ntargets at {r['compounds']:,}: first render ≤ 2 s "
            f"{'met' if ok_render else 'MISSED'}, HTML ≤ 2 MB {'met' if ok_html else 'MISSED'}"
        )
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="150,100000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="keep the cluster (and loaded counties) here")
    parser.add_argument("--plain-timeout", type=float, default=300)
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--url", action="append", default=[], help="SIZE=URL: use this database")
    args = parser.parse_args()
    urls = {int(k): v for k, v in (item.split("=", 1) for item in args.url)}
    from playwright.sync_api import sync_playwright

    info = machine()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="titlemap-bench-map-", dir="/tmp"))
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)  # as root, the cluster inside runs as the postgres user
    local = LocalCluster(folder / "cluster", free_port(), fsync=False)
    started = []

    def cluster() -> LocalCluster:
        if not started:
            local.ensure_running()
            started.append(True)
        return local

    results = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for size in (int(s) for s in args.sizes.split(",")):
                    results.append(
                        run_size(cluster, browser, size, args.runs, args.plain_timeout, folder,
                                 urls.get(size))
                    )  # fmt: skip
            finally:
                browser.close()
    finally:
        if started:
            local.stop()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    text_report = report(results, info)
    print("\n" + text_report)
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "results": results}, indent=1))


if __name__ == "__main__":
    main()
