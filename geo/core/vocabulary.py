"""The county's words mapped to titlemap's categories, from one data file (vocabulary.toml).

Blockers (卡点), ledger statuses (化解状态) and kinds of planned area come in the words each
county's offices use: "消防验收未通过", "已化解", "城市更新". `Vocabulary` maps a phrase to its
category by the file's `words` (equal) and `parts` (contained, longest first); a phrase that
matches nothing maps to None and the caller keeps it as the county wrote it ("other: …"). The
file ships with titlemap; a county adds its own words with a file of the same shape.
"""

import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from geo import TitlemapError

BASE_FILE = Path(__file__).with_name("vocabulary.toml")
SECTIONS = ("blockers", "statuses", "planned_kinds")
NONE = "none"  # a blockers category: words meaning "no blocker known yet"


def word_key(text: object) -> str:
    """A phrase as compared: NFKC (full-width → half-width), no spaces or punctuation."""
    word = unicodedata.normalize("NFKC", str(text)).strip().lower()
    return re.sub(r"[\s\"'“”‘’()（）\[\]【】<>《》:：,，.。;；!！?？*、]", "", word) or word


@dataclass(frozen=True)
class Words:
    """One section's words: phrase → category, and the parts, longest first."""

    exact: dict[str, str] = field(default_factory=dict)
    parts: tuple[tuple[str, str], ...] = ()

    def category(self, phrase: object) -> str | None:
        key = word_key(phrase)
        if not key:
            return None
        if key in self.exact:
            return self.exact[key]
        for part, category in self.parts:
            if part in key:
                return category
        return None


@dataclass(frozen=True)
class Vocabulary:
    blockers: Words
    statuses: Words
    planned_kinds: Words
    sources: tuple[str, ...] = ()  # the files it was read from, for reports

    def blocker(self, phrase: object) -> str | None:
        """The blocker category of a phrase, NONE for "nothing known yet", None if unknown."""
        return self.blockers.category(phrase)

    def status(self, phrase: object) -> str | None:
        return self.statuses.category(phrase)

    def planned_kind(self, phrase: object) -> str | None:
        return self.planned_kinds.category(phrase)


def _read(path: Path) -> dict:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise TitlemapError(f"读不到词表 / cannot read the vocabulary {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TitlemapError(f"词表格式不对 / the vocabulary {path} is not TOML: {exc}") from None
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise TitlemapError(
            f"词表 {path} 有未知的部分 / unknown sections {unknown}; 可用 / allowed: {SECTIONS}"
        )
    return data


def _merge(files: list[dict], section: str, allowed: set[str]) -> Words:
    exact: dict[str, str] = {}
    parts: dict[str, str] = {}
    for data in files:
        for category, lists in data.get(section, {}).items():
            if category not in allowed:
                raise TitlemapError(
                    f"词表中 {section}.{category} 不是 titlemap 的类别 / not a category; "
                    f"可用 / allowed: {sorted(allowed)}"
                )
            for word in lists.get("words", []):
                exact[word_key(word)] = category  # a later file's word wins
            for part in lists.get("parts", []):
                parts[word_key(part)] = category
    ordered = tuple(sorted(parts.items(), key=lambda item: (-len(item[0]), item[0])))
    return Words(exact, ordered)


@cache
def load_vocabulary(extra: Path | None = None) -> Vocabulary:
    """The shipped vocabulary, with a county's own file added on top when given."""
    from geo.core.model import Blocker, LedgerStatus, PlannedAreaKind

    paths = [BASE_FILE] + ([Path(extra)] if extra else [])
    files = [_read(path) for path in paths]
    return Vocabulary(
        blockers=_merge(files, "blockers", {b.value for b in Blocker} | {NONE}),
        statuses=_merge(files, "statuses", {s.value for s in LedgerStatus}),
        planned_kinds=_merge(files, "planned_kinds", {k.value for k in PlannedAreaKind}),
        sources=tuple(str(path) for path in paths),
    )
