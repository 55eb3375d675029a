"""A demo province: several demo counties side by side under their cities (issue 17).

Each county is a demo county (geo.demo.generate, its own seed, so the figures differ) recoded
to its own GB/T 2260 code — every code that carries the demo county's 629901 (county,
townships, 宗地代码, compound codes, the developers' credit codes with their check character
recomputed) — with its own name, and moved so the counties lie side by side without
overlapping, on a grid within Gauss-Krüger zone 35 (103.5–106.5°E) for up to five columns.
"""

import dataclasses
import itertools

import pandas as pd
from sqlalchemy import Engine

from geo.core.codes import PROVINCES, credit_code_check_char
from geo.demo.facts import COUNTY_NAME, DEMO_COUNTY
from geo.demo.frames import SPATIAL, DemoCounty
from geo.demo.generate import generate
from geo.io.load import LoadReport, load_county
from geo.ledger.regions import add_region, list_regions

COLUMNS = 5  # counties per row: the demo county is ≈0.48° wide, 103.86–104.33°E
# Neighbours lie this far apart in Gauss-Krüger zone 35 (the county is ≈ 43 × 29 km): moved in
# the plane, each parcel keeps the area its county's zone measures — moved in degrees, a county
# six rows south had every parcel's drawn area off its recorded one by more than the 1 % the
# checks allow (cos φ), and 84 % of a province's parcels failed the area check.
STEP_EAST_M, STEP_NORTH_M = 46_000.0, 33_500.0
GK_ZONE_35 = 4544  # CGCS2000 3° Gauss-Krüger, central meridian 105°E
CREDIT_COLUMNS = ("credit_code", "developer_credit_code")
# Fictional place words: county names are two of them and 县 (the first of a city 区).
PLACE_WORDS = "安宁永和平兴德广定清川远昌泰丰乐山河原新"
CITY_WORDS = ("金川", "河湾", "陇原", "祁连", "黄河", "丝路", "雪山", "绿洲", "石峡", "云台",
              "青岭", "松涛", "月泉", "星湖")  # fmt: skip


def county_codes(province: str, cities: int, counties_per_city: int) -> list[str]:
    """620101, 620102, 620201 … : `counties_per_city` counties in each of `cities` cities."""
    if cities > 99 or counties_per_city > 99:
        raise ValueError("at most 99 cities of 99 counties")
    head = province[:2]
    return [f"{head}{city:02d}{county:02d}" for city in range(1, cities + 1)
            for county in range(1, counties_per_city + 1)]  # fmt: skip


def county_names(count: int) -> list[str]:
    pairs = (a + b for a, b in itertools.permutations(PLACE_WORDS, 2))
    return [f"{pair}县" for pair in itertools.islice(pairs, count)]


def regions(province: str = "620000", cities: int = 2) -> list[tuple[str, str]]:
    """(code, name) of the province and its cities, for geo.ledger.regions.add_region."""
    named = [(province, PROVINCES.get(province[:2], "示例省"))]
    return named + [
        (f"{province[:2]}{city:02d}00", f"{CITY_WORDS[(city - 1) % len(CITY_WORDS)]}市")
        for city in range(1, cities + 1)
    ]


def _credit(code: str, county: str) -> str:
    """A credit code registered in the demo county, registered in `county` instead."""
    if not isinstance(code, str) or code[2:8] != DEMO_COUNTY:
        return code
    first17 = code[:2] + county + code[8:17]
    return first17 + credit_code_check_char(first17)


def _recoded(frame: pd.DataFrame, county: str, name: str, shift: tuple[float, float]):
    frame = frame.copy()
    for column in frame.columns:
        if column == "geometry" or frame[column].dtype.kind not in "OUT":
            continue
        if column in CREDIT_COLUMNS:
            frame[column] = frame[column].map(lambda code: _credit(code, county))
        elif frame[column].map(lambda v: isinstance(v, str)).any():
            frame[column] = frame[column].map(
                lambda v: v.replace(DEMO_COUNTY, county).replace(COUNTY_NAME, name)
                if isinstance(v, str) else v
            )  # fmt: skip
    if "geometry" in frame and shift != (0, 0):
        moved = frame.geometry.to_crs(GK_ZONE_35).translate(*shift).to_crs(frame.crs)
        frame = frame.set_geometry(moved)
    return frame


def recode(frames: DemoCounty, county: str, name: str, shift: tuple[float, float]) -> DemoCounty:
    """`frames` (the demo county) as county `county` called `name`, moved by `shift` metres
    east and north in Gauss-Krüger zone 35."""
    layers = {
        field.name: _recoded(getattr(frames, field.name), county, name,
                             shift if field.name in SPATIAL else (0, 0))
        for field in dataclasses.fields(frames)
    }  # fmt: skip
    layers["county"]["name"] = name
    return dataclasses.replace(frames, **layers)


def generate_province(
    province: str = "620000",
    cities: int = 2,
    counties_per_city: int = 2,
    compounds: int = 60,
    seed: int = 1,
    parcels_per_compound: float | None = None,
) -> list[DemoCounty]:
    """Demo counties of `province`, `counties_per_city` in each city, `compounds` each; seeds
    `seed`, `seed` + 1 … so no two counties have the same figures. `parcels_per_compound`:
    geo.demo.generate's (None: the demo's ≈1.9)."""
    codes = county_codes(province, cities, counties_per_city)
    counties = []
    for index, (code, name) in enumerate(zip(codes, county_names(len(codes)), strict=True)):
        shift = (STEP_EAST_M * (index % COLUMNS), -STEP_NORTH_M * (index // COLUMNS))
        counties.append(
            recode(generate(compounds, seed + index, parcels_per_compound), code, name, shift)
        )
    return counties


def load_province(engine: Engine, counties: list[DemoCounty], replace: bool = False) -> list:
    """Load each county (geo.io.load.load_county) and add its province and cities."""
    reports: list[LoadReport] = [load_county(engine, frames, replace) for frames in counties]
    codes = sorted({str(frames.county["code"].iloc[0]) for frames in counties})
    province = codes[0][:2] + "0000"
    cities = max(int(code[2:4]) for code in codes)
    with engine.connect() as conn:
        known = {region["code"] for region in list_regions(conn)}
        for code, name in regions(province, cities):
            if code not in known:
                add_region(conn, code, name)
    return reports
