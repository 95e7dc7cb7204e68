"""Request and response bodies of the REST API, its query strings and its one error format.

Request bodies are strict (``extra="forbid"``, no type coercion): a client
that sends ``"5"`` for a number or a misspelt field gets a 422 naming it
instead of a guess. Query strings arrive as text, so their models coerce.
Every model here is also the OpenAPI schema of what it describes
(``streams/web/openapi.py``), so the document cannot drift from the code.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .events import TaskLimits, TaskSchedule
from .messages import unknown_placeholders
from .outcomes import Outcome, Scope, Severity
from .targets import TargetStatus
from .tasks import Priority, TaskKind, TaskStatus, parse_priority

# --------------------------------------------------------------------------
# Settings of the HTTP edge
# --------------------------------------------------------------------------


class ApiSettings(BaseSettings):
    """Knobs of the HTTP edge (``INVITE_`` environment variables, like ``Settings``)."""

    model_config = SettingsConfigDict(env_prefix="INVITE_", extra="ignore")

    cors_allow_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated origins allowed to call the API from a browser; empty = no CORS"
    )
    api_max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    api_max_targets_body_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    api_rate_limit_per_minute: int = Field(default=6000, ge=0, description="requests per user per minute; 0 = off")

    @field_validator("cors_allow_origins", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value


# --------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------

# PostgreSQL text cannot hold NUL; refusing it here makes it a 422, not a 500.
SafeText = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
AccountId = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00/]+$")]
Chat = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00]*$")]
Template = Annotated[str, StringConstraints(min_length=1, max_length=4096, pattern=r"^[^\x00]*$")]
PriorityIn = Annotated[
    Priority | Literal["low", "normal", "high"],
    AfterValidator(parse_priority),
    Field(description='2/"high", 1/"normal" or 0/"low"; higher is picked first'),
]
TaskIdList = Annotated[list[Annotated[str, StringConstraints(max_length=64)]], Field(min_length=1, max_length=500)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LimitsIn(TaskLimits):
    """Per-task limits as a request gives them (strict: ``"5"`` is no number)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ScheduleIn(TaskSchedule):
    """A sending window as a request gives it; times must carry their offset."""

    model_config = ConfigDict(extra="forbid", strict=True)

    start_at: AwareDatetime | None = None
    end_at: AwareDatetime | None = None


def _check_template(template: str | None) -> None:
    if template is not None:
        try:
            unknown = unknown_placeholders(template)
        except ValueError as exc:  # "{" without "}" and the like
            raise ValueError(f"message_template is malformed: {exc}") from None
        if unknown:
            raise ValueError(f"message_template uses unknown placeholders: {', '.join(unknown)}")


class ApiError(BaseModel):
    code: str
    message: str
    details: Any | None = None


class ErrorBody(BaseModel):
    """Every error answer: a code to branch on, a message to read, details naming fields."""

    error: ApiError


# --------------------------------------------------------------------------
# Tasks
# --------------------------------------------------------------------------


class TaskCreateRequest(_Body):
    name: Name
    kind: TaskKind = TaskKind.INVITE
    platform: Literal["telegram"] = "telegram"
    chat: Chat | None = None
    message_template: Template | None = None
    account_ids: list[AccountId] = Field(min_length=1, max_length=1000)
    priority: PriorityIn = Priority.NORMAL
    limits: LimitsIn | None = None
    schedule: ScheduleIn | None = None
    skip_privacy_failed: bool | None = None

    @model_validator(mode="after")
    def _kind_needs(self) -> TaskCreateRequest:
        if self.kind is TaskKind.INVITE and not self.chat:
            raise ValueError("an invite task needs 'chat' (the group or channel to invite into)")
        if self.kind is TaskKind.MESSAGE and not self.message_template:
            raise ValueError("a message task needs 'message_template'")
        _check_template(self.message_template)
        return self


