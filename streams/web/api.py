"""REST API views (first slice): create and drive tasks, add targets, read stats.

Commands publish events and answer 202 (the agents apply them); reads come
from PostgreSQL and the statistics table. Every read and command is scoped
to the token's owner: another user's task is a 404, never a 403.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import faust
from faust.web import Request, Response, View

from models.api import (
    Accepted,
    ProgressView,
    TargetsAddRequest,
    TaskCreateRequest,
    TaskStatsView,
)
from models.events import (
    TargetsImported,
    TargetsImportedData,
    TaskCreated,
    TaskCreatedData,
    TaskLifecycle,
    TaskRefData,
)
from models.progress import TaskCounts
from models.tasks import COMMAND_EVENTS, TERMINAL_STATUSES, IllegalTransition, TaskCommand, TaskStatus, destination, transition

from ..publish import send_event
from ..runtime import Runtime
from ..topics import Topics
from .auth import owner_from_header
from .errors import HttpError, api_errors, parse_body

IMPORT_BATCH_ROWS = 1000

_ACTIONS: dict[str, TaskCommand] = {
    "execute": TaskCommand.START,
    "pause": TaskCommand.PAUSE,
    "resume": TaskCommand.RESUME,
    "cancel": TaskCommand.CANCEL,
}


def _task_json(task: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in task.items()}


def register(app: faust.App, topics: Topics, rt: Runtime, stats: faust.Table) -> None:
    settings = rt.settings

    def owner(request: Request) -> str:
        return owner_from_header(request.headers.get("Authorization"), settings)

    async def owned_task(request: Request, task_id: str) -> tuple[str, dict[str, Any]]:
        user = owner(request)
        task = await rt.tasks.get(task_id, owner=user)
        if task is None:
            raise HttpError(404, "not_found", f"task {task_id} not found")
        return user, task

    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok"})

    @app.page("/api/v1/tasks")
    class Tasks(View):
        @api_errors
        async def get(self, request: Request) -> Response:
            status = request.query.get("status")
            if status is not None and status not in {s.value for s in TaskStatus}:
                raise HttpError(422, "validation_error", f"unknown status {status!r}", [{"field": "status"}])
            tasks = await rt.tasks.list_for_owner(owner(request), status)
            return self.json({"items": [_task_json(t) for t in tasks]})

        @api_errors
        async def post(self, request: Request) -> Response:
            user = owner(request)
            body: TaskCreateRequest = await parse_body(request, TaskCreateRequest)
            task_id = str(uuid4())
            event = TaskCreated(user_id=user, data=TaskCreatedData(task_id=task_id, **body.model_dump()))
            await send_event(topics.tasks, task_id, event)
            return self.json(Accepted(task_id=task_id, status="draft", event_id=event.id).model_dump(), status=202)

    @app.page("/api/v1/tasks/{task_id}")
    class Task(View):
        @api_errors
        async def get(self, request: Request, task_id: str) -> Response:
            _, task = await owned_task(request, task_id)
            return self.json(_task_json(task))

    @app.page("/api/v1/tasks/{task_id}/targets")
    class Targets(View):
        @api_errors
        async def post(self, request: Request, task_id: str) -> Response:
            user, task = await owned_task(request, task_id)
            if TaskStatus(task["status"]) in TERMINAL_STATUSES:
                raise HttpError(409, "task_finished", f"task is {task['status']}; it takes no more targets",
                                {"status": task["status"]})
            body: TargetsAddRequest = await parse_body(request, TargetsAddRequest)
            rows = body.targets
            batches = 0
            for start in range(0, len(rows), IMPORT_BATCH_ROWS):
                data = TargetsImportedData(task_id=task_id, targets=rows[start : start + IMPORT_BATCH_ROWS])
                await send_event(topics.targets, task_id, TargetsImported(user_id=user, data=data))
                batches += 1
            return self.json({"task_id": task_id, "rows": len(rows), "batches": batches}, status=202)

    @app.page("/api/v1/tasks/{task_id}/stats")
    class Stats(View):
        @app.table_route(table=stats, match_info="task_id")
        @api_errors
        async def get(self, request: Request, task_id: str) -> Response:
            _, task = await owned_task(request, task_id)
            counts = TaskCounts.model_validate(stats.get(task_id) or {})
            progress = await rt.targets.progress(task_id)
            view = TaskStatsView(
                task_id=task_id, status=task["status"], attempts=counts.attempts,
                outcomes=counts.outcomes, last_result_at=counts.last_result_at,
                progress=ProgressView(
                    total=progress.total, done=progress.done, open=progress.open, percent=progress.percent,
                    by_status={s.value: n for s, n in progress.by_status.items()},
                ),
            )
            return self.json(view.model_dump())

    @app.page("/api/v1/tasks/{task_id}/{action}")
    class Control(View):
        @api_errors
        async def post(self, request: Request, task_id: str, action: str) -> Response:
            if action not in _ACTIONS:
                raise HttpError(404, "not_found", f"no action {action!r}")
            command = _ACTIONS[action]
            user, task = await owned_task(request, task_id)
            try:
                transition(TaskStatus(task["status"]), command)
            except IllegalTransition as exc:
                raise HttpError(409, "illegal_transition", str(exc), {"status": task["status"]}) from None
            event = TaskLifecycle(type=COMMAND_EVENTS[command], user_id=user, data=TaskRefData(task_id=task_id))
            await send_event(topics.tasks, task_id, event)
            accepted = Accepted(task_id=task_id, status=destination(command).value, event_id=event.id)
            return self.json(accepted.model_dump(), status=202)
