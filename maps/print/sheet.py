"""A page in millimetres, the inks and hatches drawn on it, and the one way pages become PDF."""

import threading
from collections.abc import Iterable, Sequence
from io import BytesIO

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.patheffects import Stroke

from maps.fonts import print_font
from maps.print.text import clean, fit
from maps.styles import STATUS_COLOURS

MM = 1 / 25.4  # inches
PAPERS = {"A4": (297.0, 210.0), "A3": (420.0, 297.0)}  # landscape width, height in mm
A4_PORTRAIT = PAPERS["A4"][::-1]  # width, height in mm
# Hatches carry the status where colour cannot (grayscale printers, colour-blind readers).
# They sit beside the palette; maps.styles is the better home once the web map wants them.
STATUS_HATCHES = {
    "not_started": "---",
    "stalled": "xxx",
    "in_progress": "///",
    "first_registered": "...",
    "closed": "",
    "not_on_ledger": "",
}
INK = "#1a1a1a"
OUTLINE = "#2f3b52"  # planned areas: dark slate, apart from every status colour
RIVER = "#3d85c6"
OTHER_FILL, OTHER_EDGE = "#efefef", "#a0a0a0"


# rcParams are process-wide: one drawing at a time per process (the API serves from threads)
_RENDERING = threading.Lock()


def _rc() -> dict:
    font = print_font()
    return {
        "pdf.fonttype": 42,
        # matplotlib's PDF writer sizes its font subsets by ps.fonttype: left at 3 it embeds
        # the whole CJK font again for every 256 distinct characters (≈ 1 s each)
        "ps.fonttype": 42,
        "pdf.compression": 6,
        "font.family": [font.family, "DejaVu Sans"],  # DejaVu: symbols the CJK face lacks
        "text.hinting": "no_hinting",  # vector output: hinting only costs time
        "text.parse_math": False,  # a "$" in a compound's name is only a dollar sign
        "axes.unicode_minus": False,
        "hatch.linewidth": 0.35,
        "hatch.color": INK,
        "path.simplify": True,
    }


def write_pdf(figures: Iterable[Figure], title: str) -> bytes:
    """The pages `figures` yields as one PDF; a generator draws each under the print settings."""
    with _RENDERING, matplotlib.rc_context(_rc()):
        buffer = BytesIO()
        with PdfPages(buffer, metadata=metadata(title)) as pdf:
            for fig in figures:
                pdf.savefig(fig)
        return buffer.getvalue()


def metadata(title: str) -> dict:
    return {
        "Title": title,
        "Author": "titlemap",
        "Creator": "titlemap 登记难化解一张图",
        "Subject": "现场办公 / on-site office",
    }


class Sheet:
    """A figure with one full-page axes in millimetres, y downwards, for text and boxes."""

    def __init__(self, width: float, height: float):
        self.width, self.height = width, height
        self.fig = Figure(figsize=(width * MM, height * MM))
        self.ax = self.fig.add_axes((0, 0, 1, 1))
        self.ax.set_xlim(0, width)
        self.ax.set_ylim(height, 0)
        self.ax.set_axis_off()
        self.ax.set_zorder(5)  # over the maps: scale bars, north arrows, inset frames

    def text(self, x, y, s, size=8.0, weight="normal", ha="left", va="top", color=INK, **kw):
        return put_text(self.ax, x, y, s, size, weight == "bold", color, ha=ha, va=va, **kw)

    def lines(self, x, y, lines: Sequence[str], size: float, leading: float = 1.3, **kw) -> float:
        """Draw `lines` from (x, y) down; returns the y below them."""
        step = line_height(size, leading)
        for i, line in enumerate(lines):
            self.text(x, y + i * step, line, size=size, **kw)
        return y + len(lines) * step

    def para(self, x, y, text_, width, size=8.0, max_lines=99, min_size=None, **kw) -> float:
        lines, used = fit(clean(text_), width, size, max_lines, min_size)
        return self.lines(x, y, lines, used, **kw)

    def rect(self, x, y, w, h, fc="none", ec=INK, lw=0.5, hatch=None, zorder=1, **kw):
        patch = Rectangle(
            (x, y),
            w,
            h,
            facecolor=fc,
            edgecolor=ec,
            linewidth=lw,
            hatch=hatch,
            zorder=zorder,
            **kw,
        )
        self.ax.add_artist(patch)  # no autoscaling: the page is fixed
        return patch

    def hline(self, x0, x1, y, lw=0.4, color=INK, **kw):
        self.ax.plot([x0, x1], [y, y], color=color, linewidth=lw, solid_capstyle="butt", **kw)

    def axes(self, x, y, w, h, zorder: float = 1) -> Axes:
        """An axes placed in mm: maps sit under the page (zorder 1), insets over it (6)."""
        ax = self.fig.add_axes(
            (x / self.width, 1 - (y + h) / self.height, w / self.width, h / self.height),
            zorder=zorder,
        )
        ax.set_xticks([])
        ax.set_yticks([])
        return ax


def put_text(ax: Axes, x, y, s: str, size: float, bold: bool = False, color=INK, **kw):
    """Text that stays text (searchable); bold is faked, as the CJK face has none.

    Bold draws the glyphs' outline thickened in a first, path-only copy (which carries the
    background box) and the ordinary text over it, so a PDF reader finds the words once.
    """
    kw.setdefault("parse_math", False)
    if bold:
        stroke = Stroke(linewidth=max(0.2, size * 0.05), foreground=color)
        ax.text(x, y, s, fontsize=size, color=color, path_effects=[stroke], **kw)
        kw.pop("bbox", None)
        kw["zorder"] = kw.get("zorder", 3) + 0.01
    return ax.text(x, y, s, fontsize=size, color=color, **kw)


def line_height(size: float, leading: float = 1.3) -> float:
    return size * leading / 72 * 25.4


def status_swatch(sheet: Sheet, x, y, w, h, status: str, lw=0.4) -> None:
    sheet.rect(
        x,
        y,
        w,
        h,
        fc=STATUS_COLOURS[status],
        ec=INK,
        lw=lw,
        hatch=STATUS_HATCHES.get(status) or None,
    )


def align_x(x: float, w: float, align: str, pad: float) -> float:
    """Where text aligned `align` (left, center, right) is anchored in a cell x … x + w."""
    return {"left": x + pad, "center": x + w / 2, "right": x + w - pad}[align]
