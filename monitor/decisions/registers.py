"""Register extracts (issue 20 item 1, clause 八/九): the column mapping declared per source, the header row found
by its Chinese aliases, and each data row parsed and validated into a record or refused with a zh-CN reason.

Pure: plain values in, plain values out (the file readers, hashing and storage are elsewhere). A record keeps the
row's ID number as read; the caller replaces it by its keyed hash before anything is stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from models.identity import explain_id_number_problem

FIELD_TYPES = {"id_number", "text", "code", "county", "date", "months", "level", "year"}
PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_HEADER_NOISE = re.compile(r"[\s*＊:：]+")
_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T].*)?$")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_MONTH = re.compile(r"^(\d{4})\s*[-/.年]?\s*(\d{1,2})\s*月?$")
_MONTH_RANGE = re.compile(r"^(.+?)\s*(?:~|～|至|到|—|--|-(?=\d{4}))\s*(.+)$")
_COUNTY = re.compile(r"^53\d{4}$")
# 职业技能等级: 一级/高级技师 (1) … 五级/初级工 (5).
LEVELS = {"1": 1, "2": 2, "3": 3, "4": 4, "5": 5, "一级": 1, "二级": 2, "三级": 3, "四级": 4, "五级": 5,
          "高级技师": 1, "技师": 2, "高级工": 3, "高级": 3, "中级工": 4, "中级": 4, "初级工": 5, "初级": 5}


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    required: bool
    aliases: tuple[str, ...]
    max_length: int = 200


@dataclass(frozen=True)
class SourceSpec:
    source: str
    title: str  # zh-CN, e.g. 社会保险参保缴费
    fields: tuple[FieldSpec, ...]

    def field(self, name: str) -> FieldSpec:
        return next(f for f in self.fields if f.name == name)


def normalise_header(value: object) -> str:
    """A header cell as compared with the aliases: no spaces, '*' or colons; full-width brackets as ASCII."""
    text = "" if value is None else str(value)
    return _HEADER_NOISE.sub("", text).replace("（", "(").replace("）", ")")


def parse_mapping(data: Mapping[str, Any]) -> dict[str, SourceSpec]:
    """The mapping file's content (monitor/data/registers.json) as specs; ValueError when malformed."""
    specs: dict[str, SourceSpec] = {}
    for source, body in data.items():
        if source.startswith("_"):
            continue
        if not isinstance(body, Mapping) or not isinstance(body.get("fields"), Mapping):
            raise ValueError(f"register source {source!r} has no fields")
        fields = []
        for name, f in body["fields"].items():
            kind = f.get("type")
            aliases = f.get("aliases")
            if kind not in FIELD_TYPES:
                raise ValueError(f"register {source}.{name}: unknown type {kind!r}")
            if not isinstance(aliases, list) or not aliases or not all(isinstance(a, str) for a in aliases):
                raise ValueError(f"register {source}.{name}: aliases must be a non-empty list of headers")
            fields.append(FieldSpec(name=str(name), type=str(kind), required=bool(f.get("required", True)),
                                    aliases=tuple(normalise_header(a) for a in aliases),
                                    max_length=int(f.get("max", 200))))
        if not any(f.type == "id_number" for f in fields):
            raise ValueError(f"register source {source!r} has no id_number field")
        specs[source] = SourceSpec(source=source, title=str(body.get("name", source)), fields=tuple(fields))
    return specs


def match_header(cells: Sequence[object], spec: SourceSpec) -> dict[str, int] | None:
    """Field → column index when `cells` is the header row (every required field found), else None."""
    seen = [normalise_header(c) for c in cells]
    columns: dict[str, int] = {}
    for f in spec.fields:
        for i, header in enumerate(seen):
            if header and header in f.aliases:
                columns[f.name] = i
                break
    if all(f.name in columns for f in spec.fields if f.required):
        return columns
    return None


def stack_headers(upper: Sequence[object], lower: Sequence[object]) -> list[object]:
    """A two-row header read as one: each column's lower cell, or the upper one where the lower is empty (a header
    merged down over both rows leaves the lower cell empty; a group title merged across columns sits above)."""
    width = max(len(upper), len(lower))
    cells: list[object] = []
    for i in range(width):
        low = lower[i] if i < len(lower) else None
        up = upper[i] if i < len(upper) else None
        cells.append(up if low is None or (isinstance(low, str) and not low.strip()) else low)
    return cells


