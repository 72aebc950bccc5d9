"""Tables as the finance and audit staff open them: Excel (.xlsx, written row by row) and CSV (UTF-8 with BOM for
Chinese Excel), with Chinese headers and no cell any spreadsheet could run as a formula."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV = "text/csv; charset=utf-8"


def inert(value: Any) -> Any:
    """A cell value no spreadsheet runs as a formula: text starting with = + - @ (or a tab or CR) gets a leading
    apostrophe (OWASP's advice on CSV injection); numbers stay numbers."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_xlsx(title: str, columns: list[tuple[str, str]], rows: Iterable[Mapping[str, Any]],
            widths: Mapping[str, int] | None = None, preamble: Sequence[tuple[str, str]] = ()) -> bytes:
    """A workbook of one sheet: `preamble` lines (label, text) first, then a bold Chinese header row, then one row
    per mapping (values by column key); text cells are stored as text, never as formulas."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title[:31])
    for i, (key, label) in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(i)].width = (widths or {}).get(key, max(10, len(label) * 2 + 2))
    ws.freeze_panes = f"A{len(preamble) + 3}" if preamble else "A2"  # below the header (after a blank line)
    for label, text in preamble:
        first = WriteOnlyCell(ws, value=inert(label))
        first.font = Font(bold=True)
        second = WriteOnlyCell(ws, value=inert(text))
        second.data_type = "s"
        ws.append([first, second])
    if preamble:
        ws.append([])
    header = []
    for _, label in columns:
        cell = WriteOnlyCell(ws, value=label)
        cell.font = Font(bold=True)
        header.append(cell)
    ws.append(header)
    for r in rows:
        cells = []
        for key, _ in columns:
            value = inert(r.get(key))
            cell = WriteOnlyCell(ws, value=value)
            if isinstance(value, str):
                cell.data_type = "s"
            cells.append(cell)
        ws.append(cells)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def to_csv(columns: list[tuple[str, str]], rows: Iterable[Mapping[str, Any]]) -> bytes:
    """CSV with Chinese headers, UTF-8 with BOM so that Excel (zh-CN) opens it correctly."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([label for _, label in columns])
    for r in rows:
        writer.writerow(["" if r.get(key) is None else inert(r.get(key)) for key, _ in columns])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
