"""Client for the Parsing Service's results API (HTTP), used by ``POST /api/v1/import/parsing``.

The contract is ``adapters/parsing-service.openapi.yaml``; the pydantic
models below are the same contract in code. A parsing task's results are
read page by page with an opaque cursor, only once the task has completed
(a running task's results would still grow under our feet).

Connect errors, timeouts, 5xx and 429 are retried with exponential backoff
and full jitter (a ``Retry-After`` of a 429/503 is honoured, capped); every
call here is a GET, so a retry can never do anything twice. Other 4xx are
our mistake or a missing task and raise at once.

The parsing service also publishes ``targets.imported`` to the targets topic
on its own (docs/asyncapi.yaml); this client is the pull path.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from enum import StrEnum
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "ParsedPage",
    "ParsingClient",
    "ParsingError",
    "ParsingHTTPError",
    "ParsingProtocolError",
    "ParsingServiceSettings",
    "ParsingTask",
    "ParsingTaskNotFound",
    "ParsingTaskStatus",
    "ParsingUnavailable",
]

log = logging.getLogger(__name__)
_M = TypeVar("_M", bound=BaseModel)

MAX_PAGE_SIZE = 5_000
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class ParsingServiceSettings(BaseSettings):
    """Where the parsing service is: ``INVITE_PARSING_SERVICE_URL`` and friends.

    Kept apart from ``models.settings.Settings`` until those grow the same
    fields; an empty URL means the pull path is off (file and API imports
    still work, DESIGN.md "Runtime parts").
    """

    model_config = SettingsConfigDict(env_prefix="INVITE_PARSING_SERVICE_", extra="ignore")

    url: str | None = None
    token: SecretStr | None = None
    timeout_seconds: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=5, ge=1)
    page_size: int = Field(default=1_000, ge=1, le=MAX_PAGE_SIZE)


# --- wire models (the contract) ---------------------------------------------------------------------

_LENIENT = ConfigDict(extra="ignore")  # answers may grow fields


class ParsingTaskStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ParsingTask(BaseModel):
    """``GET /v1/parsing-tasks/{id}``."""

    model_config = _LENIENT

    id: str
    status: ParsingTaskStatus
    results_count: int | None = Field(default=None, ge=0)
    error: str | None = None


class ParsedPage(BaseModel):
    """``GET /v1/parsing-tasks/{id}/results``: one page of parsed users and the cursor of the next."""

    model_config = _LENIENT

    # Rows stay plain objects: they are validated row by row like any audience
    # file (one bad row is a counted problem, not a failed page).
    items: list[dict[str, Any]] = Field(max_length=MAX_PAGE_SIZE)
    next_cursor: str | None = Field(default=None, min_length=1, max_length=2048)


# --- errors ------------------------------------------------------------------------------------------


class ParsingError(Exception):
    """Anything that stops reading a parsing task's results; the message is safe to show."""


class ParsingUnavailable(ParsingError):
    """The service did not answer usefully after every retry."""


class ParsingHTTPError(ParsingError):
    """A 4xx other than 404 and 429: a mistake of ours (or of our credentials)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


class ParsingTaskNotFound(ParsingError):
    """The parsing service does not know the task."""


class ParsingProtocolError(ParsingError):
    """An answer that does not follow the contract."""


# --- the client --------------------------------------------------------------------------------------


class ParsingClient:
    """The pull path to the parsing service: task status, then results page by page."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        max_attempts: int = 5,
        backoff_base: float = 0.2,
        backoff_max: float = 5.0,
        max_retry_after: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._max_retry_after = max_retry_after

    @classmethod
    def from_settings(cls, settings: ParsingServiceSettings) -> ParsingClient:
        if not settings.url:
            raise ParsingError("the parsing service is not configured (INVITE_PARSING_SERVICE_URL)")
        return cls(
            settings.url,
            token=settings.token.get_secret_value() if settings.token else None,
            timeout=settings.timeout_seconds,
            max_attempts=settings.max_attempts,
        )

    async def task(self, parsing_task_id: str) -> ParsingTask:
        body = await self._get(f"/v1/parsing-tasks/{quote(parsing_task_id, safe='')}", {}, parsing_task_id)
        return _parse(ParsingTask, body, "parsing task")

    async def pages(
        self, parsing_task_id: str, *, page_size: int = 1_000, cursor: str | None = None
    ) -> AsyncIterator[ParsedPage]:
        """Every page of a task's results, following ``next_cursor`` until there is none."""
        path = f"/v1/parsing-tasks/{quote(parsing_task_id, safe='')}/results"
        seen: set[str] = set()
        while True:
            params: dict[str, Any] = {"limit": min(page_size, MAX_PAGE_SIZE)}
            if cursor is not None:
                params["cursor"] = cursor
            page = _parse(ParsedPage, await self._get(path, params, parsing_task_id), "results page")
            yield page
            if page.next_cursor is None:
                return
            if page.next_cursor in seen:
                raise ParsingProtocolError("the parsing service returned a cursor it had already returned (a loop)")
            seen.add(page.next_cursor)
            cursor = page.next_cursor

    async def _get(self, path: str, params: dict[str, Any], parsing_task_id: str) -> Any:
        for attempt in range(1, self._max_attempts + 1):
            retry_after: float | None = None
            try:
                response = await self._http.get(path, params=params)
            except httpx.TransportError as exc:  # connect errors, timeouts, broken connections
                problem = f"{type(exc).__name__}"
            else:
                if response.status_code == 200:
                    try:
                        return response.json()
                    except ValueError:
                        raise ParsingProtocolError("the parsing service answered with invalid JSON") from None
                if response.status_code == 404:
                    raise ParsingTaskNotFound(f"the parsing service has no task {parsing_task_id!r}")
                if response.status_code not in _RETRY_STATUSES:
                    raise ParsingHTTPError(
                        response.status_code,
                        f"the parsing service refused the request: HTTP {response.status_code}"
                        f" {_error_text(response)}".rstrip(),
                    )
                problem = f"HTTP {response.status_code}"
                retry_after = _retry_after(response)
            if attempt == self._max_attempts:
                raise ParsingUnavailable(
                    f"the parsing service is unavailable ({problem}) after {self._max_attempts} attempts"
                )
            # Full jitter: many workers retrying together must not come back together.
            delay = random.uniform(0, min(self._backoff_max, self._backoff_base * 2 ** (attempt - 1)))
            if retry_after is not None:
                delay = max(delay, min(retry_after, self._max_retry_after))
            log.warning("parsing service: %s on %s, retry %d in %.2fs", problem, path, attempt, delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def _parse(model: type[_M], body: Any, what: str) -> _M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        where = ".".join(map(str, first["loc"])) or "body"
        raise ParsingProtocolError(f"the parsing service sent a {what} that breaks the contract: {where}:"
                                   f" {first['msg']}") from None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _error_text(response: httpx.Response) -> str:
    """A short, safe description of an error answer (the contract's error body, else nothing)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return f"({error['message'][:200]})"
    return ""
