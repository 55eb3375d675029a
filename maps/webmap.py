"""The web map (一张图): a folium page whose data all comes from the app's API.

The page holds no features, so it weighs the same for 150 compounds as for 100 000: folium
builds the Leaflet map, its layers (as `titlemap.layer(kind, options)` calls), the layer
control and the legend; titlemap's scripts (`static/titlemap/`, see `SCRIPTS`) draw the
compounds from vector tiles (`/api/tiles/compounds/{z}/{x}/{y}.pbf`), fetch the other layers
as GeoJSON limited to the view, and build the panels — search, filters, date, figures, the
compound card. The parcel-check problem pieces (`/api/checks/parcels/pieces.geojson`) are a
layer that is off at first and fetched when switched on; parcels answer clicks with a link to
their page (`/parcels/{code}`), and the search box finds them by 宗地代码 (`/api/parcels?q=`).
Where the database holds more than one county, the panel offers a county chooser (the list
comes with `/api/map/options`) that opens the map of the chosen one (`/?county=CODE`). The
scale bar is in metres only (county staff measure in metres; folium's own would add feet).

Everything the page loads is served by the app: Leaflet is vendored under `static/vendor/`
and assigned to this map instance (`m.default_js` / `m.default_css`), never folium's CDN
lists. Basemap: none by default (the county's own context layers), Tianditu with a key, or
any XYZ URL (`Basemap`). User text never reaches the HTML: names arrive as JSON and are
written with `textContent`; the markup built in here (the title with the county's name, the
legend's own words) comes from autoescaped templates (`templates/`, see maps.templating).
"""

import hashlib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import folium
from branca.element import Element, MacroElement
from folium.map import Layer
from folium.template import Template
from markupsafe import Markup

from geo import TitlemapError
from geo.core.model import (
    BLOCKER_LABELS,
    FIELD_LABELS,
    LAND_USE_LABELS,
    MEASURES,
    PlannedAreaKind,
)
from maps.styles import (
    COMPLAINT_STYLES,
    CONTEXT_STYLES,
    OVERDUE_MARK,
    OVERLAP_STYLE,
    PIECE_STYLES,
    STATUS_FILL_OPACITY,
    legend,
    piece_legend,
    piece_pattern_svg,
    planned_area_legend,
    web_styles,
)
from maps.templating import render

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_URL = "/static"
# titlemap's own scripts under static/titlemap/, in the page's order: each uses what the
# earlier ones put on the one `titlemap` namespace (core.js says what each holds).
SCRIPTS = ("core", "layers", "parcels", "card", "edit", "tasks", "files", "filters", "charts",
           "main")  # fmt: skip
PARCELS_FROM_ZOOM = 15  # parcels are drawn from this zoom level on
PINS_BELOW_ZOOM = 16  # problem pieces get a pin below this zoom (a few m² vanish otherwise)
PROBLEMS_TITLE = "宗地核查问题 / parcel check problems"
LAYER_BUDGET = 3000  # features a layer fetched by view may bring at once
PANEL_PADDING = (330, 10, 10, 10)  # left, top, right, bottom: the first view clears the panel
TIANDITU_URL = (
    "https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}"
    "&TILECOL={{x}}&tk={key}"
)
# What the overlap layer shows: the planning area (城市规划区) holds every compound.
OVERLAP_KINDS = [k.value for k in PlannedAreaKind if k != PlannedAreaKind.PLANNING_AREA]


