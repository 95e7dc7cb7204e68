"""CSV (and TSV) rows, streamed: encoding and delimiter detected from the first chunk.

Row numbers are records as a spreadsheet shows them: the header is row 1 and a
quoted cell spanning several lines is still one row.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator, Sequence
from typing import Any

from .base import (
    DEFAULT_CANDIDATE_ENCODINGS,
    ByteSource,
    FileError,
    FileFormat,
    FileLimits,
    LimitExceeded,
    MalformedFile,
    SinglePassReader,
    check_text,
    decode_chunks,
    extra_column,
    text_encoding,
    unique_headers,
)

DELIMITERS = ",;\t|"
_SNIFF_LINES = 20


def _newline_of(text: str) -> str:
    # Classic Mac files end lines with a lone CR; everything else has LF.
    return "\r" if "\n" not in text and "\r" in text else "\n"


def detect_delimiter(text: str, *, complete: bool) -> str:
    """The delimiter of the first lines: csv.Sniffer, checked against the header row."""
    lines = text.split(_newline_of(text))
    if not complete:
        lines = lines[:-1]  # the last line may be cut in the middle
    sample_lines = [line for line in lines if line.strip()][:_SNIFF_LINES]
    if not sample_lines:
        return ","
    sniffed: str | None
    try:
        sniffed = csv.Sniffer().sniff("\n".join(sample_lines), delimiters=DELIMITERS).delimiter
    except csv.Error:
        sniffed = None
    counts = {d: sample_lines[0].count(d) for d in DELIMITERS}
    # The Sniffer trusts data rows over the header and may pick a character
    # the header does not even contain ("Smith, John" in every row).
    if sniffed is None or counts[sniffed] == 0:
        best = max(DELIMITERS, key=lambda d: counts[d])
        return best if counts[best] else ","
    return sniffed


def _lines(texts: Iterator[str], newline: str, max_chars: int) -> Iterator[str]:
    """Physical lines with their line ends (csv needs them to keep newlines inside quoted cells)."""
    pending = ""
    for text in texts:
        # Slicing line by line keeps one chunk alive, not a list of all its lines.
        start = 0
        end = text.find(newline)
        if pending and end >= 0:
            yield pending + text[: end + 1]
            pending, start, end = "", end + 1, text.find(newline, end + 1)
        while end >= 0:
            yield text[start : end + 1]
            start = end + 1
            end = text.find(newline, start)
        pending += text[start:]
        if len(pending) > max_chars:
            raise LimitExceeded("max_record_chars", max_chars, f"a line is longer than {max_chars} characters")
    if pending:
        yield pending


def _csv_reason(exc: csv.Error) -> str:
    text = str(exc)
    if "unexpected end of data" in text:
        return "the file ends inside a quoted cell: a quote (\") is opened and never closed"
    if "field larger than field limit" in text:
        return (f"a cell is longer than {csv.field_size_limit()} characters"
                " (usually a quote that is opened and never closed)")
    if "expected after" in text:
        return "a quote ends in the middle of a cell; inside a quoted cell write a quote as \"\""
    if "new-line character seen in unquoted field" in text:
        return "a line break inside a cell that is not quoted"
    return f"not valid CSV: {text}"


class CsvReader(SinglePassReader):
    """Iterates ``(row_number, {header: value})`` over a CSV file, one chunk in memory at a time."""

    format = FileFormat.CSV

    def __init__(
        self,
        source: ByteSource,
        limits: FileLimits,
        *,
        encoding: str | None = None,
        delimiter: str | None = None,
        candidate_encodings: Sequence[str] = DEFAULT_CANDIDATE_ENCODINGS,
    ) -> None:
        self._limits = limits
        self.encoding = text_encoding(source, encoding, candidate_encodings)
        head, complete = source.peek(), source.head_is_everything
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise MalformedFile(f"unknown text encoding {self.encoding!r}") from None
        # Only for looking: the strict decode with row numbers happens while reading.
        text = codecs.getincrementaldecoder(self.encoding)(errors="replace").decode(head, final=complete)
        check_text(text)
        if delimiter is not None and (len(delimiter) != 1 or delimiter in "\"\r\n"):
            raise MalformedFile(f"a delimiter is one character other than a quote or line break, not {delimiter!r}")
        self.delimiter = delimiter or detect_delimiter(text, complete=complete)
        lines = _lines(decode_chunks(source.chunks(), self.encoding), _newline_of(text), limits.max_record_chars)
        self._records = csv.reader(lines, delimiter=self.delimiter, quotechar='"', doublequote=True, strict=True)
        self._number = 0
        header = self._next_record()
        while header is not None and not any(cell.strip() for cell in header):
            header = self._next_record()
        if header is None:
            raise MalformedFile("the file has no header row")
        if header:
            header[0] = header[0].lstrip("\ufeff")  # a BOM kept by an explicitly given "utf-8"
        self.header_row = self._number
        self.columns: list[str] = unique_headers(header)

    def _next_record(self) -> list[str] | None:
        try:
            record = next(self._records)
        except StopIteration:
            return None
        except csv.Error as exc:
            raise MalformedFile(_csv_reason(exc), row=self._number + 1) from None
        except FileError as exc:
            raise exc.at_row(self._number + 1) from None
        self._number += 1
        return record

    def _mixed_delimiter(self, cells: list[str]) -> str | None:
        if len(cells) != 1 or len(self.columns) < 2:
            return None
        for other in DELIMITERS:
            if other != self.delimiter and cells[0].count(other) + 1 == len(self.columns):
                return other
        return None

    def _rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        columns = self.columns
        width = len(columns)
        max_chars = self._limits.max_cell_chars
        rows = 0
        while (cells := self._next_record()) is not None:
            number = self._number
            if not any(cell.strip() for cell in cells):
                continue  # blank and whitespace-only lines carry nobody
            other = self._mixed_delimiter(cells)
            if other is not None:
                raise MalformedFile(
                    f"one cell where the header has {width} columns: this row is separated by {other!r},"
                    f" the header by {self.delimiter!r} (mixed delimiters)",
                    row=number,
                )
            rows += 1
            if rows > self._limits.max_rows:
                raise LimitExceeded(
                    "max_rows", self._limits.max_rows, f"the file has more than {self._limits.max_rows} rows",
                    row=number,
                )
            # clean_cell inlined: every CSV cell is text, and this runs for each cell of a million rows.
            row: dict[str, Any] = {}
            for i, cell in enumerate(cells):
                value = cell.strip() or None
                if value is not None and len(value) > max_chars:
                    raise LimitExceeded("max_cell_chars", max_chars, f"a cell holds {len(value)} characters",
                                        row=number)
                if i < width:
                    row[columns[i]] = value
                elif value is not None:
                    row[extra_column(i + 1)] = value
            for i in range(len(cells), width):
                row[columns[i]] = None
            yield number, row
