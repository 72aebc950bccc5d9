"""Holding the records against the audit chain (pure): what each audited row should hold, replayed from its entries
(the insert's values, then each update's changed values, a delete ending it), and how a stored row differs from it.
The chain proves its entries were not rewritten; this proves the rows were not rewritten behind the chain's back."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

FLOAT_TOLERANCE = 1e-5  # relative: PostgreSQL's REAL keeps about seven digits of what Python wrote


HOOK_KINDS = {"trigger": "触发器", "rule": "改写规则", "policy": "行级安全策略"}


@dataclass(frozen=True)
class RowFinding:
    """One audited row that is not what the chain says: `changed` (columns differ), `unrecorded` (no entry made
    it), `missing` (its entries say it exists, the table does not have it), `unsigned_entry` (an entry about it
    that the product did not write: no valid writer signature; `entry` is its id; it is not believed) or
    `extract_changed` (a register extract's rows, `key` its import's id, no longer those it was imported with);
    `reused` (inserted twice with no delete recorded between: the first row was deleted behind the chain's back and
    its number given to a new one); `copy_differs` (a face template's float32 copy in `face_vectors`, `key` the
    template's id, not its encoding); or
    `trigger`, `rule`, `policy` (something put in the database that runs on its own when rows are written or read,
    `key` its name: the product defines none, and one could rewrite a record as it is written); or `dangling` (its
    `columns` name a row of `referred` that is no longer there: deleted with the foreign key check turned off)."""

    table: str
    key: str
    kind: str
    columns: tuple[str, ...] = ()
    entry: int | None = None
    referred: str | None = None  # dangling: the table.column its value no longer names

    @property
    def message(self) -> str:
        if self.kind == "unsigned_entry":
            return (f"{self.table} 第 {self.key} 行的审计记录（编号 {self.entry}）没有有效的写入签名："
                    "不是本系统写入的，不予采信")
        if self.kind == "extract_changed":
            return (f"登记表导入 {self.key} 的数据行（{self.table}）与导入时的摘要不一致"
                    "（行被绕过系统改写、插入或删除）")
        if self.kind == "copy_differs":
            return (f"{self.table} 第 {self.key} 行（人脸模板 {self.key} 的检索副本）与审计链记录的模板编码不一致"
                    "（被绕过系统改写：一对多查重可能漏掉冒名或重复登记）")
        if self.kind == "dangling":
            return (f"{self.table} 第 {self.key} 行的 {'、'.join(self.columns)} 指向 {self.referred} 中已不存在的记录"
                    "（被绕过系统删除，数据库的外键检查曾被关闭）")
        if self.kind in HOOK_KINDS:
            return (f"数据库表 {self.table} 上有{HOOK_KINDS[self.kind]} {self.key}：本系统不使用它，"
                    "它能在写入或读取时绕过系统改写记录")
        if self.kind == "reused":
            return (f"{self.table} 第 {self.key} 行曾被绕过系统删除，其编号又被新记录使用"
                    "（审计链中该编号有两次写入，其间没有删除记录）")
        if self.kind == "changed":
            return f"{self.table} 第 {self.key} 行的 {'、'.join(self.columns)} 与审计链记录不一致（被绕过系统改写）"
        if self.kind == "unrecorded":
            return f"{self.table} 第 {self.key} 行在审计链中没有写入记录（被绕过系统插入）"
        return f"{self.table} 第 {self.key} 行按审计链应当存在，却已不在表中（被绕过系统删除）"


def inserted_again(entries: Iterable[tuple[str, str, Mapping[str, Any]]]) -> set[str]:
    """Keys inserted a second time with no delete recorded between: the first row was deleted behind the chain's
    back and the database gave its number to a new row (SQLite reuses the highest id freed), which the replay alone
    would take for the only one."""
    alive: set[str] = set()
    again: set[str] = set()
    for verb, key, _detail in entries:
        if verb == "insert":
            if key in alive:
                again.add(key)
            alive.add(key)
        elif verb == "delete":
            alive.discard(key)
    return again


def replay_entries(entries: Iterable[tuple[str, str, Mapping[str, Any]]]) -> dict[str, dict[str, Any] | None]:
    """Each row's values as its entries leave them, given (verb, key, detail) in the order written: None for a row
    deleted. An update before any insert (a row from before the chain) starts from what the update says."""
    rows: dict[str, dict[str, Any] | None] = {}
    for verb, key, detail in entries:
        if verb == "insert":
            rows[key] = dict(detail)
        elif verb == "update":
            rows[key] = {**(rows.get(key) or {}), **detail}
        elif verb == "delete":
            rows[key] = None
    return rows


def _instant(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def same_value(recorded: Any, stored: Any) -> bool:
    """Whether a stored value is the one the chain recorded (both in the chain's JSON form): times compared as
    instants whatever their zone, whole numbers exactly, others within the float tolerance, lists and objects
    member by member."""
    if isinstance(recorded, bool) or isinstance(stored, bool):  # (True == 1 in Python: not here)
        return type(recorded) is type(stored) and recorded == stored
    if recorded == stored:
        return True
    if type(recorded) is int and type(stored) is int:  # ids, counts, money in fen: exact (an id of 1,234,567
        return False  # moved to 1,234,570 is within any relative tolerance)
    if isinstance(recorded, int | float) and isinstance(stored, int | float):
        return math.isclose(recorded, stored, rel_tol=FLOAT_TOLERANCE, abs_tol=1e-9)
    if isinstance(recorded, str) and isinstance(stored, str):
        a, b = _instant(recorded), _instant(stored)
        return a is not None and b is not None and a == b
    if isinstance(recorded, list) and isinstance(stored, list):
        return len(recorded) == len(stored) and all(same_value(x, y) for x, y in zip(recorded, stored, strict=True))
    if isinstance(recorded, dict) and isinstance(stored, dict):
        return recorded.keys() == stored.keys() and all(same_value(recorded[k], stored[k]) for k in recorded)
    return False


def differing_columns(recorded: Mapping[str, Any], stored: Mapping[str, Any]) -> tuple[str, ...]:
    """The columns the chain recorded whose stored value is another (columns it never recorded are not judged)."""
    return tuple(sorted(k for k, v in recorded.items() if k in stored and not same_value(v, stored[k])))


EXTRACT_LEFT_OUT = frozenset({"id", "import_id"})
"""A register row's columns its extract's digest does not cover: where it is stored, not what it says."""


class ExtractDigest:
    """The SHA-256 of a register extract's rows, in file order (`row_number`), each row its columns but
    EXTRACT_LEFT_OUT as canonical JSON (dates in ISO form): the same for the rows as staged and as read back from
    either database, so that a row rewritten, inserted or deleted at the database changes it."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.rows = 0

    def add(self, row: Mapping[str, Any]) -> None:
        values = {k: v.isoformat() if isinstance(v, date) else v for k, v in row.items()
                  if k not in EXTRACT_LEFT_OUT}
        self._hash.update(json.dumps(values, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode())
        self._hash.update(b"\n")
        self.rows += 1

    def hexdigest(self) -> str:
        return self._hash.hexdigest()
