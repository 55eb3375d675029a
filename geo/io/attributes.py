"""A file's features as rows of the county's table: codes, values, references and links.

Each layer has its `Target` table; `read_codes` takes the codes the file gives — for parcels a
宗地代码, or a survey's own plot number kept under its project (`geo.core.codes`), for planned
areas the name where there is no code — and `read_attributes` the values (`geo.io.converters`),
the planned-area kinds in the county's words (`geo.core.vocabulary`), the townships and
developers named (`geo.io.developers`: matched, or created when written) and a parcel's
compounds. Whatever one feature makes impossible is refused on its row (`FeatureRows`).
"""

import functools
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from geo import TitlemapError
from geo.core.codes import CODE_ATTEMPT, is_parcel_code_attempt
from geo.core.dates import is_blank
from geo.core.model import PlannedAreaKind, copy_columns
from geo.core.vocabulary import Vocabulary
from geo.io.converters import (
    PLANNED_KINDS,
    amount,
    cell_text,
    convert_all,
    day,
    parcel_code,
    planned_kind,
    township_code,
    whole_number,
)
from geo.io.developers import DeveloperBook
from geo.io.import_report import ImportReport
from geo.io.layers import FIELDS, LayerData

# -- what goes where ---------------------------------------------------------------------------


KEYS = ("county_code", "code", "geom")  # what the upsert writes itself


@dataclass(frozen=True)
class Target:
    table: str
    required: tuple[str, ...]  # columns a new row cannot do without
    noun: str
    defaults: tuple[tuple[str, str], ...] = ()  # (column, SQL literal) for a new row's blanks
    named_codes: bool = False  # a feature without a code is known by its name

    @property
    def columns(self) -> tuple[str, ...]:
        """The table's columns besides county_code, code and geom, as the model declares them."""
        return tuple(c for c in copy_columns(self.table) if c not in KEYS)


TARGETS = {
    "compounds": Target("compound", ("name",), "小区"),
    "parcels": Target("parcel", (), "宗地"),
    "planned": Target("planned_area", ("name",), "片区", (("kind", "'other'"),), True),
    "complaints": Target("complaint", ("received_on", "text"), "投诉"),
    "townships": Target("township", ("name", "kind"), "乡镇"),
}

# file field → (database column, converter); references and links are resolved separately.
VALUE_FIELDS: dict[str, dict[str, tuple[str, Callable]]] = {
    "compounds": {"name": ("name", cell_text), "address": ("address", cell_text),
                  "buildings": ("buildings", whole_number),
                  "units_sold": ("units_sold", whole_number),
                  "sold_on": ("sold_on", day), "occupied_on": ("occupied_on", day)},
    "parcels": {"area": ("recorded_area_m2", amount(Decimal("1e12"))),
                "land_use": ("land_use", cell_text), "right_type": ("right_type", cell_text),
                "premium_due": ("premium_due", amount(Decimal("1e14"))),
                "premium_paid": ("premium_paid", amount(Decimal("1e14")))},
    "planned": {"name": ("name", cell_text)},  # kinds: `_kinds`, by the county's vocabulary
    "complaints": {"received_on": ("received_on", day), "source": ("source", cell_text),
                   "text": ("text", cell_text)},
    "townships": {"name": ("name", cell_text), "kind": ("kind", cell_text)},
}  # fmt: skip
COLUMN_WORDS = {"name": "名称", "kind": "类型", "received_on": "日期", "text": "内容"}
TOWNSHIP_KINDS = ("街道", "镇", "乡")  # a township's name ends with its kind


class FeatureRows:
    """Per-feature refusals and repairs, keyed by position in the file."""

    def __init__(self, data: LayerData):
        self.refs = data.frame["_ref"].tolist()  # list() walks a Series a cell at a time
        self.codes: list[str | None] = [None] * len(self.refs)
        self.why: dict[int, list[str]] = defaultdict(list)
        self.repairs: dict[int, str] = {}

    def refuse(self, i: int, why: str) -> None:
        self.why[int(i)].append(why)

    def ident(self, i: int) -> str:
        return self.codes[i] or self.refs[i]

    def refused(self) -> list[tuple[str, str]]:
        out = []
        for i in sorted(self.why):
            where = f"[{self.refs[i]}] " if self.codes[i] else ""
            out.append((self.ident(i), where + "；".join(self.why[i])))
        return out

    def repaired(self) -> list[tuple[str, str]]:
        return [(self.ident(i), what) for i, what in sorted(self.repairs.items())]

    def good(self) -> np.ndarray:
        keep = np.ones(len(self.refs), dtype=bool)
        keep[list(self.why)] = False
        return keep


