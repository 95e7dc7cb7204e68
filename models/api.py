"""Request and response bodies of the REST API, and its one error format."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .events import TaskLimits
from .messages import unknown_placeholders
from .tasks import Priority, TaskKind


class ApiError(BaseModel):
    code: str
    message: str
    details: Any | None = None


class ErrorBody(BaseModel):
    error: ApiError


class TaskCreateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: TaskKind = TaskKind.INVITE
    platform: str = "telegram"
    chat: str | None = Field(default=None, max_length=256)
    message_template: str | None = Field(default=None, max_length=4096)
    account_ids: list[str] = Field(min_length=1, max_length=1000)
    priority: Priority = Priority.NORMAL
    limits: TaskLimits | None = None

    @model_validator(mode="after")
    def _kind_needs(self) -> "TaskCreateRequest":
        if self.kind is TaskKind.INVITE and not self.chat:
            raise ValueError("an invite task needs 'chat' (the group or channel to invite into)")
        if self.kind is TaskKind.MESSAGE:
            if not self.message_template:
                raise ValueError("a message task needs 'message_template'")
            unknown = unknown_placeholders(self.message_template)
            if unknown:
                raise ValueError(f"message_template uses unknown placeholders: {', '.join(unknown)}")
        return self


class TargetsAddRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    targets: list[dict[str, Any]] = Field(min_length=1, max_length=100_000)


class Accepted(BaseModel):
    """202: the command was published; the state changes asynchronously."""

    task_id: str
    status: str
    event_id: str


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