@dataclass(frozen=True)
class Basemap:
    """What lies under the county's own layers: nothing, Tianditu (with a key) or XYZ tiles."""

    kind: str = "none"  # none / tianditu / xyz
    url: str | None = None
    key: str | None = None
    attribution: str | None = None
    max_zoom: int = 18

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Basemap":
        """TITLEMAP_BASEMAP = none | tianditu | an XYZ URL with {z}/{x}/{y};
        TITLEMAP_TIANDITU_KEY (tk) for Tianditu; TITLEMAP_BASEMAP_ATTRIBUTION for XYZ."""
        env = os.environ if environ is None else environ
        value = (env.get("TITLEMAP_BASEMAP") or "none").strip()
        attribution = env.get("TITLEMAP_BASEMAP_ATTRIBUTION") or None
        if value.lower() in ("", "none", "无"):
            return cls()
        if value.lower() == "tianditu":
            return cls.tianditu(env.get("TITLEMAP_TIANDITU_KEY", ""))
        return cls.xyz(value, attribution)

    @classmethod
    def tianditu(cls, key: str) -> "Basemap":
        key = (key or "").strip()
        if not key.isalnum():
            raise TitlemapError(
                "天地图需要密钥 / Tianditu needs a key: 设置 TITLEMAP_TIANDITU_KEY（在 "
                "console.tianditu.gov.cn 申请）/ set TITLEMAP_TIANDITU_KEY"
            )
        return cls("tianditu", key=key, attribution="天地图 © 国家地理信息公共服务平台")

    @classmethod
    def xyz(cls, url: str, attribution: str | None = None) -> "Basemap":
        if not url.startswith(("http://", "https://", "/")) or not all(
            part in url for part in ("{z}", "{x}", "{y}")
        ):
            raise TitlemapError(
                f"底图地址应为含 {{z}}/{{x}}/{{y}} 的 XYZ 地址 / TITLEMAP_BASEMAP must be none, "
                f"tianditu or an XYZ URL with {{z}}, {{x}}, {{y}}: {url!r}"
            )
        return cls("xyz", url=url, attribution=attribution or "底图 / basemap")


@cache
def _version(relative: str) -> str:
    return hashlib.sha256((STATIC_DIR / relative).read_bytes()).hexdigest()[:12]


def static_url(relative: str) -> str:
    """The app's URL of a file under maps/static, with its content hash for caching."""
    return f"{STATIC_URL}/{relative}?v={_version(relative)}"


def local_assets() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(js, css) lists for a map instance: Leaflet and titlemap's own, all from the app."""
    js = [
        ("leaflet", static_url("vendor/leaflet/leaflet.js")),
        ("titlemap_mvt", static_url("titlemap/mvt.js")),
        *((f"titlemap_{name}", static_url(f"titlemap/{name}.js")) for name in SCRIPTS),
    ]
    css = [
        ("leaflet_css", static_url("vendor/leaflet/leaflet.css")),
        ("titlemap_css", static_url("titlemap/titlemap.css")),
        ("titlemap_work_css", static_url("titlemap/work.css")),
    ]
    return js, css


