"""What onboarding a county's folder will do, or did: which file became which layer and why,
what each import reported, what was refused and what is created — in a clerk's words for the
command line (Chinese first) and as JSON for the API.
"""

from dataclasses import dataclass, field
from pathlib import Path

from geo.io.import_report import ImportReport
from geo.io.layers import IMPORT_LAYERS
from geo.io.ledger_sheet import LedgerImportReport, Sheet

# The layers a folder's files go to, in the order they are imported: what a later one refers
# to (a compound's township and developer, a parcel's compounds, a ledger row's compound) is
# in by then.
ORDER = ("boundary", "townships", "developers", "compounds", "parcels", "planned", "complaints",
         "ledger")  # fmt: skip
LABELS = IMPORT_LAYERS | {"developers": "开发企业", "ledger": "化解台账"}
SKIP = "-"  # --layer FILE=- leaves a file out

Report = ImportReport | LedgerImportReport


@dataclass
class FilePlan:
    """One file (or one layer of a GeoPackage) of the folder and what becomes of it."""

    source: str  # as the office named it: sub/folder/file, a zip's member, gpkg:layer
    path: Path
    source_layer: str | None = None  # a GeoPackage's layer
    layer: str | None = None  # None: not placed
    how: str = ""  # why this layer — or why none
    features: int = 0  # features or data rows read
    columns: dict[str, str] = field(default_factory=dict)  # field → the file's header
    scores: dict[str, int] = field(default_factory=dict)  # layer → evidence, for the curious
    given: bool = False  # the layer was named by --layer
    report: Report | None = None
    error: str | None = None  # the file as a whole could not be used
    sheet: Sheet | None = None  # a ledger as read to recognise it, not read twice

    def refusals(self) -> list[str]:
        """One line per refused row or feature, naming this file; or the file's own error."""
        if self.error:
            return [f"{self.source}：{self.error}"]
        if isinstance(self.report, LedgerImportReport):
            return [
                f"{self.source} 第{issue.row}行"
                + "".join(f" {part}" for part in (issue.code, issue.name) if part)
                + f"：{'；'.join(issue.problems)}"
                for issue in self.report.refused
            ]
        if self.report is None:
            return []
        return [f"{self.source} {ident}：{why}" for ident, why in self.report.refused]

    def new_developers(self) -> list[str]:
        return list(getattr(self.report, "new_developers", []) or [])

    def counts(self) -> dict[str, int]:
        """What the file adds and changes (rows for tables, features for layers)."""
        report = self.report
        if isinstance(report, LedgerImportReport):
            return {"added": len(report.opened), "updated": len(report.updated),
                    "unchanged": report.unchanged}  # fmt: skip
        if report is None:
            return {"added": 0, "updated": 0, "unchanged": 0}
        return {"added": report.added, "updated": report.updated, "unchanged": report.unchanged}

    def to_dict(self) -> dict:
        return {
            "source": self.source, "layer": self.layer,
            "label": LABELS.get(self.layer or "", None), "how": self.how,
            "features": self.features, "columns": self.columns, "scores": self.scores,
            "given": self.given, "error": self.error, "counts": self.counts(),
            "crs": getattr(self.report, "crs", None) or None,
            "crs_note": getattr(self.report, "crs_note", None) or None,
            "report": self.report.to_dict() if self.report is not None else None,
        }  # fmt: skip

    def headline(self) -> str:
        label = LABELS.get(self.layer or "", "")
        by = "（指定 / given）" if self.given else f"（{self.how}）" if self.how else ""
        return (
            f"{label} {self.layer} ← {self.source}：{self.features} 行或要素 / rows or features{by}"
        )

    def details(self) -> list[str]:
        """The import's own report, without what the plan says itself (the file's first line,
        the outcome of a single-file import)."""
        if self.error:
            return [f"无法使用此文件 / the file cannot be used: {self.error}"]
        if self.report is None:
            return ["未导入 / not imported"]
        lines = self.report.lines()
        if isinstance(self.report, ImportReport):
            lines = lines[1:-1]  # the first repeats the headline; the last is a file's outcome
        return lines


