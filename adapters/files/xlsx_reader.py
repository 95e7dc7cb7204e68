"""XLSX rows from the first sheet, through openpyxl's read-only (streaming) mode.

The first non-empty row is the header; row numbers are the sheet's own.
Formulas give the value Excel last computed (none if it never did); a merged
range has its value in its top-left cell only.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from typing import IO, Any

import openpyxl
from openpyxl.utils.exceptions import InvalidFileException

from .base import (
    ByteSource,
    FileError,
    FileFormat,
    FileLimits,
    LimitExceeded,
    MalformedFile,
    SinglePassReader,
    clean_cell,
    extra_column,
    unique_headers,
)

# What a broken workbook raises from inside openpyxl and zipfile (XML errors
# are SyntaxError subclasses, with or without lxml).
_BROKEN = (InvalidFileException, zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, ValueError, TypeError,
           IndexError, SyntaxError, EOFError, OSError)


class XlsxReader(SinglePassReader):
    """Iterates ``(row_number, {header: value})`` over the first sheet of a workbook."""

    format = FileFormat.XLSX

    def __init__(self, source: ByteSource, limits: FileLimits) -> None:
        self._limits = limits
        self._file: IO[bytes]
        self._file, self._owns_file = source.seekable_file()
        self._workbook: Any = None
        try:
            with zipfile.ZipFile(self._file) as archive:
                unpacked = sum(info.file_size for info in archive.infolist())
        except (zipfile.BadZipFile, OSError, EOFError):
            self.close()
            raise MalformedFile("not an XLSX workbook (the file is not a zip archive)") from None
        if unpacked > limits.max_unpacked_bytes:
            self.close()
            raise LimitExceeded(
                "max_unpacked_bytes", limits.max_unpacked_bytes, f"the workbook unpacks to {unpacked} bytes"
            )
        self._file.seek(0)
        try:
            self._workbook = openpyxl.load_workbook(self._file, read_only=True, data_only=True)
        except _BROKEN as exc:
            self.close()
            raise MalformedFile(f"not a readable XLSX workbook ({type(exc).__name__}: {exc})") from None
        if not self._workbook.worksheets:
            self.close()
            raise MalformedFile("the workbook has no worksheet")
        sheet = self._workbook.worksheets[0]
        self.sheet = sheet.title
        # A writer's <dimension> tag may be wrong; without it, rows are read to the real end.
        sheet.reset_dimensions()
        self._cells = iter(sheet.iter_rows(values_only=True))
        self._number = 0
        header = self._next_row()
        while header is not None and all(c is None or (isinstance(c, str) and not c.strip()) for c in header):
            header = self._next_row()
        if header is None:
            self.close()
            raise MalformedFile(f"the first sheet ({self.sheet!r}) is empty: no header row")
        self.header_row = self._number
        self.columns: list[str] = unique_headers(_trim(header))

    def _next_row(self) -> tuple[Any, ...] | None:
        try:
            cells = next(self._cells)
        except StopIteration:
            return None
        except _BROKEN as exc:
            self.close()
            raise MalformedFile(f"the sheet is broken ({type(exc).__name__}: {exc})", row=self._number + 1) from None
        self._number += 1
        return tuple(cells)

    def close(self) -> None:
        """Release the workbook (and the spooled copy, if one was made); the caller's stream stays open."""
        if self._workbook is not None:
            self._workbook.close()
            self._workbook = None
        if self._owns_file:
            self._file.close()

    def _rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        columns = self.columns
        width = len(columns)
        rows = 0
        try:
            while (cells := self._next_row()) is not None:
                number = self._number
                try:
                    values = [clean_cell(c, self._limits) for c in cells]
                except FileError as exc:
                    raise exc.at_row(number) from None
                if all(v is None for v in values):
                    continue
                rows += 1
                if rows > self._limits.max_rows:
                    raise LimitExceeded(
                        "max_rows", self._limits.max_rows, f"the sheet has more than {self._limits.max_rows} rows",
                        row=number,
                    )
                row = {columns[i]: values[i] if i < len(values) else None for i in range(width)}
                for i in range(width, len(values)):
                    if values[i] is not None:
                        row[extra_column(i + 1)] = values[i]
                yield number, row
        finally:
            self.close()


def _trim(cells: tuple[Any, ...]) -> tuple[Any, ...]:
    # Formatting alone makes openpyxl report empty cells past the last header.
    end = len(cells)
    while end and (cells[end - 1] is None or (isinstance(cells[end - 1], str) and not cells[end - 1].strip())):
        end -= 1
    return cells[:end]
