"""Reading register extracts as they are delivered: .xlsx (openpyxl's read-only mode, rows streamed, never the
whole sheet in memory) and .csv (UTF-8 with or without BOM, or GB18030, read line by line). Each yields
(row number as a spreadsheet shows it, the row's cell values)."""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Iterator
from typing import IO

from openpyxl import load_workbook

CHUNK = 1 << 20


class RegisterFileError(Exception):
    """The file cannot be read as a spreadsheet (zh-CN message)."""


def sniff_kind(head: bytes, filename: str) -> str:
    """'xlsx' (a zip container) or 'csv'."""
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if filename.lower().endswith((".xlsx", ".xlsm")):
        raise RegisterFileError("文件不是有效的 Excel (.xlsx) 文件")
    if filename.lower().endswith(".xls"):
        raise RegisterFileError("不支持旧版 Excel (.xls)，请另存为 .xlsx 或 CSV")
    return "csv"


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
        try:
            book = load_workbook(f, read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
            raise RegisterFileError("文件不是有效的 Excel (.xlsx) 文件") from exc
        try:
            sheet = book.worksheets[0]
            for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
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
