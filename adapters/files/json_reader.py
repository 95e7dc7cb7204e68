"""JSON rows, streamed: an array of objects or JSON lines (one object after another).

No JSON streaming library is installed, so items are cut out of the decoded
text with ``json.JSONDecoder.raw_decode`` as chunks arrive; only the item
being read (at most ``max_record_chars``) is ever buffered. Row numbers are
item numbers, from 1.
"""

from __future__ import annotations

import json
import re
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
    clean_cell,
    decode_chunks,
    text_encoding,
)

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_JSON_TYPE = {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number",
              bool: "true/false", type(None): "null"}


class _Values:
    """Successive JSON values and punctuation from a stream of decoded text."""

    def __init__(self, texts: Iterator[str], max_chars: int) -> None:
        self._texts = texts
        self._max = max_chars
        self._decoder = json.JSONDecoder()
        self._buf = ""
        self._pos = 0
        self.eof = False

    def _fill(self) -> bool:
        for text in self._texts:
            self._buf = self._buf[self._pos :] + text
            self._pos = 0
            return True
        self.eof = True
        return False

    def peek(self) -> str | None:
        """The next character that is not whitespace; None at the end of the file."""
        while True:
            self._pos = _WHITESPACE.match(self._buf, self._pos).end()  # type: ignore[union-attr]
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._fill():
                return None

    def take(self) -> str:
        char = self._buf[self._pos]
        self._pos += 1
        return char

    def value(self, item: int) -> Any:
        """Decode the value starting at the next character, reading more text until it is complete."""
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as exc:
                # An item cut by the chunk boundary fails at the buffer's end (or,
                # for a string, where it starts); anything earlier is a real error.
                unterminated = exc.msg.startswith("Unterminated string")
                if self.eof:
                    if unterminated or exc.pos >= len(self._buf.rstrip()):
                        raise MalformedFile("the JSON ends in the middle of this item (truncated file?)",
                                            row=item) from None
                    raise MalformedFile(f"not valid JSON: {exc.msg}", row=item) from None
                if not unterminated and exc.pos < len(self._buf) - len("false"):
                    raise MalformedFile(f"not valid JSON: {exc.msg}", row=item) from None
            else:
                # A number touching the end of the buffer may continue in the next chunk.
                if end < len(self._buf) or self.eof or not isinstance(value, (int, float)):
                    self._pos = end
                    return value
            if len(self._buf) - self._pos > self._max:
                raise LimitExceeded("max_record_chars", self._max,
                                    f"an item is longer than {self._max} characters", row=item)
            self._fill()


class JsonReader(SinglePassReader):
    """Iterates ``(item_number, {key: value})`` over a JSON array of objects or JSON lines."""

    format = FileFormat.JSON

    def __init__(
        self,
        source: ByteSource,
        limits: FileLimits,
        *,
        encoding: str | None = None,
        candidate_encodings: Sequence[str] = DEFAULT_CANDIDATE_ENCODINGS,
    ) -> None:
        self._limits = limits
        self.encoding = text_encoding(source, encoding, candidate_encodings)
        self._values = _Values(decode_chunks(source.chunks(), self.encoding), limits.max_record_chars)
        first = self._wrap(self._values.peek, 1)
        if first == "[":
            self.layout = "array"
            self._values.take()
        elif first == "{":
            self.layout = "lines"
        else:
            check_text(self._values._buf[:4096])
            raise MalformedFile(
                f"expected a JSON array of objects or JSON lines, but the file starts with {first!r}"
            )
        self._items = self._items_of_layout()
        self._first = self._wrap(lambda: next(self._items, None), 1)
        self.columns: list[str] = list(self._first[1]) if self._first else []

    @staticmethod
    def _wrap(call: Any, item: int) -> Any:
        try:
            return call()
        except FileError as exc:
            raise exc.at_row(item) from None

    def _items_of_layout(self) -> Iterator[tuple[int, Any]]:
        values = self._values
        item = 0
        if self.layout == "array":
            if self._wrap(values.peek, 1) == "]":
                values.take()
            else:
                while True:
                    item += 1
                    yield item, self._wrap(lambda n=item: values.value(n), item)
                    char = self._wrap(values.peek, item)
                    if char == "]":
                        values.take()
                        break
                    if char is None:
                        raise MalformedFile(f"the JSON array is never closed after item {item} (truncated file?)")
                    if char != ",":
                        raise MalformedFile(f"expected ',' or ']' after item {item}, found {char!r}")
                    values.take()
                    if self._wrap(values.peek, item + 1) == "]":
                        raise MalformedFile(f"a comma after the last item {item} (not valid JSON)")
            trailing = self._wrap(values.peek, item)
            if trailing is not None:
                raise MalformedFile(f"data after the end of the JSON array: {trailing!r}...")
        else:
            while self._wrap(values.peek, item + 1) is not None:
                item += 1
                try:
                    value = values.value(item)
                except LimitExceeded as exc:
                    if item == 1:
                        raise LimitExceeded(
                            exc.limit, exc.value,
                            "the first item is too long; is the file one big JSON object instead of"
                            " an array or JSON lines?", row=1,
                        ) from None
                    raise
                if item == 1 and isinstance(value, dict):
                    _refuse_wrapper_object(value)
                yield item, value

    def _rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        if self._first is None:
            return
        first: Iterator[tuple[int, Any]] = iter([self._first])
        rows = 0
        for source in (first, self._items):
            for item, value in source:
                if not isinstance(value, dict):
                    raise MalformedFile(
                        f"item is {_JSON_TYPE.get(type(value), type(value).__name__)}, expected an object"
                        ' like {"username": "..."}',
                        row=item,
                    )
                rows += 1
                if rows > self._limits.max_rows:
                    raise LimitExceeded(
                        "max_rows", self._limits.max_rows, f"the file has more than {self._limits.max_rows} items",
                        row=item,
                    )
                try:
                    row = {str(k): clean_cell(v, self._limits) for k, v in value.items()}
                except FileError as exc:
                    raise exc.at_row(item) from None
                if any(v is not None for v in row.values()):
                    yield item, row


def _refuse_wrapper_object(value: dict[str, Any]) -> None:
    """``{"targets": [{...}, ...]}`` is one object holding the rows, not a row: say so."""
    for key, inner in value.items():
        if isinstance(inner, list) and inner and all(isinstance(x, dict) for x in inner[:10]):
            raise MalformedFile(
                f"found a JSON object where an array was expected: its key {key!r} holds a list of"
                " objects; send that array itself (or JSON lines)",
                row=1,
            )