class _Call(MacroElement):
    """One `titlemap.<function>(map, options)` line in the page script."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        titlemap.{{ this.function }}({{ this._parent.get_name() }}, {{ this.options|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, function: str, options: Any):
        super().__init__()
        self._name = "TitlemapCall"
        self.function = function
        self.options = options


class TitlemapLayer(Layer):
    """A layer made by titlemap.layer (`kind`: compounds, geojson, empty), in the layer control."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = titlemap.layer(
            {{ this.kind|tojson }}, {{ this.options|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, kind: str, name: str, options: dict, show: bool = True, overlay=True):
        super().__init__(name=name, overlay=overlay, control=True, show=show)
        self._name = "TitlemapLayer"
        self.kind = kind
        self.options = options


def legend_html() -> str:
    """The legend (图例) from maps.styles: statuses (with counts filled in by the script),
    planned areas, overlaps, complaints, context layers."""
    patterns = "".join(piece_pattern_svg(f"tm-piece-{kind}", kind) for kind in PIECE_STYLES)
    return render(
        "legend.html",
        statuses=legend(),
        status_opacity=STATUS_FILL_OPACITY,
        overdue=OVERDUE_MARK,
        planned=planned_area_legend(),
        overlap=OVERLAP_STYLE,
        problems_title=PROBLEMS_TITLE,
        patterns=Markup(patterns),  # made by our own template, escaped there
        pieces=piece_legend(),
        pins_below_zoom=PINS_BELOW_ZOOM,
        complaints=list(COMPLAINT_STYLES.values()),
        context_layers=list(CONTEXT_STYLES.values()),
    )


def page_config(county: str) -> dict:
    """What the script needs besides data: the API's paths, styles and words."""
    return {
        "county": county,
        "api": {
            "options": "/api/map/options",
            "tiles": "/api/tiles/{layer}/{z}/{x}/{y}.pbf",
            "layers": "/api/layers/{layer}",
            "compounds": "/api/compounds",
            "summary": "/api/compounds/summary",
            "card": "/api/compounds/{code}/card",
            "overlaps": "/api/overlaps",
            "overlaps_xlsx": "/api/overlaps.xlsx",
            "stats": "/api/stats",
            "burndown": "/api/stats/burndown",
            "ledger_xlsx": "/api/exports/ledger.xlsx",
            "pieces": "/api/checks/parcels/pieces.geojson",
            "parcels": "/api/parcels",
            "parcel_page": "/parcels/{code}",
        },
        "styles": web_styles(),
        "labels": {
            "fields": FIELD_LABELS,
            "blockers": {b.value: label for b, label in BLOCKER_LABELS.items()},
            "land_use": LAND_USE_LABELS,
            "measures": list(MEASURES),
        },
        "overlap_kinds": OVERLAP_KINDS,
        "parcels_from_zoom": PARCELS_FROM_ZOOM,
        "pins_below_zoom": PINS_BELOW_ZOOM,
    }


def _add_basemap(m: folium.Map, basemap: Basemap) -> None:
    if basemap.kind == "none":
        return
    TitlemapLayer("empty", "无底图（本县图层）", {}, show=False, overlay=False).add_to(m)
    if basemap.kind == "tianditu":
        for layer, name, show in (("vec", "天地图矢量", True), ("img", "天地图影像", False)):
            folium.TileLayer(
                tiles=TIANDITU_URL.format(layer=layer, key=basemap.key),
                attr=basemap.attribution,
                name=name,
                subdomains="01234567",
                min_zoom=1,
                max_zoom=basemap.max_zoom,
                show=show,
                overlay=False,
            ).add_to(m)
        folium.TileLayer(
            tiles=TIANDITU_URL.format(layer="cva", key=basemap.key),
            attr=basemap.attribution,
            name="天地图注记",
            subdomains="01234567",
            min_zoom=1,
            max_zoom=basemap.max_zoom,
            overlay=True,
        ).add_to(m)
    else:
        folium.TileLayer(
            tiles=basemap.url,
            attr=basemap.attribution,
            name="底图",
            max_zoom=basemap.max_zoom,
            overlay=False,
        ).add_to(m)


def min_zoom_for(
    count: int, extent: list[float] | None, budget: int = LAYER_BUDGET, view=(1280, 800)
) -> int:
    """The lowest zoom at which a screen of the county holds ≲ `budget` of `count` features
    spread over `extent`: below it a bbox layer would fetch too much to be any use."""
    if count <= budget or not extent:
        return 0
    minx, miny, maxx, maxy = extent
    width, height = max(maxx - minx, 1e-6), max(maxy - miny, 1e-6)
    shrink = math.cos(math.radians((miny + maxy) / 2))
    for zoom in range(0, 21):
        degrees = 360 / (256 * 2**zoom)
        share = min(1, view[0] * degrees / width) * min(1, view[1] * degrees * shrink / height)
        if count * share <= budget:
            return zoom
    return 20


def first_zoom(extent: list[float] | None, view=(1280, 800), padding=PANEL_PADDING) -> int | None:
    """The zoom the page's first view will likely have (Leaflet's fitBounds of `extent` in a
    `view`-sized window, the panel's room left out) — for warming the server's tile cache."""
    if not extent:
        return None
    minx, miny, maxx, maxy = extent

    def y(lat: float) -> float:
        lat = max(min(lat, 85.05), -85.05)
        return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))

    width = max((maxx - minx) / 360 * 256, 1e-12)  # pixels at zoom 0
    height = max((y(maxy) - y(miny)) / (2 * math.pi) * 256, 1e-12)
    room_x, room_y = view[0] - padding[0] - padding[2], view[1] - padding[1] - padding[3]
    return max(0, min(20, math.floor(math.log2(min(room_x / width, room_y / height)))))


