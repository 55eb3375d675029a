"""Registry codes: 统一社会信用代码 (GB 32100), 组织机构代码 (GB 11714), 宗地代码 (GB/T 37346),
县级行政区划代码 (GB/T 2260).

Check characters are computed, never typed: a ledger that quotes a developer's credit code can
then be checked for typos before anyone phones the wrong company.
"""

import hashlib
import re
from dataclasses import dataclass

# GB 32100-2015: the 31 characters of a credit code; I, O, Z, S, V are left out (look like digits).
CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)  # GB 11714-1997

# 宗地代码: county(6) district(3) sub-district(3) feature(ownership + kind) sequence(5).
PARCEL_CODE_RE = re.compile(r"^\d{6}\d{3}\d{3}(G|J|Z)[ABSXCDEFHGWY]\d{5}$")
_FEATURE_RE = re.compile(r"^(G|J|Z)[ABSXCDEFHGWY]$")


def credit_code_check_char(first17: str) -> str:
    """The 18th character of a 统一社会信用代码, from its first 17."""
    if len(first17) != 17:
        raise ValueError(f"need the first 17 characters, got {len(first17)}: {first17!r}")
    try:
        values = [CREDIT_ALPHABET.index(char) for char in first17.upper()]
    except ValueError:
        raise ValueError(f"not a credit-code character in {first17!r}") from None
    total = sum(value * weight for value, weight in zip(values, CREDIT_WEIGHTS, strict=True))
    return CREDIT_ALPHABET[(31 - total % 31) % 31]


def _org_char_value(char: str) -> int:
    # GB 11714: digits are themselves, letters A..Z count 10..35.
    if char.isdigit():
        return int(char)
    if "A" <= char <= "Z":
        return ord(char) - ord("A") + 10
    raise ValueError(f"not an organisation-code character: {char!r}")


def org_code_check_char(first8: str) -> str:
    """The 9th character of a 组织机构代码, from its first 8 (10 → "X", 11 → "0")."""
    if len(first8) != 8:
        raise ValueError(f"need the first 8 characters, got {len(first8)}: {first8!r}")
    total = sum(
        _org_char_value(char) * weight
        for char, weight in zip(first8.upper(), ORG_WEIGHTS, strict=True)
    )
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def make_credit_code(admin_code: str, org8: str, authority: str = "9", kind: str = "1") -> str:
    """A complete 18-character credit code: authority, kind, admin code, org code, check.

    authority "9" is the market regulator (工商) and kind "1" an enterprise, as for developers.
    """
    if not re.fullmatch(r"\d{6}", admin_code):
        raise ValueError(f"admin code must be 6 digits: {admin_code!r}")
    org9 = org8.upper() + org_code_check_char(org8)
    first17 = f"{authority}{kind}{admin_code}{org9}"
    return first17 + credit_code_check_char(first17)


def is_valid_credit_code(code: str) -> bool:
    """Whether `code` has 18 characters of the GB 32100 alphabet and a matching check character."""
    if not isinstance(code, str) or len(code) != 18:
        return False
    if any(char not in CREDIT_ALPHABET for char in code):
        return False  # lower case is not accepted either: registries print upper case
    return credit_code_check_char(code[:17]) == code[17]


def parcel_code(county: str, district: int, subdistrict: int, feature: str, seq: int) -> str:
    """The 19-character 宗地代码: parcel_code("340123", 2, 4, "GB", 11) → 340123002004GB00011."""
    if not re.fullmatch(r"\d{6}", county):
        raise ValueError(f"county code must be 6 digits: {county!r}")
    if not (0 <= district <= 999 and 0 <= subdistrict <= 999):
        raise ValueError(f"district and sub-district must fit 3 digits: {district}, {subdistrict}")
    if not _FEATURE_RE.match(feature):
        raise ValueError(f"not a 宗地特征码: {feature!r}")
    if not 0 <= seq <= 99999:
        raise ValueError(f"parcel sequence must fit 5 digits: {seq}")
    return f"{county}{district:03d}{subdistrict:03d}{feature}{seq:05d}"


# -- validation with reasons -----------------------------------------------------------------
#
# check_parcel_code / check_unit_code / check_credit_code return a list of `CodeFailure`s, empty
# when the code is right. Each names the 1-based character range it concerns and the rule it
# breaks, in Chinese and English, so a clerk can find the typo without reading the standard.

