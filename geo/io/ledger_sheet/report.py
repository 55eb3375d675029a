"""What an import did, row by row, in a clerk's words (Chinese first, English alongside)."""

from dataclasses import asdict, dataclass, field

from geo.core.model import CLOSING_RULE_LABELS, STATUS_LABELS, ClosingRule, LedgerStatus
from geo.io.ledger_sheet.columns import BY_FIELD

HOW = {"given": "（指定 / given）", "meaning": "（按含义 / by meaning）", "alias": ""}


@dataclass
class RowIssue:
    row: int
    code: str | None
    name: str | None
    problems: list[str]


@dataclass
class LedgerImportReport:
    file_name: str
    county: str
    user: str
    kind: str
    encoding: str | None
    sheet_name: str | None
    header_rows: list[int]
    columns: dict[str, str]  # field → the sheet's header as written
    ignored_columns: list[str]
    rows: int = 0  # data rows read
    blank_rows: int = 0
    skipped: list[dict] = field(default_factory=list)
    refused: list[RowIssue] = field(default_factory=list)
    unmatched: list[RowIssue] = field(default_factory=list)  # sheet rows without a compound
    ambiguous: list[RowIssue] = field(default_factory=list)  # names matching several compounds
    missing: list[dict] = field(default_factory=list)  # ledger compounds not in the sheet
    opened: list[dict] = field(default_factory=list)  # {row, code}
    updated: list[dict] = field(default_factory=list)  # {row, code, fields}
    unchanged: int = 0
    warnings: list[str] = field(default_factory=list)
    partial: bool = False
    dry_run: bool = False
    applied: bool = False
    events: int = 0
    seconds: float = 0.0
    # the county's own headers and words
    matched_by: dict[str, str] = field(default_factory=dict)  # field → given / alias / meaning
    ambiguous_columns: list[dict] = field(default_factory=list)  # {header, fields}
    given_columns: dict[str, str] = field(default_factory=dict)  # --columns and remembered
    columns_remembered: bool = False
    unknown_statuses: list[dict] = field(default_factory=list)  # {row, code, word, status}
    unmapped_blockers: list[dict] = field(default_factory=list)  # {row, code, words}
    # the county's closing rule, and rows closed against it (taken as recorded)
    closing_rule: str = "all_transferred"
    against_rule: list[RowIssue] = field(default_factory=list)
    totals: list[dict] = field(default_factory=list)  # 合计 ≠ sum: {row, column, sheet, rows}
    new_developers: list[str] = field(default_factory=list)  # named in 开发企业, created

    @property
    def ok(self) -> bool:
        """Applied with no refused row."""
        return self.applied and not self.refused

    def to_dict(self) -> dict:
        data = asdict(self)
        data["ok"] = self.ok
        return data

    def lines(self, limit: int = 20) -> list[str]:
        """The report in a clerk's words, Chinese first, English alongside; lists cut at `limit`."""
        where = f"工作表“{self.sheet_name}”，" if self.sheet_name else ""
        encoding = f"编码 {self.encoding}，" if self.encoding else ""
        header = "–".join(str(r) for r in (self.header_rows[0], self.header_rows[-1]))
        if len(self.header_rows) == 1:
            header = str(self.header_rows[0])
        out = [
            f"导入 {self.file_name}（{where}{encoding}表头第 {header} 行，数据 {self.rows} 行）/ "
            f"importing {self.file_name}: {self.rows} data rows",
            *self._header_lines(limit),
        ]
        if self.refused:
            head = (
                "已拒绝，台账未作任何修改 / refused, nothing changed"
                if not self.applied
                else "以下行有误，已跳过 / these rows were skipped"
            )
            title = f"{head}：{len(self.refused)} 行有误 / rows with errors"
            out += _listed(title, [_issue_line(issue) for issue in self.refused], limit)
        if self.dry_run:
            out.append("试算，未写入 / dry run, nothing written")
        if self.applied or self.dry_run:
            verb = "将" if self.dry_run else ""
            out.append(
                f"{verb}新挂账 {len(self.opened)} 个，{verb}更新 {len(self.updated)} 个，"
                f"未变化 {self.unchanged} 个，台账事件 {self.events} 条 / opened "
                f"{len(self.opened)}, updated {len(self.updated)}, unchanged {self.unchanged}, "
                f"{self.events} ledger events"
            )
            for item in self.updated[:limit]:
                fields = "、".join(BY_FIELD[f].header if f in BY_FIELD else f
                                  for f in item["fields"])  # fmt: skip
                out.append(f"  第{item['row']}行 {item['code']}：{fields}")
            out += _more(len(self.updated), limit)
        if self.new_developers:
            names = "、".join(self.new_developers)
            out.append(f"{'将' if self.dry_run else ''}新建开发企业 / new developers: {names}"
                       f"（{len(self.new_developers)} 家）")  # fmt: skip
        out += self._word_lines(limit)
        if self.unmatched:
            title = (
                f"表中有、库中无的行 {len(self.unmatched)} 个（未导入）/ sheet rows without a "
                "compound (not imported):"
            )
            out += _listed(title, [_issue_line(issue) for issue in self.unmatched], limit)
        if self.ambiguous:
            title = (
                f"名称对应多个小区的行 {len(self.ambiguous)} 个（未导入，请填项目编号）/ "
                "names matching several compounds (not imported: give the code)"
            )
            out += _listed(title, [_issue_line(issue) for issue in self.ambiguous], limit)
        if self.missing:
            title = (
                f"台账中有、表中无的小区 {len(self.missing)} 个（保持不变）/ ledger compounds "
                "missing from the sheet (left as they are):"
            )
            out += _listed(
                title, [f"{item['code']} {item['name']}" for item in self.missing], limit
            )
        for warning in self.warnings[:limit]:
            out.append(f"提示 / note: {warning}")
        out += _more(len(self.warnings), limit)
        return out

    def _header_lines(self, limit: int) -> list[str]:
        """The sheet's headers → titlemap's fields, what was left out, what was ambiguous."""
        mapped = [
            f"{word}→{BY_FIELD[f].header}{HOW.get(self.matched_by.get(f, 'alias'), '')}"
            for f, word in self.columns.items()
        ]
        out = ["表头 → 字段 / headers → fields: " + "；".join(mapped)]
        if self.ignored_columns:
            out.append(
                "未导入的列 / columns not imported: " + "、".join(self.ignored_columns[:limit])
            )
        if self.ambiguous_columns:
            items = [
                f"{item['header']}（{' 或 '.join(BY_FIELD[f].header for f in item['fields'])}）"
                for item in self.ambiguous_columns
            ]
            out.append(
                "表头含义不明，未导入 / ambiguous headers, not imported: "
                + "、".join(items)
                + '；请用 --columns "表头=字段" 指定 / name their fields with --columns'
            )
        if self.columns_remembered:
            out.append(
                "已记住本县的表头对应，下次导入自动使用 / the header mapping is remembered for "
                "this county's next imports"
            )
        return out

    def _word_lines(self, limit: int) -> list[str]:
        """The county's words no vocabulary maps, and closings against its rule."""
        unmapped = [f"第{i['row']}行 {i['code']}：{'、'.join(i['words'])}"
                    for i in self.unmapped_blockers]  # fmt: skip
        unknown = [f"第{i['row']}行 {i['code']}：“{i['word']}”→{_status_label(i['status'])}"
                   for i in self.unknown_statuses]  # fmt: skip
        against = [_issue_line(issue) for issue in self.against_rule]
        rule = CLOSING_RULE_LABELS[ClosingRule(self.closing_rule)]
        sections = (
            (unmapped, f"未归类的卡点 {len(unmapped)} 行（记为“其他问题”，原文保留）/ unmapped "
                       "blockers (kept as other, with their words):"),
            (unknown, f"未识别的化解状态 {len(unknown)} 行（按套数定状态，原文保留）/ unknown "
                      "status words (status taken from the figures, the words kept):"),
            (against, f"销号不符合本县规则“{rule}”的 {len(against)} 行（按县台账记录导入）/ closed "
                      f"against the county's rule ({self.closing_rule}), imported as recorded:"),
        )  # fmt: skip
        out: list[str] = []
        for items, title in sections:
            if items:
                out += _listed(title, items, limit)
        return out


def _status_label(status: str | None) -> str:
    return STATUS_LABELS[LedgerStatus(status)] if status else "—"


def _issue_line(issue: RowIssue) -> str:
    who = "".join(f" {part}" for part in (issue.code, issue.name) if part)
    return f"第{issue.row}行{who}：" + "；".join(issue.problems)


def _listed(title: str, items: list[str], limit: int) -> list[str]:
    """A title, then the first `limit` items indented, then how many more there are."""
    return [title, *(f"  {item}" for item in items[:limit]), *_more(len(items), limit)]


def _more(count: int, limit: int) -> list[str]:
    return [f"  …… 另有 {count - limit} 项 / and {count - limit} more"] if count > limit else []
