"""Registry codes: 统一社会信用代码 (GB 32100), 组织机构代码 (GB 11714), 宗地代码 (GB/T 37346).

Check characters are computed, never typed: a ledger that quotes a developer's credit code can
then be checked for typos before anyone phones the wrong company.
"""

import re

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