def missing_headers(cells: Sequence[object], spec: SourceSpec) -> list[str]:
    """The required fields' first aliases that `cells` lacks (for the refusal of a file without a header row)."""
    seen = {normalise_header(c) for c in cells}
    return [f.aliases[0] for f in spec.fields if f.required and not seen & set(f.aliases)]


def is_blank(cells: Sequence[object]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def parse_period(value: str) -> str | None:
    """'YYYY-MM' as given, or None when it is not one."""
    return value if PERIOD.match(value or "") else None


def period_is_future(period: str, today: date) -> bool:
    """Whether a 'YYYY-MM' period is after the month of `today` (local): no extract covers a month not yet begun,
    and a later period stored by mistake would refuse every real extract as older."""
    return period > f"{today.year:04d}-{today.month:02d}"


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def parse_date(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _text(value)
    m = _DATE.match(text) or _COMPACT_DATE.match(text)
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def _month(value: object) -> str | None:
    if isinstance(value, date | datetime):
        return f"{value.year:04d}-{value.month:02d}"
    m = _MONTH.match(_text(value))
    if not m or not 1 <= int(m.group(2)) <= 12:
        return None
    return f"{int(m.group(1)):04d}-{int(m.group(2)):02d}"


def parse_months(value: object) -> tuple[str, str] | None:
    """A contribution month or range ('2024-01', '202401', '2024-01~2024-06', '2024年1月至2024年6月')."""
    single = _month(value)
    if single:
        return single, single
    m = _MONTH_RANGE.match(_text(value))
    if not m:
        return None
    start, end = _month(m.group(1)), _month(m.group(2))
    if start is None or end is None or start > end:
        return None
    return start, end


def _parse_field(f: FieldSpec, value: object) -> tuple[bool, Any, str]:
    """(ok, parsed value, zh-CN problem)."""
    if f.type == "id_number":
        if isinstance(value, int | float):
            return False, None, "须为文本格式（数字格式会丢失末位）"
        text = _text(value).upper()
        problem = explain_id_number_problem(text)
        return (False, None, problem) if problem else (True, text, "")
    if f.type in ("text", "code"):
        text = _text(value)
        if len(text) > f.max_length:
            return False, None, f"超过 {f.max_length} 个字符"
        if f.type == "code" and not re.fullmatch(r"[0-9A-Za-z\-_.]+", text):
            return False, None, "应为字母、数字或“-”组成的编码"
        return True, text, ""
    if f.type == "county":
        text = _text(value)
        if not _COUNTY.match(text):
            return False, None, "应为云南省的6位行政区划代码（53xxxx）"
        return True, text, ""
    if f.type == "date":
        parsed = parse_date(value)
        if parsed is None or not 1990 <= parsed.year <= 2100:
            return False, None, "日期无效（应为 YYYY-MM-DD）"
        return True, parsed, ""
    if f.type == "months":
        months = parse_months(value)
        if months is None:
            return False, None, "月份无效（应为 YYYY-MM 或 YYYY-MM~YYYY-MM）"
        return True, months, ""
    if f.type == "level":
        level = LEVELS.get(_text(value).replace("级别", "级"))
        if level is None:
            return False, None, "等级无效（应为一级至五级）"
        return True, level, ""
    # year
    text = _text(value)
    if not text.isdigit() or not 1990 <= int(text) <= 2100:
        return False, None, "年度无效（应为四位年份）"
    return True, int(text), ""


def parse_row(spec: SourceSpec, columns: Mapping[str, int], cells: Sequence[object]) -> dict[str, Any] | str:
    """One data row as a record (field → value; `months` as (from, to)), or why it is refused (zh-CN, naming the
    column by its header alias; never the value itself, which may be an ID number)."""
    record: dict[str, Any] = {}
    problems: list[str] = []
    for f in spec.fields:
        index = columns.get(f.name)
        value = cells[index] if index is not None and index < len(cells) else None
        if value is None or (isinstance(value, str) and not value.strip()):
            if f.required:
                problems.append(f"{f.aliases[0]}为空")
            record[f.name] = None
            continue
        ok, parsed, problem = _parse_field(f, value)
        if not ok:
            problems.append(f"{f.aliases[0]}：{problem}")
        record[f.name] = parsed
    return "；".join(problems) if problems else record
