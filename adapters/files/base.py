"""What every file reader shares: limits, errors, chunked byte input and text decoding.

Readers never hold a whole file: bytes are pulled ``chunk_bytes`` at a time
from a binary file object, counted against ``max_bytes`` as they arrive, and
decoded incrementally.
"""

from __future__ import annotations

import codecs
import re
import tempfile
from collections.abc import Iterator, Sequence
from enum import StrEnum
from typing import IO, Any, BinaryIO

from charset_normalizer import from_bytes
from pydantic import BaseModel, ConfigDict, Field

# Encodings a non-UTF file is read in, in order of preference on a tie.
# Left to itself charset-normalizer calls a short cp1251 file "iso8859_13"
# (Baltic); limited to what audiences here are actually saved in, it is right.
DEFAULT_CANDIDATE_ENCODINGS: tuple[str, ...] = ("cp1251", "cp1252", "koi8_r", "cp866")

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CONTROL_OK = frozenset("\t\n\r\f\v")


class FileFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    JSON = "json"


class FileLimits(BaseModel):
    """Bounds on what one upload may cost; every one is named in the error that enforces it."""

    model_config = ConfigDict(frozen=True)

    max_bytes: int = Field(default=200 * 1024 * 1024, ge=1)
    max_rows: int = Field(default=1_000_000, ge=1)
    # csv refuses fields over csv.field_size_limit() (131072 by default), so
    # this stays below it; Excel itself stops at 32767 characters a cell.
    max_cell_chars: int = Field(default=65_536, ge=1, le=131_072)
    # One CSV line or one JSON item: without it an unbalanced quote or one
    # 10 MB line would be buffered whole before anything fails.
    max_record_chars: int = Field(default=1_048_576, ge=1)
    # An XLSX is a zip: its unpacked size, not the upload's, is what parsing costs.
    max_unpacked_bytes: int = Field(default=2 * 1024**3, ge=1)
    chunk_bytes: int = Field(default=64 * 1024, ge=1024)


class FileError(ValueError):
    """A file that cannot be imported as it is; ``row`` says where when it is known."""

    def __init__(self, message: str, *, row: int | None = None) -> None:
        self.detail = message
        self.row = row
        super().__init__(f"row {row}: {message}" if row is not None else message)

    def at_row(self, row: int) -> FileError:
        """The same error, placed at ``row`` (when the raiser could not know it)."""
        if self.row is not None:
            return self
        clone = self.__class__.__new__(self.__class__)
        clone.__dict__.update(self.__dict__)
        FileError.__init__(clone, self.detail, row=row)
        return clone


class UnsupportedFormat(FileError):
    """Not CSV, XLSX or JSON."""


class MalformedFile(FileError):
    """The format is known but the content is broken (encoding, quoting, syntax...)."""


class LimitExceeded(FileError):
    """A configured limit was hit; names the limit and its value."""

    def __init__(self, limit: str, value: int, message: str, *, row: int | None = None) -> None:
        self.limit = limit
        self.value = value
        super().__init__(f"{message} (limit {limit}={value})", row=row)


class ByteSource:
    """A binary file object read in chunks, counted against ``max_bytes``; its first chunk can be peeked."""

    def __init__(self, stream: BinaryIO | IO[bytes], limits: FileLimits) -> None:
        self._stream = stream
        self._limits = limits
        self._head: bytes | None = None
        self._head_given = False
        self.bytes_read = 0
        try:
            self._start = stream.tell() if stream.seekable() else None
        except (OSError, AttributeError, ValueError):
            self._start = None

    def _read(self) -> bytes:
        data = self._stream.read(self._limits.chunk_bytes)
        if not isinstance(data, bytes):
            raise TypeError("read_rows needs a binary file object (open the file with 'rb')")
        self.bytes_read += len(data)
        if self.bytes_read > self._limits.max_bytes:
            raise LimitExceeded(
                "max_bytes", self._limits.max_bytes, f"the file is larger than {self._limits.max_bytes} bytes"
            )
        return data

    def peek(self) -> bytes:
        """Up to ``chunk_bytes`` from the start, without consuming them."""
        if self._head is None:
            parts: list[bytes] = []
            size = 0
            # A pipe may hand out less than asked; detection wants a full chunk.
            while size < self._limits.chunk_bytes:
                data = self._read()
                if not data:
                    break
                parts.append(data)
                size += len(data)
            self._head = b"".join(parts)
        return self._head

    @property
    def head_is_everything(self) -> bool:
        return self._head is not None and len(self._head) < self._limits.chunk_bytes

    def chunks(self) -> Iterator[bytes]:
        """Every byte of the file, the peeked head first."""
        head = self.peek()
        if not self._head_given:
            self._head_given = True
            if head:
                yield head
        while data := self._read():
            yield data

    def seekable_file(self) -> tuple[IO[bytes], bool]:
        """The whole file as a seekable file object (zip readers need one), within ``max_bytes``.

        The flag says whether the file is a spooled copy the caller must close.
        """
        if self._start is not None and not self._head_given:
            end = self._stream.seek(0, 2)
            if end - self._start > self._limits.max_bytes:
                raise LimitExceeded(
                    "max_bytes", self._limits.max_bytes, f"the file is larger than {self._limits.max_bytes} bytes"
                )
            self._stream.seek(self._start)
            return self._stream, False  # type: ignore[return-value]
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the reader, which closes it
        for data in self.chunks():
            spool.write(data)
        spool.seek(0)
        return spool, True


