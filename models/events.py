"""Every event on our topics: one envelope, one typed payload per event type.

Wire format (DESIGN.md, "Topics and events")::

    {"type": "targets.imported", "version": 1, "id": "<uuid>",
     "occurred_at": "...", "source": "...", "user_id": "...", "data": {...}}

``parse_event`` is the only way bytes from a topic become an event; anything it
rejects goes to the dead-letter topic with the error it raised.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeAlias
from uuid import uuid4

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    model_serializer,
    model_validator,
)

from .limits import DAY, HOUR, ActionKind, Window
from .outcomes import Outcome, Scope, Severity
from .tasks import Priority, TaskKind

SCHEMA_VERSION = 1


def _new_id() -> str:
    return str(uuid4())


def _now() -> datetime:
    return datetime.now(UTC)


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskLimits(_Payload):
    """Per-task limits: they can only lower an account's own limits."""

    invites_per_hour: int | None = Field(default=None, ge=1)
    invites_per_day: int | None = Field(default=None, ge=1)
    messages_per_day: int | None = Field(default=None, ge=1)

    def windows_for(self, kind: ActionKind) -> list[Window]:
        """The task's own windows for actions of ``kind`` (see ``models.scheduling.TaskWork.limits``)."""
        if kind is ActionKind.MESSAGE:
            return [] if self.messages_per_day is None else [Window(self.messages_per_day, DAY)]
        windows = []
        if self.invites_per_hour is not None:
            windows.append(Window(self.invites_per_hour, HOUR))
        if self.invites_per_day is not None:
            windows.append(Window(self.invites_per_day, DAY))
        return windows


class TaskCreatedData(_Payload):
    task_id: str
    name: str = Field(min_length=1, max_length=200)
    kind: TaskKind = TaskKind.INVITE
    platform: str = "telegram"
    chat: str | None = Field(default=None, description="group or channel to invite into")
    message_template: str | None = None
    account_ids: list[str] = Field(min_length=1)
    priority: Priority = Priority.NORMAL
    limits: TaskLimits | None = None


class TaskRefData(_Payload):
    task_id: str
    reason: str | None = None


class TaskSchedule(_Payload):
    """When a task may send: never before ``start_at``, never after ``end_at`` (both optional)."""

    start_at: datetime | None = None
    end_at: datetime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> TaskSchedule:
        if self.start_at is not None and self.end_at is not None and self.end_at <= self.start_at:
            raise ValueError("schedule.end_at must be after schedule.start_at")
        return self


class TaskChanges(_Payload):
    """Settings an operator changes; only the fields present are changed (``None`` clears)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    chat: str | None = Field(default=None, max_length=256)
    message_template: str | None = Field(default=None, max_length=4096)
    priority: Priority | None = None
    limits: TaskLimits | None = None
    schedule: TaskSchedule | None = None
    skip_privacy_failed: bool | None = None

    @model_serializer(mode="wrap")
    def _only_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # "absent" and "null" mean different things here (keep vs clear), so
        # the wire carries only the fields the operator set.
        return {k: v for k, v in handler(self).items() if k in self.model_fields_set}

    def changed(self) -> dict[str, Any]:
        """The fields this change sets, JSON-ready."""
        return self.model_dump(mode="json", exclude_unset=True)


class TaskUpdatedData(_Payload):
    task_id: str
    changes: TaskChanges


class TaskAccountsData(_Payload):
    task_id: str
    account_ids: list[str] = Field(min_length=1, max_length=1000)


class TargetsImportedData(_Payload):
    task_id: str
    batch_id: str = Field(default_factory=_new_id)
    # Rows are validated one by one in the importer, so one bad row is counted as
    # invalid instead of dead-lettering a whole batch.
    targets: list[dict[str, Any]] = Field(max_length=10_000)


class WorkAssignedData(_Payload):
    task_id: str
    account_id: str
    targets: int = Field(ge=0)


class AccountDueData(_Payload):
    """The account may act now: sent by the scheduler's own timers."""

    account_id: str


class ActionCompletedData(_Payload):
    """An attempt of this account finished; the account agent records it."""

    account_id: str
    task_id: str
    target_id: int
    outcome: Outcome
    retry_after: float | None = None


class InviteResultData(_Payload):
    """The analytics contract: one per attempt (DESIGN.md, invite.result)."""

    task_id: str
    target_id: int
    account_id: str
    platform: str
    action: TaskKind
    attempt: int = Field(ge=1)
    max_attempts: int = Field(ge=1)
    outcome: Outcome
    reason_category: Scope
    severity: Severity
    retryable: bool
    retry_after: float | None = None
    raw_error: str | None = None
    claimed_at: datetime
    finished_at: datetime


class AccountStateData(_Payload):
    account_id: str
    until: datetime | None = None
    reason: str | None = None


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = SCHEMA_VERSION
    id: str = Field(default_factory=_new_id, min_length=1)
    occurred_at: datetime = Field(default_factory=_now)
    source: str = "invite-service"
    user_id: str = Field(min_length=1)


class TaskCreated(_Envelope):
    type: Literal["task.created"] = "task.created"
    data: TaskCreatedData


class TaskLifecycle(_Envelope):
    type: Literal[
        "task.started", "task.paused", "task.resumed", "task.cancelled",
        "task.completed", "task.deleted",
    ]
    data: TaskRefData


class TaskUpdated(_Envelope):
    type: Literal["task.updated"] = "task.updated"
    data: TaskUpdatedData


class TaskAccountsChanged(_Envelope):
    """Accounts attached to or detached from a task; the planner assigns on its next plan."""

    type: Literal["task.accounts_attached", "task.accounts_detached"]
    data: TaskAccountsData


class TargetsImported(_Envelope):
    type: Literal["targets.imported"] = "targets.imported"
    data: TargetsImportedData


class WorkAssigned(_Envelope):
    type: Literal["work.assigned"] = "work.assigned"
    data: WorkAssignedData


class AccountDue(_Envelope):
    type: Literal["account.due"] = "account.due"
    data: AccountDueData


class ActionCompleted(_Envelope):
    type: Literal["action.completed"] = "action.completed"
    data: ActionCompletedData


class InviteResultEvent(_Envelope):
    type: Literal["invite.result"] = "invite.result"
    data: InviteResultData


class AccountStateChanged(_Envelope):
    type: Literal["account.cooldown", "account.restricted", "account.disabled", "account.recovered"]
    data: AccountStateData


Event: TypeAlias = Annotated[
    TaskCreated
    | TaskLifecycle
    | TargetsImported
    | WorkAssigned
    | AccountDue
    | ActionCompleted
    | InviteResultEvent
    | AccountStateChanged
    | TaskUpdated
    | TaskAccountsChanged,
    Field(discriminator="type"),
]

_EVENT = TypeAdapter(Event)


def parse_event(raw: bytes | str) -> Event:
    """Validate bytes from a topic; raises ``pydantic.ValidationError``."""
    return _EVENT.validate_json(raw)


def dump_event(event: _Envelope) -> bytes:
    return event.model_dump_json().encode()


def event_json_schema() -> dict[str, Any]:
    """JSON Schema of every event, published for producers and consumers we do not own."""
    return _EVENT.json_schema()
