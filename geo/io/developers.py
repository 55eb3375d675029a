"""Developers (开发企业) as a county's files name them: matched to the county's own, or created.

A compound file names its developers as each office writes them: "陇原置业（兰州）有限公司",
"陇原置业(兰州)", sometimes with a 统一社会信用代码 beside. `developer_key` compares names one
way — the vocabulary's (`geo.core.vocabulary.word_key`: full-width = half-width, no spaces or
punctuation) and without the company form (有限公司, 有限责任公司, 股份有限公司 …) — so the same
company written twice is one developer. A credit code, where the file gives one, is matched
first; it is stored as given (the parcel checks' credit_code check flags a wrong one) and a
malformed one is reported. `DeveloperBook` resolves a file's (name, code) pairs against the
county's developers inside the import's transaction and creates the missing ones — only those
the rows actually written need.
"""

import re
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from geo.core.codes import CREDIT_CODE_LENGTH, check_credit_code
from geo.core.vocabulary import word_key

# Company forms that do not make a second company, longest first (compared after word_key).
COMPANY_FORMS = ("股份有限公司", "有限责任公司", "有限公司", "责任公司", "公司", "coltd", "limited",
                 "ltd", "inc")  # fmt: skip


def developer_key(name: object) -> str:
    """A developer's name as compared: "陇原置业（兰州）有限公司" and "陇原置业(兰州)" are one."""
    key = word_key(name)
    for form in COMPANY_FORMS:
        if key.endswith(form) and len(key) > len(form):
            return key[: -len(form)]
    return key


@dataclass(eq=False)
class NewDeveloper:
    """A developer the file names and the county does not have yet."""

    name: str
    credit_code: str | None = None
    id: int | None = None  # once created