# -- attributes ----------------------------------------------------------------------------------


def read_codes(
    conn: Connection,
    data: LayerData,
    county: str,
    rows: FeatureRows,
    geoms: np.ndarray,
    notes: list[str],
) -> None:
    """Each feature's code into `rows.codes`; one missing, repeated or malformed is refused.
    Raises TitlemapError, naming the file's columns, when a layer that needs codes has none."""
    target = TARGETS[data.layer]
    has_codes = "code" in data.frame
    if not has_codes and not target.named_codes:
        spec = next(f for f in FIELDS[data.layer] if f.name == "code")
        raise TitlemapError(
            f"找不到编号列（可用列名：{'、'.join(spec.headers[:8])} 等）；文件中的列为 "
            f"{'、'.join(data.headers) or '（无）'} / no code column; the file's columns: "
            f"{', '.join(data.headers) or '(none)'}"
        )
    known = functools.cache(lambda: _local_plots(conn, county))
    convert = {
        "parcels": parcel_code(county, data.project, known),
        "townships": township_code,
    }.get(data.layer, cell_text)
    codes, errors = [None] * len(rows.refs), {}
    if has_codes:
        codes, errors = convert_all(data.frame["code"], convert)
    for i, why in errors.items():
        rows.refuse(i, why)
    if target.named_codes and "name" in data.frame:
        _named_codes(data.frame["name"], codes, errors, geoms, notes)
    rows.codes[:] = codes
    hint = "（图形内没有文字注记）" if data.kind == "dxf" else ""
    for i in [i for i, code in enumerate(codes) if code is None and i not in errors]:
        rows.refuse(i, "缺少编号和名称 / no code and no name" if target.named_codes
                    else f"缺少编号{hint} / no code")  # fmt: skip
    column = pd.Series(codes, dtype=object)
    repeated = np.flatnonzero((column.notna() & column.duplicated(keep=False)).to_numpy())
    seen: dict[str, list[int]] = defaultdict(list)  # only the repeated codes, in file order
    for i in repeated:
        seen[codes[i]].append(int(i))
    for positions in seen.values():
        where = "、".join(rows.refs[p] for p in positions)
        for p in positions:
            rows.refuse(p, f"编号在文件中重复（{where}）/ duplicate code in the file")
    if data.layer == "parcels":
        _note_plots(codes, notes)


def _named_codes(names, codes: list, errors: dict, geoms: np.ndarray, notes: list[str]) -> None:
    """Codes for features known by name only: the name itself (NFKC, no spaces), so the same
    name gives the same code on a later import; features sharing a name get -2, -3 … from
    west to east (then south to north), whatever order the file lists them in."""
    named: dict[str, list[int]] = defaultdict(list)
    for i, name in enumerate(names.to_numpy(dtype=object)):
        if codes[i] is None and i not in errors and not is_blank(name):
            key = re.sub(r"\s+", "", unicodedata.normalize("NFKC", cell_text(name)))
            named[key].append(i)
    if not named:
        return
    corner = np.nan_to_num(shapely.bounds(geoms)[:, :2], nan=np.inf)  # south-west corners
    for code, positions in named.items():
        order = sorted(positions, key=lambda i: (corner[i, 0], corner[i, 1], i))
        for k, i in enumerate(order, start=1):
            codes[i] = code if k == 1 else f"{code}-{k}"
    made = sum(len(p) for p in named.values())
    twice = [code for code, p in named.items() if len(p) > 1]
    notes.append(
        f"{made} 个要素没有编号，以名称为编号（再次导入时名称相同即为同一要素）"
        + (f"；同名的按自西向东加 -2、-3：{'、'.join(twice[:5])}" if twice else "")
        + f" / {made} features without a code are known by their names"
    )