class TaskUpdateRequest(_Body):
    """The settings to change; fields left out keep their value, ``null`` clears an optional one."""

    name: Name | None = None
    chat: Chat | None = None
    message_template: Template | None = None
    priority: PriorityIn | None = None
    limits: LimitsIn | None = None
    schedule: ScheduleIn | None = None
    skip_privacy_failed: bool | None = None

    @model_validator(mode="after")
    def _sensible(self) -> TaskUpdateRequest:
        if not self.model_fields_set:
            raise ValueError("nothing to change: name at least one field")
        for required in ("name", "priority", "skip_privacy_failed"):
            if required in self.model_fields_set and getattr(self, required) is None:
                raise ValueError(f"{required} cannot be null")
        _check_template(self.message_template)
        return self


class TaskDuplicateRequest(_Body):
    name: Name | None = Field(default=None, description="defaults to the source's name with ' (copy)'")
    copy_targets: bool = Field(default=False, description="also copy the source's audience (as fresh targets)")


class TaskBulkRequest(_Body):
    action: Literal["delete", "pause", "resume", "cancel", "set_priority"]
    task_ids: TaskIdList
    priority: PriorityIn | None = Field(default=None, description="required by set_priority")

    @model_validator(mode="after")
    def _priority_for_set_priority(self) -> TaskBulkRequest:
        if self.action == "set_priority" and self.priority is None:
            raise ValueError("set_priority needs 'priority'")
        return self


class TaskView(BaseModel):
    id: str
    name: str
    kind: TaskKind
    platform: str
    chat: str | None
    message_template: str | None
    priority: int = Field(description="2 high, 1 normal, 0 low")
    status: TaskStatus
    status_reason: str | None
    limits: TaskLimits | None
    schedule: TaskSchedule | None
    skip_privacy_failed: bool
    account_ids: list[str]
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class TaskPage(BaseModel):
    items: list[TaskView]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last page")
    total: int = Field(description="tasks matching the filters, over all pages")


TASK_SORTS = ("created_at", "-created_at", "updated_at", "-updated_at", "name", "-name", "priority", "-priority",
              "status", "-status")


class TaskListQuery(_Query):
    status: TaskStatus | None = None
    priority: PriorityIn | None = None
    platform: Annotated[str, StringConstraints(max_length=64, pattern=r"^[^\x00]*$")] | None = None
    kind: TaskKind | None = None
    created_from: AwareDatetime | None = None
    created_to: AwareDatetime | None = None
    q: Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00]*$")] | None = Field(
        default=None, description="case-insensitive search in the name"
    )
    sort: Literal[TASK_SORTS] = "-created_at"  # type: ignore[valid-type]
    cursor: Annotated[str, StringConstraints(max_length=512)] | None = None
    limit: int = Field(default=50, ge=1, le=200)


class Accepted(BaseModel):
    """202: the command was published; the state changes asynchronously."""

    task_id: str
    status: str = Field(description="the task's status once the command is applied")
    event_id: str


class TaskUpdateAccepted(Accepted):
    task: TaskView = Field(description="the task as it reads once the change is applied")


class DuplicateAccepted(Accepted):
    source_task_id: str
    targets_copied: int


class BulkItemResult(BaseModel):
    task_id: str
    ok: bool
    status_code: int = Field(description="what the single-task command would have answered")
    status: str | None = None
    event_id: str | None = None
    error: ApiError | None = None


class BulkResult(BaseModel):
    action: str
    results: list[BulkItemResult]


# --------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------


class TargetRow(_Body):
    """One audience row; at least one of username, user_id, phone."""

    username: Annotated[str, StringConstraints(max_length=256, pattern=r"^[^\x00]*$")] | None = None
    user_id: int | Annotated[str, StringConstraints(max_length=32, pattern=r"^[^\x00]*$")] | None = None
    phone: Annotated[str, StringConstraints(max_length=64, pattern=r"^[^\x00]*$")] | None = None
    first_name: Annotated[str, StringConstraints(max_length=256, pattern=r"^[^\x00]*$")] | None = None
    last_name: Annotated[str, StringConstraints(max_length=256, pattern=r"^[^\x00]*$")] | None = None
    extra: dict[Annotated[str, StringConstraints(max_length=64, pattern=r"^[^\x00]*$")],
                Annotated[str, StringConstraints(max_length=1024, pattern=r"^[^\x00]*$")]] | None = None


class TargetsAddRequest(_Body):
    targets: list[TargetRow] = Field(min_length=1, max_length=100_000)


