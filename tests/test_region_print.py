"""The city / province overview on one A3 page (maps.print.region), drawn from hand-made
figures: read back with poppler (pdftotext, pdfinfo) and rendered with pdftoppm into
test-artifacts/print/ (git-ignored) for a person to look at."""

import re
import subprocess
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maps.print.region import region_pdf
from maps.styles import TARGET_CLASSES, county_class
from tests.conftest import REPO

ON = date(2026, 12, 7)
ARTIFACTS = REPO / "test-artifacts" / "print"
NAMES = ["城关区", "七里河区", "西固区"]


def county_row(i: int, code: str, name: str, rate: float | None, target: float = 0.9) -> dict:
    task = 1000 + 37 * i
    return {
        "code": code, "name": name, "compounds": 20 + i, "closed": 5 + i % 7, "stalled": i % 4,
        "units_task": task, "units_first_registered": task - 100,
        "units_transferred": int(task * (rate or 0)), "units_sold": task + 500,
        "first_rate": 0.9, "transfer_rate": rate, "overall_rate": rate, "target_rate": target,
        "target_deadline": date(2026, 12, 31), "meets_target": None if rate is None
        else rate >= target, "resolved_this_month": 10 + i, "overdue_tasks": i % 5, "rank": None,
    }  # fmt: skip


def overview_of(rows: list[dict], name: str = "甘肃省") -> dict:
    ranked = sorted(rows, key=lambda r: -(r["overall_rate"] or -1))
    for rank, row in enumerate(ranked, start=1):
        row["rank"] = rank
    task = sum(r["units_task"] for r in rows)
    done = sum(r["units_transferred"] for r in rows)
    totals = {
        "compounds": sum(r["compounds"] for r in rows), "units_task": task,
        "units_transferred": done, "overall_rate": round(done / task, 4),
        "resolved_this_month": sum(r["resolved_this_month"] for r in rows),
        "overdue_tasks": sum(r["overdue_tasks"] for r in rows),
        "stalled": sum(r["stalled"] for r in rows),
    }  # fmt: skip
    region = {"code": "620000", "name": name, "level": "province", "target_rate": 0.9,
              "target_deadline": date(2026, 12, 31)}  # fmt: skip
    return {"region": region, "as_of": ON, "counties": rows, "totals": totals, "withheld": 0}


