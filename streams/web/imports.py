"""Audience import API: files, dry runs, the parsing service, and every import's progress.

- ``POST /api/v1/import/file`` (multipart: ``file``, ``task_id``, optional
  ``mapping`` JSON, ``encoding``, ``delimiter``): the upload is spooled to a
  temporary file, read in a thread once in full (a broken file fails here
  with 4xx and nothing is published), its normalized targets spooled again,
  then published as ``targets.imported`` batches (one Kafka message each).
  Answers 202 with the import's view; the importer agent applies the batches.
- ``POST /api/v1/import/validate``: the same reading as a dry run — counts and
  the first problems with row numbers and reasons; nothing is stored.
- ``POST /api/v1/import/parsing`` ``{task_id, parsing_task_id}``: pulls a
  completed parsing task's results page by page (``adapters/parsing.py``) into
  a JSON-lines spool, then the same pipeline; runs in the background.
- ``GET /api/v1/imports/{import_id}`` and ``GET /api/v1/tasks/{task_id}/imports``:
  status, progress and the report (source counts plus what the importer applied).

Memory stays flat whatever the size: the upload and the normalized targets
live on disk, rows are read a chunk at a time, and de-duplication keeps 64-bit
hashes only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import faust
import orjson
from aiohttp import BodyPartReader
from faust.web import Request, Response, View
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.files import (
    FileError,
    FileFormat,
    FileLimits,
    LimitExceeded,
    UnsupportedFormat,
    detect_format,
)
from adapters.files.spool import AudienceFile, TargetSpool
from adapters.parsing import (
    ParsingClient,
    ParsingError,
    ParsingServiceSettings,
    ParsingTaskNotFound,
    ParsingTaskStatus,
)
from adapters.postgres.suppression import SuppressionStore
from models.audience import SuppressionReason
from models.imports import (
    DEFAULT_MAX_PROBLEMS,
    ColumnMappingError,
    ImportFailure,
    ImportRecord,
    ImportReport,
    ImportSource,
    ImportStatus,
    ImportView,
    batch_id_for,
    import_view,
    targets_imported_value,
)
from models.tasks import TERMINAL_STATUSES, TaskStatus

from ..runtime import Runtime
from ..topics import Topics
from .auth import owner_from_header
from .errors import HttpError, api_errors, parse_body

log = logging.getLogger(__name__)

# Rows read per step of the validation pass: the import's record is touched
# between steps, which is its progress and its proof of life.
CHUNK_ROWS = 20_000
# Batches in flight to the broker before waiting for their acknowledgement.
PUBLISH_WINDOW = 16
# An active import untouched for this long has lost its worker.
STALE_AFTER_SECONDS = 120.0
MAX_PROBLEMS_LIMIT = 1_000
_FORM_FIELD_BYTES = 64 * 1024
_UPLOAD_CHUNK = 256 * 1024
FORM_FIELDS = frozenset({"task_id", "mapping", "encoding", "delimiter", "max_problems"})
_SOURCE_OF = {FileFormat.CSV: ImportSource.CSV, FileFormat.XLSX: ImportSource.XLSX, FileFormat.JSON: ImportSource.JSON}

# Background pulls from the parsing service; kept so they are not garbage-collected mid-run.
_background: set[asyncio.Task[None]] = set()


class ParsingImportRequest(BaseModel):
    """Body of ``POST /api/v1/import/parsing``."""

    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(min_length=1, max_length=200)
    parsing_task_id: str = Field(min_length=1, max_length=200)
    mapping: dict[str, str | None] | None = None


class FileForm(BaseModel):
    """The text fields of an import upload."""

    model_config = ConfigDict(extra="forbid")

    task_id: str | None = Field(default=None, min_length=1, max_length=200)
    mapping: dict[str, str | None] | None = None
    encoding: str | None = Field(default=None, min_length=1, max_length=40)
    delimiter: str | None = Field(default=None, min_length=1, max_length=2)
    max_problems: int = Field(default=DEFAULT_MAX_PROBLEMS, ge=0, le=MAX_PROBLEMS_LIMIT)


@dataclass
class Upload:
    """A multipart upload spooled to disk: the file (deleted by ``discard``) and the form fields."""

    path: Path | None = None
    filename: str | None = None
    content_type: str | None = None
    size: int = 0
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self.path = None


async def read_upload(request: Request, max_bytes: int, fields: frozenset[str] = FORM_FIELDS) -> Upload:
    """Spool a multipart upload's ``file`` part to a temporary file, within ``max_bytes``; ``fields`` are the text fields allowed."""
    if not (request.content_type or "").startswith("multipart/form-data"):
        raise HttpError(415, "unsupported_media_type",
                        "send the file as multipart/form-data with a 'file' part and a 'task_id' field")
    upload = Upload()
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise HttpError(422, "validation_error", "nested multipart bodies are not supported")
            if part.name == "file":
                if upload.path is not None:
                    raise HttpError(422, "validation_error", "send one file per request",
                                    [{"field": "file"}])
                await _spool_part(part, upload, max_bytes)
            elif part.name in fields:
                upload.fields[part.name] = await _read_field(part)
            else:
                raise HttpError(422, "validation_error", f"unknown form field {part.name!r}",
                                [{"field": part.name, "allowed": sorted({"file", *fields})}])
    except BaseException:
        upload.discard()
        raise
    if upload.path is None:
        raise HttpError(422, "validation_error", "the upload has no 'file' part", [{"field": "file"}])
    return upload


