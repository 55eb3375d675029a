"""geo.core's one-source rules: Beijing days, the date parser, rates, geometry words."""

from datetime import UTC, date, datetime

import pytest
import shapely
from sqlalchemy import Engine, text

from geo.core.dates import DateError, beijing_day, cn_date, parse_date
from geo.core.geometry import validity_words
from geo.core.rates import RATE_DIGITS, rate, rate_sql

BOW_TIE = "POLYGON((104 35, 104.01 35.01, 104.01 35, 104 35.01, 104 35))"


@pytest.mark.parametrize(
    "value",
    ["2026年12月31日", "2026.12.31", "2026/12/31", "2026-12-31", "20261231",
     "２０２６年１２月３１日", "2026-12-31 08:30", "2026年12月底", 46387, 46387.0, 20261231,
     date(2026, 12, 31), datetime(2026, 12, 31, 9, 0)],
)  # fmt: skip
def test_one_parser_reads_what_offices_write(value):
    assert parse_date(value) == date(2026, 12, 31)


@pytest.mark.parametrize(
    "value", ["2026年13月1日", "明年", 5, 46387.5, 90_000, "2026-02-30", 20261332]
)
def test_what_is_not_a_date_is_refused_in_one_line(value):
    with pytest.raises(DateError) as caught:
        parse_date(value)
    assert "\n" not in str(caught.value) and "/ not a" in str(caught.value)


def test_blank_is_no_date():
    assert parse_date(None) is None and parse_date("  ") is None
    assert parse_date(float("nan")) is None


def test_excel_serials_from_1927_on():
    # The importer took 10 001–79 999, the ledger sheet 20 000–80 000: one range now.
    assert parse_date(15_000) == date(1941, 1, 24)  # Excel shows 1941-01-24
    assert parse_date(80_000) == date(2119, 1, 11)


def test_beijing_day_is_not_the_utc_day():
    late_utc = datetime(2026, 12, 7, 17, 30, tzinfo=UTC)  # 01:30 on 8 December in Beijing
    assert beijing_day(late_utc) == date(2026, 12, 8)
    assert beijing_day(datetime(2026, 12, 7, 15, 59)) == date(2026, 12, 7)  # naive = UTC
    assert cn_date(date(2026, 1, 5)) == "2026年1月5日"


def test_rate_rounds_once_the_same_in_python_and_sql(engine: Engine):
    assert rate(1, 7) == round(1 / 7, RATE_DIGITS) == 0.1429
    assert rate(0, 0) is None and rate(None, 5) is None and rate(3, None) is None
    with engine.connect() as conn:
        row = conn.execute(
            text(f"SELECT {rate_sql(':part', ':whole')} AS r, {rate_sql('1', '0')} AS none"),
            {"part": 1, "whole": 7},
        ).one()
    assert row.r == rate(1, 7) and row.none is None


def test_geometry_words_the_same_from_shapely_and_postgis(engine: Engine):
    shapely_reason = shapely.is_valid_reason(shapely.from_wkt(BOW_TIE))
    with engine.connect() as conn:
        postgis_reason = conn.execute(
            text("SELECT ST_IsValidReason(ST_GeomFromText(:w, 4490))"), {"w": BOW_TIE}
        ).scalar_one()
    for reason in (shapely_reason, postgis_reason):
        words = validity_words(reason)
        assert words.startswith("自相交 / ") and words.endswith(reason)
    assert validity_words(None) == "图形无效"
