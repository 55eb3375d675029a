"""CQL2-text → SQL (OGC API – Features Part 3): `cql2_sql` parses a filter into a WHERE clause
over a collection's source `s`.

The subset implemented: AND / OR / NOT and parentheses (NOT binds tightest, then AND, then
OR); comparisons = <> < <= > >= between a property and a literal or another property;
[NOT] LIKE (% and _, backslash escapes); [NOT] IN (…); [NOT] BETWEEN … AND …; IS [NOT] NULL;
CASEI(…) around strings; literals: 'text' ('' for a quote), numbers, TRUE / FALSE,
DATE('2024-01-31'), TIMESTAMP('…Z'); spatial S_INTERSECTS, S_DISJOINT, S_EQUALS, S_TOUCHES,
S_CROSSES, S_WITHIN, S_CONTAINS, S_OVERLAPS between `geometry` and a WKT literal (POINT …
GEOMETRYCOLLECTION) or BBOX(minx, miny, maxx, maxy), in `filter-crs` (CRS84 by default) and
its axis order. Every value is a bound parameter; property names must be queryables. No
arithmetic, no temporal (T_…) or array (A_…) functions: those are refused with a 400 naming
what is supported.
"""

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import shapely

from geo import TitlemapError
from geo.core.crs import STORAGE_EPSG
from geo.ogc.collections import Collection
from geo.ogc.crs import OutputCrs
from geo.ogc.params import Params, envelope_sql, instant, projected_sql

MAX_FILTER_CHARS = 20_000
MAX_DEPTH = 60  # nesting of NOT / parentheses a filter may have

GEOMETRY_WORDS = ("POINT", "LINESTRING", "POLYGON", "MULTIPOINT", "MULTILINESTRING",
                  "MULTIPOLYGON", "GEOMETRYCOLLECTION")  # fmt: skip
SPATIAL = {
    "S_INTERSECTS": "ST_Intersects", "S_DISJOINT": "ST_Disjoint", "S_EQUALS": "ST_Equals",
    "S_TOUCHES": "ST_Touches", "S_CROSSES": "ST_Crosses", "S_WITHIN": "ST_Within",
    "S_CONTAINS": "ST_Contains", "S_OVERLAPS": "ST_Overlaps",
}  # fmt: skip
COMPARISONS = ("=", "<>", "<", "<=", ">", ">=")
KEYWORDS = {"AND", "OR", "NOT", "LIKE", "IN", "BETWEEN", "IS", "NULL", "TRUE", "FALSE",
            "DATE", "TIMESTAMP", "CASEI", "BBOX"}  # fmt: skip
GEOMETRY_PROPERTIES = ("geometry", "geom")

_SPACE = re.compile(r"\s*")
_TOKEN = re.compile(
    r"""(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<number>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<quoted>"(?:[^"]|"")+")
      | (?P<word>[^\W\d][\w.:]*)
      | (?P<op><>|<=|>=|=|<|>|\(|\)|,)
    )""",
    re.VERBOSE,
)


@dataclass
class Token:
    kind: str  # string number quoted word op wkt end
    value: Any
    at: int  # character position, for messages


def _syntax(at: int, message: str) -> TitlemapError:
    where = f"（第 {at + 1} 个字符）/ CQL2 syntax error at {at + 1}"
    return TitlemapError(f"CQL2 语法错误{where}: {message}")


