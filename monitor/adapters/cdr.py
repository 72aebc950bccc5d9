"""Call detail records (话单) as call centers export them, read into `CdrRecord`s: Asterisk's Master.csv, FreeSWITCH's
cdr_csv default template, or a CSV with a header naming caller, callee, start and duration (English or Chinese).

Formats (all without a header unless said):
- `asterisk`: accountcode, src, dst, dcontext, clid, channel, dstchannel, lastapp, lastdata, start, answer, end,
  duration, billsec, disposition, amaflags[, uniqueid, userfield]; talk time is `billsec`, only ANSWERED rows talk.
- `freeswitch`: caller_id_name, caller_id_number, destination_number, context, start_stamp, answer_stamp,
  end_stamp, duration, billsec, hangup_cause, uuid, …; talk time is `billsec`.
- `generic`: a header row with caller/主叫号码, callee/被叫号码, start/开始时间, duration/通话时长(秒).
Times without a zone are read in the PBX's zone (Asia/Shanghai unless told); the file may be UTF-8 or GB18030."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

from models.errors import ApiError
from models.identity import normalise_mobile
from monitor.decisions.phone_check import CdrRecord

FORMATS = ("asterisk", "freeswitch", "generic")
MAX_ROWS = 1_000_000
GENERIC_HEADERS = {
    "caller": ("caller", "src", "calling", "主叫", "主叫号码"),
    "callee": ("callee", "dst", "called", "被叫", "被叫号码"),
    "start": ("start", "start_time", "开始时间", "呼叫时间", "通话开始时间"),
    "duration": ("duration", "billsec", "talk_seconds", "通话时长", "通话时长(秒)", "通话时长（秒）"),
}


def decode_text(data: bytes) -> str:
    """The file's text: UTF-8 (with or without BOM), else GB18030 as Chinese Excel saves it."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ApiError(422, "CDR_ENCODING", "话单文件既不是 UTF-8 也不是 GB18030 编码")


def parse_time(raw: str, zone: ZoneInfo, row: int) -> datetime:
    value = raw.strip()
    try:
        moment = datetime.fromisoformat(value.replace("/", "-"))
    except ValueError:
        raise ApiError(422, "CDR_ROW", f"话单第 {row} 行：无法识别的时间「{value[:40]}」") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).astimezone(ZoneInfo("UTC"))


def parse_seconds(raw: str, row: int) -> int:
    try:
        seconds = int(float(raw.strip() or "0"))
    except ValueError:
        raise ApiError(422, "CDR_ROW", f"话单第 {row} 行：通话时长「{raw[:20]}」不是秒数") from None
    if not 0 <= seconds <= 24 * 3600:
        raise ApiError(422, "CDR_ROW", f"话单第 {row} 行：通话时长 {seconds} 秒不合理")
    return seconds


def number(raw: str) -> str:
    """A dialled number in the roster's form (11-digit mobile), or as written when it is not a mobile."""
    return normalise_mobile(raw) or raw.strip()


def generic_columns(header: list[str]) -> dict[str, int]:
    names = [h.strip().lower() for h in header]
    out = {}
    for field, aliases in GENERIC_HEADERS.items():
        found = [i for i, h in enumerate(names) if h in aliases]
        if not found:
            raise ApiError(422, "CDR_HEADER",
                           f"话单表头缺少「{aliases[-2]}」（{field}）列；表头为：{'，'.join(header)[:200]}")
        out[field] = found[0]
    return out


def read_cdrs(data: bytes, fmt: str, zone_name: str = "Asia/Shanghai") -> list[CdrRecord]:
    """Every record of the file, or 422 naming the first bad row."""
    if fmt not in FORMATS:
        raise ApiError(422, "CDR_FORMAT", f"未知的话单格式 {fmt}，可选：{'、'.join(FORMATS)}")
    zone = ZoneInfo(zone_name)
    try:
        return parse_rows(csv.reader(io.StringIO(decode_text(data), newline="")), fmt, zone)
    except csv.Error as e:  # a stray quote or carriage return: the file is not CSV as exported
        raise ApiError(422, "CDR_ROW", f"话单不是有效的 CSV 文件：{e}") from None


def parse_rows(rows: Iterator[list[str]], fmt: str, zone: ZoneInfo) -> list[CdrRecord]:
    out: list[CdrRecord] = []
    columns: dict[str, int] | None = None
    for n, cells in enumerate(rows, start=1):
        if not cells or all(not c.strip() for c in cells):
            continue
        if n > MAX_ROWS:
            raise ApiError(413, "CDR_TOO_LARGE", f"话单超过 {MAX_ROWS} 行，请按日拆分后导入")
        if fmt == "generic" and columns is None:
            columns = generic_columns(cells)
            continue
        try:
            if fmt == "asterisk":
                if cells[14].strip().upper() != "ANSWERED":
                    talk = 0
                else:
                    talk = parse_seconds(cells[13], n)
                record = CdrRecord(n, number(cells[1]), number(cells[2]), parse_time(cells[9], zone, n), talk)
            elif fmt == "freeswitch":
                record = CdrRecord(n, number(cells[1]), number(cells[2]), parse_time(cells[4], zone, n),
                                   parse_seconds(cells[8], n))
            else:
                assert columns is not None
                record = CdrRecord(n, number(cells[columns["caller"]]), number(cells[columns["callee"]]),
                                   parse_time(cells[columns["start"]], zone, n),
                                   parse_seconds(cells[columns["duration"]], n))
        except IndexError:
            raise ApiError(422, "CDR_ROW", f"话单第 {n} 行列数不足（{len(cells)} 列），与 {fmt} 格式不符") from None
        out.append(record)
    if not out:
        raise ApiError(422, "CDR_EMPTY", "话单文件中没有通话记录")
    return out
