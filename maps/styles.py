"""The one status palette for web and print (Okabe-Ito: safe for colour-blind readers)."""

from geo.checks.report import CHECKS
from geo.core.model import PLANNED_AREA_LABELS, STATUS_LABELS, LedgerStatus, PlannedAreaKind
from geo.query.compounds import NOT_ON_LEDGER
from maps.templating import render

STATUS_COLOURS = {
    LedgerStatus.NOT_STARTED.value: "#D55E00",  # vermillion
    LedgerStatus.STALLED.value: "#CC79A7",  # reddish purple
    LedgerStatus.IN_PROGRESS.value: "#E69F00",  # orange
    LedgerStatus.FIRST_REGISTERED.value: "#56B4E9",  # sky blue
    LedgerStatus.CLOSED.value: "#009E73",  # bluish green
    NOT_ON_LEDGER: "#999999",
}


def legend() -> list[tuple[str, str, str]]:
    """(status, Chinese label, colour) in the order a legend lists them."""
    labels = {s.value: label for s, label in STATUS_LABELS.items()} | {NOT_ON_LEDGER: "不在台账"}
    return [(status, labels[status], colour) for status, colour in STATUS_COLOURS.items()]


# -- everything else on a map: drawn as outlines, lines or marks, never in a status colour ---

# Planned areas are outlines (colour + dash), so the status fill shows through; Paul Tol's
# colour-blind-safe "muted" hues, told apart by dash pattern as well as hue.
PLANNED_AREA_STYLES = {
    PlannedAreaKind.DISTRICT.value: {"colour": "#332288", "dash": None, "weight": 3.0},
    PlannedAreaKind.URBAN_RENEWAL.value: {"colour": "#882255", "dash": "8 4", "weight": 2.5},
    PlannedAreaKind.CIVILISED_CITY.value: {"colour": "#999933", "dash": "2 4", "weight": 2.5},
    PlannedAreaKind.PLANNED_ROAD.value: {"colour": "#000000", "dash": "10 4 2 4", "weight": 2.0},
    PlannedAreaKind.GREEN_SPACE.value: {"colour": "#117733", "dash": "6 3", "weight": 2.5},
    PlannedAreaKind.PLANNING_AREA.value: {"colour": "#666666", "dash": "1 6", "weight": 1.5},
    PlannedAreaKind.OTHER.value: {"colour": "#44AA99", "dash": "4 2 1 2", "weight": 2.0},
}
# Where a compound meets a planned area: hatched and edged in the area's colour, so the status
# colour still shows between the hatch lines (`fill` is the legend's swatch).
OVERLAP_STYLE = {"fill": "#000000", "fill_opacity": 0.5, "weight": 1.5, "hatch": True}
COMPLAINT_STYLES = {
    "inside": {"fill": "#0072B2", "stroke": "#FFFFFF", "radius": 4, "label": "留言投诉"},
    # outside every ledger compound: the survey (摸排) missed a compound
    "outside": {"fill": "#F0E442", "stroke": "#000000", "radius": 7,
                "label": "台账外投诉（疑似漏排）"},
}  # fmt: skip
CONTEXT_STYLES = {
    "boundary": {"colour": "#333333", "weight": 2.5, "dash": "8 4", "label": "县界"},
    "township": {"colour": "#888888", "weight": 1.2, "dash": "4 4", "label": "乡镇（街道）界"},
    "river": {"colour": "#6BAED6", "weight": 4.0, "dash": None, "label": "河流"},
    "road": {"colour": "#BDBDBD", "weight": 3.0, "dash": None, "label": "道路"},
    "parcel": {"colour": "#444444", "weight": 0.8, "dash": None, "label": "宗地"},
}
STATUS_FILL_OPACITY = 0.75
# Problem pieces of the parcel checks (宗地核查问题图斑), drawn over everything: dark fills under
# white hatching, so they stand out from the status fills (no status hue is used) and each
# kind is told apart by its hatch as well as its hue. `hatch` is matplotlib's notation
# (x cross, . dots, + grid, - horizontal); the web map and the parcel page draw the same.
PIECE_STYLES = {
    kind: {"colour": colour, "hatch": hatch, "label": CHECKS[kind][0], "label_en": CHECKS[kind][1]}
    for kind, colour, hatch in (
        ("overlap", "#A50026", "xx"),  # dark red
        ("gap", "#762A83", ".."),  # dark purple
        ("beyond", "#004488", "++"),  # dark blue
        ("planned", "#8C510A", "--"),  # dark brown
    )
}
PIECE_COLOURS = {kind: style["colour"] for kind, style in PIECE_STYLES.items()}
PIECE_FILL_OPACITY = 0.8
PIECE_WEIGHT = 1.5
OVERDUE_MARK = {"colour": "#000000", "weight": 2.0, "label": "逾期未办结（粗黑边）"}