@dataclass
class Onboarding:
    """The plan for a county's folder, and what came of it."""

    county: str
    name: str | None  # the county's name
    new_county: bool  # created by this onboarding (or to be, in a dry run)
    files: list[FilePlan]  # placed, in import order
    unplaced: list[FilePlan]  # listed, not guessed
    ignored: list[str]  # lock files, .DS_Store, Thumbs.db …
    dry_run: bool = False
    partial: bool = False
    written: bool = False
    seconds: float = 0.0

    def refusals(self) -> list[str]:
        return [line for plan in self.files for line in plan.refusals()]

    def new_developers(self) -> list[str]:
        return list(dict.fromkeys(name for plan in self.files for name in plan.new_developers()))

    @property
    def ok(self) -> bool:
        """Written, nothing refused; or, in a dry run, nothing would be."""
        return (self.written or self.dry_run) and not self.refusals()

    def to_dict(self) -> dict:
        return {
            "county": self.county, "name": self.name, "new_county": self.new_county,
            "dry_run": self.dry_run, "partial": self.partial, "written": self.written,
            "ok": self.ok, "files": [plan.to_dict() for plan in self.files],
            "unplaced": [{"source": p.source, "why": p.how} for p in self.unplaced],
            "ignored": self.ignored, "refused": self.refusals(),
            "new_developers": self.new_developers(), "seconds": round(self.seconds, 2),
            "message": "\n".join(self.lines()),
        }  # fmt: skip

    def lines(self, limit: int = 30) -> list[str]:
        """The plan and its outcome, Chinese first."""
        out = [f"接入 / onboarding {self.name or ''}（{self.county}）："
               f"{len(self.files)} 个文件已识别，{len(self.unplaced)} 个未识别 / files placed, "
               "not placed"]  # fmt: skip
        if self.new_county:
            verb = "将新建" if self.dry_run or not self.written else "已新建"
            out.append(f"{verb}县 {self.county} {self.name} / the county is created")
        for k, plan in enumerate(self.files, start=1):
            out.append(f"{k}. {plan.headline()}")
            out += [f"   {line}" for line in plan.details()]
        if self.unplaced:
            out.append(
                f"未识别、未导入的文件 {len(self.unplaced)} 个（可用 --layer 文件=图层 指定）/ "
                "files not placed (name their layer with --layer FILE=layer):"
            )
            out += [f"  {plan.source}：{plan.how}" for plan in self.unplaced]
        if self.ignored:
            out.append(f"已忽略 / ignored: {'、'.join(self.ignored)}")
        new = self.new_developers()
        if new:
            named = "、".join(new[:limit]) + (f" …（共 {len(new)} 家）" if len(new) > limit else "")
            out.append(f"新建开发企业 {len(new)} 家 / new developers: {named}")
        refused = self.refusals()
        if refused:
            out.append(f"被拒绝 {len(refused)} 条 / refused:")
            out += [f"  {line}" for line in refused[:limit]]
            if len(refused) > limit:
                out.append(f"  …另有 {len(refused) - limit} 条 / {len(refused) - limit} more")
        out.append(self._outcome(refused))
        return out

    def _outcome(self, refused: list[str]) -> str:
        if self.dry_run:
            return ("试算，未写入任何数据 / dry run: nothing written"
                    + ("；有被拒绝的行，正式导入将不写入 / the refusals above would stop it"
                       if refused and not self.partial else ""))  # fmt: skip
        if self.written and refused:
            return (f"已写入无误的部分，{len(refused)} 条被拒绝的未写入 / the good rows were "
                    "written (--partial); the refused ones were not")  # fmt: skip
        if self.written:
            return (
                f"已全部写入数据库（一个事务）/ committed in one transaction ({self.seconds:.1f} s)"
            )
        if refused:
            return (f"未写入任何数据：{len(refused)} 条被拒绝，数据库未改变；修正文件后重新接入，"
                    "或加 --partial 只导入无误的部分 / nothing written: fix the files and "
                    "onboard again, or use --partial")  # fmt: skip
        return "没有可导入的文件，数据库未改变 / nothing to import: nothing changed"
