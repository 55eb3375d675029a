"""The Chinese font printed maps embed, found on disk and registered with matplotlib by path.

PDFs embed it as TrueType (`pdf.fonttype = 42`) so their text stays searchable and prints
without a network. That needs a font with TrueType (glyf) outlines: Debian's Noto Sans CJK
(fonts-noto-cjk) and the Noto Sans SC files on PyPI are CFF-flavoured OpenType, which
matplotlib writes into a TrueType font dictionary (`CIDFontType2`/`FontFile2`) anyway — a
mismatch poppler warns about and strict readers refuse. So the default is WenQuanYi Micro Hei
(Debian package fonts-wqy-microhei, TrueType, 5 MB); Zen Hei and AR PL fonts are taken when
it is missing, and `TITLEMAP_PRINT_FONT` may name any TrueType-outline file.

Widths for wrapping text are measured from the font's own advance widths, so a line of
Chinese fills a column exactly.
"""

import os
import struct
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from geo import TitlemapError

FONT_ENV = "TITLEMAP_PRINT_FONT"
DEBIAN_PACKAGE = "fonts-wqy-microhei"
CANDIDATES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/truetype/arphic-gkai00mp/gkai00mp.ttf"),
    Path("/usr/share/fonts/truetype/arphic/uming.ttc"),
)
INSTALL_HINT = (
    f"没有可嵌入的中文 TrueType 字体 / no Chinese TrueType font to embed: "
    f"apt-get install {DEBIAN_PACKAGE}（或设置 {FONT_ENV} 为字体文件 / or set {FONT_ENV})"
)
POINTS_PER_MM = 72 / 25.4


@dataclass(frozen=True)
class PrintFont:
    path: Path
    family: str  # the name matplotlib knows the face by


def has_truetype_outlines(path: Path) -> bool:
    """True for a .ttf/.ttc whose (first) face has glyf outlines, not CFF."""
    try:
        with path.open("rb") as handle:
            head = handle.read(16)
            offset = 0
            if head[:4] == b"ttcf":
                offset = struct.unpack(">I", head[12:16])[0]
            handle.seek(offset)
            tag, tables = struct.unpack(">4sH", handle.read(6))
            if tag not in (b"\x00\x01\x00\x00", b"true"):
                return False
            handle.seek(offset + 12)
            directory = handle.read(16 * tables)
    except (OSError, struct.error):
        return False
    names = {directory[i : i + 4] for i in range(0, len(directory), 16)}
    return b"glyf" in names and b"CFF " not in names


def _has_chinese(path: Path) -> bool:
    from matplotlib.ft2font import FT2Font

    face = FT2Font(str(path))
    return all(face.get_char_index(ord(ch)) for ch in "登记难化解县")


@cache
def print_font() -> PrintFont:
    """The font file to embed, registered with matplotlib's font manager by its path."""
    from matplotlib import font_manager

    wanted = os.environ.get(FONT_ENV)
    paths = [Path(wanted)] if wanted else list(CANDIDATES)
    for path in paths:
        if not path.is_file():
            continue
        if not has_truetype_outlines(path) or not _has_chinese(path):
            if wanted:
                raise TitlemapError(
                    f"{FONT_ENV}={wanted} 不是含中文的 TrueType 字体 / is not a Chinese "
                    f"TrueType-outline font (CFF fonts such as Noto Sans CJK cannot be embedded)"
                )
            continue
        font_manager.fontManager.addfont(str(path))
        family = font_manager.FontProperties(fname=str(path)).get_name()
        return PrintFont(path, family)
    if wanted:
        raise TitlemapError(f"{FONT_ENV} 指向的文件不存在 / font file not found: {wanted}")
    raise TitlemapError(INSTALL_HINT)


@cache
def _advance(char: str) -> float:
    """Advance width of `char` in em."""
    from matplotlib import ft2font

    face = _face()
    if not face.get_char_index(ord(char)):
        return 1.0 if unicodedata.east_asian_width(char) in "WF" else 0.6
    if hasattr(ft2font, "LoadFlags"):  # matplotlib ≥ 3.10
        no_hinting = ft2font.LoadFlags.NO_HINTING
    else:
        no_hinting = ft2font.LOAD_NO_HINTING
    glyph = face.load_char(ord(char), flags=no_hinting)
    return glyph.linearHoriAdvance / 65536 / 100  # the face is set to 100 px per em


@cache
def _face():
    from matplotlib.ft2font import FT2Font

    face = FT2Font(str(print_font().path))
    face.set_size(100, 72)  # 100 pt at 72 dpi: 100 px per em
    return face


def text_width_mm(text: str, size_pt: float) -> float:
    """How wide `text` prints at `size_pt`, in millimetres."""
    return sum(_advance(ch) for ch in text) * size_pt / POINTS_PER_MM