def planned_area_legend() -> list[tuple[str, str, dict]]:
    """(kind, Chinese label, style) in the order a legend lists them."""
    labels = {k.value: label for k, label in PLANNED_AREA_LABELS.items()}
    return [(kind, labels[kind], style) for kind, style in PLANNED_AREA_STYLES.items()]


def piece_legend() -> list[tuple[str, str, dict]]:
    """(kind, Chinese label, style) of the parcel-check problem pieces, in legend order."""
    return [(kind, style["label"], style) for kind, style in PIECE_STYLES.items()]


PATTERN_PX = 8  # the side of one hatch tile, on screen


def hatch_marks(hatch: str, size: int = PATTERN_PX) -> list[tuple[str, tuple[float, ...]]]:
    """The white marks of one hatch tile: ("line", x1, y1, x2, y2) or ("dot", x, y, r).
    Drawn the same by the web map's canvas (titlemap/parcels.js) and the SVG pattern below."""
    mid, end = size / 2, float(size)
    marks = {
        "x": [("line", (0, 0, end, end)), ("line", (0, end, end, 0))],
        ".": [("dot", (mid, mid, 1.3))],
        "+": [("line", (mid, 0, mid, end)), ("line", (0, mid, end, mid))],
        "-": [("line", (0, mid, end, mid))],
    }
    return marks[hatch[:1]]


def piece_pattern_svg(pattern_id: str, kind: str) -> str:
    """An SVG <pattern> filling a problem piece of `kind` as the web map does."""
    style = PIECE_STYLES[kind]
    return render(
        "piece_pattern.svg",
        pattern_id=pattern_id,
        size=PATTERN_PX,
        colour=style["colour"],
        opacity=PIECE_FILL_OPACITY,
        marks=hatch_marks(style["hatch"]),
    )


def web_styles() -> dict:
    """Every style above as plain JSON for the web map's script."""
    return {
        "status": {s: {"colour": c, "label": label} for s, label, c in legend()},
        "status_fill_opacity": STATUS_FILL_OPACITY,
        "planned": {k: style | {"label": label} for k, label, style in planned_area_legend()},
        "overlap": OVERLAP_STYLE,
        "complaint": COMPLAINT_STYLES,
        "context": CONTEXT_STYLES,
        "overdue": OVERDUE_MARK,
        "pieces": PIECE_STYLES,
        "piece_fill_opacity": PIECE_FILL_OPACITY,
        "piece_weight": PIECE_WEIGHT,
        "piece_marks": {k: hatch_marks(s["hatch"]) for k, s in PIECE_STYLES.items()},
        "pattern_px": PATTERN_PX,
    }


# -- a county against its target (the city / province overview, page and print) ------------------

# Met the target (the palette's "closed" green), within NEAR_TARGET of it, further behind, or no
# figures (no units in scope): a small diverging scale, the same on the page and on paper.
NEAR_TARGET = 0.10  # ten percentage points
TARGET_CLASSES = {
    "met": {"colour": STATUS_COLOURS["closed"], "label": "已达目标"},
    "near": {"colour": STATUS_COLOURS["in_progress"], "label": "差距 10 个百分点以内"},
    "behind": {"colour": STATUS_COLOURS["not_started"], "label": "差距超过 10 个百分点"},
    "none": {"colour": STATUS_COLOURS[NOT_ON_LEDGER], "label": "无数据"},
}


def target_class(rate: float | None, target: float | None, meets: bool | None = None) -> str:
    """A county's class in TARGET_CLASSES: `meets` (the figures' own verdict) wins where given."""
    if rate is None:
        return "none"
    if meets or (meets is None and target is not None and rate >= target):
        return "met"
    if target is None or rate >= target - NEAR_TARGET - 1e-9:
        return "near"
    return "behind"


def county_class(row: dict) -> str:
    """An overview row's class (geo.ledger.regions): the page, the API and the print use it."""
    rate, target = row.get("overall_rate"), row.get("target_rate")
    return target_class(
        None if rate is None else float(rate),
        None if target is None else float(target),
        row.get("meets_target"),
    )