def _wkt_end(source: str, start: int) -> int:
    """Where the WKT beginning at `start` (its keyword) ends: after its balanced parentheses."""
    open_at = source.find("(", start)
    if open_at < 0:
        raise _syntax(start, "几何缺少括号 / geometry without coordinates")
    depth = 0
    for i in range(open_at, len(source)):
        if source[i] == "(":
            depth += 1
        elif source[i] == ")":
            depth -= 1
            if depth == 0:
                return i + 1
    raise _syntax(start, "几何括号不配对 / unbalanced parentheses in geometry")


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    pos = _SPACE.match(source, 0).end()
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None or m.lastgroup is None:
            raise _syntax(pos, f"无法识别 / unexpected {source[pos : pos + 10]!r}")
        kind, value, at = m.lastgroup, m.group(m.lastgroup), pos
        pos = m.end()
        if kind == "string":
            value = value[1:-1].replace("''", "'")
        elif kind == "quoted":  # a "double-quoted" property name
            kind, value = "name", value[1:-1].replace('""', '"')
        elif kind == "word" and value.upper() in GEOMETRY_WORDS:
            pos = _wkt_end(source, at)
            kind, value = "wkt", source[at:pos]
        elif kind == "number":
            # "a-1" is no expression here; a sign right after a word or ")" would be arithmetic
            if value[0] in "+-" and tokens and tokens[-1].kind in ("word", "name", "number"):
                raise _syntax(at, "不支持算术 / arithmetic is not supported")
            value = float(value) if any(ch in value for ch in ".eE") else int(value)
        tokens.append(Token(kind, value, at))
        pos = _SPACE.match(source, pos).end()
    tokens.append(Token("end", None, len(source)))
    return tokens


@dataclass
class Operand:
    """A compiled operand: its SQL, its type (a Prop type, 'geometry' or 'null'), whether it
    is a property."""

    sql: str
    type: str
    is_property: bool = False
    name: str = ""


