"""The words for a broken geometry, the same at import and in the parcel checks.

GEOS (shapely's explain_validity, PostGIS's ST_IsValidReason) says what is wrong in English,
sometimes followed by where ("Self-intersection[105.1 35.2]"); staff read Chinese.
"""

VALIDITY_WORDS = {  # GEOS's reason, lower case → Chinese
    "ring self-intersection": "环自相交",
    "self-intersection": "自相交",
    "too few points in geometry component": "构成部分点数过少",
    "too few points": "点数过少",
    "hole lies outside shell": "内环位于外环之外",
    "nested holes": "内环相互嵌套",
    "interior is disconnected": "内部不连通",
    "nested shells": "外环相互嵌套",
    "duplicate rings": "环重复",
    "invalid coordinate": "坐标无效",
    "ring is not closed": "环未闭合",
}
INVALID = "图形无效"


def validity_words(reason: str | None) -> str:
    """'自相交 / Self-intersection[105.1 35.2]': the Chinese words, then GEOS's own."""
    if not reason:
        return INVALID
    head = reason.split("[")[0].strip().lower()
    return f"{VALIDITY_WORDS.get(head, INVALID)} / {reason}"
