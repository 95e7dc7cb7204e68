"""Task routes: create, list, read, update, delete, duplicate, bulk commands.

Commands publish events on the tasks topic and answer 202 with the state the
task agent will record; reads come from PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import uuid4

from faust.web import Request, Response, View

from models.api import (
    Accepted,
    BulkItemResult,
    BulkResult,
    DuplicateAccepted,
    TaskBulkRequest,
    TaskCreateRequest,
    TaskDuplicateRequest,
    TaskListQuery,
    TaskPage,
    TaskUpdateAccepted,
    TaskUpdateRequest,
    TaskView,
    decode_cursor,
    encode_cursor,
)
from models.events import (
    TargetsImported,
    TargetsImportedData,
    TaskChanges,
    TaskCreated,
    TaskCreatedData,
    TaskLifecycle,
    TaskRefData,
    TaskUpdated,
    TaskUpdatedData,
)
from models.tasks import IllegalUpdate, TaskCommand, TaskStatus, check_update

from ..publish import send_event
from .context import Api, task_view
from .errors import HttpError, parse_body, parse_query

IMPORT_BATCH_ROWS = 1000
_BULK_COMMANDS = {"pause": TaskCommand.PAUSE, "resume": TaskCommand.RESUME, "cancel": TaskCommand.CANCEL}


def register(api: Api) -> None:
    rt, routes = api.rt, api.routes

    async def create(view: View, request: Request) -> Response:
        user = await api.owner(request)
        body = await parse_body(request, TaskCreateRequest, api.settings.api_max_body_bytes)
        task_id = str(uuid4())
        fields = body.model_dump(exclude={"schedule", "skip_privacy_failed"})
        event = TaskCreated(user_id=user, data=TaskCreatedData(task_id=task_id, **fields))
        await api.publish(task_id, event)
        # Settings task.created predates travel in a task.updated right behind it (same key, same order).
        later = body.model_dump(include={"schedule", "skip_privacy_failed"}, exclude_none=True)
        if later:
            await api.publish(task_id, TaskUpdated(
                user_id=user, data=TaskUpdatedData(task_id=task_id, changes=TaskChanges.model_validate(later))))
        return view.json(Accepted(task_id=task_id, status="draft", event_id=event.id).model_dump(), status=202)

    async def list_tasks(view: View, request: Request) -> Response:
        user = await api.owner(request)
        query = parse_query(request, TaskListQuery)
        after = _cursor(query.cursor, 2)
        if after is not None and not _cursor_fits(query.sort, after):
            raise HttpError(422, "validation_error", "invalid cursor",
                            [{"field": "cursor", "message": "the cursor belongs to another sort order"}])
        filters = query.model_dump(include={"status", "priority", "platform", "kind", "created_from", "created_to", "q"})
        rows, total = await rt.tasks.page(user, filters=filters, sort=query.sort, after=after, limit=query.limit + 1)
        items = [task_view(r) for r in rows[: query.limit]]
        next_cursor = None
        if len(rows) > query.limit:
            last = rows[query.limit - 1]
            value = last[query.sort.removeprefix("-")]
            next_cursor = encode_cursor([value.isoformat() if hasattr(value, "isoformat") else value, last["id"]])
        page = TaskPage(items=items, next_cursor=next_cursor, total=total)
        return view.json(page.model_dump(mode="json"))

    async def get(view: View, request: Request, task_id: str) -> Response:
        user, _ = await api.task(request, task_id)
        row = await rt.tasks.view(task_id, user)
        if row is None:
            raise HttpError(404, "not_found", f"task {task_id} not found")
        return view.json(task_view(row).model_dump(mode="json"))

    async def update(view: View, request: Request, task_id: str) -> Response:
        user, task = await api.task(request, task_id)
        body = await parse_body(request, TaskUpdateRequest, api.settings.api_max_body_bytes)
        changes = TaskChanges.model_validate(body.model_dump(exclude_unset=True))
        event_id = await apply_update(user, task, changes)
        current = await rt.tasks.view(task_id, user)
        predicted = _predicted(task_view(current or task | {"account_ids": []}), changes)
        accepted = TaskUpdateAccepted(task_id=task_id, status=task["status"], event_id=event_id, task=predicted)
        return view.json(accepted.model_dump(mode="json"), status=202)

    async def apply_update(user: str, task: dict[str, Any], changes: TaskChanges) -> str:
        try:
            check_update(TaskStatus(task["status"]), set(changes.model_fields_set))
        except IllegalUpdate as exc:
            raise HttpError(409, "illegal_update", str(exc), {"status": task["status"], "fields": exc.fields}) from None
        event = TaskUpdated(user_id=user, data=TaskUpdatedData(task_id=task["id"], changes=changes))
        await api.publish(task["id"], event)
        return event.id

    async def delete(view: View, request: Request, task_id: str) -> Response:
        user, task = await api.task(request, task_id)
        event_id = await delete_task(user, task)
        return view.json(Accepted(task_id=task_id, status="deleted", event_id=event_id).model_dump(), status=202)

    async def delete_task(user: str, task: dict[str, Any]) -> str:
        event = TaskLifecycle(type="task.deleted", user_id=user, data=TaskRefData(task_id=task["id"]))
        await api.publish(task["id"], event)
        return event.id

    async def duplicate(view: View, request: Request, task_id: str) -> Response:
        user, source = await api.task(request, task_id)
        body = await parse_body(request, TaskDuplicateRequest, api.settings.api_max_body_bytes)
        accounts = [a for a, state in (await rt.tasks.account_states(task_id)).items() if state != "detached"]
        if not accounts:
            raise HttpError(409, "no_accounts", "the task has no accounts to copy; attach one first",
                            {"status": source["status"]})
        new_id = str(uuid4())
        name = body.name or f"{source['name']} (copy)"[:200]
        created = TaskCreated(user_id=user, data=TaskCreatedData(
            task_id=new_id, name=name, kind=source["kind"], platform=source["platform"], chat=source["chat"],
            message_template=source["message_template"], account_ids=accounts,
            priority=source["priority"], limits=source["limits"],
        ))
        await api.publish(new_id, created)
        later: dict[str, Any] = {"skip_privacy_failed": source["skip_privacy_failed"]}
        if source.get("schedule_start_at") or source.get("schedule_end_at"):
            later["schedule"] = {"start_at": source["schedule_start_at"], "end_at": source["schedule_end_at"]}
        await api.publish(new_id, TaskUpdated(
            user_id=user, data=TaskUpdatedData(task_id=new_id, changes=TaskChanges.model_validate(later))))
        copied = await copy_targets(user, task_id, new_id) if body.copy_targets else 0
        accepted = DuplicateAccepted(task_id=new_id, status="draft", event_id=created.id, source_task_id=task_id,
                                     targets_copied=copied)
        return view.json(accepted.model_dump(), status=202)

    async def copy_targets(user: str, source_id: str, new_id: str) -> int:
        """The source's audience as fresh import batches (the importer's rules apply again)."""
        copied, after = 0, 0
        while rows := await rt.targets.identities(source_id, after, IMPORT_BATCH_ROWS):
            after = rows[-1]["id"]
            batch = [{k: v for k, v in r.items() if k != "id" and v is not None} for r in rows]
            data = TargetsImportedData(task_id=new_id, targets=batch)
            await send_event(api.topics.targets, new_id, TargetsImported(user_id=user, data=data))
            copied += len(batch)
        return copied

    async def bulk(view: View, request: Request) -> Response:
        user = await api.owner(request)
        body = await parse_body(request, TaskBulkRequest, api.settings.api_max_body_bytes)
        results = [await bulk_one(user, body, task_id) for task_id in dict.fromkeys(body.task_ids)]
        return view.json(BulkResult(action=body.action, results=results).model_dump(mode="json"), status=202)

    async def bulk_one(user: str, body: TaskBulkRequest, task_id: str) -> BulkItemResult:
        try:
            task = await api.task_of(user, task_id)
            if body.action == "delete":
                status, event_id = "deleted", await delete_task(user, task)
            elif body.action == "set_priority":
                status, event_id = task["status"], await apply_update(
                    user, task, TaskChanges(priority=body.priority))
            else:
                status, event_id = await api.command(user, task, _BULK_COMMANDS[body.action])
        except HttpError as exc:
            return BulkItemResult(task_id=task_id, ok=False, status_code=exc.status,
                                  error={"code": exc.code, "message": exc.message, "details": exc.details})
        return BulkItemResult(task_id=task_id, ok=True, status_code=202, status=status, event_id=event_id)

    tag = "tasks"
    routes.add("POST", "/api/v1/tasks", create, summary="Create a task (campaign)", tag=tag,
               body=TaskCreateRequest, responses={202: Accepted})
    routes.add("GET", "/api/v1/tasks", list_tasks, summary="The user's tasks: filter, search, sort, page", tag=tag,
               query=TaskListQuery, responses={200: TaskPage})
    routes.add("POST", "/api/v1/tasks/bulk", bulk, summary="One command on many tasks, a result per task", tag=tag,
               body=TaskBulkRequest, responses={202: BulkResult})
    routes.add("GET", "/api/v1/tasks/{task_id}", get, summary="One task", tag=tag,
               responses={200: TaskView}, errors=(404,))
    routes.add("PUT", "/api/v1/tasks/{task_id}", update, summary="Change a task's settings", tag=tag,
               description="Only the fields the task's state allows; others are 409 naming the state. A new"
                           " priority applies from the next pick of every account.",
               body=TaskUpdateRequest, responses={202: TaskUpdateAccepted}, errors=(404, 409))
    routes.add("DELETE", "/api/v1/tasks/{task_id}", delete, summary="Delete a task (a running one is cancelled)",
               tag=tag, responses={202: Accepted}, errors=(404,))
    routes.add("POST", "/api/v1/tasks/{task_id}/duplicate", duplicate,
               summary="A new draft task with the same settings (optionally the same audience)", tag=tag,
               body=TaskDuplicateRequest, responses={202: DuplicateAccepted}, errors=(404,))


def _cursor(cursor: str | None, length: int) -> list[Any] | None:
    if cursor is None:
        return None
    try:
        return decode_cursor(cursor, length)
    except ValueError as exc:
        raise HttpError(422, "validation_error", "invalid cursor", [{"field": "cursor", "message": str(exc)}]) from None


def _cursor_fits(sort: str, values: list[Any]) -> bool:
    """Whether a decoded cursor holds what ``sort`` pages by (a foreign cursor must not reach the SQL)."""
    value, task_id = values
    if not isinstance(task_id, str) or "\x00" in task_id or (isinstance(value, str) and "\x00" in value):
        return False
    name = sort.removeprefix("-")
    if name == "priority":
        return isinstance(value, int) and not isinstance(value, bool) and -32768 <= value <= 32767
    if name in ("created_at", "updated_at"):
        try:
            return isinstance(value, str) and datetime.fromisoformat(value).tzinfo is not None
        except ValueError:
            return False
    return isinstance(value, str)


def _predicted(task: TaskView, changes: TaskChanges) -> TaskView:
    """The task as it reads once ``changes`` are applied."""
    return task.model_validate({**task.model_dump(), **changes.model_dump()})
