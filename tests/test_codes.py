"""Check characters of credit and organisation codes, and 宗地代码 (no database needed)."""

import random
import re

import pytest

from geo.core.codes import (
    CREDIT_ALPHABET,
    PARCEL_CODE_RE,
    CodeFailure,
    check_credit_code,
    check_parcel_code,
    check_unit_code,
    credit_code_check_char,
    credit_code_ok,
    is_valid_credit_code,
    make_credit_code,
    org_code_check_char,
    parcel_code,
    parcel_code_pattern,
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


# -- validation with reasons: check_parcel_code, check_unit_code, check_credit_code ----------------


def rules(failures: list[CodeFailure]) -> list[tuple[str, str]]:
    return [(f.rule, f.position) for f in failures]


def test_the_standards_own_example_passes():
    assert check_parcel_code("340123002004GB00011", "340123") == []
    assert check_unit_code("340123002004GB00011F00010023", "340123") == []
    assert check_unit_code("340123002004GB00011W00000000", "340123") == []
    assert check_parcel_code("340123002004GB00011") == []  # no county to compare with


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("620123002004GB00011", [("county_prefix", "1–6")]),
        ("340123A02004GB00011", [("district_digits", "7–9")]),
        ("34012300200XGB00011", [("subdistrict_digits", "10–12")]),
        ("340123002004XB00011", [("ownership_letter", "13")]),
        ("340123002004GI00011", [("kind_letter", "14")]),
        ("340123002004GA00011", [("kind_needs_collective", "13–14")]),
        ("340123002004ZC00011", [("kind_needs_collective", "13–14")]),
        ("340123002004GB0001O", [("sequence_digits", "15–19")]),
        ("340123002004GB00000", [("sequence_zero", "15–19")]),
        ("340123002004gb00011", [("ownership_letter", "13"), ("kind_letter", "14")]),
    ],
)
def test_each_parcel_code_failure_names_position_and_rule(code, expected):
    failures = check_parcel_code(code, "340123")
    assert rules(failures) == expected
    for failure in failures:
        assert failure.zh and failure.en
        assert failure.position in failure.describe()


def test_collective_kinds_pass_with_collective_ownership():
    assert check_parcel_code("340123002004JA00011", "340123") == []
    assert check_parcel_code("340123002004JC00011", "340123") == []


def test_a_wrong_length_is_said_first_with_the_length():
    failures = check_parcel_code("34012300200GB00011", "340123")  # sub-district lost a digit
    assert failures[0].rule == "length" and failures[0].position == "1–18"
    assert "19" in failures[0].zh and "18" in failures[0].zh
    assert check_parcel_code("", "340123")[0].rule == "length"
    assert rules(check_parcel_code("34012", "340123")) == [("length", "1–5")]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("340123002004GB00011X00010023", [("fixture_letter", "20")]),
        ("340123002004GB00011F0001002A", [("fixture_digits", "21–28")]),
        ("340123002004GB00011W00010023", [("no_fixture_zeros", "20–28")]),
        ("620123002004GB00011F00010023", [("county_prefix", "1–6")]),
        ("340123002004GB00011F0001002", [("length", "1–27"), ("fixture_digits", "21–28")]),
    ],
)
def test_each_unit_code_failure_names_position_and_rule(code, expected):
    assert rules(check_unit_code(code, "340123")) == expected


def test_published_credit_code_has_no_failures():
    assert check_credit_code(PUBLISHED) == []


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (PUBLISHED[:17] + "4", [("check_char", "18")]),
        ("91350100M000100Y53", [("org_check", "9–17"), ("check_char", "18")]),
        ("9135O100M000100Y43", [("division_digits", "3–8"), ("alphabet", "5")]),
        ("91350100m000100Y43", [("alphabet", "9")]),
        ("B1350100M000100Y43", [("authority", "1"), ("check_char", "18")]),
        ("9A350100M000100Y43", [("kind_digit", "2"), ("check_char", "18")]),
        (PUBLISHED[:17], [("length", "1–17")]),
    ],
)
def test_each_credit_code_failure_names_position_and_rule(code, expected):
    failures = check_credit_code(code)
    assert sorted(rules(failures)) == sorted(expected)
    assert failures[0].rule == expected[0][0] or failures[0].rule != "length"


def test_credit_code_check_failure_says_what_it_should_be():
    (failure,) = check_credit_code(PUBLISHED[:17] + "4")
    assert "“3”" in failure.zh and "GB 32100" in failure.zh


def test_made_credit_codes_pass_the_full_check():
    r = random.Random(3)
    for _ in range(200):
        org8 = "".join(r.choice(CREDIT_ALPHABET) for _ in range(8))
        assert check_credit_code(make_credit_code("629901", org8)) == []


def test_the_fast_pattern_agrees_with_the_full_parcel_check():
    # The SQL fast path (a regular expression) must pass exactly the codes the rules pass.
    pattern = re.compile(parcel_code_pattern("629901"))
    r = random.Random(11)
    alphabet = "0123456789GJZABSXCDEFHWYIO"
    tried = 0
    for _ in range(20000):
        code = list(
            parcel_code(
                "629901", r.randrange(1000), r.randrange(1000), "GB", 1 + r.randrange(99999)
            )
        )
        for _ in range(r.randrange(3)):
            code[r.randrange(19)] = r.choice(alphabet)
        code = "".join(code)
        assert bool(pattern.match(code)) == (check_parcel_code(code, "629901") == []), code
        tried += 1
    assert tried == 20000
    for feature in ("GB", "JA", "JC", "ZW", "GH", "JY"):
        code = f"629901001001{feature}00001"
        assert bool(pattern.match(code)) == (check_parcel_code(code, "629901") == []), code


def test_the_quick_credit_check_agrees_with_the_full_one():
    r = random.Random(5)
    for _ in range(3000):
        code = list(
            make_credit_code("629901", "".join(r.choice(CREDIT_ALPHABET) for _ in range(8)))
        )
        for _ in range(r.randrange(3)):
            code[r.randrange(18)] = r.choice(CREDIT_ALPHABET + "IOab")
        code = "".join(code)
        if r.random() < 0.3:  # keep the check character right, so the other rules decide
            code = (
                code[:17] + credit_code_check_char(code[:17])
                if all(c in CREDIT_ALPHABET for c in code[:17])
                else code
            )
        assert credit_code_ok(code) == (check_credit_code(code) == []), code
    assert credit_code_ok(PUBLISHED) and not credit_code_ok(None) and not credit_code_ok("")
