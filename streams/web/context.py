"""What every API handler shares: who is asking, which task is theirs, and publishing commands.

Ownership is checked in one place: :meth:`Api.task` answers 404 for a task
that does not exist, is deleted, or belongs to someone else — the same answer
in all three cases, so ids of other users' tasks cannot be probed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import faust
from faust.web import Request

from adapters.postgres.reports import ReportStore
from adapters.rate_limit import RateLimiter
from models.api import ApiSettings, TaskView, mask_phone
from models.events import TaskLifecycle, TaskRefData, _Envelope
from models.tasks import (
    COMMAND_EVENTS,
    IllegalTransition,
    TaskCommand,
    TaskStatus,
    destination,
    transition,
)

from ..publish import send_event
from ..runtime import Runtime
from ..topics import Topics
from .auth import Authenticator
from .errors import HttpError
from .routes import Routes


@dataclass
class Api:
    """The collaborators of every handler."""

    app: faust.App
    topics: Topics
    rt: Runtime
    stats: faust.Table
    settings: ApiSettings
    routes: Routes
    auth: Authenticator
    _reports: ReportStore | None = None
    _limiter: RateLimiter | None = None

    @property
    def reports(self) -> ReportStore:
        # The pool exists only once the runtime started, after views are registered.
        if self._reports is None:
            self._reports = ReportStore(self.rt.pool)
        return self._reports

    async def owner(self, request: Request) -> str:
        """The authenticated user, counted against their rate limit."""
        user = self.auth.owner(request.headers.get("Authorization"))
        if self._limiter is None:
            self._limiter = RateLimiter(self.rt.redis, self.settings.api_rate_limit_per_minute, 60)
        retry_after = await self._limiter.hit(user)
        if retry_after is not None:
            raise HttpError(429, "rate_limited", f"more than {self._limiter.limit} requests a minute; slow down",
                            {"retry_after": retry_after}, headers={"Retry-After": str(retry_after)})
        return user

    async def task(self, request: Request, task_id: str) -> tuple[str, dict[str, Any]]:
        """The user and their (live) task, or 404."""
        user = await self.owner(request)
        return user, await self.task_of(user, task_id)

    async def task_of(self, user: str, task_id: str) -> dict[str, Any]:
        if not _is_uuid(task_id):
            raise HttpError(404, "not_found", f"task {task_id} not found")
        task = await self.rt.tasks.get(task_id, owner=user)
        if task is None:
            raise HttpError(404, "not_found", f"task {task_id} not found")
        return task

    async def publish(self, task_id: str, event: _Envelope) -> None:
        await send_event(self.topics.tasks, task_id, event)

    async def command(self, user: str, task: dict[str, Any], command: TaskCommand) -> tuple[str, str]:
        """Publish a lifecycle command the state machine allows; (new status, event id), or 409."""
        try:
            transition(TaskStatus(task["status"]), command)
        except IllegalTransition as exc:
            raise HttpError(409, "illegal_transition", str(exc), {"status": task["status"]}) from None
        event = TaskLifecycle(type=COMMAND_EVENTS[command], user_id=user, data=TaskRefData(task_id=task["id"]))
        await self.publish(task["id"], event)
        return destination(command).value, event.id


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) == 36


def task_view(row: dict[str, Any]) -> TaskView:
    schedule = None
    if row.get("schedule_start_at") or row.get("schedule_end_at"):
        schedule = {"start_at": row.get("schedule_start_at"), "end_at": row.get("schedule_end_at")}
    return TaskView.model_validate({**row, "schedule": schedule, "account_ids": row.get("account_ids") or []})


def target_json(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "phone": mask_phone(row.get("phone"))}
