"""The layers of docs/architecture.md, checked on the imports themselves: no arrow runs back up.

Every module's imports (module level and inside functions) are read with `ast`; a module may
import its own package and the packages below it, never one above.
"""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# geo's subpackages floor first; what one may import: itself and everything of a lower rank
# (checks and io are side by side: neither imports the other).
GEO_RANK = {"core": 0, "db": 1, "ledger": 2, "query": 3, "checks": 4, "io": 4, "ogc": 5, "demo": 6}
TOP_RANK = {"geo": 0, "maps": 1, "api": 2, "cli": 3}  # cli serves the api
LONGEST_MODULE = 800  # lines; docs/architecture.md names any module allowed past it


def modules() -> list[Path]:
    return sorted(p for top in TOP_RANK for p in (REPO / top).rglob("*.py")
                  if "migrations" not in p.parts)  # fmt: skip


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def layer(dotted: str) -> tuple[str, str | None] | None:
    parts = dotted.split(".")
    if parts[0] not in TOP_RANK:
        return None
    sub = parts[1] if parts[0] == "geo" and len(parts) > 1 and parts[1] in GEO_RANK else None
    return parts[0], sub


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_arrow_runs_back_up(path: Path):
    own = layer(".".join(path.relative_to(REPO).with_suffix("").parts))
    for name in imported(path):
        other = layer(name)
        if other is None or other == own:
            continue
        if other[0] != own[0]:
            assert TOP_RANK[other[0]] < TOP_RANK[own[0]], f"{path.name} imports {name}"
        elif own[0] == "geo" and own[1] and other[1]:
            assert GEO_RANK[other[1]] < GEO_RANK[own[1]], f"{path.name} imports {name}"


def test_no_module_is_a_monolith():
    long = {str(p.relative_to(REPO)): n for p in modules()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > LONGEST_MODULE}  # fmt: skip
    assert long == {}


def test_the_check_sees_late_imports_and_ranks_them(tmp_path: Path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from geo.demo import generate\n    import maps.styles\n")
    names = imported(sample)
    assert {"geo.demo", "geo.demo.generate", "maps.styles"} <= names
    assert GEO_RANK[layer("geo.demo.generate")[1]] > GEO_RANK[layer("geo.io.load")[1]]
    assert layer("sqlalchemy.orm") is None