@dataclass
class DeveloperBook:
    """The county's developers, and those a file adds, by credit code and by `developer_key`."""

    by_code: dict[str, int | NewDeveloper] = field(default_factory=dict)
    names: list[tuple[int, str]] = field(default_factory=list)  # the county's, by id
    uncoded: set[int] = field(default_factory=set)  # existing developers without a credit code
    codes_added: dict[int, str] = field(default_factory=dict)  # id → the file's credit code
    warnings: list[str] = field(default_factory=list)
    _by_key: dict[str, list[int | NewDeveloper]] | None = None

    @classmethod
    def of(cls, conn: Connection, county: str) -> "DeveloperBook":
        book = cls()
        rows = conn.execute(
            text("SELECT id, name, credit_code FROM developer WHERE county_code = :c ORDER BY id"),
            {"c": county},
        )
        for ident, name, code in rows:
            if code:
                book.by_code[code.upper()] = ident
            else:
                book.uncoded.add(ident)
            if name:
                book.names.append((ident, name))
        return book

    @property
    def by_key(self) -> dict[str, list[int | NewDeveloper]]:
        """Developers by `developer_key`: worked out once a name is looked up (a file that
        gives credit codes the county knows never needs it)."""
        if self._by_key is None:
            self._by_key = defaultdict(list)
            for ident, name in self.names:
                self._by_key[developer_key(name)].append(ident)
        return self._by_key

    def resolve(self, name: str | None, code: str | None, ref: str) -> int | NewDeveloper | None:
        """The developer a feature names by `name` and credit `code` (cells' text, None when
        blank): an id, or one to create; ValueError when the name alone fits several. `ref`
        names the feature in warnings."""
        name = (name or "").strip() or None
        code = re.sub(r"\s+", "", code or "") or None
        if code is not None and len(code) > CREDIT_CODE_LENGTH:
            self.warnings.append(
                f"{ref}：统一社会信用代码“{code}”超过 18 位，未保存 / credit code longer than 18 "
                "characters: not stored"
            )
            code = None
        if code is None and name is None:
            return None
        if code is None and name.upper() in self.by_code:  # a code written in the name column
            return self.by_code[name.upper()]
        if code is not None:
            return self._by_code(name, code, ref)
        return self._by_name(name)

    def _by_code(self, name: str | None, code: str, ref: str) -> int | NewDeveloper:
        known = self.by_code.get(code.upper())
        if known is not None:
            if isinstance(known, NewDeveloper) and name:
                self._name(known, name)
            return known
        self._check(code, name, ref)
        named = self.by_key.get(developer_key(name), []) if name else []
        uncoded = [d for d in named if not self._coded(d)]
        if len(uncoded) == 1:  # the county has it by name only: the file adds its code
            found = uncoded[0]
            if isinstance(found, int):
                self.uncoded.discard(found)
                self.codes_added[found] = code
            else:
                found.credit_code = code
            self.by_code[code.upper()] = found
            return found
        if named:
            self.warnings.append(
                f"{ref}：开发企业 {name} 与本县已有的同名企业信用代码不同，按另一家新建 / a "
                "developer of this name has another credit code: taken as another developer"
            )
        return self._new(name or code, code)

    def _by_name(self, name: str) -> int | NewDeveloper:
        key = developer_key(name)
        found = self.by_key.get(key, [])
        if len(found) == 1:
            if isinstance(found[0], NewDeveloper):
                self._name(found[0], name)
            return found[0]
        if len(found) > 1:
            raise ValueError(
                f"开发企业 {name!r} 对应本县多个开发企业，请在文件中写明统一社会信用代码 / "
                "several developers go by this name: give the credit code"
            )
        return self._new(name, None, key)

    def _new(self, name: str, code: str | None, key: str | None = None) -> NewDeveloper:
        new = NewDeveloper(name, code)
        self.by_key[key or developer_key(name)].append(new)
        if code:
            self.by_code[code.upper()] = new
        return new

    def _coded(self, developer: int | NewDeveloper) -> bool:
        if isinstance(developer, NewDeveloper):
            return developer.credit_code is not None
        return developer not in self.uncoded

    @staticmethod
    def _name(new: NewDeveloper, name: str) -> None:
        # The fullest spelling names it: 陇原置业（兰州）有限公司 rather than 陇原置业(兰州).
        if len(name) > len(new.name) or new.name == new.credit_code:
            new.name = name

    def _check(self, code: str, name: str | None, ref: str) -> None:
        failures = check_credit_code(code)
        if failures:
            who = f"开发企业 {name} 的" if name else ""
            self.warnings.append(
                f"{ref}：{who}统一社会信用代码“{code}”有误（"
                + "；".join(f"第 {f.position} 位，{f.zh}" for f in failures)
                + "），照录，宗地核查将列出 / malformed credit code, stored as given: "
                + "; ".join(f"position {f.position}: {f.en}" for f in failures)
            )

    def write(self, conn: Connection, county: str, used: list) -> list[str]:
        """Create the new developers among `used` and add the file's codes to those that had
        none; each NewDeveloper gets its id. The names created, in order."""
        named = dict.fromkeys(u for u in used if u is not None)
        new = [d for d in named if isinstance(d, NewDeveloper) and d.id is None]
        if new:  # ids drawn first, so each row knows its own: one statement for thousands
            ids = conn.execute(
                text("SELECT nextval(pg_get_serial_sequence('developer', 'id')) "
                     "FROM generate_series(1, :n)"), {"n": len(new)},
            ).scalars().all()  # fmt: skip
            conn.execute(
                text("INSERT INTO developer (id, county_code, name, credit_code, credit_status) "
                     "SELECT i, :c, n, k, 'normal' FROM unnest(CAST(:ids AS integer[]), "
                     "CAST(:names AS text[]), CAST(:codes AS text[])) AS t(i, n, k)"),
                {"c": county, "ids": ids, "names": [d.name for d in new],
                 "codes": [d.credit_code for d in new]},
            )  # fmt: skip
            for developer, ident in zip(new, ids, strict=True):
                developer.id = ident
        added = [(self.codes_added.pop(d), d) for d in named if d in self.codes_added]
        for code, ident in added:
            conn.execute(
                text("UPDATE developer SET credit_code = :k WHERE id = :i AND credit_code IS NULL"),
                {"k": code, "i": ident},
            )
        return [d.name for d in new]
