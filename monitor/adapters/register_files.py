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
    try:
        for number, row in enumerate(csv.reader(text), start=1):
            yield number, list(row)
    except csv.Error as exc:
        raise RegisterFileError(f"CSV 格式错误：{exc}") from exc
    finally:
        text.detach()
