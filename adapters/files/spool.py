"""An audience source read through once, its normalized targets kept on disk until they are published.

The import of a file (or of the parsing service's results, downloaded as JSON
lines) is two steps, so that nothing is half-imported silently:

1. :class:`AudienceFile` reads every row (a broken file fails here, before
   anything is published), maps, normalizes and de-duplicates it, and
   :class:`TargetSpool` writes each accepted target to a temporary file as one
   JSON line;
2. :meth:`TargetSpool.batches` reads the lines back in batches that fit in
   one Kafka message.

Memory stays flat whatever the file's size: one chunk of rows at a time, and
the de-duplicator's 64-bit hashes. Everything here is synchronous; async
callers run it in a thread, a chunk at a time.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import IO, Any, Self

import orjson

from models.imports import (
    DEFAULT_MAX_PROBLEMS,
    MAX_BATCH_BYTES,
    MAX_BATCH_ROWS,
    ColumnMapper,
    ColumnMapping,
    Deduplicator,
    ImportReport,
    ImportTally,
    prepare_targets,
    row_too_large,
)
from models.targets import DEFAULT_PHONE_REGION, TargetIn

from . import FileFormat, FileLimits, RowReader, read_rows

# Room for the event envelope around a batch's rows (ids, timestamps, owner).
_ENVELOPE_BYTES = 2048


class AudienceFile:
    """One pass over an audience file: normalized, de-duplicated targets a chunk at a time.

    Opening reads the header and resolves the column mapping, so a file that
    is not CSV/XLSX/JSON, has no header, or lacks a column the explicit
    mapping names fails at once (``FileError`` / ``ColumnMappingError``).
    """

    def __init__(
        self,
        path: Path,
        *,
        filename: str | None = None,
        content_type: str | None = None,
        file_format: FileFormat | None = None,
        mapping: Mapping[str, str | None] | None = None,
        limits: FileLimits | None = None,
        default_region: str | None = DEFAULT_PHONE_REGION,
        encoding: str | None = None,
        delimiter: str | None = None,
        max_problems: int = DEFAULT_MAX_PROBLEMS,
    ) -> None:
        self.mapper = ColumnMapper(mapping)
        self._file: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed by close()
        try:
            self.reader: RowReader = read_rows(
                self._file, filename=filename, content_type=content_type, file_format=file_format,
                limits=limits, encoding=encoding, delimiter=delimiter,
            )
            self.mapping: ColumnMapping = self.mapper.resolve(self.reader.columns)
        except BaseException:
            self.close()
            raise
        self.format: FileFormat = self.reader.format
        self.tally = ImportTally(max_problems)
        self.rows_read = 0
        self._targets = prepare_targets(
            self._counted(), self.mapper, self.tally, default_region=default_region, dedup=Deduplicator()
        )

    def _counted(self) -> Iterator[tuple[int, dict[str, Any]]]:
        for row in self.reader:
            self.rows_read += 1
            yield row

    def take(self, n: int) -> list[tuple[int, TargetIn]]:
        """The next ``n`` accepted targets with their row numbers; empty at the end (raises FileError)."""
        return list(islice(self._targets, n))

    def report(self) -> ImportReport:
        return self.tally.report(self.mapping)

    def close(self) -> None:
        close = getattr(getattr(self, "reader", None), "close", None)
        if close is not None:
            close()
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def encode_target(target: TargetIn) -> bytes:
    """A target as the JSON object a targets.imported batch carries (None fields left out)."""
    return orjson.dumps(target.model_dump(exclude_none=True))


class TargetSpool:
    """Accepted targets as JSON lines in a temporary file (deleted on close)."""

    def __init__(self, directory: Path | None = None, *, max_row_bytes: int = MAX_BATCH_BYTES - _ENVELOPE_BYTES) -> None:
        self._file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - closed by close()
        self.max_row_bytes = max_row_bytes
        self.rows = 0

    def write(self, targets: Sequence[tuple[int, TargetIn]], tally: ImportTally) -> None:
        """Append targets; one too large for any batch is moved from accepted to rejected in ``tally``."""
        write = self._file.write
        for number, target in targets:
            line = encode_target(target)
            if len(line) > self.max_row_bytes:
                tally.reject_accepted(row_too_large(number, len(line), self.max_row_bytes))
                continue
            # Written at once, not collected: each bytes object orjson returns keeps
            # a few KB of spare buffer, which for a chunk of rows adds up to ~100 MB.
            write(line + b"\n")
            self.rows += 1

    def fill(self, audience: AudienceFile, chunk_rows: int) -> int:
        """Read the next chunk of ``audience`` into the spool; returns how many rows it held (0 at the end)."""
        chunk = audience.take(chunk_rows)
        self.write(chunk, audience.tally)
        return len(chunk)

    def batches(
        self, *, max_rows: int = MAX_BATCH_ROWS, max_bytes: int = MAX_BATCH_BYTES - _ENVELOPE_BYTES
    ) -> Iterator[list[bytes]]:
        """The spooled targets (encoded JSON objects) in batches of at most ``max_rows`` and ``max_bytes``."""
        self._file.flush()
        self._file.seek(0)
        batch: list[bytes] = []
        size = 0
        for raw in self._file:
            line = raw.rstrip(b"\n")
            # +1 for the comma between two rows in the JSON array.
            if batch and (len(batch) >= max_rows or size + len(line) + 1 > max_bytes):
                yield batch
                batch, size = [], 0
            batch.append(line)
            size += len(line) + 1
        if batch:
            yield batch

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
