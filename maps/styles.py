"""The one status palette for web and print (Okabe-Ito: safe for colour-blind readers)."""

from geo.compounds import NOT_ON_LEDGER
from geo.model import PLANNED_AREA_LABELS, STATUS_LABELS, LedgerStatus, PlannedAreaKind

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
    PlannedAreaKind.EAST_DISTRICT.value: {"colour": "#332288", "dash": None, "weight": 3.0},
    PlannedAreaKind.URBAN_RENEWAL.value: {"colour": "#882255", "dash": "8 4", "weight": 2.5},
    PlannedAreaKind.CIVILISED_CITY.value: {"colour": "#999933", "dash": "2 4", "weight": 2.5},
    PlannedAreaKind.PLANNED_ROAD.value: {"colour": "#000000", "dash": "10 4 2 4", "weight": 2.0},
    PlannedAreaKind.GREEN_SPACE.value: {"colour": "#117733", "dash": "6 3", "weight": 2.5},
    PlannedAreaKind.PLANNING_AREA.value: {"colour": "#666666", "dash": "1 6", "weight": 1.5},
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
OVERDUE_MARK = {"colour": "#000000", "weight": 2.0, "label": "逾期未办结（粗黑边）"}


def planned_area_legend() -> list[tuple[str, str, dict]]:
    """(kind, Chinese label, style) in the order a legend lists them."""
    labels = {k.value: label for k, label in PLANNED_AREA_LABELS.items()}
    return [(kind, labels[kind], style) for kind, style in PLANNED_AREA_STYLES.items()]


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
    }