@dataclass
class Compiler:
    """Recursive descent over the tokens, writing SQL as it goes (values into `params`)."""

    tokens: list[Token]
    coll: Collection
    crs: OutputCrs
    params: Params
    i: int = 0
    depth: int = 0
    used: set[str] = field(default_factory=set)

    # -- token helpers
    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.i + offset, len(self.tokens) - 1)]

    def word(self, offset: int = 0) -> str | None:
        t = self.peek(offset)
        return t.value.upper() if t.kind == "word" else None

    def take(self) -> Token:
        t = self.peek()
        self.i += 1
        return t

    def expect_op(self, op: str) -> None:
        t = self.take()
        if t.kind != "op" or t.value != op:
            raise _syntax(t.at, f"应为 {op!r} / expected {op!r}")

    def expect_word(self, word: str) -> None:
        t = self.take()
        if t.kind != "word" or t.value.upper() != word:
            raise _syntax(t.at, f"应为 {word} / expected {word}")

    # -- boolean structure: OR < AND < NOT
    def parse(self) -> str:
        sql = self.or_expr()
        t = self.peek()
        if t.kind != "end":
            raise _syntax(t.at, f"多余的内容 / unexpected {t.value!r}")
        return sql

    def or_expr(self) -> str:
        parts = [self.and_expr()]
        while self.word() == "OR":
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def and_expr(self) -> str:
        parts = [self.not_expr()]
        while self.word() == "AND":
            self.take()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def not_expr(self) -> str:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _syntax(self.peek().at, f"嵌套超过 {MAX_DEPTH} 层 / nested too deeply")
        try:
            if self.word() == "NOT":
                self.take()
                return f"(NOT {self.not_expr()})"
            return self.primary()
        finally:
            self.depth -= 1

    def primary(self) -> str:
        t = self.peek()
        if t.kind == "op" and t.value == "(":
            self.take()
            sql = self.or_expr()
            self.expect_op(")")
            return f"({sql})"
        name = self.word()
        if name in SPATIAL:
            return self.spatial(name)
        return self.predicate()

    # -- predicates
    def predicate(self) -> str:
        left = self.operand()
        negate = False
        if self.word() == "NOT" and self.word(1) in ("LIKE", "IN", "BETWEEN"):
            self.take()
            negate = True
        op = self.peek()
        word = self.word()
        if op.kind == "op" and op.value in COMPARISONS:
            self.take()
            right = self.operand()
            return self.compare(left, op.value, right, op.at)
        if word == "LIKE":
            self.take()
            return self.like(left, self.operand(), negate, op.at)
        if word == "IN":
            self.take()
            return self.in_list(left, negate, op.at)
        if word == "BETWEEN":
            self.take()
            low = self.operand()
            self.expect_word("AND")
            high = self.operand()
            self.check_types(left, low, op.at)
            self.check_types(left, high, op.at)
            if left.type not in ("integer", "number", "date"):
                raise _syntax(op.at, "BETWEEN 只用于数值或日期 / BETWEEN needs numbers or dates")
            return f"({left.sql} {'NOT ' if negate else ''}BETWEEN {low.sql} AND {high.sql})"
        if word == "IS":
            self.take()
            is_not = self.word() == "NOT"
            if is_not:
                self.take()
            self.expect_word("NULL")
            if not left.is_property:
                raise _syntax(op.at, "IS NULL 需要属性 / IS NULL needs a property")
            return f"({left.sql} IS {'NOT ' if is_not else ''}NULL)"
        raise _syntax(op.at, "应为比较、LIKE、IN、BETWEEN 或 IS / expected a comparison")

    def compare(self, left: Operand, op: str, right: Operand, at: int) -> str:
        if not (left.is_property or right.is_property):
            raise _syntax(at, "比较需要至少一个属性 / a comparison needs a property")
        self.check_types(left, right, at)
        if left.type == "boolean" and op not in ("=", "<>"):
            raise _syntax(at, "布尔值只能用 = 或 <> / booleans compare with = or <> only")
        return f"({left.sql} {op} {right.sql})"

    def like(self, left: Operand, pattern: Operand, negate: bool, at: int) -> str:
        if left.type != "string" or pattern.type != "string":
            raise _syntax(at, "LIKE 只用于文本 / LIKE needs text")
        return f"({left.sql} {'NOT ' if negate else ''}LIKE {pattern.sql})"

    def in_list(self, left: Operand, negate: bool, at: int) -> str:
        self.expect_op("(")
        items = [self.operand()]
        while self.peek().kind == "op" and self.peek().value == ",":
            self.take()
            items.append(self.operand())
        self.expect_op(")")
        for item in items:
            self.check_types(left, item, at)
        joined = ", ".join(item.sql for item in items)
        return f"({left.sql} {'NOT ' if negate else ''}IN ({joined}))"

    def check_types(self, a: Operand, b: Operand, at: int) -> None:
        numeric = ("integer", "number")
        if a.type == b.type or (a.type in numeric and b.type in numeric):
            return
        if "null" in (a.type, b.type):
            raise _syntax(at, "与 NULL 比较请用 IS NULL / use IS NULL to test for NULL")
        what = f"{a.name or a.type} ({a.type}) 与 / vs {b.name or b.type} ({b.type})"
        dated = "date" in (a.type, b.type)
        hint = "；日期请写 DATE('2024-01-31') / dates as DATE('…')" if dated else ""
        raise _syntax(at, f"类型不符 / type mismatch: {what}{hint}")

    # -- operands
    def operand(self) -> Operand:
        t = self.take()
        if t.kind == "string":
            return Operand(self.params.add(t.value), "string")
        if t.kind == "number":
            return Operand(self.params.add(t.value), "number")
        if t.kind == "name":
            return self.property(t)
        if t.kind == "word":
            word = t.value.upper()
            if word in ("TRUE", "FALSE"):
                return Operand(word, "boolean")
            if word == "NULL":
                return Operand("NULL", "null")
            if word in ("DATE", "TIMESTAMP"):
                return self.temporal_literal(word, t)
            if word == "CASEI":
                self.expect_op("(")
                inner = self.operand()
                self.expect_op(")")
                if inner.type != "string":
                    raise _syntax(t.at, "CASEI 只用于文本 / CASEI needs text")
                return Operand(f"lower({inner.sql})", "string", inner.is_property, inner.name)
            if word in KEYWORDS or word in SPATIAL:
                raise _syntax(t.at, f"此处不应是 {t.value} / unexpected {t.value}")
            if self.peek().kind == "op" and self.peek().value == "(":
                raise _syntax(t.at, f"不支持函数 {t.value} / function {t.value} is not supported")
            return self.property(t)
        raise _syntax(t.at, f"应为属性或值 / expected a property or a value, got {t.value!r}")

    def property(self, t: Token) -> Operand:
        props = self.coll.queryables()
        if t.value in GEOMETRY_PROPERTIES:
            raise _syntax(t.at, "几何只用于空间函数 / geometry only in spatial functions")
        if t.value not in props:
            raise TitlemapError(
                f"未知属性 {t.value!r} / unknown property; 可查询 / queryables: {', '.join(props)}"
            )
        prop = props[t.value]
        self.used.add(prop.name)
        return Operand(prop.column(), prop.type, True, prop.name)

    def temporal_literal(self, word: str, t: Token) -> Operand:
        self.expect_op("(")
        s = self.take()
        self.expect_op(")")
        if s.kind != "string":
            raise _syntax(s.at, f"{word} 需要带引号的文本 / {word} needs a quoted string")
        if word == "DATE":
            try:
                value = date.fromisoformat(s.value)
            except ValueError:
                raise _syntax(s.at, f"日期无效 / invalid date {s.value!r}") from None
        else:
            value = instant(s.value if "T" in s.value else s.value + "T00:00:00Z")
        return Operand(self.params.add(value), "date")

    # -- spatial
    def spatial(self, name: str) -> str:
        at = self.take().at
        self.expect_op("(")
        a = self.spatial_operand()
        self.expect_op(",")
        b = self.spatial_operand()
        self.expect_op(")")
        if a.is_property == b.is_property:
            raise _syntax(at, f"{name} 需要 geometry 与一个几何值 / needs geometry and a literal")
        return f"{SPATIAL[name]}({a.sql}, {b.sql})"

    def spatial_operand(self) -> Operand:
        t = self.take()
        if t.kind in ("word", "name") and t.value in GEOMETRY_PROPERTIES:
            return Operand("s.geom", "geometry", True)
        if t.kind == "wkt":
            return Operand(self.wkt(t), "geometry")
        if t.kind == "word" and t.value.upper() == "BBOX":
            self.expect_op("(")
            numbers = [self.number()]
            while self.peek().kind == "op" and self.peek().value == ",":
                self.take()
                numbers.append(self.number())
            self.expect_op(")")
            if len(numbers) == 6:
                numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
            if len(numbers) != 4:
                raise _syntax(t.at, "BBOX 需要 4 或 6 个数 / BBOX needs 4 or 6 numbers")
            try:
                return Operand(envelope_sql(*numbers, self.crs, self.params), "geometry")
            except TitlemapError as exc:
                raise _syntax(t.at, str(exc)) from None
        raise _syntax(t.at, "应为 geometry、WKT 几何或 BBOX / expected geometry, WKT or BBOX")

    def number(self) -> float:
        t = self.take()
        if t.kind != "number":
            raise _syntax(t.at, "应为数 / expected a number")
        return float(t.value)

    def wkt(self, t: Token) -> str:
        try:
            geom = shapely.from_wkt(t.value)
        except shapely.errors.GEOSException as exc:
            raise _syntax(t.at, f"WKT 无效 / invalid WKT: {exc}") from None
        if geom is None or geom.is_empty:
            raise _syntax(t.at, "几何为空 / empty geometry")
        geom = shapely.force_2d(geom)
        if self.crs.north_first:  # given lat/lon (northing/easting): store x first
            geom = shapely.transform(geom, lambda xy: xy[:, ::-1])
        try:
            self.crs.check_within(geom.bounds, "坐标", "coordinates")
        except TitlemapError as exc:
            raise _syntax(t.at, str(exc)) from None
        if self.crs.srid != STORAGE_EPSG:
            return projected_sql(geom, self.crs, self.params)
        wkt = self.params.add(shapely.to_wkt(geom, rounding_precision=-1))
        return f"ST_GeomFromText({wkt}, 4490)"


def cql2_sql(
    source: str, coll: Collection, crs: OutputCrs, params: Params, used: set[str] | None = None
) -> str:
    """A CQL2-text filter as a WHERE clause over the collection's source `s`; the properties
    it names are added to `used`."""
    if len(source) > MAX_FILTER_CHARS:
        raise TitlemapError(f"filter 过长 / filter longer than {MAX_FILTER_CHARS} characters")
    if not source.strip():
        raise TitlemapError("filter 为空 / filter is empty")
    compiler = Compiler(tokenize(source), coll, crs, params)
    sql = compiler.parse()
    if used is not None:
        used |= compiler.used
    return sql