OWNERSHIP_LETTERS = {"G": "国家所有", "J": "集体所有", "Z": "所有权未确定或有争议"}
PARCEL_KIND_LETTERS = {
    "A": "集体土地所有权",
    "B": "建设用地使用权（地表）",
    "S": "建设用地使用权（地上）",
    "X": "建设用地使用权（地下）",
    "C": "宅基地使用权",
    "D": "土地承包经营权（耕地）",
    "E": "林地使用权",
    "F": "草原使用权",
    "H": "海域使用权",
    "G": "无居民海岛使用权",
    "W": "使用权未确定或有争议",
    "Y": "其他使用权",
}
COLLECTIVE_ONLY_KINDS = ("A", "C")  # collective land ownership and homesteads need owner J
FIXTURE_LETTERS = {
    "F": "房屋等建筑物、构筑物",
    "L": "森林、林木",
    "Q": "其他定着物",
    "W": "无定着物",
}
# GB 32100 registration authorities (登记管理部门码), position 1 of a credit code.
CREDIT_AUTHORITIES = "123456789ANY"

PARCEL_CODE_LENGTH, UNIT_CODE_LENGTH, CREDIT_CODE_LENGTH = 19, 28, 18


@dataclass(frozen=True)
class CodeFailure:
    """One broken rule: characters `start`..`end` (1-based, inclusive) and what is wrong."""

    start: int
    end: int
    rule: str  # a short identifier, e.g. "county_prefix"
    zh: str
    en: str

    @property
    def position(self) -> str:
        return str(self.start) if self.start == self.end else f"{self.start}–{self.end}"

    def describe(self) -> str:
        return f"第 {self.position} 位：{self.zh} / position {self.position}: {self.en}"

    def as_dict(self) -> dict:
        return {
            "start": self.start,
            "end": self.end,
            "position": self.position,
            "rule": self.rule,
            "zh": self.zh,
            "en": self.en,
        }


def _digits(code: str, start: int, end: int, rule: str, zh: str, en: str) -> list[CodeFailure]:
    part = code[start - 1 : end]
    width = end - start + 1
    if len(part) == width and part.isascii() and part.isdigit():
        return []
    return [
        CodeFailure(
            start, end, rule, f"{zh}应为 {width} 位数字，实为“{part}”",
            f"{en} must be {width} digits, found {part!r}",
        )
    ]  # fmt: skip


def _length(code: str, expected: int, zh: str, en: str) -> list[CodeFailure]:
    if len(code) == expected:
        return []
    return [
        CodeFailure(
            1, max(1, len(code)), "length", f"{zh}应为 {expected} 位，实为 {len(code)} 位",
            f"a {en} has {expected} characters, this one has {len(code)}",
        )
    ]  # fmt: skip


def _ordered(failures: list[CodeFailure]) -> list[CodeFailure]:
    """The length first, then by position."""
    return sorted(failures, key=lambda f: (f.rule != "length", f.start, f.end))


def check_parcel_code(code: str, county: str | None = None) -> list[CodeFailure]:
    """Failures of a 19-character 宗地代码 (GB/T 37346); `county` is the expected prefix.

    Positions: 1–6 county (县级行政区划代码), 7–9 cadastral district (地籍区), 10–12
    sub-district (地籍子区), 13 ownership letter (G/J/Z), 14 parcel-kind letter, 15–19 sequence.
    """
    code = "" if code is None else str(code)
    failures = _length(code, PARCEL_CODE_LENGTH, "宗地代码", "parcel code (宗地代码)")
    if len(code) < 6:
        return failures  # nothing else can be placed
    return _ordered(failures + _parcel_fields(code[:PARCEL_CODE_LENGTH], county))