def _local_plots(conn: Connection, county: str) -> set[str]:
    """The county's plots kept under a survey's own number (no 宗地代码 yet)."""
    codes = conn.execute(
        text("SELECT code FROM parcel WHERE county_code = :c AND code !~ :attempt"),
        {"c": county, "attempt": CODE_ATTEMPT},
    ).scalars()
    return set(codes)


def _note_plots(codes: list, notes: list[str]) -> None:
    local = [code for code in codes if code is not None and not is_parcel_code_attempt(code)]
    if local:
        notes.append(
            f"{len(local)} 个地块尚无宗地代码，按“项目-地块编号”导入（{'、'.join(local[:5])}"
            f"{' 等' if len(local) > 5 else ''}）；宗地核查将列为“尚无宗地代码”，赋码后更正 / "
            f"{len(local)} plots have no 宗地代码 yet: kept under project and plot number"
        )


def _lookup(conn: Connection, sql: str, county: str) -> tuple[dict, dict]:
    """({key: id}, {name: [ids]}) from rows (id, key, name)."""
    by_key: dict[str, int] = {}
    by_name: dict[str, list[int]] = defaultdict(list)
    for ident, key, name in conn.execute(text(sql), {"c": county}):
        if key:
            by_key[key] = ident
        if name:
            by_name[name.strip()].append(ident)
    return by_key, by_name


def _resolver(by_key: dict, by_name: dict, noun: tuple[str, str]) -> Callable[[object], int]:
    cn, en = noun

    def resolve(value) -> int:
        raw = cell_text(value)
        if raw in by_key:
            return by_key[raw]
        found = by_name.get(raw, [])
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ValueError(f"{cn}名称 {raw!r} 不唯一，请用代码 / ambiguous {en} name")
        raise ValueError(f"未知{cn} {raw!r}（按代码或名称都找不到）/ unknown {en}")

    return resolve


@dataclass
class Attributes:
    values: dict[str, list]  # column → value per feature
    links: dict[int, list[int]] = field(default_factory=dict)  # parcels: row → compound ids
    developers: DeveloperBook | None = None  # compounds: the developers named, new ones too


def read_attributes(
    conn: Connection, data: LayerData, county: str, rows: FeatureRows, vocabulary: Vocabulary,
    report: ImportReport,
) -> Attributes:  # fmt: skip
    """The target table's values, for parcels their links to compounds, for compounds the
    developers named (created only when written)."""
    frame = data.frame
    n = len(frame)
    values: dict[str, list] = {c: [None] * n for c in TARGETS[data.layer].columns}
    for name, (column, convert) in VALUE_FIELDS[data.layer].items():
        if name not in frame:
            continue
        factor = data.factors.get(name, 1.0)
        func = (lambda v, c=convert, f=factor: c(v, f)) if factor != 1.0 else convert
        values[column], errors = convert_all(frame[name], func)
        word = next(f.label for f in FIELDS[data.layer] if f.name == name)
        for i, why in errors.items():
            rows.refuse(i, f"{word}：{why}")
    if data.layer == "townships" and "kind" in values:
        for i, (kind, name) in enumerate(zip(values["kind"], values["name"], strict=True)):
            if kind is None and name:
                values["kind"][i] = next((k for k in TOWNSHIP_KINDS if name.endswith(k)), None)
    found = Attributes(values)
    if data.layer == "planned" and "kind" in frame:
        _kinds(frame, vocabulary, values, report)
    if data.layer == "compounds":
        if "township" in frame:
            sql = "SELECT id, code, name FROM township WHERE county_code = :c"
            resolve = _resolver(*_lookup(conn, sql, county), ("乡镇", "township"))
            values["township_id"], errors = convert_all(frame["township"], resolve)
            for i, why in errors.items():
                rows.refuse(i, why)
        found.developers = _developers(conn, data, county, rows, values, report)
    if data.layer == "parcels" and "compound" in frame:
        found.links = _compound_links(conn, frame, county, rows)
    return found


def _distinct(frame, name: str) -> tuple[np.ndarray, list[str | None]]:
    """Each row's place among the column's distinct cells (-1 for a missing one), and those
    cells as text, None for blanks, the last None for -1: files repeat their values a lot."""
    if name not in frame:
        return np.full(len(frame), -1), [None]
    index, distinct = pd.factorize(frame[name])
    return index, [None if is_blank(v) else cell_text(v) for v in distinct] + [None]


