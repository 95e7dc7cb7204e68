"""Audience files (CSV, XLSX, JSON) read as streams of ``(row_number, {column: value})``.

``read_rows`` picks the reader from the content (a zip is an XLSX whatever its
name), the file name and the content type, in that order::

    with open(path, "rb") as f:
        reader = read_rows(f, filename=path.name, limits=FileLimits(max_rows=100_000))
        reader.columns          # the header, for the column mapping
        for row, values in reader:
            ...

Reading is synchronous and lazy: an async caller runs it in a thread, or
spools an upload to a temporary file first. Every problem is a
:class:`FileError` (:class:`LimitExceeded`, :class:`MalformedFile`,
:class:`UnsupportedFormat`) whose message names the row when there is one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import PurePath
from typing import IO, Any, BinaryIO, Protocol

from .base import (
    DEFAULT_CANDIDATE_ENCODINGS,
    ByteSource,
    FileError,
    FileFormat,
    FileLimits,
    LimitExceeded,
    MalformedFile,
    UnsupportedFormat,
)
from .csv_reader import CsvReader
from .json_reader import JsonReader
from .xlsx_reader import XlsxReader

__all__ = [
    "CsvReader", "FileError", "FileFormat", "FileLimits", "JsonReader", "LimitExceeded", "MalformedFile",
    "RowReader", "UnsupportedFormat", "XlsxReader", "detect_format", "read_rows",
]

_EXTENSIONS = {
    ".csv": FileFormat.CSV, ".tsv": FileFormat.CSV, ".txt": FileFormat.CSV,
    ".xlsx": FileFormat.XLSX, ".xlsm": FileFormat.XLSX,
    ".json": FileFormat.JSON, ".jsonl": FileFormat.JSON, ".ndjson": FileFormat.JSON,
}
_CONTENT_TYPES = {
    "text/csv": FileFormat.CSV, "application/csv": FileFormat.CSV, "text/tab-separated-values": FileFormat.CSV,
    "text/plain": FileFormat.CSV,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": FileFormat.XLSX,
    "application/json": FileFormat.JSON, "application/x-ndjson": FileFormat.JSON,
    "application/jsonl": FileFormat.JSON, "application/x-jsonlines": FileFormat.JSON,
    "application/jsonlines": FileFormat.JSON, "text/json": FileFormat.JSON,
}
_ZIP = b"PK\x03\x04"
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls (and .doc)


class RowReader(Protocol):
    """What every reader offers: its format, the header, and one pass over the rows."""

    format: FileFormat
    columns: list[str]

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]: ...


def detect_format(filename: str | None, content_type: str | None, head: bytes) -> FileFormat:
    """CSV, XLSX or JSON from the first bytes, then the name's extension, then the content type."""
    if head.startswith(_ZIP):
        return FileFormat.XLSX
    if head.startswith(_OLE2):
        raise UnsupportedFormat("legacy Excel .xls is not supported: save the sheet as .xlsx or CSV")
    suffix = PurePath(filename).suffix.lower() if filename else ""
    if suffix in _EXTENSIONS:
        found = _EXTENSIONS[suffix]
        if found is FileFormat.XLSX:
            raise MalformedFile(f"the file is named {suffix} but is not an XLSX workbook (not a zip archive)")
        return found
    if suffix == ".xls":
        raise UnsupportedFormat("legacy Excel .xls is not supported: save the sheet as .xlsx or CSV")
    if suffix:
        raise UnsupportedFormat(f"unsupported file type {suffix!r}: send CSV, XLSX or JSON")
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind in _CONTENT_TYPES:
        return _CONTENT_TYPES[kind]
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return FileFormat.JSON if text[:1] in (b"[", b"{") else FileFormat.CSV


def read_rows(
    stream: BinaryIO | IO[bytes],
    *,
    filename: str | None = None,
    content_type: str | None = None,
    file_format: FileFormat | None = None,
    limits: FileLimits | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    candidate_encodings: Sequence[str] = DEFAULT_CANDIDATE_ENCODINGS,
) -> RowReader:
    """A reader over a binary file object; raises FileError at once for a bad header or format.

    ``encoding`` and ``delimiter`` override detection (CSV; ``encoding`` also JSON).
    """
    limits = limits or FileLimits()
    source = ByteSource(stream, limits)
    fmt = file_format or detect_format(filename, content_type, source.peek())
    if fmt is FileFormat.XLSX:
        return XlsxReader(source, limits)
    if fmt is FileFormat.JSON:
        return JsonReader(source, limits, encoding=encoding, candidate_encodings=candidate_encodings)
    return CsvReader(source, limits, encoding=encoding, delimiter=delimiter, candidate_encodings=candidate_encodings)