def _parcel_fields(code: str, county: str | None) -> list[CodeFailure]:
    failures = [
        *_digits(code, 1, 6, "county_digits", "县级行政区划代码", "the county code"),
        *_digits(code, 7, 9, "district_digits", "地籍区代码", "the cadastral district"),
        *_digits(code, 10, 12, "subdistrict_digits", "地籍子区代码", "the sub-district"),
    ]
    if county is not None and code[:6] != county and code[:6].isdigit():
        failures.append(
            CodeFailure(
                1, 6, "county_prefix", f"县级行政区划代码应为本县 {county}，实为 {code[:6]}",
                f"the county prefix must be {county}, found {code[:6]}",
            )
        )  # fmt: skip
    owner, kind = code[12:13], code[13:14]
    if owner and owner not in OWNERSHIP_LETTERS:
        failures.append(
            CodeFailure(
                13, 13, "ownership_letter",
                f"宗地特征码第一位（所有权类型）应为 G、J 或 Z，实为“{owner}”",
                f"the ownership letter must be G, J or Z, found {owner!r}",
            )
        )  # fmt: skip
    allowed = "".join(PARCEL_KIND_LETTERS)
    if kind and kind not in PARCEL_KIND_LETTERS:
        failures.append(
            CodeFailure(
                14, 14, "kind_letter",
                f"宗地特征码第二位（宗地类型）应为 {allowed} 之一，实为“{kind}”",
                f"the parcel-kind letter must be one of {allowed}, found {kind!r}",
            )
        )  # fmt: skip
    elif kind in COLLECTIVE_ONLY_KINDS and owner in OWNERSHIP_LETTERS and owner != "J":
        failures.append(
            CodeFailure(
                13, 14, "kind_needs_collective",
                f"宗地类型 {kind}（{PARCEL_KIND_LETTERS[kind]}）只能与 J（集体所有）组合，"
                f"实为“{owner}{kind}”",
                f"parcel kind {kind} goes only with ownership J (collective), "
                f"found {owner + kind!r}",
            )
        )  # fmt: skip
    if len(code) >= 15:
        sequence = _digits(code, 15, 19, "sequence_digits", "宗地顺序号", "the sequence")
        if not sequence and code[14:19] == "00000":
            sequence = [
                CodeFailure(
                    15, 19, "sequence_zero", "宗地顺序号从 00001 起编，不能为 00000",
                    "the sequence starts at 00001; 00000 is no parcel",
                )
            ]  # fmt: skip
        failures += sequence
    return failures


def check_unit_code(code: str, county: str | None = None) -> list[CodeFailure]:
    """Failures of a 28-character 不动产单元代码: 宗地代码 (1–19) + 定着物单元代码 (20–28).

    Position 20 is the fixture letter (F buildings, L forest, Q other, W none), 21–28 digits
    (for F: building number 21–24, unit number 25–28); W goes only with 00000000.
    """
    code = "" if code is None else str(code)
    failures = _length(code, UNIT_CODE_LENGTH, "不动产单元代码", "real-estate unit code")
    if len(code) < 6:
        return failures
    failures += _parcel_fields(code[:PARCEL_CODE_LENGTH], county)
    if len(code) < 20:
        return _ordered(failures)
    letter = code[19]
    if letter not in FIXTURE_LETTERS:
        failures.append(
            CodeFailure(
                20, 20, "fixture_letter", f"定着物单元代码首位应为 F、L、Q 或 W，实为“{letter}”",
                f"the fixture letter must be F, L, Q or W, found {letter!r}",
            )
        )  # fmt: skip
    number = _digits(code, 21, 28, "fixture_digits", "定着物单元编号", "the fixture number")
    if not number and letter == "W" and code[20:28] != "00000000":
        number = [
            CodeFailure(
                20, 28, "no_fixture_zeros", f"W（无定着物）后应为 00000000，实为 {code[20:28]}",
                f"W (no fixture) must be followed by 00000000, found {code[20:28]}",
            )
        ]  # fmt: skip
    return _ordered(failures + number)


