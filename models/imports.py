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

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, computed_field

from .targets import DEFAULT_PHONE_REGION, TargetIn

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
        self._cache[columns] = mapping
        return mapping

    def to_target_input(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """One source row as TargetIn input: mapped fields plus non-empty others in ``extra``."""
        mapping = self._resolve(tuple(row), strict=False)
        out: dict[str, Any] = {}
        for field, column in mapping.fields.items():
            value = row.get(column)
            if value is None:
                continue
            if field in (TargetField.USERNAME, TargetField.FIRST_NAME, TargetField.LAST_NAME):
                value = as_text(value)
            out[field.value] = value
        extra = {c: as_text(row[c]) for c in mapping.extra if row.get(c) is not None}
        extra = {k: v for k, v in extra.items() if v.strip()}
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

    Identities are kept as 64-bit digests, not strings: a million targets cost
    tens of MB instead of hundreds, and a false match needs ~4e9 rows to get likely.
    """

    def __init__(self) -> None:
        self._seen: set[int] = set()

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, target: TargetIn) -> bool:
        """True when any identity of ``target`` came before; records all of them either way."""
        digests = [
            int.from_bytes(hashlib.blake2b(f"{kind}:{value}".encode(), digest_size=8).digest(), "big")
            for kind, value in target.identities
        ]
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
            target = TargetIn.model_validate(mapper.to_target_input(raw), context=context)
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
            accepted.append(TargetIn.model_validate(row, context=context))
        except ValidationError as exc:
            problem = problem_from(exc, number)
            problems.append({"row": number, "field": problem.field, "reason": problem.reason})
    return accepted, problems
