"""Target routes: add (structured or pasted), list, stats, update, delete, bulk actions.

Additions are validated here (a bad row is a 422 naming it, and nothing is
published) and then travel as ``targets.imported`` batches to the importer,
like every other import path. Edits are compare-and-set writes in
PostgreSQL that never touch a target in flight.
"""

from __future__ import annotations

from typing import Any

from faust.web import Request, Response, View
from pydantic import ValidationError

from models.api import (
    IDENTITY_FIELDS,
    TargetBulkActionRequest,
    TargetBulkActionResult,
    TargetItemResult,
    TargetListQuery,
    TargetPage,
    TargetsAccepted,
    TargetsAddRequest,
    TargetsBulkAddRequest,
    TargetStatsView,
    TargetUpdateRequest,
    TargetView,
    decode_cursor,
    encode_cursor,
    identity_row,
)
from models.events import TargetsImported, TargetsImportedData
from models.imports import validate_rows
from models.progress import DELETABLE_TARGET_STATUSES, RETRYABLE_FAILURES
from models.targets import TargetIn
from models.tasks import TERMINAL_STATUSES, TaskStatus

from ..planner import plan
from ..publish import send_event
from .context import Api, target_json
from .errors import HttpError, parse_body, parse_query, validation_error

IMPORT_BATCH_ROWS = 1000


