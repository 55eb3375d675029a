"""Column headers as offices write them, compared without case, spaces, punctuation or units.

"面积（公顷）", "面积 (公顷)" and "面积(公顷" (a header cut at the .dbf's ten bytes) all come to
("面积", "公顷"): the column mapping (`geo.io.layers`) and the CSV reader's coordinate columns
compare headers this one way.
"""

import re
import unicodedata

_BRACKETS = re.compile(r"[(\[（【]([^)\]）】]*)(?:[)\]）】]|$)")  # a cut header may not close


def norm(header: str) -> str:
    """The header in lower case without spaces, _ - . : / or full-width forms."""
    value = unicodedata.normalize("NFKC", str(header)).strip().lower()
    return re.sub(r"[\s_\-.:/：]+", "", value)


def header_key(header: str) -> tuple[str, str]:
    """(the header without its unit, the unit) — "面积（公顷）" → ("面积", "公顷")."""
    value = unicodedata.normalize("NFKC", str(header))
    units = " ".join(_BRACKETS.findall(value))
    base = norm(_BRACKETS.sub("", value))
    return base, norm(units)
