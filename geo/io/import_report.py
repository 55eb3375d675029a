"""What an import of a layer file says back: counts, the CRS used, notes, repairs, refusals, and
what the county's own words became (developers created, kinds not in its vocabulary)."""

from dataclasses import asdict, dataclass, field

from geo.io.layers import IMPORT_LAYERS

LISTED = 30  # refusals and repairs shown by `lines()`; `to_dict()` keeps up to JSON_LISTED
JSON_LISTED = 1000


@dataclass
class ImportReport:
    layer: str
    source: str
    county: str
    crs: str = ""  # the source CRS used, e.g. "EPSG:4544"
    crs_note: str = ""  # how it was decided: the file's own, given, or what was assumed
    notes: list[str] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)  # field → header in the file
    features: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    warnings: list[str] = field(default_factory=list)  # worth a look, not refusals
    repaired: list[tuple[str, str]] = field(default_factory=list)  # (feature id, what)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (feature id or row, why)
    new_developers: list[str] = field(default_factory=list)  # created by this import
    unknown_words: dict[str, int] = field(default_factory=dict)  # kind word → features (other)
    partial: bool = False
    committed: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Committed with nothing refused."""
        return self.committed and not self.refused

    def to_dict(self) -> dict:
        data = asdict(self)
        data["repaired"] = [{"id": i, "what": w} for i, w in self.repaired[:JSON_LISTED]]
        data["refused"] = [{"id": i, "why": w} for i, w in self.refused[:JSON_LISTED]]
        data["repaired_count"] = len(self.repaired)
        data["refused_count"] = len(self.refused)
        data["seconds"] = round(self.seconds, 2)
        return data

    def lines(self) -> list[str]:
        """The report in words for the command line, Chinese first."""
        label = {**IMPORT_LAYERS, "developers": "开发企业"}.get(self.layer, self.layer)
        out = [f"导入{label}（{self.layer}）← {self.source}：{self.features} 个要素 / features"]
        if self.crs:  # a table of developers has none
            out.append(f"坐标系 / CRS: {self.crs} — {self.crs_note}")
        out += [f"说明 / note: {note}" for note in self.notes]
        out += [f"警告 / warning: {warning}" for warning in self.warnings]
        out += self._words()
        out.append(
            f"新增 / added {self.added}，更新 / updated {self.updated}，"
            f"未变 / unchanged {self.unchanged}"
        )
        for title, items in (
            ("已修复 / repaired", self.repaired),
            ("已拒绝 / refused", self.refused),
        ):
            if items:
                out.append(f"{title} {len(items)}:")
                out += [f"  {ident}: {why}" for ident, why in items[:LISTED]]
                if len(items) > LISTED:
                    out.append(f"  …另有 {len(items) - LISTED} 条 / {len(items) - LISTED} more")
        out.append(self._outcome())
        return out

    def _words(self) -> list[str]:
        out = []
        if self.new_developers:
            out.append(
                f"新建开发企业 / new developers: {'、'.join(self.new_developers)}"
                f"（{len(self.new_developers)} 家）"
            )
        if self.unknown_words:
            words = "、".join(f"{w}（{n}）" for w, n in self.unknown_words.items())
            out.append(
                f"词表中没有的类型，按“其他”导入并保留原词 / kinds not in the vocabulary, "
                f"imported as other with their words: {words}"
            )
        return out

    def _outcome(self) -> str:
        if self.committed and self.refused:
            return (
                f"已写入无误的要素，{len(self.refused)} 个被拒绝的未写入 / the good features were "
                "written (--partial); the refused ones were not"
            )
        if self.committed:
            return f"已写入数据库 / committed ({self.seconds:.1f} s)"
        if self.refused and self.partial:
            return "没有无误的要素可写入，数据库未改变 / no good feature to write: nothing changed"
        if self.refused:
            return (
                f"未写入任何数据：{len(self.refused)} 个要素被拒绝，数据库未改变；修正后重新导入，"
                "或加 --partial 只导入无误的要素 / nothing written: fix the file and import again, "
                "or use --partial to import the good features only"
            )
        return "没有可写入的要素 / nothing to write"