class TargetsBulkAddRequest(_Body):
    """Identities as people paste them: ``@name``, ``t.me/name``, ``+E.164`` phones, numeric user ids."""

    identities: list[Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00]*$")]] = Field(
        min_length=1, max_length=100_000
    )


class TargetsAccepted(BaseModel):
    task_id: str
    rows: int
    batches: int
    batch_ids: list[str]


class TargetUpdateRequest(_Body):
    """Identity fields change only while the target was never attempted."""

    username: Annotated[str, StringConstraints(max_length=256, pattern=r"^[^\x00]*$")] | None = None
    user_id: int | None = None
    phone: Annotated[str, StringConstraints(max_length=64, pattern=r"^[^\x00]*$")] | None = None
    first_name: Annotated[str, StringConstraints(max_length=256, pattern=r"^[^\x00]*$")] | None = None
    last_name: Annotated[str, StringConstraints(max_length=256, pattern=r"^[^\x00]*$")] | None = None
    extra: dict[Annotated[str, StringConstraints(max_length=64, pattern=r"^[^\x00]*$")],
                Annotated[str, StringConstraints(max_length=1024, pattern=r"^[^\x00]*$")]] | None = None

    @model_validator(mode="after")
    def _something(self) -> TargetUpdateRequest:
        if not self.model_fields_set:
            raise ValueError("nothing to change: name at least one field")
        return self


IDENTITY_FIELDS = frozenset({"username", "user_id", "phone"})


class TargetView(BaseModel):
    id: int
    task_id: str
    username: str | None
    user_id: int | None
    phone: str | None = Field(description="masked: phone numbers never leave the service in full")
    first_name: str | None
    last_name: str | None
    extra: dict[str, str] | None
    status: TargetStatus
    account_id: str | None
    attempts: int
    last_outcome: str | None
    reason: str | None
    claimed_at: datetime | None
    finished_at: datetime | None
    created_at: datetime


class TargetPage(BaseModel):
    items: list[TargetView]
    next_cursor: str | None
    total: int


class TargetListQuery(_Query):
    status: TargetStatus | None = None
    account_id: Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00]*$")] | None = None
    q: Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00]*$")] | None = Field(
        default=None, description="username or name contains (case-insensitive), or an exact user id"
    )
    cursor: Annotated[str, StringConstraints(max_length=512)] | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class TargetBulkActionRequest(_Body):
    action: Literal["retry_failed", "skip", "delete"]
    target_ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] | None = Field(
        default=None, min_length=1, max_length=10_000,
        description="the targets to act on; left out = every target of the task the action applies to",
    )


class TargetItemResult(BaseModel):
    target_id: int
    ok: bool
    status: TargetStatus | None = None
    error: ApiError | None = None


class TargetBulkActionResult(BaseModel):
    action: str
    affected: int
    results: list[TargetItemResult] | None = Field(default=None, description="per target, when ids were given")


class TargetStatsView(BaseModel):
    task_id: str
    total: int
    by_status: dict[str, int]
    by_account: dict[str, dict[str, int]] = Field(description="account -> status -> count (unassigned: '')")
    by_reason: dict[str, int] = Field(description="why failed targets failed")


# --------------------------------------------------------------------------
# Execution and statistics
# --------------------------------------------------------------------------


class ProgressView(BaseModel):
    total: int
    done: int
    open: int
    percent: float
    by_status: dict[str, int]


class TaskStatsView(BaseModel):
    task_id: str
    status: str
    attempts: int
    outcomes: dict[str, int]
    progress: ProgressView
    last_result_at: str | None = None


class WindowLeft(BaseModel):
    limit: int
    seconds: float
    remaining: int


class AccountLimitView(BaseModel):
    """An account's live limit state: what its windows have left, and why it may wait."""

    account_id: str
    state: str = Field(description="active, cooldown, restricted or disabled")
    until: datetime | None = None
    reason: str | None = None
    remaining: dict[str, list[WindowLeft]] = Field(description="action kind -> windows")
    next_action_at: datetime | None = Field(description="earliest time it may act again (null: never)")


class TaskAccountView(AccountLimitView):
    task_state: str = Field(description="the account's state in this task: active, restricted, disabled")


