"""Check characters of credit and organisation codes, and 宗地代码 (no database needed)."""

import random

import pytest

from geo.codes import (
    CREDIT_ALPHABET,
    PARCEL_CODE_RE,
    credit_code_check_char,
    is_valid_credit_code,
    make_credit_code,
    org_code_check_char,
    parcel_code,
)

PUBLISHED = "91350100M000100Y43"  # a real, published 统一社会信用代码


def test_published_credit_code_is_valid():
    assert is_valid_credit_code(PUBLISHED)
    assert credit_code_check_char(PUBLISHED[:17]) == "3"
    assert org_code_check_char("M000100Y") == "4"  # its embedded 组织机构代码 M000100Y-4


def test_any_single_changed_character_is_caught():
    # mod 31 with weights prime to 31: every one-character substitution changes the check.
    for position, original in enumerate(PUBLISHED):
        for other in CREDIT_ALPHABET:
            if other != original:
                changed = PUBLISHED[:position] + other + PUBLISHED[position + 1 :]
                assert not is_valid_credit_code(changed), changed


@pytest.mark.parametrize(
    "code",
    [
        PUBLISHED[:17],  # too short
        PUBLISHED + "0",  # too long
        PUBLISHED.lower(),  # registries print upper case
        "91350100I000100Y43",  # I is not in the alphabet
        "",
    ],
)
def test_malformed_credit_codes_are_invalid(code):
    assert not is_valid_credit_code(code)


def test_make_credit_code_rebuilds_the_published_code():
    assert make_credit_code("350100", "M000100Y") == PUBLISHED


def test_made_credit_codes_are_valid():
    r = random.Random(7)
    digits = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    for _ in range(500):
        org8 = "".join(r.choice(digits) for _ in range(8))
        code = make_credit_code("629901", org8)
        assert len(code) == 18 and is_valid_credit_code(code)
        assert code[8:16] == org8 and code[16] == org_code_check_char(org8)


@pytest.mark.parametrize(
    ("first8", "check"),
    [("12345678", "8"), ("00000000", "0"), ("00000006", "X"), ("00000001", "9")],
)
def test_org_code_check_char(first8, check):
    # 11 − (Σ value × weight mod 11), with 10 → X and 11 → 0.
    assert org_code_check_char(first8) == check


def test_check_char_input_lengths():
    with pytest.raises(ValueError):
        credit_code_check_char("123")
    with pytest.raises(ValueError):
        org_code_check_char("1234567")


def test_parcel_code_matches_the_standard_example():
    code = parcel_code("340123", 2, 4, "GB", 11)
    assert code == "340123002004GB00011"
    assert len(code) == 19 and PARCEL_CODE_RE.match(code)


@pytest.mark.parametrize(
    "code",
    [
        "340123002004XB00011",  # X is no ownership letter
        "340123002004GI00011",  # I is no parcel kind
        "340123002004GB0001",  # sequence too short
        "34012300200GB00011",  # sub-district too short
        "340123002004gb00011",
    ],
)
def test_parcel_code_regex_rejects_malformed(code):
    assert not PARCEL_CODE_RE.match(code)


@pytest.mark.parametrize(
    "args",
    [
        ("34012", 2, 4, "GB", 11),
        ("340123", 1000, 4, "GB", 11),
        ("340123", 2, 4, "XB", 11),
        ("340123", 2, 4, "GB", 100000),
    ],
)
def test_parcel_code_refuses_what_does_not_fit(args):
    with pytest.raises(ValueError):
        parcel_code(*args)