def register(api: Api) -> None:
    rt, routes = api.rt, api.routes
    region = rt.settings.phone_default_region

    async def open_task(request: Request, task_id: str) -> tuple[str, dict[str, Any]]:
        user, task = await api.task(request, task_id)
        if TaskStatus(task["status"]) in TERMINAL_STATUSES:
            raise HttpError(409, "task_finished", f"task is {task['status']}; it takes no more targets",
                            {"status": task["status"]})
        return user, task

    async def publish_rows(user: str, task_id: str, rows: list[dict[str, Any]], field: str) -> TargetsAccepted:
        accepted, problems = validate_rows(rows, default_region=region)
        if problems:
            details = [{"field": f"{field}.{p['row'] - 1}" + (f".{p['field']}" if p.get("field") else ""),
                        "message": p["reason"]} for p in problems[:100]]
            raise HttpError(422, "validation_error", f"{len(problems)} of {len(rows)} targets are invalid; none added",
                            details)
        normalized = [t.model_dump(exclude_none=True) for t in accepted]
        batch_ids = []
        for start in range(0, len(normalized), IMPORT_BATCH_ROWS):
            data = TargetsImportedData(task_id=task_id, targets=normalized[start : start + IMPORT_BATCH_ROWS])
            await send_event(api.topics.targets, task_id, TargetsImported(user_id=user, data=data))
            batch_ids.append(data.batch_id)
        return TargetsAccepted(task_id=task_id, rows=len(rows), batches=len(batch_ids), batch_ids=batch_ids)

    async def add(view: View, request: Request, task_id: str) -> Response:
        user, _ = await open_task(request, task_id)
        body = await parse_body(request, TargetsAddRequest, api.settings.api_max_targets_body_bytes)
        rows = [row.model_dump(exclude_none=True) for row in body.targets]
        return view.json((await publish_rows(user, task_id, rows, "targets")).model_dump(), status=202)

    async def add_pasted(view: View, request: Request, task_id: str) -> Response:
        user, _ = await open_task(request, task_id)
        body = await parse_body(request, TargetsBulkAddRequest, api.settings.api_max_targets_body_bytes)
        rows = [identity_row(identity) for identity in body.identities]
        return view.json((await publish_rows(user, task_id, rows, "identities")).model_dump(), status=202)

    async def list_targets(view: View, request: Request, task_id: str) -> Response:
        await api.task(request, task_id)
        query = parse_query(request, TargetListQuery)
        after = None
        if query.cursor is not None:
            try:
                (after,) = decode_cursor(query.cursor, 1)
            except ValueError as exc:
                raise HttpError(422, "validation_error", "invalid cursor",
                                [{"field": "cursor", "message": str(exc)}]) from None
            if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after < 2**63:
                raise HttpError(422, "validation_error", "invalid cursor",
                                [{"field": "cursor", "message": "cursor is not one this API handed out"}])
        rows, total = await rt.targets.page(
            task_id, status=query.status, account_id=query.account_id, q=query.q, after_id=after,
            limit=query.limit + 1,
        )
        items = [TargetView.model_validate(target_json(r)) for r in rows[: query.limit]]
        next_cursor = encode_cursor([rows[query.limit - 1]["id"]]) if len(rows) > query.limit else None
        return view.json(TargetPage(items=items, next_cursor=next_cursor, total=total).model_dump(mode="json"))

    async def stats(view: View, request: Request, task_id: str) -> Response:
        await api.task(request, task_id)
        progress = await rt.targets.progress(task_id)
        by_account, by_reason = await rt.targets.breakdown(task_id)
        result = TargetStatsView(task_id=task_id, total=progress.total,
                                 by_status={s.value: n for s, n in progress.by_status.items()},
                                 by_account=by_account, by_reason=by_reason)
        return view.json(result.model_dump())

    async def update(view: View, request: Request, task_id: str, target_id: str) -> Response:
        await api.task(request, task_id)
        number = _target_id(target_id)
        body = await parse_body(request, TargetUpdateRequest, api.settings.api_max_body_bytes)
        current = await rt.targets.get(task_id, number)
        if current is None:
            raise HttpError(404, "not_found", f"target {number} not found")
        changes = body.model_dump(exclude_unset=True)
        identity = None
        if IDENTITY_FIELDS & changes.keys():
            merged = {k: current[k] for k in ("username", "user_id", "phone", "first_name", "last_name", "extra")}
            merged.update(changes)
            try:
                identity = TargetIn.model_validate(merged, context={"default_region": region})
            except ValidationError as exc:
                raise validation_error(exc) from None
        outcome, row = await rt.targets.update(task_id, number, changes, identity)
        if outcome == "not_found" or row is None:
            raise HttpError(404, "not_found", f"target {number} not found")
        if outcome == "duplicate":
            raise HttpError(409, "duplicate_target", "another target of this task already has this identity",
                            {"status": row["status"]})
        if outcome == "state":
            what = "its identity" if identity is not None else "it"
            raise HttpError(409, "illegal_target_update",
                            f"cannot change {what}: target is {row['status']} (attempts: {row['attempts']})",
                            {"status": row["status"]})
        return view.json(TargetView.model_validate(target_json(row)).model_dump(mode="json"))

    async def delete(view: View, request: Request, task_id: str, target_id: str) -> Response:
        await api.task(request, task_id)
        number = _target_id(target_id)
        (result,) = await act(task_id, "delete", [number])
        if not result.ok and result.error is not None:
            status = 404 if result.error.code == "not_found" else 409
            raise HttpError(status, result.error.code, result.error.message, result.error.details)
        return view.json(result.model_dump(mode="json"))

    async def bulk_action(view: View, request: Request, task_id: str) -> Response:
        user, task = await api.task(request, task_id)
        body = await parse_body(request, TargetBulkActionRequest, api.settings.api_max_body_bytes)
        if body.action == "retry_failed" and TaskStatus(task["status"]) in TERMINAL_STATUSES:
            raise HttpError(409, "task_finished", f"task is {task['status']}; its targets are not sent again",
                            {"status": task["status"]})
        ids = list(dict.fromkeys(body.target_ids)) if body.target_ids is not None else None
        if ids is None:
            changed = await apply(task_id, body.action, None)
            result = TargetBulkActionResult(action=body.action, affected=len(changed))
        else:
            results = await act(task_id, body.action, ids)
            result = TargetBulkActionResult(action=body.action, affected=sum(r.ok for r in results), results=results)
        if result.affected and task["status"] == TaskStatus.RUNNING:
            # Retried targets need an account; skipped or deleted last ones complete the task.
            await plan(rt, api.topics, task_id, user)
        return view.json(result.model_dump(mode="json"))

    async def apply(task_id: str, action: str, ids: list[int] | None) -> list[int]:
        if action == "retry_failed":
            return await rt.targets.retry_failed(task_id, ids)
        if action == "skip":
            return await rt.targets.skip(task_id, ids)
        return await rt.targets.delete(task_id, ids)

    async def act(task_id: str, action: str, ids: list[int]) -> list[TargetItemResult]:
        """Apply to the given targets; explain each one the action passed by."""
        changed = set(await apply(task_id, action, ids))
        states = await rt.targets.states(task_id, [i for i in ids if i not in changed])
        new_status = {"retry_failed": "pending", "skip": "skipped", "delete": None}[action]
        results = []
        for target_id in ids:
            if target_id in changed:
                results.append(TargetItemResult(target_id=target_id, ok=True, status=new_status))
                continue
            state = states.get(target_id)
            if state is None:
                error = {"code": "not_found", "message": f"target {target_id} not found"}
            else:
                error = {"code": "illegal_target_action", "message": _refusal(action, state),
                         "details": {"status": state["status"], "reason": state["reason"]}}
            results.append(TargetItemResult(target_id=target_id, ok=False,
                                            status=state["status"] if state else None, error=error))
        return results

    tag = "targets"
    base = "/api/v1/tasks/{task_id}/targets"
    routes.add("POST", base, add, summary="Add targets (validated; imported asynchronously)", tag=tag,
               body=TargetsAddRequest, responses={202: TargetsAccepted}, errors=(404, 409))
    routes.add("POST", f"{base}/bulk", add_pasted, summary="Add pasted identities (@name, t.me/name, +phone, id)",
               tag=tag, body=TargetsBulkAddRequest, responses={202: TargetsAccepted}, errors=(404, 409))
    routes.add("GET", base, list_targets, summary="A task's targets: filter, search, page by a stable cursor",
               tag=tag, query=TargetListQuery, responses={200: TargetPage}, errors=(404,))
    routes.add("GET", f"{base}/stats", stats, summary="A task's targets by status, account and failure reason",
               tag=tag, responses={200: TargetStatsView}, errors=(404,))
    routes.add("POST", f"{base}/bulk-action", bulk_action, summary="Retry failed, skip or delete targets", tag=tag,
               body=TargetBulkActionRequest, responses={200: TargetBulkActionResult}, errors=(404, 409))
    routes.add("PUT", f"{base}/{{target_id}}", update, summary="Change a target (identity only if never attempted)",
               tag=tag, body=TargetUpdateRequest, responses={200: TargetView}, errors=(404, 409))
    routes.add("DELETE", f"{base}/{{target_id}}", delete, summary="Delete a target that is not done or in flight",
               tag=tag, responses={200: TargetItemResult}, errors=(404, 409))


def _target_id(raw: str) -> int:
    if raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**63:
        return int(raw)
    raise HttpError(422, "validation_error", "invalid target_id",
                    [{"field": "target_id", "message": "must be a positive integer"}])


def _refusal(action: str, state: dict[str, Any]) -> str:
    status, reason = state["status"], state["reason"]
    if action == "retry_failed":
        if status != "failed":
            return f"target is {status}, not failed"
        allowed = ", ".join(sorted(o.value for o in RETRYABLE_FAILURES))
        return f"target failed with {reason}; only {allowed} failures are retried"
    if action == "skip":
        return f"target is {status}; only pending targets can be skipped"
    allowed = ", ".join(sorted(s.value for s in DELETABLE_TARGET_STATUSES))
    return f"target is {status}; only {allowed} targets can be deleted"
