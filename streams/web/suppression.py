"""Suppression list API: the people a user never wants contacted.

- ``GET /api/v1/suppressions?limit=&cursor=&kind=&reason=``: a page, newest first;
- ``POST /api/v1/suppressions`` ``{"entries": [{"value", "kind"?, "reason"?}]}``:
  add (idempotent; all entries are checked before any is stored); the
  owner's targets still waiting in open tasks that the entries name are
  skipped at once (``targets_skipped``);
- ``DELETE /api/v1/suppressions/{kind}/{value}``: remove one identity, in any spelling;
- ``POST /api/v1/suppressions/import`` (multipart ``file``, optional ``reason``,
  ``mapping``): a CSV/XLSX/JSON list, read in full before anything is stored.
  Columns are detected like an audience file's; a file with one column of
  bare values gets each value's kind guessed (``+7...`` phone, digits id,
  anything else username), and its first line counts as a value too.

Targets on the list are skipped with reason ``suppressed`` when imported
(``ImportStore.import_batch``).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faust
import orjson
from faust.web import Request, Response, View
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.files import FileError, FileLimits
from adapters.files.spool import AudienceFile
from adapters.postgres.suppression import MAX_PAGE, SuppressionStore
from models.audience import (
    SuppressionEntry,
    SuppressionReason,
    entries_for,
    guess_identity_kind,
)
from models.imports import ColumnMappingError, ImportTally, Problem, TargetField
from models.targets import IdentityKind

from ..runtime import Runtime
from ..topics import Topics
from .auth import owner_from_header
from .errors import HttpError, api_errors, parse_body
from .imports import CHUNK_ROWS, file_problem, read_upload

MAX_ENTRIES_PER_REQUEST = 10_000
_ADD_CHUNK = 10_000
_IMPORT_FIELDS = frozenset({"reason", "mapping", "encoding", "delimiter"})
_IDENTITY_FIELDS = frozenset({TargetField.USERNAME, TargetField.USER_ID, TargetField.PHONE})


class SuppressionAddRequest(BaseModel):
    """Body of ``POST /api/v1/suppressions``; ``kind`` may be left out for a bare value."""

    model_config = ConfigDict(extra="forbid")

    entries: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_ENTRIES_PER_REQUEST)


class SuppressionImportForm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: SuppressionReason = SuppressionReason.OPT_OUT
    mapping: dict[str, str | None] | None = None
    encoding: str | None = Field(default=None, min_length=1, max_length=40)
    delimiter: str | None = Field(default=None, min_length=1, max_length=2)


def _entry_problem(exc: ValidationError, index: int) -> dict[str, Any]:
    first = exc.errors(include_input=False, include_url=False)[0]
    return {"entry": index, "field": ".".join(map(str, first["loc"])) or "value",
            "message": first["msg"].removeprefix("Value error, ")}


class _ListFile:
    """Entries of a suppression list file, spooled to disk as JSON lines after a full read."""

    def __init__(self, path: Path, form: SuppressionImportForm, limits: FileLimits, region: str,
                 filename: str | None, content_type: str | None) -> None:
        self._form = form
        self._region = region
        self.tally = ImportTally()
        self._spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.entries = 0
        self.audience = AudienceFile(path, filename=filename, content_type=content_type, mapping=form.mapping,
                                     limits=limits, default_region=region, encoding=form.encoding,
                                     delimiter=form.delimiter)
        self.bare_column = (
            len(self.audience.reader.columns) == 1
            and not (set(self.audience.mapping.fields) & _IDENTITY_FIELDS)
        )

    def read_all(self) -> None:
        """The whole file, checked: raises FileError; bad rows are counted in ``tally``."""
        if self.bare_column:
            self._read_bare()
        else:
            while chunk := self.audience.take(CHUNK_ROWS):
                for _, target in chunk:
                    self._write(entries_for(target, self._form.reason))
            # prepare_targets counted rows it accepted and rejected in its own tally.
            self.tally = self.audience.tally

    def _read_bare(self) -> None:
        reader = self.audience.reader
        column = reader.columns[0]
        # A plain list (one value a line) has no header: its first line is a value too.
        # JSON items name their key, so there the "header" is never a value.
        header_row: int | None = getattr(reader, "header_row", None)
        if header_row is not None:
            self._add_bare(header_row, column, quiet=True)
        for number, row in reader:
            value = row.get(column)
            if value is not None:
                self._add_bare(number, value, quiet=False)

    def _add_bare(self, number: int, value: Any, *, quiet: bool) -> None:
        try:
            entry = SuppressionEntry.model_validate(
                {"value": value, "kind": guess_identity_kind(value), "reason": self._form.reason},
                context={"default_region": self._region},
            )
        except ValidationError as exc:
            if not quiet:  # a header like "value" or "contacts" is no identity: skip it silently
                self.tally.reject(Problem(row=number, reason=_entry_problem(exc, number)["message"]))
            return
        self.tally.accepted += 1
        self._write([entry])

    def _write(self, entries: list[SuppressionEntry]) -> None:
        if entries:
            self._spool.write(b"".join(
                orjson.dumps([e.kind.value, e.value, e.reason.value]) + b"\n" for e in entries))
            self.entries += len(entries)

    def chunks(self, size: int) -> Iterator[list[SuppressionEntry]]:
        self._spool.flush()
        self._spool.seek(0)
        chunk: list[SuppressionEntry] = []
        for line in self._spool:
            kind, value, reason = orjson.loads(line)
            chunk.append(SuppressionEntry.model_construct(
                kind=IdentityKind(kind), value=value, reason=SuppressionReason(reason)))
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def close(self) -> None:
        self.audience.close()
        self._spool.close()


def register(app: faust.App, topics: Topics, rt: Runtime) -> None:
    settings = rt.settings

    def owner(request: Request) -> str:
        return owner_from_header(request.headers.get("Authorization"), settings)

    def store() -> SuppressionStore:
        return SuppressionStore(rt.pool)

    @app.page("/api/v1/suppressions")
    class Suppressions(View):
        @api_errors
        async def get(self, request: Request) -> Response:
            user = owner(request)
            query = request.query
            try:
                limit = int(query.get("limit", "100"))
                cursor = int(query["cursor"]) if "cursor" in query else None
                kind = IdentityKind(query["kind"]) if "kind" in query else None
                reason = SuppressionReason(query["reason"]) if "reason" in query else None
            except ValueError:
                raise HttpError(422, "validation_error", "bad query parameter", [
                    {"field": "limit", "allowed": f"1..{MAX_PAGE}"}, {"field": "cursor", "allowed": "an integer"},
                    {"field": "kind", "allowed": [k.value for k in IdentityKind]},
                    {"field": "reason", "allowed": [r.value for r in SuppressionReason]},
                ]) from None
            if not 1 <= limit <= MAX_PAGE:
                raise HttpError(422, "validation_error", f"limit must be within 1..{MAX_PAGE}", [{"field": "limit"}])
            page = await store().list_entries(user, limit=limit, cursor=cursor, kind=kind, reason=reason)
            body = page.model_dump(mode="json")
            body["total"] = await store().count(user)
            return self.json(body)

        @api_errors
        async def post(self, request: Request) -> Response:
            user = owner(request)
            body: SuppressionAddRequest = await parse_body(request, SuppressionAddRequest)
            context = {"default_region": settings.phone_default_region}
            entries: list[SuppressionEntry] = []
            problems: list[dict[str, Any]] = []
            for index, raw in enumerate(body.entries):
                try:
                    entries.append(SuppressionEntry.model_validate(raw, context=context))
                except ValidationError as exc:
                    problems.append(_entry_problem(exc, index))
            if problems:
                raise HttpError(422, "validation_error",
                                f"{len(problems)} of {len(body.entries)} entries are invalid; nothing was added",
                                problems[:100])
            added = await store().add(user, entries)
            skipped = await store().skip_waiting_targets(user, entries)
            return self.json({"received": len(entries), "added": added, "targets_skipped": skipped})

    @app.page("/api/v1/suppressions/{kind}/{value}")
    class OneSuppression(View):
        @api_errors
        async def delete(self, request: Request, kind: str, value: str) -> Response:
            user = owner(request)
            try:
                identity = IdentityKind(kind)
            except ValueError:
                raise HttpError(404, "not_found", f"no identity kind {kind!r}",
                                {"allowed": [k.value for k in IdentityKind]}) from None
            try:
                removed = await store().remove(user, identity, value, default_region=settings.phone_default_region)
            except ValueError as exc:
                raise HttpError(422, "validation_error", str(exc), [{"field": "value"}]) from None
            if not removed:
                raise HttpError(404, "not_found", f"this {identity.value} is not on the suppression list")
            return self.json({"removed": True})

    @app.page("/api/v1/suppressions/import")
    class ImportSuppressions(View):
        @api_errors
        async def post(self, request: Request) -> Response:
            user = owner(request)
            upload = await read_upload(request, settings.import_max_bytes, _IMPORT_FIELDS)
            try:
                form = _parse_import_form(upload.fields)
                assert upload.path is not None
                limits = FileLimits(max_bytes=settings.import_max_bytes, max_rows=settings.import_max_rows)
                try:
                    listed = await asyncio.to_thread(_ListFile, upload.path, form, limits,
                                                     settings.phone_default_region, upload.filename,
                                                     upload.content_type)
                except (FileError, ColumnMappingError) as exc:
                    raise file_problem(exc)[0] from None
                try:
                    try:
                        await asyncio.to_thread(listed.read_all)
                    except FileError as exc:
                        raise file_problem(exc)[0] from None
                    added = skipped = 0
                    chunks = listed.chunks(_ADD_CHUNK)
                    while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
                        added += await store().add(user, chunk)
                        skipped += await store().skip_waiting_targets(user, chunk)
                    report = listed.tally.report(listed.audience.mapping)
                finally:
                    await asyncio.to_thread(listed.close)
            finally:
                upload.discard()
            return self.json({
                "rows": report.rows, "accepted_rows": report.accepted, "rejected": report.rejected,
                "duplicate": report.duplicate, "entries": listed.entries, "added": added, "targets_skipped": skipped,
                "problems": [p.model_dump(mode="json") for p in report.problems],
            })


def _parse_import_form(fields: dict[str, str]) -> SuppressionImportForm:
    values: dict[str, Any] = dict(fields)
    if "mapping" in values:
        try:
            values["mapping"] = orjson.loads(values["mapping"])
        except orjson.JSONDecodeError:
            raise HttpError(422, "validation_error", "mapping must be a JSON object", [{"field": "mapping"}]) from None
    try:
        return SuppressionImportForm.model_validate(values)
    except ValidationError as exc:
        details = [{"field": ".".join(map(str, e["loc"])) or "form", "message": e["msg"]} for e in exc.errors()]
        raise HttpError(422, "validation_error", "the form is invalid", details) from None

