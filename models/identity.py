"""Chinese resident ID numbers (GB 11643) and mainland mobile numbers: validation, normal form and masking; pure
functions."""

import re
from datetime import date

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"


def compute_check_char(first17: str) -> str:
    """The mod 11-2 check character for the first 17 digits of an ID number."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def explain_id_number_problem(id_number: str) -> str | None:
    """Why `id_number` is not a valid 18-character ID number (zh-CN), or None if it is valid."""
    value = id_number.strip().upper()
    if len(value) != 18:
        return "身份证号码应为18位"
    if not value[:17].isdigit() or not (value[17].isdigit() or value[17] == "X"):
        return "身份证号码前17位须为数字，末位为数字或X"
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return "身份证号码中的出生日期无效"
    if compute_check_char(value[:17]) != value[17]:
        return "身份证号码校验位错误"
    return None


def normalise_id_number(id_number: str) -> str:
    """The canonical form of an ID number: stripped, with an upper-case X."""
    return id_number.strip().upper()


def mask_id_number(id_number: str) -> str:
    """An ID number safe to show or log: the first 3 and last 4 characters, the rest as '*'."""
    value = normalise_id_number(id_number)
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_name(name: str) -> str:
    """A person's name for public lists: the family name followed by '*' for each other character."""
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""


# A mainland mobile number: 11 digits starting 13-19 (MIIT numbering plan); written with +86/0086, spaces or dashes.
_MOBILE = re.compile(r"1[3-9]\d{9}")
_MOBILE_NOISE = re.compile(r"[\s\-()]")


def normalise_mobile(raw: str) -> str | None:
    """The 11-digit form of a mainland mobile number, or None if `raw` is not one (a landline, too short, letters)."""
    value = _MOBILE_NOISE.sub("", raw.strip())
    for prefix in ("+86", "0086", "86"):
        if value.startswith(prefix) and len(value) == len(prefix) + 11:
            value = value[len(prefix):]
            break
    return value if _MOBILE.fullmatch(value) else None


def mask_phone(phone: str) -> str:
    """A phone number safe to show: the first 3 and last 4 digits, the rest as '*' ("" stays "")."""
    if len(phone) <= 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]