def _texts(frame, name: str) -> list[str | None]:
    """A column's cells as text, None for blanks (or for a column the file does not have)."""
    index, texts = _distinct(frame, name)
    return [texts[k] for k in index]


def _kinds(frame, vocabulary: Vocabulary, values: dict, report: ImportReport) -> None:
    """Planned-area kinds by the county's vocabulary; its own word kept beside each (a key
    such as planned_road is no word of the county's); words it does not know become other."""
    words = _texts(frame, "kind")
    values["kind"], _ = convert_all(words, planned_kind(vocabulary))
    values["kind_word"] = [None if w in PLANNED_KINDS else w for w in words]
    other = PlannedAreaKind.OTHER.value
    unknown: dict[str, int] = defaultdict(int)
    for word, kind in zip(values["kind_word"], values["kind"], strict=True):
        if word is not None and kind == other:
            unknown[word] += 1
    report.unknown_words = dict(unknown)


def _developers(conn, data: LayerData, county: str, rows: FeatureRows, values: dict,
                report: ImportReport) -> DeveloperBook | None:  # fmt: skip
    """Each compound's developer, by credit code or name (`geo.io.developers`): an id, or one
    to create when the compound is written."""
    frame = data.frame
    if "developer" not in frame and "developer_code" not in frame:
        return None
    book = DeveloperBook.of(conn, county)
    names, name_texts = _distinct(frame, "developer")
    codes, code_texts = _distinct(frame, "developer_code")
    pair, _ = pd.factorize((names + 1) * (len(code_texts) + 1) + (codes + 1))
    _, first = np.unique(pair, return_index=True)  # each (name, code) once, in file order
    found: list = []
    for i in first:
        try:
            found.append(book.resolve(name_texts[names[i]], code_texts[codes[i]], rows.ident(i)))
        except ValueError as exc:
            found.append(exc)
    wrong = np.array([isinstance(f, ValueError) for f in found])
    chosen = [None if wrong[k] else found[k] for k in pair]
    for i in np.flatnonzero(wrong[pair]):
        rows.refuse(i, str(found[pair[i]]))
    values["developer_id"] = chosen
    report.warnings += book.warnings
    return book


def _compound_links(
    conn: Connection, frame, county: str, rows: FeatureRows
) -> dict[int, list[int]]:
    """Parcel row → the ids of the compounds its cell names (each distinct cell read once)."""
    links: dict[int, list[int]] = {}
    known, _ = _lookup(conn, "SELECT id, code, NULL FROM compound WHERE county_code = :c", county)
    index, texts = _distinct(frame, "compound")
    named: list[tuple[list[str], list[int]] | None] = []  # per distinct cell: (unknown, ids)
    for cell in texts:
        if cell is None:
            named.append(None)
            continue
        codes = [c for c in re.split(r"[,，、;；\s]+", cell) if c]
        unknown = [c for c in codes if c not in known]
        named.append((unknown, [] if unknown else sorted({known[c] for c in codes})))
    for i, k in enumerate(index.tolist()):
        if named[k] is None:
            continue
        unknown, ids = named[k]
        if unknown:
            rows.refuse(i, f"未知小区 {'、'.join(unknown)} / unknown compound")
        else:
            links[i] = list(ids)
    return links


def check_required(
    conn: Connection, target: Target, county: str, values, rows: FeatureRows
) -> None:
    """A new row must bring every NOT NULL column; an existing one keeps what it has."""
    lacking: dict[int, list[str]] = defaultdict(list)  # only rows missing something
    for c in target.required:
        for i in [i for i, value in enumerate(values[c]) if value is None]:
            lacking[i].append(c)
    if not lacking:
        return
    existing = set(
        conn.execute(
            text(f"SELECT code FROM {target.table} WHERE county_code = :c"), {"c": county}
        ).scalars()
    )
    for i in sorted(lacking):
        code = rows.codes[i]
        if code is None or code in existing or i in rows.why:
            continue
        words = "、".join(COLUMN_WORDS.get(c, c) for c in lacking[i])
        rows.refuse(
            i, f"新{target.noun}缺少{words} / a new {target.table} needs " + ", ".join(lacking[i])
        )