def outlines_of(rows: list[dict], columns: int = 10) -> dict:
    """Square counties side by side near Lanzhou, 0.3° a side."""
    features = []
    for i, row in enumerate(rows):
        x, y = 103.0 + (i % columns) * 0.3, 35.0 + (i // columns) * 0.3
        ring = [[x, y], [x + 0.28, y], [x + 0.28, y + 0.28], [x, y + 0.28], [x, y]]
        features.append({"type": "Feature", "properties": {"code": row["code"]},
                         "geometry": {"type": "Polygon", "coordinates": [ring]}})  # fmt: skip
    return {"type": "FeatureCollection", "features": features}


def three_counties() -> dict:
    rates = [0.93, 0.85, 0.62]  # met, within ten points, further behind
    return overview_of(
        [
            county_row(i, f"6201{i + 2:02d}", n, r)
            for i, (n, r) in enumerate(zip(NAMES, rates, strict=True))
        ]
    )


def hundred_counties() -> dict:
    rates = [None if i == 99 else 0.5 + (i * 37 % 50) / 100 for i in range(100)]
    rows = [county_row(i, f"62{i // 10 + 1:02d}{i % 10 + 1:02d}", f"第{i + 1}号县", rates[i])
            for i in range(100)]  # fmt: skip
    return overview_of(rows, name="某省")


def save(pdf: bytes, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.pdf"
    path.write_bytes(pdf)
    return path


def pdf_text(path: Path) -> str:
    args = ["pdftotext", "-enc", "UTF-8", str(path), "-"]
    return re.sub(r"\s+", "", subprocess.run(args, capture_output=True, text=True).stdout)


def page_info(path: Path) -> tuple[int, tuple[float, float]]:
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True).stdout
    size = re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", info)
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    return pages, (float(size.group(1)), float(size.group(2)))


def render(path: Path) -> np.ndarray:
    prefix = path.with_suffix("").as_posix()
    subprocess.run(["pdftoppm", "-r", "50", "-png", "-singlefile", str(path), prefix], check=True)
    return np.asarray(Image.open(prefix + ".png").convert("RGB")).astype(int)


def colour_share(pixels: np.ndarray, hex_colour: str, box=None) -> float:
    """The share of pixels in `box` (fractions x0, y0, x1, y1 of the page) near `hex_colour`,
    drawn at 85 % over white."""
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    blended = rgb * 0.85 + 255 * 0.15
    h, w, _ = pixels.shape
    x0, y0, x1, y1 = box or (0, 0, 1, 1)
    part = pixels[int(y0 * h) : int(y1 * h), int(x0 * w) : int(x1 * w)]
    near = np.abs(part - blended).max(axis=2) <= 12
    return float(near.mean())


def assert_one_a3_landscape_page(path: Path) -> None:
    pages, (width, height) = page_info(path)
    assert pages == 1
    assert width == pytest.approx(420 / 25.4 * 72, abs=1.5)  # A3 landscape: 420 × 297 mm
    assert height == pytest.approx(297 / 25.4 * 72, abs=1.5)


def test_the_classes_follow_the_target():
    rows = three_counties()["counties"]
    assert [county_class(r) for r in rows] == ["met", "near", "behind"]
    assert county_class(county_row(0, "620101", "x", None)) == "none"


def test_three_counties_on_one_a3_page():
    overview = three_counties()
    path = save(region_pdf(overview, outlines_of(overview["counties"]), ON), "region-3")
    assert_one_a3_landscape_page(path)
    words = pdf_text(path)
    assert "甘肃省不动产登记化解进度总览" in words
    assert "2026年12月7日" in words
    for name in NAMES:
        assert words.count(name) >= 2  # on the map and in the table
    totals = overview["totals"]
    assert "合计" in words
    assert f"{totals['units_task']:,}" in words and f"{totals['units_transferred']:,}" in words
    assert f"{totals['overall_rate'] * 100:.1f}%" in words
    for header in (
        "排名",
        "总体登记率",
        "差距",
        "本月化解套数",
        "逾期任务",
        "停滞小区",
        "完成时限",
    ):
        assert header in words
    # the ranking reads in rank order: 93.0 % before 85.0 % before 62.0 %
    table = words[words.index("排名") :]
    assert table.index("93.0%") < table.index("85.0%") < table.index("62.0%")
    pixels = render(path)
    map_box = (0.02, 0.1, 0.5, 0.95)  # the map takes the page's left
    for key in ("met", "near", "behind"):
        assert colour_share(pixels, TARGET_CLASSES[key]["colour"], map_box) > 0.005, key


def test_a_hundred_counties_fit_one_page():
    overview = hundred_counties()
    path = save(region_pdf(overview, outlines_of(overview["counties"]), ON), "region-100")
    assert_one_a3_landscape_page(path)
    words = pdf_text(path)
    assert "某省不动产登记化解进度总览" in words
    for row in overview["counties"]:
        assert row["name"] in words, row["name"]
    assert "合计" in words and f"{overview['totals']['units_task']:,}" in words
    pixels = render(path)
    for key in TARGET_CLASSES:
        assert colour_share(pixels, TARGET_CLASSES[key]["colour"]) > 0.002, key


def test_no_outlines_still_prints_the_table():
    overview = three_counties()
    path = save(region_pdf(overview, {"type": "FeatureCollection", "features": []}, ON),
                "region-no-outlines")  # fmt: skip
    words = pdf_text(path)
    assert "无县区界线数据" in words and all(name in words for name in NAMES)