def build_map(
    county: str,
    county_name: str,
    extent: list[float] | None,
    basemap: Basemap | None = None,
    counts: Mapping[str, int] | None = None,
) -> folium.Map:
    """The folium map of one county; `extent` ([minx, miny, maxx, maxy]) is the first view.

    `counts` (compounds, parcels, complaints) set the zoom from which the layers fetched by
    view appear, so a county of 100 000 compounds does not fetch them all at once."""
    basemap = basemap or Basemap()
    counts = counts or {}
    zooms = {
        "parcels": max(PARCELS_FROM_ZOOM, min_zoom_for(counts.get("parcels", 0), extent)),
        "overlaps": min_zoom_for(counts.get("compounds", 0), extent),
        "complaints": min_zoom_for(counts.get("complaints", 0), extent),
    }
    minx, miny, maxx, maxy = extent or (73.5, 18.0, 135.0, 53.5)
    m = folium.Map(
        location=[(miny + maxy) / 2, (minx + maxx) / 2],
        zoom_start=12,
        tiles=None,
        control_scale=False,  # folium's scale bar shows feet too: main.js adds a metric one
        prefer_canvas=True,
        max_zoom=20,
        min_zoom=3,
    )
    js, css = local_assets()
    m.default_js = js  # this map's own lists: folium's module-level ones point at CDNs
    m.default_css = css
    root = m.get_root()
    root.header.add_child(Element(render("title.html", county_name=county_name)))
    root.header.add_child(Element('<meta name="referrer" content="no-referrer">'))
    root.header.add_child(Element('<link rel="icon" href="data:,">'))  # no /favicon.ico request
    # titlemap.start fits the map to `extent` at once (no animation), before any layer exists,
    # so no tile is fetched for a view never shown.
    start = page_config(county) | {"extent": [minx, miny, maxx, maxy], "padding": PANEL_PADDING}
    _Call("start", start).add_to(m)
    _add_basemap(m, basemap)
    layers = (
        ("boundary", "县界", {}),
        ("townships", "乡镇（街道）", {}),
        ("context", "河流、道路", {}),
        ("compounds", "小区（按化解状态）", {}),
        ("parcels", "宗地", {"min_zoom": zooms["parcels"], "bbox": True}),
        ("planned", "规划片区", {}),
        (
            "overlaps",
            "重叠部分（小区×规划片区）",
            {"bbox": True, "filtered": True, "min_zoom": zooms["overlaps"]},
        ),
        ("complaints", "留言投诉", {"bbox": True, "min_zoom": zooms["complaints"]}),
    )
    for name, title, options in layers:
        kind = "compounds" if name == "compounds" else "geojson"
        TitlemapLayer(kind, title, {"layer": name, "title": title, **options}).add_to(m)
    # Off at first: the county's batch run costs seconds; it runs when switched on.
    problems = {"layer": "problems", "title": PROBLEMS_TITLE}
    TitlemapLayer("problems", PROBLEMS_TITLE, problems, show=False).add_to(m)
    folium.LayerControl(position="topright", collapsed=True).add_to(m)
    root.html.add_child(Element(legend_html()))
    _Call("ready", {}).add_to(m)
    return m


def render_page(
    county: str,
    county_name: str,
    extent: list[float] | None,
    basemap: Basemap | None = None,
    counts: Mapping[str, int] | None = None,
) -> str:
    """The whole HTML page."""
    return build_map(county, county_name, extent, basemap, counts).get_root().render()