async def _spool_part(part: BodyPartReader, upload: Upload, max_bytes: int) -> None:
    fd, name = tempfile.mkstemp(prefix="invite-upload-")
    upload.path = Path(name)
    upload.filename = part.filename
    upload.content_type = part.headers.get("Content-Type")
    with os.fdopen(fd, "wb") as out:
        while chunk := await part.read_chunk(_UPLOAD_CHUNK):
            upload.size += len(chunk)
            if upload.size > max_bytes:
                raise HttpError(413, "limit_exceeded", f"the file is larger than {max_bytes} bytes",
                                {"limit": "max_bytes", "value": max_bytes})
            out.write(chunk)


async def _read_field(part: BodyPartReader) -> str:
    data = bytearray()
    while chunk := await part.read_chunk(8192):
        data += chunk
        if len(data) > _FORM_FIELD_BYTES:
            raise HttpError(422, "validation_error", f"form field {part.name!r} is too long",
                            [{"field": part.name}])
    try:
        return data.decode(part.get_charset("utf-8"))
    except (UnicodeDecodeError, LookupError):
        raise HttpError(422, "validation_error", f"form field {part.name!r} is not text",
                        [{"field": part.name}]) from None


def parse_form(fields: dict[str, str]) -> FileForm:
    values: dict[str, Any] = dict(fields)
    if "mapping" in values:
        try:
            values["mapping"] = orjson.loads(values["mapping"])
        except orjson.JSONDecodeError:
            raise HttpError(422, "validation_error",
                            'mapping must be a JSON object like {"phone": "Тел."}', [{"field": "mapping"}]) from None
    try:
        return FileForm.model_validate(values)
    except ValidationError as exc:
        details = [{"field": ".".join(map(str, e["loc"])) or "form", "message": e["msg"]} for e in exc.errors()]
        raise HttpError(422, "validation_error", "the form is invalid", details) from None


def file_problem(exc: Exception) -> tuple[HttpError, ImportFailure]:
    """The answer (and the import's recorded failure) for a source that cannot be imported."""
    if isinstance(exc, ColumnMappingError):
        details = {"unknown_fields": exc.unknown_fields, "unknown_columns": exc.unknown_columns,
                   "columns": exc.available}
        return HttpError(422, "invalid_mapping", str(exc), details), ImportFailure(code="invalid_mapping",
                                                                                    message=str(exc))
    if isinstance(exc, LimitExceeded):
        details = {"limit": exc.limit, "value": exc.value, "row": exc.row}
        return (HttpError(413, "limit_exceeded", str(exc), details),
                ImportFailure(code="limit_exceeded", message=str(exc), row=exc.row))
    if isinstance(exc, UnsupportedFormat):
        return (HttpError(415, "unsupported_format", str(exc), {"row": exc.row}),
                ImportFailure(code="unsupported_format", message=str(exc), row=exc.row))
    assert isinstance(exc, FileError)
    return (HttpError(422, "malformed_file", str(exc), {"row": exc.row}),
            ImportFailure(code="malformed_file", message=str(exc), row=exc.row))


