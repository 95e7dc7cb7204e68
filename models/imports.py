"""Turning raw audience rows into targets: column mapping, validation, de-duplication, the report.

Pure rules only: the file readers (``adapters/files``) hand rows in as
``(row_number, {column: value})`` and the suppression store is asked by the
caller; everything between is here, so one pipeline serves a real import and
a dry run alike::

    mapper = ColumnMapper(explicit)
    mapping = mapper.resolve(reader.columns)      # names unknown explicit columns
    tally = ImportTally()
    for row, target in prepare_targets(reader, mapper, tally, dedup=Deduplicator()):
        ...                                        # batch, filter suppressed, publish
    report = tally.report(mapping)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, computed_field

from .events import TargetsImported, TargetsImportedData
from .targets import DEFAULT_PHONE_REGION, TargetIn, validate_target

DEFAULT_MAX_PROBLEMS = 20


class TargetField(StrEnum):
    """The columns a target is made of; anything else is kept in ``extra``."""

    USERNAME = "username"
    USER_ID = "user_id"
    PHONE = "phone"
    FIRST_NAME = "first_name"
    LAST_NAME = "last_name"


# Header spellings, compared after _header_key() (case-folded, ё -> е,
# punctuation and underscores as single spaces).
_SYNONYMS: dict[TargetField, frozenset[str]] = {
    TargetField.USERNAME: frozenset({
        "username", "user name", "login", "nick", "nickname", "handle", "telegram", "tg", "screen name",
        "telegram link", "tg link", "profile link",
        "ник", "никнейм", "юзернейм", "юзер нейм", "логин", "имя пользователя", "телеграм", "телеграмм", "тг",
        "ссылка на телеграм", "ссылка на профиль",
    }),
    TargetField.USER_ID: frozenset({
        "id", "user id", "userid", "uid", "peer id", "account id",
        "айди", "ид", "id пользователя", "ид пользователя", "идентификатор", "идентификатор пользователя",
    }),
    TargetField.PHONE: frozenset({
        "phone", "phone number", "phonenumber", "tel", "telephone", "mobile", "mobile phone", "cell",
        "cell phone", "msisdn",
        "телефон", "номер", "номер телефона", "тел", "моб", "мобильный", "мобильный телефон", "сотовый",
    }),
    TargetField.FIRST_NAME: frozenset({
        "first name", "firstname", "first", "given name", "name", "имя",
    }),
    TargetField.LAST_NAME: frozenset({
        "last name", "lastname", "last", "surname", "family name", "фамилия",
    }),
}
_BY_HEADER: dict[str, TargetField] = {name: f for f, names in _SYNONYMS.items() for name in names}
# "Telegram ID", "ник в телеграм", "tg username": the messenger's name qualifies, it does not decide.
_QUALIFIERS = frozenset({"telegram", "tg", "телеграм", "телеграмм", "тг", "в", "in"})
_PUNCTUATION = re.compile(r"[\s_\-.,:;/\\#@№()\[\]{}'\"*]+")
_MAPPER_CACHE_SIZE = 256
_INT_HASH_MODULUS = 2**61 - 1
_TEXT_FIELDS = frozenset({TargetField.USERNAME, TargetField.FIRST_NAME, TargetField.LAST_NAME})


def _header_key(name: str) -> str:
    return _PUNCTUATION.sub(" ", name.casefold().replace("ё", "е")).strip()


def detect_field(header: str) -> TargetField | None:
    """The target field a column header names, in English or Russian; None for anything else."""
    key = _header_key(header)
    if key in _BY_HEADER:
        return _BY_HEADER[key]
    words = [w for w in key.split() if w not in _QUALIFIERS]
    return _BY_HEADER.get(" ".join(words)) if words else None


class ColumnMappingError(ValueError):
    """An explicit mapping that cannot apply: it names fields or columns that do not exist."""

    def __init__(self, *, unknown_fields: Sequence[str] = (), unknown_columns: Sequence[str] = (),
                 available: Sequence[str] = ()) -> None:
        self.unknown_fields = list(unknown_fields)
        self.unknown_columns = list(unknown_columns)
        self.available = list(available)
        parts = []
        if self.unknown_fields:
            parts.append(
                f"unknown target fields {self.unknown_fields} (allowed: {[f.value for f in TargetField]})"
            )
        if self.unknown_columns:
            parts.append(f"columns not in the file: {self.unknown_columns} (the file has: {self.available})")
        super().__init__("; ".join(parts))


class ColumnMapping(BaseModel):
    """Which source column feeds which target field; the rest go to ``extra``."""

    model_config = ConfigDict(frozen=True)

    fields: dict[TargetField, str]
    extra: list[str]


class ColumnMapper:
    """Applies an explicit mapping (``{"phone": "Тел."}``) over automatic detection.

    An explicit ``None`` turns a field's detection off (``{"first_name": None}``).
    Rows with differing keys (JSON items) are resolved per key set, cached.
    """

    def __init__(self, explicit: Mapping[str, str | None] | None = None) -> None:
        explicit = dict(explicit or {})
        unknown = sorted(k for k in explicit if k not in {f.value for f in TargetField})
        if unknown:
            raise ColumnMappingError(unknown_fields=unknown)
        self._explicit: dict[TargetField, str | None] = {TargetField(k): v for k, v in explicit.items()}
        self._cache: dict[tuple[str, ...], ColumnMapping] = {}
        # Per key set: (field name, column, as text?) pairs and the extra columns;
        # plain strings, because StrEnum member access is slow in a loop of a million rows.
        self._plans: dict[tuple[str, ...], tuple[list[tuple[str, str, bool]], list[str]]] = {}

    def resolve(self, columns: Sequence[str]) -> ColumnMapping:
        """The mapping for a file's header; raises ColumnMappingError naming explicit columns it lacks."""
        return self._resolve(tuple(columns), strict=True)

    def _resolve(self, columns: tuple[str, ...], *, strict: bool) -> ColumnMapping:
        cached = self._cache.get(columns)
        if cached is not None:
            return cached
        by_key: dict[str, str] = {}
        for column in columns:
            by_key.setdefault(_header_key(column), column)
        fields: dict[TargetField, str] = {}
        missing: list[str] = []
        for field, wanted in self._explicit.items():
            if wanted is None:
                continue
            # Exact name first; "Phone " or "PHONE" still find "phone".
            found = wanted if wanted in columns else by_key.get(_header_key(wanted))
            if found is None:
                missing.append(wanted)
            else:
                fields[field] = found
        if missing and strict:
            raise ColumnMappingError(unknown_columns=missing, available=columns)
        taken = set(fields.values())
        for column in columns:
            detected = detect_field(column)
            # First column wins: a file with "username" and "login" keeps the second as extra.
            if detected is not None and detected not in fields and detected not in self._explicit and column not in taken:
                fields[detected] = column
                taken.add(column)
        mapping = ColumnMapping(fields=fields, extra=[c for c in columns if c not in taken])
        if len(self._cache) >= _MAPPER_CACHE_SIZE:
            self._cache.clear()
            self._plans.clear()
        self._cache[columns] = mapping
        return mapping

    def _plan(self, columns: tuple[str, ...]) -> tuple[list[tuple[str, str, bool]], list[str]]:
        plan = self._plans.get(columns)
        if plan is None:
            mapping = self._resolve(columns, strict=False)
            fields = [(f.value, c, f in _TEXT_FIELDS) for f, c in mapping.fields.items()]
            plan = self._plans[columns] = (fields, mapping.extra)
        return plan

    def to_target_input(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """One source row as TargetIn input: mapped fields plus non-empty others in ``extra``."""
        fields, extra_columns = self._plan(tuple(row))
        out: dict[str, Any] = {}
        for name, column, textual in fields:
            value = row.get(column)
            if value is None:
                continue
            out[name] = as_text(value) if textual else value
        if extra_columns:
            extra = {}
            for column in extra_columns:
                value = row.get(column)
                if value is not None:
                    text = as_text(value)
                    if text.strip():
                        extra[column] = text
            if extra:
                out["extra"] = extra
        return out

    def column_of(self, row: Mapping[str, Any], field: str) -> str | None:
        """The source column a target field was read from in this row."""
        try:
            return self._resolve(tuple(row), strict=False).fields.get(TargetField(field))
        except ValueError:
            return None


def as_text(value: Any) -> str:
    """A cell value as the text a person would read in it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # spreadsheets store 12345 as 12345.0
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


class Problem(BaseModel):
    """Why one row was not imported."""

    row: int
    field: str | None = None
    column: str | None = None
    reason: str


class ImportReport(BaseModel):
    """What a file (or any row source) came to before it reaches a task.

    ``accepted`` targets go on to the task, where the importer may still find
    some of them already present (counted then in the task's batch reports).
    """

    accepted: int = 0
    rejected: int = 0
    duplicate: int = 0
    suppressed: int = 0
    problems: list[Problem] = []
    mapping: ColumnMapping | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rows(self) -> int:
        return self.accepted + self.rejected + self.duplicate + self.suppressed


class ImportTally:
    """Counts as rows stream past, keeping only the first ``max_problems`` problems."""

    def __init__(self, max_problems: int = DEFAULT_MAX_PROBLEMS) -> None:
        self.max_problems = max_problems
        self.accepted = 0
        self.rejected = 0
        self.duplicate = 0
        self.suppressed = 0
        self.problems: list[Problem] = []

    def reject(self, problem: Problem) -> None:
        self.rejected += 1
        if len(self.problems) < self.max_problems:
            self.problems.append(problem)

    def reject_accepted(self, problem: Problem) -> None:
        """Move one accepted target to rejected (found unfit after it was accepted, e.g. too large)."""
        if self.accepted < 1:
            raise ValueError("no accepted target to reject")
        self.accepted -= 1
        self.reject(problem)

    def suppress(self, count: int) -> None:
        """Move ``count`` accepted targets to suppressed (after the suppression list was asked)."""
        if not 0 <= count <= self.accepted:
            raise ValueError(f"cannot suppress {count} of {self.accepted} accepted targets")
        self.accepted -= count
        self.suppressed += count

    def report(self, mapping: ColumnMapping | None = None) -> ImportReport:
        return ImportReport(
            accepted=self.accepted, rejected=self.rejected, duplicate=self.duplicate,
            suppressed=self.suppressed, problems=list(self.problems), mapping=mapping,
        )


class Deduplicator:
    """Remembers every identity seen, so a target repeated under any of them is dropped.

    Identities are kept as 64-bit hashes, not strings: a million targets with
    two identities each cost about 130 MB instead of several hundred, and a
    false match needs ~4e9 rows to get likely. The hash is Python's own keyed
    SipHash: a Deduplicator lives in one process, so its per-process key is
    fine, and it is several times faster than hashlib.
    """

    def __init__(self) -> None:
        self._seen: set[int] = set()

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, target: TargetIn) -> bool:
        """True when any identity of ``target`` came before; records all of them either way."""
        # Kinds cannot meet: a user id hashes as an int, usernames start with a
        # letter and phones with "+"; only a 64-bit hash collision could match them.
        digests = []
        if target.user_id is not None:
            # Python hashes ints modulo 2**61 - 1: beyond it, two ids would always collide.
            uid = target.user_id
            digests.append(hash(uid) if uid < _INT_HASH_MODULUS else hash(str(uid)))
        if target.username is not None:
            digests.append(hash(target.username))
        if target.phone is not None:
            digests.append(hash(target.phone))
        duplicate = any(d in self._seen for d in digests)
        # A repeat may bring a new identity of the same person (row 2 adds a
        # phone to row 1's username); remembering it catches row 3 by phone.
        self._seen.update(digests)
        return duplicate


def _clean_message(message: str) -> str:
    return message.removeprefix("Value error, ")


def problem_from(exc: ValidationError, row: int, source: Mapping[str, Any] | None = None,
                 mapper: ColumnMapper | None = None) -> Problem:
    """A Problem naming the field (and source column) of a row's validation error."""
    errors = exc.errors(include_input=False, include_url=False)
    parts = []
    for error in errors:
        loc = ".".join(map(str, error["loc"]))
        parts.append(f"{loc}: {_clean_message(error['msg'])}" if loc else _clean_message(error["msg"]))
    field = str(errors[0]["loc"][0]) if errors and errors[0]["loc"] else None
    column = mapper.column_of(source, field) if (mapper and source is not None and field) else None
    return Problem(row=row, field=field, column=column, reason="; ".join(parts))


def prepare_targets(
    rows: Iterable[tuple[int, Mapping[str, Any]]],
    mapper: ColumnMapper,
    tally: ImportTally,
    *,
    default_region: str | None = DEFAULT_PHONE_REGION,
    dedup: Deduplicator | None = None,
) -> Iterator[tuple[int, TargetIn]]:
    """Map, normalize and de-duplicate rows lazily, counting what is dropped in ``tally``.

    Yielded targets are counted as accepted; the caller moves the ones its
    suppression list holds with ``tally.suppress(n)``.
    """
    context = {"default_region": default_region}
    for number, raw in rows:
        try:
            target = validate_target(mapper.to_target_input(raw), context)
        except ValidationError as exc:
            tally.reject(problem_from(exc, number, raw, mapper))
            continue
        if dedup is not None and dedup.seen(target):
            tally.duplicate += 1
            continue
        tally.accepted += 1
        yield number, target


def build_report(
    rows: Iterable[tuple[int, Mapping[str, Any]]],
    columns: Sequence[str],
    explicit: Mapping[str, str | None] | None = None,
    *,
    default_region: str | None = DEFAULT_PHONE_REGION,
    is_suppressed: Callable[[TargetIn], bool] | None = None,
    max_problems: int = DEFAULT_MAX_PROBLEMS,
) -> ImportReport:
    """The dry run: what importing ``rows`` would come to, without importing anything."""
    mapper = ColumnMapper(explicit)
    mapping = mapper.resolve(columns)
    tally = ImportTally(max_problems)
    for _, target in prepare_targets(rows, mapper, tally, default_region=default_region, dedup=Deduplicator()):
        if is_suppressed is not None and is_suppressed(target):
            tally.suppress(1)
    return tally.report(mapping)


def validate_rows(
    rows: list[dict[str, Any]], *, default_region: str | None = DEFAULT_PHONE_REGION
) -> tuple[list[TargetIn], list[dict[str, Any]]]:
    """Split rows already shaped like TargetIn into targets and problems (row number + reason).

    Duplicates are left in: the importer counts them against the task in PostgreSQL.
    """
    accepted: list[TargetIn] = []
    problems: list[dict[str, Any]] = []
    context = {"default_region": default_region}
    for number, row in enumerate(rows, start=1):
        try:
            accepted.append(validate_target(row, context))
        except ValidationError as exc:
            problem = problem_from(exc, number)
            problems.append({"row": number, "field": problem.field, "reason": problem.reason})
    return accepted, problems


# --- Imports as a whole: batches on the wire, status, progress and the final report ---------------

# A targets.imported event must fit in one Kafka message: faust's producer
# refuses requests over 1 000 000 bytes and Apache Kafka's default
# message.max.bytes is 1 048 588. Rows are cut into batches by count and by
# their encoded size, with room left for the envelope.
MAX_BATCH_ROWS = 5_000
MAX_BATCH_BYTES = 768 * 1024
_BATCH_SEPARATOR = ":"


class ImportSource(StrEnum):
    """Where an import's rows came from."""

    CSV = "csv"
    XLSX = "xlsx"
    JSON = "json"
    PARSING = "parsing"


class ImportStatus(StrEnum):
    """An import's state; ``completed`` and ``interrupted`` are derived when it is read."""

    FETCHING = "fetching"        # pulling pages from the parsing service
    VALIDATING = "validating"    # the full pass over the rows, before anything is published
    PUBLISHING = "publishing"    # batches going out to the targets topic
    PUBLISHED = "published"      # every batch is out; the importer is applying them
    COMPLETED = "completed"      # every published batch is applied
    FAILED = "failed"            # stopped with an error; see ``error``
    INTERRUPTED = "interrupted"  # the worker running it stopped before it ended


ACTIVE_IMPORT_STATUSES = frozenset({ImportStatus.FETCHING, ImportStatus.VALIDATING, ImportStatus.PUBLISHING})


def batch_id_for(import_id: str, sequence: int) -> str:
    """The id of an import's ``sequence``-th batch: re-publishing it is a no-op for the importer."""
    return f"{import_id}{_BATCH_SEPARATOR}{sequence}"


def import_id_of(batch_id: str) -> str | None:
    """The import a batch id names (``<uuid>:<n>``); None for batches of the API and outside producers."""
    head, sep, tail = batch_id.rpartition(_BATCH_SEPARATOR)
    if not sep or not tail.isdigit() or len(head) != 36 or head.count("-") != 4:
        return None
    return head


_EMPTY_TARGETS = b'"targets":[]}}'


def targets_imported_value(owner: str, task_id: str, batch_id: str, rows: Sequence[bytes],
                           *, source: str = "invite-service") -> bytes:
    """The targets.imported event of one batch, from rows already encoded as JSON objects.

    The same bytes ``dump_event`` would produce for these rows, without
    decoding and re-encoding a few thousand objects per batch: the envelope is
    dumped with no rows and the encoded rows are put in its (last) field.
    """
    event = TargetsImported(
        user_id=owner, source=source,
        data=TargetsImportedData.model_construct(task_id=task_id, batch_id=batch_id, targets=[]),
    )
    head = event.model_dump_json().encode()
    # JSON escapes every quote inside a string, so the empty array can only be the field itself.
    if not head.endswith(_EMPTY_TARGETS):
        raise AssertionError("the targets.imported envelope no longer ends with its targets")
    return head[: -len(_EMPTY_TARGETS)] + b'"targets":[' + b",".join(rows) + b"]}}"


def row_too_large(row: int, size: int, limit: int = MAX_BATCH_BYTES) -> Problem:
    """The problem of a row whose normalized form alone would not fit in a batch."""
    return Problem(row=row, reason=f"the row is {size} bytes once normalized; at most {limit} fit in one batch"
                                   " (very long extra cells?)")


class ImportFailure(BaseModel):
    """Why an import stopped: a code a client can branch on, a message a person can read."""

    code: str
    message: str
    row: int | None = None


class ImportProgress(BaseModel):
    """How far an import got: rows read, rows handed to the importer, rows it applied."""

    rows_read: int = 0
    rows_published: int = 0
    rows_applied: int = 0
    batches_published: int = 0
    batches_applied: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def percent(self) -> float:
        """Share of published rows the importer applied (0 until publishing starts)."""
        if self.rows_published == 0:
            return 0.0
        return round(100.0 * min(self.rows_applied, self.rows_published) / self.rows_published, 2)


class ImportResult(BaseModel):
    """What the rows came to in the task, source and importer counts together.

    ``accepted`` are new pending targets; ``duplicate`` were repeated in the
    source or already in the task; ``invalid`` failed validation (in the
    source's pass or the importer's); ``suppressed`` are on the owner's
    suppression list and were stored as skipped with reason ``suppressed``.
    """

    accepted: int = 0
    duplicate: int = 0
    invalid: int = 0
    suppressed: int = 0


class AppliedBatches(BaseModel):
    """Sums over the import_batches rows of one import."""

    batches: int = 0
    accepted: int = 0
    duplicate: int = 0
    invalid: int = 0
    suppressed: int = 0

    @property
    def rows(self) -> int:
        return self.accepted + self.duplicate + self.invalid + self.suppressed


class ImportRecord(BaseModel):
    """An import as stored (table ``imports``)."""

    id: str
    owner: str
    task_id: str
    source: ImportSource
    status: ImportStatus
    filename: str | None = None
    parsing_task_id: str | None = None
    rows_read: int = 0
    rows_published: int = 0
    batches: int = 0
    report: ImportReport | None = None
    error: ImportFailure | None = None
    created_at: datetime
    updated_at: datetime


class ImportView(BaseModel):
    """An import as the API shows it: state, progress, the source report and the result so far."""

    import_id: str
    task_id: str
    source: ImportSource
    status: ImportStatus
    filename: str | None = None
    parsing_task_id: str | None = None
    report: ImportReport | None = None
    progress: ImportProgress
    result: ImportResult
    error: ImportFailure | None = None
    created_at: datetime
    updated_at: datetime


def import_view(record: ImportRecord, applied: AppliedBatches, *, now: datetime, stale_after: float) -> ImportView:
    """The API view of an import: its stored state, completed or interrupted as the batches and the clock say.

    An active import whose record was not touched for ``stale_after`` seconds
    lost its worker (each step of a running import touches it): it shows as
    interrupted instead of running forever.
    """
    status = record.status
    error = record.error
    if status is ImportStatus.PUBLISHED and applied.batches >= record.batches:
        status = ImportStatus.COMPLETED
    elif status in ACTIVE_IMPORT_STATUSES and (now - record.updated_at).total_seconds() > stale_after:
        status = ImportStatus.INTERRUPTED
        error = error or ImportFailure(
            code="interrupted",
            message=f"the import stopped while {record.status.value}: the worker running it went away."
            " Run it again: targets already imported stay, repeats count as duplicates",
        )
    report = record.report
    result = ImportResult(
        accepted=applied.accepted,
        duplicate=applied.duplicate + (report.duplicate if report else 0),
        invalid=applied.invalid + (report.rejected if report else 0),
        suppressed=applied.suppressed + (report.suppressed if report else 0),
    )
    progress = ImportProgress(
        rows_read=record.rows_read, rows_published=record.rows_published, rows_applied=applied.rows,
        batches_published=record.batches, batches_applied=applied.batches,
    )
    return ImportView(
        import_id=record.id, task_id=record.task_id, source=record.source, status=status,
        filename=record.filename, parsing_task_id=record.parsing_task_id, report=report, progress=progress,
        result=result, error=error, created_at=record.created_at, updated_at=record.updated_at,
    )