def check_credit_code(code: str) -> list[CodeFailure]:
    """Failures of an 18-character 统一社会信用代码 (GB 32100).

    Positions: 1 registration authority, 2 institution kind, 3–8 administrative division,
    9–17 the organisation code (GB 11714, its own check at 17), 18 the check character.
    """
    code = "" if code is None else str(code)
    failures = _length(code, CREDIT_CODE_LENGTH, "统一社会信用代码", "credit code")
    bad = [
        (i, ch) for i, ch in enumerate(code[:CREDIT_CODE_LENGTH], 1) if ch not in CREDIT_ALPHABET
    ]
    for i, ch in bad:
        upper = ch.upper() in CREDIT_ALPHABET
        failures.append(
            CodeFailure(
                i, i, "alphabet",
                f"“{ch}”不是信用代码字符" + ("（应为大写）" if upper else "（不用 I、O、Z、S、V）"),
                f"{ch!r} is not a credit-code character"
                + (" (use upper case)" if upper else " (I, O, Z, S, V are not used)"),
            )
        )  # fmt: skip
    if code[:1] and code[0] in CREDIT_ALPHABET and code[0] not in CREDIT_AUTHORITIES:
        failures.append(
            CodeFailure(
                1, 1, "authority",
                f"登记管理部门码应为 {'、'.join(CREDIT_AUTHORITIES)} 之一，实为“{code[0]}”",
                f"the registration authority must be one of {CREDIT_AUTHORITIES}, "
                f"found {code[0]!r}",
            )
        )  # fmt: skip
    if code[1:2] and code[1] in CREDIT_ALPHABET and not "1" <= code[1] <= "9":
        failures.append(
            CodeFailure(
                2, 2, "kind_digit", f"机构类别码应为数字 1–9，实为“{code[1]}”",
                f"the institution kind must be a digit 1–9, found {code[1]!r}",
            )
        )  # fmt: skip
    if len(code) >= 8:
        failures += _digits(code, 3, 8, "division_digits", "行政区划码", "the division code")
    if len(code) != CREDIT_CODE_LENGTH or bad:
        return _ordered(failures)  # the check characters need all 17 characters right
    org, org_check = code[8:16], org_code_check_char(code[8:16])
    if org_check != code[16]:
        failures.append(
            CodeFailure(
                9, 17, "org_check",
                f"组织机构代码 {org}-{code[16]} 的校验码应为 {org_check}（GB 11714）",
                f"the organisation code {org}-{code[16]} should end in {org_check} (GB 11714)",
            )
        )  # fmt: skip
    expected = credit_code_check_char(code[:17])
    if expected != code[17]:
        failures.append(
            CodeFailure(
                18, 18, "check_char",
                f"校验码应为“{expected}”，实为“{code[17]}”（GB 32100）：前 17 位中可能有输错的字符",
                f"the check character should be {expected!r}, found {code[17]!r} (GB 32100): "
                "a typo in the first 17?",
            )
        )  # fmt: skip
    return _ordered(failures)


def credit_code_ok(code: str) -> bool:
    """Quickly: whether `check_credit_code(code)` finds nothing wrong (for thousands of codes)."""
    if not is_valid_credit_code(code):
        return False
    if code[0] not in CREDIT_AUTHORITIES or not "1" <= code[1] <= "9" or not code[2:8].isdigit():
        return False
    try:
        return org_code_check_char(code[8:16]) == code[16]
    except ValueError:
        return False


def parcel_code_pattern(county: str) -> str:
    """A regular expression (POSIX and Python alike) matching exactly the 宗地代码 of `county`
    in which `check_parcel_code(code, county)` finds nothing wrong: the fast path for 100 000
    codes, so only the suspicious ones are examined character by character."""
    if not re.fullmatch(r"\d{6}", county):
        raise ValueError(f"county code must be 6 digits: {county!r}")
    kinds = "".join(PARCEL_KIND_LETTERS)
    plain = "".join(k for k in kinds if k not in COLLECTIVE_ONLY_KINDS)
    feature = f"(G[{plain}]|J[{kinds}]|Z[{plain}])"
    sequence = "(0000[1-9]|000[1-9][0-9]|00[1-9][0-9]{2}|0[1-9][0-9]{3}|[1-9][0-9]{4})"
    return f"^{county}[0-9]{{6}}{feature}{sequence}$"


# -- plots a survey numbered before their 宗地代码 ----------------------------------------------
#
# A boundary survey (勘测定界) numbers its plots itself (1, 2, 地块一 …); the 宗地代码 comes later.
# Such a plot is kept as "<project>-<plot>" until it gets its code: a code not even shaped like
# a 宗地代码 (six digits, then letters and digits) is a survey's own number, never a typo.
CODE_ATTEMPT = "^[0-9]{6}[0-9A-Z]{6,}$"  # POSIX and Python alike, on the upper-cased code


def is_parcel_code_attempt(code: object) -> bool:
    """Whether `code` is meant as a 宗地代码, right or wrong (12 or more letters and digits, the
    first six digits); otherwise it is a survey's local plot number: no parcel code yet."""
    return bool(re.fullmatch(CODE_ATTEMPT, re.sub(r"\s", "", str(code or "")).upper()))