class TaskStatusView(BaseModel):
    task_id: str
    status: TaskStatus
    status_reason: str | None
    progress: ProgressView
    rate_per_hour: float = Field(description="attempts finished in the last hour")
    eta_seconds: float | None = Field(description="from the accounts' remaining capacity; null when none can act")
    eta_at: datetime | None
    accounts: list[TaskAccountView]


class TestInviteRequest(_Body):
    account_id: AccountId
    target: TargetRow


class TestInviteResult(BaseModel):
    task_id: str
    account_id: str
    action: TaskKind
    outcome: Outcome
    scope: Scope
    severity: Severity
    retryable: bool
    retry_after: float | None
    raw_error: str | None


class AccountReport(BaseModel):
    account_id: str
    attempts: int
    outcomes: dict[str, int]


class HourReport(BaseModel):
    hour: datetime
    attempts: int
    outcomes: dict[str, int]


class TaskReport(BaseModel):
    task_id: str
    name: str
    status: TaskStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None = Field(description="started to finished (or to now while running)")
    progress: ProgressView
    attempts: int
    outcomes: dict[str, int] = Field(description="attempts by outcome")
    by_account: list[AccountReport]
    by_reason: dict[str, int] = Field(description="failed targets by reason")
    timeline: list[HourReport] = Field(description="attempts per hour (UTC)")


class LogEntry(BaseModel):
    id: int
    target_id: int
    account_id: str
    action: str
    attempt: int
    outcome: str
    scope: str
    raw_error: str | None
    retry_after: float | None
    claimed_at: datetime
    finished_at: datetime


class LogPage(BaseModel):
    items: list[LogEntry]
    next_cursor: str | None


class LogQuery(_Query):
    outcome: Outcome | None = None
    account_id: Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00]*$")] | None = None
    cursor: Annotated[str, StringConstraints(max_length=512)] | None = None
    limit: int = Field(default=100, ge=1, le=1000)


# --------------------------------------------------------------------------
# Accounts and health
# --------------------------------------------------------------------------


class AccountsChangeRequest(_Body):
    account_ids: list[AccountId] = Field(min_length=1, max_length=1000)


class AccountView(BaseModel):
    id: str
    platform: str
    status: str = Field(description="as the Integration Service reports it")
    until: datetime | None = None
    reason: str | None = None
    limits: AccountLimitView


class AccountList(BaseModel):
    items: list[AccountView]


class AccountListQuery(_Query):
    platform: Literal["telegram"] = "telegram"


class Check(BaseModel):
    status: Literal["ok", "down", "skipped"]
    latency_ms: float | None = None
    detail: str | None = None


class HealthView(BaseModel):
    status: Literal["ok", "degraded"]
    checks: dict[str, Check]
    consumer_lag: int | None = Field(description="messages this worker's consumers are behind (null: unknown)")


class Liveness(BaseModel):
    status: Literal["ok"]


# --------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------


def encode_cursor(values: list[Any]) -> str:
    """An opaque page cursor holding the keyset position."""
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str, length: int) -> list[Any]:
    """The values of a cursor made by :func:`encode_cursor`; ValueError when it is not one."""
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise ValueError("cursor is not one this API handed out") from None
    if not isinstance(values, list) or len(values) != length:
        raise ValueError("cursor is not one this API handed out")
    return values


def mask_phone(phone: str | None) -> str | None:
    """``+79161234567`` -> ``+7916*****67``: enough to recognize, not enough to dial."""
    if phone is None:
        return None
    if len(phone) <= 6:
        return "*" * len(phone)
    return phone[:5] + "*" * (len(phone) - 7) + phone[-2:]


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> str:
    """A CSV cell a spreadsheet shows as text, never runs as a formula (OWASP "CSV injection")."""
    text = "" if value is None else value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def identity_row(identity: str) -> dict[str, Any]:
    """A pasted identity as a target row: ``+...`` is a phone, digits a user id, the rest a username."""
    value = identity.strip()
    if value.startswith("+"):
        return {"phone": value}
    if value.isascii() and value.isdigit():
        return {"user_id": value}
    return {"username": value}
