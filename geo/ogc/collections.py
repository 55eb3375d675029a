"""The OGC API – Features collections: sources, property schemas, queryables.

Each `Collection` has an id, a title in Chinese and English, a SQL source for one county
(a query giving `geom` in EPSG:4490, the feature id and every property), a property schema
with types (what /queryables publishes and what filters are checked against) and an optional
temporal property:

- compounds: the export fields of geo.io.exports (ledger status, task units, rates, blockers,
  departments, deadline …); temporal property `sold_on` (首次销售日期: it decides whether a
  compound belongs on the ledger, and every compound has one, on the ledger or not);
- parcels: geo.io.exports' parcel fields (no temporal property);
- planned_areas, complaints: geo.query.map_layers' sources; complaints by `received_on`;
- overlaps: geo.query.overlaps' compound × planned-area intersections, id `<compound>~<planned>`,
  read from the table `overlap_piece`, rewritten when the county's data revision moved on.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from geo import TitlemapError
from geo.core.model import PLANNED_AREA_LABELS
from geo.io.exports import (
    COMPOUND_FIELDS,
    INTEGER_FIELDS,
    PARCEL_FIELDS,
    compound_select,
    parcel_select,
)
from geo.query.compounds import STATUS_FILTER_VALUES, CompoundFilter
from geo.query.map_layers import MAP_LAYERS
from geo.query.overlaps import pieces_source, refresh_pieces


@dataclass(frozen=True)
class Prop:
    """A property: name, title (Chinese / English) and JSON type; `date` is an ISO string."""

    name: str
    title: str
    type: str = "string"  # string | integer | number | boolean | date
    enum: tuple[str, ...] = ()

    def column(self) -> str:
        """The property in SQL over the source `s`: dates travel as text, compare as dates."""
        return f'CAST(s."{self.name}" AS date)' if self.type == "date" else f's."{self.name}"'

    def schema(self) -> dict:
        out: dict[str, Any] = {"title": self.title}
        if self.type == "date":
            out |= {"type": "string", "format": "date"}
        else:
            out["type"] = self.type
        if self.enum:
            out["enum"] = list(self.enum)
        return out


Source = Callable[[str, int], tuple[str, dict]]  # (county, GK EPSG) → (SQL, params)


@dataclass(frozen=True)
class Collection:
    id: str
    title: str
    title_en: str
    description: str
    geometry: str  # multipolygon | point
    properties: tuple[Prop, ...]
    source: Source
    id_column: str = "code"  # the feature id (unique per county), also the page order
    temporal: str | None = None
    # Brings a derived table the source reads up to date before a query (overlaps).
    refresh: Callable[[Connection, str], Any] | None = None
    # A cheaper source with some of the columns, for counting and choosing the page when the
    # query names no other column (complaints: the compound holding each point is costly).
    base: Source | None = None
    base_columns: frozenset[str] = frozenset()

    @property
    def props(self) -> dict[str, Prop]:
        return {p.name: p for p in self.properties}

    def queryables(self) -> dict[str, Prop]:
        return self.props


NUMBER_FIELDS = {"area_m2", "first_rate", "transfer_rate", "recorded_area_m2", "premium_due",
                 "premium_paid", "premium_owed", "overlap_m2", "compound_m2",
                 "percent"}  # fmt: skip
BOOLEAN_FIELDS = {"on_ledger", "overdue", "outside_ledger"}
DATE_FIELDS = {"sold_on", "occupied_on", "deadline", "opened_on", "closed_on", "received_on"}
ENUMS = {
    "status": STATUS_FILTER_VALUES,
    "developer_credit_status": ("normal", "blacklisted", "unreachable"),
    "kind": tuple(k.value for k in PLANNED_AREA_LABELS),
}


def _prop(name: str, zh: str, english: str | None = None, enum: bool = True) -> Prop:
    kind = (
        "integer" if name in INTEGER_FIELDS
        else "number" if name in NUMBER_FIELDS
        else "boolean" if name in BOOLEAN_FIELDS
        else "date" if name in DATE_FIELDS
        else "string"
    )  # fmt: skip
    english = english or name.replace("_", " ")
    return Prop(name, f"{zh} / {english}", kind, ENUMS.get(name, ()) if enum else ())


def _compound_props() -> tuple[Prop, ...]:
    props = [_prop(en, zh) for en, zh in COMPOUND_FIELDS]
    at = [p.name for p in props].index("township") + 1
    props.insert(at, _prop("township_code", "乡镇（街道）代码", "township code"))
    return tuple(props)


def _compounds(county: str, epsg: int) -> tuple[str, dict]:
    return f"{compound_select(epsg)} WHERE c.county_code = :county", {"county": county}


def _parcels(county: str, epsg: int) -> tuple[str, dict]:
    return f"{parcel_select(epsg)} WHERE p.county_code = :county", {"county": county}


def _map_layer(name: str) -> Source:
    def source(county: str, epsg: int) -> tuple[str, dict]:
        return MAP_LAYERS[name].source(county, CompoundFilter(), None)

    return source


def _complaints_base(county: str, epsg: int) -> tuple[str, dict]:
    sql = """
        SELECT k.geom, k.code, k.received_on::text AS received_on, k.source, k.text
        FROM complaint k WHERE k.county_code = :county
    """
    return sql, {"county": county}


def _overlaps(county: str, epsg: int) -> tuple[str, dict]:
    # The pieces as stored per data revision (Collection.refresh computes them when stale).
    return pieces_source(county)


COLLECTIONS: dict[str, Collection] = {
    c.id: c
    for c in (
        Collection(
            "compounds", "小区及化解台账", "Compounds with their resolution ledger",
            "每个小区（项目）的边界、开发企业与化解台账字段：状态、任务套数、首次/转移登记套数与"
            "化解率、卡点、牵头单位、包抓领导、时限。时间属性：首次销售日期 sold_on。 / "
            "Each compound's outline, developer and ledger fields; temporal property sold_on.",
            "multipolygon", _compound_props(), _compounds, temporal="sold_on",
        ),
        Collection(
            "parcels", "宗地", "Parcels",
            "宗地边界、宗地代码、登记与图形面积（本县高斯投影带）、出让金及所属小区。 / "
            "Parcels with recorded and drawn area, land premium and their compounds.",
            "multipolygon",
            # status: the statuses of all the parcel's compounds, comma-joined — no enum
            tuple(_prop(en, zh, enum=en != "status") for en, zh in PARCEL_FIELDS), _parcels,
        ),
        Collection(
            "planned_areas", "规划片区", "Planned areas",
            "城东片区、城市更新、文明城市、规划道路、规划绿地、城市规划区。 / "
            "Planned areas by kind.",
            "multipolygon",
            (_prop("code", "编号"), _prop("name", "名称"), _prop("kind", "类型代码"),
             _prop("kind_label", "类型", "kind label")),
            _map_layer("planned"),
        ),
        Collection(
            "complaints", "留言投诉", "Complaints",
            "留言投诉的位置与内容；outside_ledger 为真表示不在任何台账小区内（摸排遗漏）。"
            "时间属性：受理日期 received_on。 / Complaints; outside_ledger marks points in no "
            "ledger compound. Temporal property received_on.",
            "point",
            (_prop("code", "编号"), _prop("received_on", "受理日期", "received on"),
             _prop("source", "来源"), _prop("text", "内容", "text"),
             _prop("compound_code", "所在小区编号"), _prop("compound_name", "所在小区名称"),
             _prop("outside_ledger", "不在台账小区内", "outside ledger")),
            _map_layer("complaints"), temporal="received_on", base=_complaints_base,
            base_columns=frozenset({"code", "received_on", "source", "text"}),
        ),
        Collection(
            "overlaps", "小区与规划片区重叠", "Compound × planned-area overlaps",
            "小区与规划片区内部相交的部分，面积在本县高斯投影带计算；编号为"
            "“小区编号~片区编号”。 / Intersections of compounds and planned areas, "
            "measured in the county's Gauss-Krüger zone; id <compound>~<planned area>.",
            "multipolygon",
            (_prop("id", "编号"), _prop("compound_code", "小区编号"),
             _prop("compound_name", "小区名称"), _prop("township", "所在乡镇"),
             _prop("status", "状态代码"), _prop("status_label", "化解状态", "status label"),
             _prop("planned_code", "规划片区编号"), _prop("planned_name", "规划片区名称"),
             _prop("kind", "规划类型代码"), _prop("kind_label", "规划类型", "kind label"),
             _prop("overlap_m2", "重叠面积平方米"), _prop("compound_m2", "小区面积平方米"),
             _prop("percent", "占小区面积比例", "percent of the compound")),
            _overlaps, id_column="id", refresh=refresh_pieces,
        ),
    )
}  # fmt: skip


def get_collection(collection_id: str) -> Collection:
    if collection_id not in COLLECTIONS:
        raise TitlemapError(
            f"没有集合 {collection_id!r} / no such collection; 可选 / one of: "
            + ", ".join(COLLECTIONS)
        )
    return COLLECTIONS[collection_id]


def queryables_schema(coll: Collection, url: str) -> dict:
    """The collection's queryables as a JSON Schema (OGC API – Features Part 3)."""
    props: dict[str, Any] = {
        "geometry": {"title": "几何 / geometry", "format": f"geometry-{coll.geometry}"}
    }
    props |= {p.name: p.schema() for p in coll.properties}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": url,
        "type": "object",
        "title": f"{coll.title} / {coll.title_en}",
        "properties": props,
        "additionalProperties": False,
    }


def feature_schema(coll: Collection, url: str) -> dict:
    """A JSON Schema of one GeoJSON feature of the collection: what GDAL reads (via the
    collection's describedBy link) to type its fields, instead of guessing from a first page
    whose rates might all be whole numbers."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": url,
        "title": f"{coll.title} / {coll.title_en}",
        "type": "object",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": {"type": "string"},
            "geometry": {"format": f"geometry-{coll.geometry}"},
            "properties": {
                "type": "object",
                "properties": {p.name: p.schema() for p in coll.properties},
            },
        },
    }