def local_plot_code(project: str, plot: str) -> str:
    """The code a plot without 宗地代码 is kept under: "<project>-<plot>", at most 19 characters
    (the column's width); a longer one keeps its start and four hex digits of the whole."""
    project = re.sub(r"[\s\-]+", "", str(project)) or "地块"
    plot = re.sub(r"\s+", "", str(plot))
    whole = f"{project}-{plot}"
    if len(whole) <= PARCEL_CODE_LENGTH:
        return whole
    digest = hashlib.sha1(whole.encode("utf-8")).hexdigest()[:4]
    room = PARCEL_CODE_LENGTH - len(plot) - 1 - len(digest)
    if room >= 2:
        return f"{project[:room]}{digest}-{plot}"
    return f"{project[:2]}{digest}-{plot[: PARCEL_CODE_LENGTH - 7]}"


# -- 县级行政区划代码 (GB/T 2260) ----------------------------------------------------------------

# Positions 1–2 of every division code: the province (省级). Also the list of real prefixes.
PROVINCES = {
    "11": "北京市", "12": "天津市", "13": "河北省", "14": "山西省", "15": "内蒙古自治区",
    "21": "辽宁省", "22": "吉林省", "23": "黑龙江省",
    "31": "上海市", "32": "江苏省", "33": "浙江省", "34": "安徽省", "35": "福建省", "36": "江西省",
    "37": "山东省",
    "41": "河南省", "42": "湖北省", "43": "湖南省", "44": "广东省", "45": "广西壮族自治区",
    "46": "海南省",
    "50": "重庆市", "51": "四川省", "52": "贵州省", "53": "云南省", "54": "西藏自治区",
    "61": "陕西省", "62": "甘肃省", "63": "青海省", "64": "宁夏回族自治区",
    "65": "新疆维吾尔自治区",
    "71": "台湾省", "81": "香港特别行政区", "82": "澳门特别行政区",
}  # fmt: skip
COUNTY_CODE_LENGTH = 6


def province_of(county: str) -> str | None:
    """The province a county code lies in (甘肃省 for 620121), None for no real prefix."""
    return PROVINCES.get(str(county or "")[:2])


def check_county_code(code: str) -> list[CodeFailure]:
    """Failures of a 6-digit 县级行政区划代码 (GB/T 2260).

    Positions: 1–2 province (省), 3–4 city (地级市、州、盟), 5–6 county (县、区、县级市); a
    code ending in 00 names a province or a city, not a county.
    """
    code = "" if code is None else str(code).strip()
    label = ("县级行政区划代码", "county code (GB/T 2260)")
    failures = _length(code, COUNTY_CODE_LENGTH, *label)
    if failures:
        return failures
    failures = _digits(code, 1, 6, "county_digits", *label)
    if failures:
        return failures
    if code[:2] not in PROVINCES:
        failures.append(
            CodeFailure(
                1, 2, "province",
                f"前两位（省级代码）应为实有的省份（如 62 甘肃省），实为“{code[:2]}”",
                f"the first two digits must be a province (e.g. 62 Gansu), found {code[:2]!r}",
            )
        )  # fmt: skip
    if code[2:] == "0000":
        failures.append(
            CodeFailure(
                3, 6, "province_code", f"{code} 是省级代码，不是县级代码（后四位不能为 0000）",
                f"{code} is a province's code, not a county's",
            )
        )  # fmt: skip
    elif code[4:] == "00":
        failures.append(
            CodeFailure(
                5, 6, "city_code",
                f"{code} 是地级市（州、盟）的代码，不是县级代码（末两位不能为 00）",
                f"{code} is a city's code, not a county's (it ends in 00)",
            )
        )  # fmt: skip
    return failures


# -- 省、地级市 (GB/T 2260) above the county ---------------------------------------------------
#
# Nesting comes from the codes alone: county 620102 lies in city 620100 and province 620000.


def region_level(code: str) -> str | None:
    """'province' for a code ending 0000, 'city' for one ending 00, None for a county's."""
    code = str(code or "")
    if not re.fullmatch(r"\d{6}", code):
        return None
    if code.endswith("0000"):
        return "province"
    return "city" if code.endswith("00") else None


def region_prefix(code: str) -> str:
    """The prefix every code inside a region starts with: '62' for 620000, '6201' for 620100
    (and a county's own six digits for a county code)."""
    level = region_level(code)
    return code[:2] if level == "province" else code[:4] if level == "city" else str(code)


def in_region(code: str, region: str) -> bool:
    """Whether county (or city) `code` lies in `region` (a region lies in itself)."""
    return str(code or "").startswith(region_prefix(region))