@dataclass
class Pipeline:
    """One import, from a file on disk to published batches, recording each step."""

    rt: Runtime
    topics: Topics
    import_id: str
    owner: str
    task_id: str

    async def validate(self, path: Path, *, filename: str | None, content_type: str | None,
                       file_format: FileFormat | None, form: FileForm, limits: FileLimits
                       ) -> tuple[ImportReport, TargetSpool, FileFormat]:
        """The full pass: every row read, mapped, normalized, de-duplicated and spooled (raises FileError)."""
        audience = await asyncio.to_thread(
            AudienceFile, path, filename=filename, content_type=content_type, file_format=file_format,
            mapping=form.mapping, limits=limits, default_region=self.rt.settings.phone_default_region,
            encoding=form.encoding, delimiter=form.delimiter, max_problems=form.max_problems,
        )
        spool = TargetSpool()
        try:
            while await asyncio.to_thread(spool.fill, audience, CHUNK_ROWS):
                await self.rt.imports.touch(self.import_id, rows_read=audience.rows_read)
            report = audience.report()
        except BaseException:
            spool.close()
            raise
        finally:
            await asyncio.to_thread(audience.close)
        await self.rt.imports.touch(self.import_id, rows_read=audience.rows_read, report=report,
                                    status=ImportStatus.PUBLISHING)
        return report, spool, audience.format

    async def publish(self, spool: TargetSpool) -> None:
        """Every spooled target to the targets topic, in batches keyed by the task; waits for the broker."""
        batches = spool.batches()
        sequence = rows = 0
        pending: list[Awaitable[Any]] = []
        key = self.task_id.encode()
        while (batch := await asyncio.to_thread(next, batches, None)) is not None:
            sequence += 1
            value = targets_imported_value(self.owner, self.task_id, batch_id_for(self.import_id, sequence), batch)
            pending.append(await self.topics.targets.send(key=key, value=value))
            rows += len(batch)
            if len(pending) >= PUBLISH_WINDOW:
                await asyncio.gather(*pending)
                pending.clear()
                await self.rt.imports.touch(self.import_id, rows_published=rows, batches=sequence)
        await asyncio.gather(*pending)
        await self.rt.imports.touch(self.import_id, rows_published=rows, batches=sequence,
                                    status=ImportStatus.PUBLISHED)

    async def fail(self, failure: ImportFailure) -> None:
        await self.rt.imports.touch(self.import_id, status=ImportStatus.FAILED, error=failure)


