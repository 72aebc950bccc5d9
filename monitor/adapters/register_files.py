"""Reading register extracts as they are delivered: .xlsx (openpyxl's read-only mode, rows streamed, never the
whole sheet in memory) and .csv (UTF-8 with or without BOM, or GB18030, read line by line). Each yields
(row number as a spreadsheet shows it, the row's cell values)."""

from __future__ import annotations

import codecs
import csv
import io
import logging
import zipfile
from collections.abc import Iterator
from typing import IO

from openpyxl import load_workbook

CHUNK = 1 << 20
NOT_XLSX = "文件不是有效的 Excel (.xlsx) 文件"
MAX_XLSX_EXPANSION = 40
"""How many times its own size (at least 1 MiB) an .xlsx may unpack to. A sheet of register rows unpacks to about
10 times (50,000 insurance rows: 2.0 MB to 21 MB); a sheet padded with whitespace or a comment, hundreds to
thousands of times (514 KB to 500 MB), and parsing that held SQLite's write lock for minutes."""

log = logging.getLogger(__name__)


class RegisterFileError(Exception):
    """The file cannot be read as a spreadsheet (zh-CN message)."""


def sniff_kind(head: bytes, filename: str) -> str:
    """'xlsx' (a zip container) or 'csv'."""
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if filename.lower().endswith((".xlsx", ".xlsm")):
        raise RegisterFileError(NOT_XLSX)
    if filename.lower().endswith(".xls"):
        raise RegisterFileError("不支持旧版 Excel (.xls)，请另存为 .xlsx 或 CSV")
    return "csv"


def check_expansion(f: IO[bytes]) -> None:
    """Refuse an .xlsx whose parts would unpack to more than `MAX_XLSX_EXPANSION` times the file (their declared
    sizes: Python's zip reader stops at them, and a part that lies is refused when read); the file is rewound."""
    size = f.seek(0, io.SEEK_END)
    f.seek(0)
    try:
        with zipfile.ZipFile(f) as container:
            unpacked = sum(part.file_size for part in container.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise RegisterFileError(NOT_XLSX) from exc
    finally:
        f.seek(0)
    if unpacked > MAX_XLSX_EXPANSION * max(size, CHUNK):
        times = unpacked / max(size, 1)
        raise RegisterFileError(f"Excel 文件解压后达 {unpacked / CHUNK:.0f} MB，是文件本身的 {times:.0f} 倍"
                                f"（上限 {MAX_XLSX_EXPANSION} 倍），疑似压缩炸弹；请重新导出或改用 CSV")


def csv_encoding(f: IO[bytes]) -> str:
    """'utf-8-sig' when the whole file decodes as UTF-8 (with or without BOM), else 'gb18030' (checked in chunks, so
    memory stays bounded); the file is rewound."""
    f.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        while chunk := f.read(CHUNK):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
        encoding = "utf-8-sig"
    except UnicodeDecodeError:
        encoding = "gb18030"
    f.seek(0)
    return encoding


def iter_rows(f: IO[bytes], kind: str) -> Iterator[tuple[int, list[object]]]:
    """Every row of the first sheet (xlsx) or the file (csv), numbered from 1."""
    f.seek(0)
    if kind == "xlsx":
        check_expansion(f)
        try:
            book = load_workbook(f, read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, ValueError, OSError, SyntaxError) as exc:
            raise RegisterFileError(NOT_XLSX) from exc
        try:
            if not book.worksheets:
                raise RegisterFileError("Excel 文件中没有工作表")
            rows = enumerate(book.worksheets[0].iter_rows(values_only=True), start=1)
            while True:
                try:
                    number, row = next(rows)
                except StopIteration:
                    break
                except Exception as exc:  # a part cut short, lying about its size, or not XML: the file's fault
                    log.info("register xlsx unreadable mid-sheet: %s", type(exc).__name__)
                    raise RegisterFileError(NOT_XLSX + "（工作表内容损坏）") from exc
                yield number, list(row)
        finally:
            book.close()
        return
    encoding = csv_encoding(f)
    text = io.TextIOWrapper(f, encoding=encoding, newline="", errors="replace")
    reader = csv.reader(text)
    try:
        for number, row in enumerate(reader, start=1):
            yield number, list(row)
    except csv.Error as exc:
        raise RegisterFileError(f"CSV 格式错误（第 {reader.line_num} 行）：{csv_error_in_chinese(exc)}") from exc
    finally:
        text.detach()


def csv_error_in_chinese(exc: csv.Error) -> str:
    """What Python's csv module found, said in zh-CN (its messages are English)."""
    text = str(exc)
    if "field larger than field limit" in text:
        return f"单元格内容过长（上限 {csv.field_size_limit() // 1024} KB）"
    if "NUL" in text:
        return "含有空字符（NUL），文件可能已损坏"
    if "new-line character" in text or "unexpected end of data" in text:
        return "引号未闭合或单元格内换行不规范"
    return "无法按 CSV 解析，请另存为 UTF-8 编码的 CSV 或 .xlsx 后重试"