class SinglePassReader:
    """A file reader whose rows stream from the file: they can be read once."""

    _iterated = False

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        if self._iterated:
            raise RuntimeError("a file reader can be iterated once")
        self._iterated = True
        return self._rows()

    def _rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        raise NotImplementedError


def text_encoding(source: ByteSource, encoding: str | None, candidates: Sequence[str]) -> str:
    """A text file's encoding: the one given, else detected from its head; an empty file is refused."""
    head = source.peek()
    if not head.strip():
        raise MalformedFile("the file is empty")
    return encoding or detect_encoding(head, final=source.head_is_everything, candidates=candidates)


def detect_encoding(head: bytes, *, final: bool, candidates: Sequence[str] = DEFAULT_CANDIDATE_ENCODINGS) -> str:
    """The codec a text file's first chunk is written in: a BOM, else UTF-8, else the likeliest candidate."""
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return codec
    if b"\x00" not in head:
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head, final=final)
            return "utf-8"
        except UnicodeDecodeError:
            pass
    matches = from_bytes(head, cp_isolation=list(candidates)) if b"\x00" not in head else None
    if not matches:
        matches = from_bytes(head)
    best = matches.best() if matches else None
    if best is None:
        raise MalformedFile("not a text file: no text encoding fits its first bytes (binary data?)")
    if b"\x00" not in head:
        _refuse_mixed_utf8(head, best.encoding)
    return best.encoding


# A UTF-8 encoded character of two or three bytes.
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}")
_HIGH_BYTE = re.compile(rb"[\x80-\xff]")


def _refuse_mixed_utf8(head: bytes, codec: str) -> None:
    """Refuse text that is partly UTF-8 and partly a legacy code page.

    Read in the legacy code page, the UTF-8 part would decode without any
    error into mojibake ("Алиса" becomes "РђР»РёСЃР°") and be imported as
    such. In genuine cp1251/cp1252/koi8 text, letters almost never happen
    to form valid UTF-8 sequences; here a fifth of the non-ASCII bytes do.
    """
    sequences = _UTF8_SEQUENCE.findall(head)
    high = len(_HIGH_BYTE.findall(head))
    if len(sequences) < 4 or sum(map(len, sequences)) < high * 0.2:
        return
    utf8_line = other_line = None
    for number, line in enumerate(head.split(b"\n")[:-1] or [head], start=1):
        if not _HIGH_BYTE.search(line):
            continue
        try:
            line.decode("utf-8")
            utf8_line = utf8_line or number
        except UnicodeDecodeError:
            other_line = other_line or number
        if utf8_line and other_line:
            break
    where = f": line {utf8_line} is UTF-8, line {other_line} is not" if utf8_line and other_line else ""
    raise MalformedFile(
        f"the file mixes encodings{where} (read as {codec}, its UTF-8 text would be garbled);"
        " save the whole file as UTF-8",
        row=other_line if utf8_line and other_line else None,
    )


def check_text(sample: str) -> None:
    """Refuse decoded text that is mostly control characters: binary data that happened to decode."""
    if not sample:
        return
    controls = sum(1 for ch in sample if ch < " " and ch not in _CONTROL_OK)
    if "\x00" in sample or controls > max(2, len(sample) // 100):
        raise MalformedFile("not a text file: it holds binary control characters")


def decode_chunks(chunks: Iterator[bytes], codec: str) -> Iterator[str]:
    """Incrementally decoded text; a byte sequence invalid in ``codec`` raises MalformedFile."""
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    offset = 0
    for data in chunks:
        held = len(decoder.getstate()[0])  # bytes of a character cut by the last chunk
        try:
            text = decoder.decode(data)
        except UnicodeDecodeError as exc:
            # Hand on the good text before the bad byte first, so the reader is
            # on the bad byte's own row when the error surfaces. A failed decode
            # leaves the decoder's state untouched.
            good = max(0, exc.start - held)
            if good:
                yield decoder.decode(data[:good])
            raise MalformedFile(
                f"byte {offset + good} is not valid {codec} (the file mixes encodings?"
                " save it as UTF-8)"
            ) from None
        offset += len(data)
        if text:
            yield text
    try:
        tail = decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise MalformedFile(f"the file ends inside a {codec} character (truncated?)") from None
    if tail:
        yield tail


def clean_cell(value: Any, limits: FileLimits) -> Any:
    """A cell as readers hand it on: text stripped (blank -> None), within ``max_cell_chars``."""
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        if len(value) > limits.max_cell_chars:
            raise LimitExceeded(
                "max_cell_chars", limits.max_cell_chars, f"a cell holds {len(value)} characters"
            )
    return value


def unique_headers(cells: Sequence[Any]) -> list[str]:
    """Header names made usable as keys: blanks become ``column_N``, repeats get `` (2)``."""
    names: list[str] = []
    seen: set[str] = set()
    for index, cell in enumerate(cells, start=1):
        name = str(cell).strip() if cell is not None else ""
        name = name or f"column_{index}"
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = f"{name} ({n})"
        seen.add(candidate)
        names.append(candidate)
    return names


def extra_column(index: int) -> str:
    """The key of a cell beyond the header's last column (1-based ``index``)."""
    return f"column_{index}"