def register(app: faust.App, topics: Topics, rt: Runtime) -> None:
    settings = rt.settings
    parsing_settings = ParsingServiceSettings()

    def owner(request: Request) -> str:
        return owner_from_header(request.headers.get("Authorization"), settings)

    def limits() -> FileLimits:
        return FileLimits(max_bytes=settings.import_max_bytes, max_rows=settings.import_max_rows)

    async def open_task(user: str, task_id: str | None) -> dict[str, Any]:
        if not task_id:
            raise HttpError(422, "validation_error", "task_id is required", [{"field": "task_id"}])
        task = await rt.tasks.get(task_id, owner=user)
        if task is None:
            raise HttpError(404, "not_found", f"task {task_id} not found")
        if TaskStatus(task["status"]) in TERMINAL_STATUSES:
            raise HttpError(409, "task_finished", f"task is {task['status']}; it takes no more targets",
                            {"status": task["status"]})
        return task

    async def view_of(record: ImportRecord) -> ImportView:
        applied = (await rt.imports.applied([record.id]))[record.id]
        return import_view(record, applied, now=datetime.now(UTC), stale_after=STALE_AFTER_SECONDS)

    async def current_view(import_id: str, user: str) -> dict[str, Any]:
        record = await rt.imports.get_import(import_id, user)
        assert record is not None
        return (await view_of(record)).model_dump(mode="json")

    async def run_file_import(pipeline: Pipeline, upload: Upload, form: FileForm) -> None:
        """Validate, then publish; raises HttpError for a source that cannot be imported."""
        assert upload.path is not None
        try:
            _, spool, _ = await pipeline.validate(
                upload.path, filename=upload.filename, content_type=upload.content_type, file_format=None,
                form=form, limits=limits(),
            )
        except (FileError, ColumnMappingError) as exc:
            error, failure = file_problem(exc)
            await pipeline.fail(failure)
            error.details = {**(error.details or {}), "import_id": pipeline.import_id}
            raise error from None
        finally:
            upload.discard()
        try:
            await pipeline.publish(spool)
        except Exception as exc:
            log.exception("publishing import %s failed", pipeline.import_id)
            await pipeline.fail(ImportFailure(code="publish_failed", message=f"publishing stopped: {exc!r}"))
            raise HttpError(503, "publish_failed", "the broker did not take every batch; see the import's"
                            " progress for what was published", {"import_id": pipeline.import_id}) from None
        finally:
            spool.close()

    async def pull_parsing(pipeline: Pipeline, body: ParsingImportRequest) -> None:
        """Download a parsing task's results as JSON lines, then run them through the file pipeline."""
        fd, name = tempfile.mkstemp(prefix="invite-parsing-", suffix=".jsonl")
        path = Path(name)
        rows = 0
        try:
            client = ParsingClient.from_settings(parsing_settings)
            try:
                with os.fdopen(fd, "wb") as out:
                    async for page in client.pages(body.parsing_task_id, page_size=parsing_settings.page_size):
                        rows += len(page.items)
                        if rows > settings.import_max_rows:
                            raise LimitExceeded("max_rows", settings.import_max_rows,
                                                f"the parsing task has more than {settings.import_max_rows} results")
                        if page.items:
                            out.write(b"\n".join(orjson.dumps(item) for item in page.items) + b"\n")
                        await rt.imports.touch(pipeline.import_id, rows_read=rows)
            finally:
                await client.aclose()
            await rt.imports.touch(pipeline.import_id, status=ImportStatus.VALIDATING)
            if rows == 0:
                await rt.imports.touch(pipeline.import_id, report=ImportReport(), status=ImportStatus.PUBLISHED)
                return
            form = FileForm(mapping=body.mapping)
            _, spool, _ = await pipeline.validate(
                path, filename=None, content_type=None, file_format=FileFormat.JSON, form=form, limits=limits()
            )
            try:
                await pipeline.publish(spool)
            finally:
                spool.close()
        except (FileError, ColumnMappingError) as exc:
            await pipeline.fail(file_problem(exc)[1])
        except ParsingError as exc:
            await pipeline.fail(ImportFailure(code="parsing_service", message=str(exc)))
        except Exception as exc:
            log.exception("parsing import %s failed", pipeline.import_id)
            await pipeline.fail(ImportFailure(code="internal", message=f"the import stopped: {exc!r}"))
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    @app.page("/api/v1/import/file")
    class ImportFile(View):
        @api_errors
        async def post(self, request: Request) -> Response:
            user = owner(request)
            upload = await read_upload(request, settings.import_max_bytes)
            try:
                form = parse_form(upload.fields)
                task = await open_task(user, form.task_id)
            except BaseException:
                upload.discard()
                raise
            import_id = str(uuid4())
            await rt.imports.create_import(import_id, user, task["id"], _source_guess(upload), ImportStatus.VALIDATING,
                                           filename=_safe_name(upload.filename))
            pipeline = Pipeline(rt, topics, import_id, user, task["id"])
            # Shielded: a client that goes away must not leave an import half-published.
            await asyncio.shield(run_file_import(pipeline, upload, form))
            return self.json(await current_view(import_id, user), status=202)

    @app.page("/api/v1/import/validate")
    class ValidateFile(View):
        @api_errors
        async def post(self, request: Request) -> Response:
            user = owner(request)
            upload = await read_upload(request, settings.import_max_bytes)
            try:
                form = parse_form(upload.fields)
                reasons: list[SuppressionReason] | None = None
                if form.task_id is not None:
                    task = await open_task(user, form.task_id)
                    if not task.get("skip_privacy_failed", True):
                        reasons = [SuppressionReason.OPT_OUT, SuppressionReason.NEVER_CONTACT]
                assert upload.path is not None
                report = await dry_run(upload, form, user, reasons)
            finally:
                upload.discard()
            return self.json({"valid": report.rejected == 0, "report": report.model_dump(mode="json")})

    async def dry_run(upload: Upload, form: FileForm, user: str,
                      reasons: list[SuppressionReason] | None) -> ImportReport:
        assert upload.path is not None
        suppression = SuppressionStore(rt.pool)
        try:
            audience = await asyncio.to_thread(
                AudienceFile, upload.path, filename=upload.filename, content_type=upload.content_type,
                mapping=form.mapping, limits=limits(), default_region=settings.phone_default_region,
                encoding=form.encoding, delimiter=form.delimiter, max_problems=form.max_problems,
            )
        except (FileError, ColumnMappingError) as exc:
            raise file_problem(exc)[0] from None
        try:
            while chunk := await asyncio.to_thread(audience.take, CHUNK_ROWS // 4):
                _, suppressed = await suppression.filter_suppressed(user, [t for _, t in chunk], reasons=reasons)
                audience.tally.suppress(len(suppressed))
            return audience.report()
        except FileError as exc:
            raise file_problem(exc)[0] from None
        finally:
            await asyncio.to_thread(audience.close)

    @app.page("/api/v1/import/parsing")
    class ImportParsing(View):
        @api_errors
        async def post(self, request: Request) -> Response:
            user = owner(request)
            body: ParsingImportRequest = await parse_body(request, ParsingImportRequest)
            task = await open_task(user, body.task_id)
            if not parsing_settings.url:
                raise HttpError(503, "parsing_service_not_configured",
                                "the parsing service is not configured (INVITE_PARSING_SERVICE_URL)")
            try:
                async with ParsingClient.from_settings(parsing_settings) as client:
                    parsing_task = await client.task(body.parsing_task_id)
            except ParsingTaskNotFound as exc:
                raise HttpError(404, "parsing_task_not_found", str(exc)) from None
            except ParsingError as exc:
                raise HttpError(502, "parsing_service", str(exc)) from None
            if parsing_task.status is not ParsingTaskStatus.COMPLETED:
                raise HttpError(409, "parsing_task_not_completed",
                                f"parsing task {body.parsing_task_id} is {parsing_task.status.value};"
                                " its results can be imported once it has completed",
                                {"status": parsing_task.status.value})
            import_id = str(uuid4())
            await rt.imports.create_import(import_id, user, task["id"], ImportSource.PARSING, ImportStatus.FETCHING,
                                           parsing_task_id=body.parsing_task_id)
            pipeline = Pipeline(rt, topics, import_id, user, task["id"])
            job = asyncio.ensure_future(pull_parsing(pipeline, body))
            _background.add(job)
            job.add_done_callback(_background.discard)
            return self.json(await current_view(import_id, user), status=202)

    @app.page("/api/v1/imports/{import_id}")
    class OneImport(View):
        @api_errors
        async def get(self, request: Request, import_id: str) -> Response:
            user = owner(request)
            record = await rt.imports.get_import(import_id, user)
            if record is None:
                raise HttpError(404, "not_found", f"import {import_id} not found")
            return self.json((await view_of(record)).model_dump(mode="json"))

    @app.page("/api/v1/tasks/{task_id}/imports")
    class TaskImports(View):
        @api_errors
        async def get(self, request: Request, task_id: str) -> Response:
            user = owner(request)
            if await rt.tasks.get(task_id, owner=user) is None:
                raise HttpError(404, "not_found", f"task {task_id} not found")
            records = await rt.imports.imports_of_task(task_id, user)
            applied = await rt.imports.applied([r.id for r in records])
            now = datetime.now(UTC)
            items = [import_view(r, applied[r.id], now=now, stale_after=STALE_AFTER_SECONDS).model_dump(mode="json")
                     for r in records]
            return self.json({"items": items})


def _source_guess(upload: Upload) -> ImportSource:
    """The format the reader will pick (by content, name, then type), recorded before the file is read."""
    try:
        with open(upload.path or "", "rb") as f:
            head = f.read(8)
        return _SOURCE_OF[detect_format(upload.filename, upload.content_type, head)]
    except (FileError, OSError):
        return ImportSource.CSV


def _safe_name(filename: str | None) -> str | None:
    # Only the base name, bounded: it is shown back to people and logged.
    return os.path.basename(filename)[:255] if filename else None

