"""Statistics routes: live stats (from the task-stats table), report, CSV export, execution log.

Only ``/stats`` reads a Faust table, so only it goes through ``table_route``
(which forwards GETs to the worker owning the task's partition); the rest
read PostgreSQL, which every worker can.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from aiohttp import web
from faust.web import Request, Response, View

from models.api import (
    AccountReport,
    HourReport,
    LogEntry,
    LogPage,
    LogQuery,
    ProgressView,
    TaskReport,
    TaskStatsView,
    csv_safe,
    decode_cursor,
    encode_cursor,
    mask_phone,
)
from models.progress import TaskCounts, TaskProgress

from .context import Api
from .errors import HttpError, parse_query

CSV_COLUMNS = ("target_id", "username", "user_id", "phone", "first_name", "last_name", "status", "outcome",
               "reason", "account_id", "attempts", "finished_at")


def progress_view(progress: TaskProgress) -> ProgressView:
    return ProgressView(total=progress.total, done=progress.done, open=progress.open, percent=progress.percent,
                        by_status={s.value: n for s, n in progress.by_status.items()})


def register(api: Api) -> None:
    rt, routes, stats_table = api.rt, api.routes, api.stats

    async def stats(view: View, request: Request, task_id: str) -> Response:
        _, task = await api.task(request, task_id)
        counts = TaskCounts.model_validate(stats_table.get(task_id) or {})
        progress = await rt.targets.progress(task_id)
        result = TaskStatsView(
            task_id=task_id, status=task["status"], attempts=counts.attempts, outcomes=counts.outcomes,
            last_result_at=counts.last_result_at, progress=progress_view(progress),
        )
        return view.json(result.model_dump())

    async def report(view: View, request: Request, task_id: str) -> Response:
        _, task = await api.task(request, task_id)
        progress = await rt.targets.progress(task_id)
        outcomes = await api.reports.outcomes(task_id)
        _, by_reason = await rt.targets.breakdown(task_id)
        started, finished = task["started_at"], task["finished_at"]
        duration = None
        if started is not None:
            duration = round(((finished or datetime.now(UTC)) - started).total_seconds(), 3)
        result = TaskReport(
            task_id=task_id, name=task["name"], status=task["status"], created_at=task["created_at"],
            started_at=started, finished_at=finished, duration_seconds=duration, progress=progress_view(progress),
            attempts=sum(outcomes.values()), outcomes=outcomes,
            by_account=[AccountReport(account_id=a, attempts=sum(o.values()), outcomes=o)
                        for a, o in (await api.reports.by_account(task_id)).items()],
            by_reason=by_reason,
            timeline=[HourReport(hour=hour.replace(tzinfo=UTC), attempts=sum(o.values()), outcomes=o)
                      for hour, o in await api.reports.timeline(task_id)],
        )
        return view.json(result.model_dump(mode="json"))

    async def export(view: View, request: Request, task_id: str) -> web.StreamResponse:
        _, _task = await api.task(request, task_id)
        response = web.StreamResponse(headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="task-{task_id}.csv"',
        })
        await response.prepare(request)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        async for rows in api.reports.target_outcomes(task_id):
            for r in rows:
                writer.writerow([csv_safe(v) for v in (
                    r["id"], r["username"], r["user_id"], mask_phone(r["phone"]), r["first_name"], r["last_name"],
                    r["status"], r["last_outcome"], r["reason"], r["account_id"], r["attempts"], r["finished_at"],
                )])
            await response.write(buffer.getvalue().encode())
            buffer.seek(0)
            buffer.truncate()
        await response.write(buffer.getvalue().encode())
        await response.write_eof()
        return response

    async def logs(view: View, request: Request, task_id: str) -> Response:
        await api.task(request, task_id)
        query = parse_query(request, LogQuery)
        before = None
        if query.cursor is not None:
            try:
                (before,) = decode_cursor(query.cursor, 1)
            except ValueError:
                before = None
            if not isinstance(before, int) or isinstance(before, bool) or not 0 < before < 2**63:
                raise HttpError(422, "validation_error", "invalid cursor",
                                [{"field": "cursor", "message": "cursor is not one this API handed out"}])
        rows = await api.reports.log_page(task_id, outcome=query.outcome, account_id=query.account_id,
                                          before_id=before, limit=query.limit + 1)
        items = [LogEntry.model_validate(r) for r in rows[: query.limit]]
        next_cursor = encode_cursor([rows[query.limit - 1]["id"]]) if len(rows) > query.limit else None
        return view.json(LogPage(items=items, next_cursor=next_cursor).model_dump(mode="json"))

    tag = "statistics"
    base = "/api/v1/tasks/{task_id}"
    routes.add("GET", f"{base}/stats", stats, summary="Live statistics (attempts by outcome) and progress", tag=tag,
               responses={200: TaskStatsView}, errors=(404, 503),
               wrap=api.app.table_route(table=stats_table, match_info="task_id"))
    routes.add("GET", f"{base}/report", report, summary="Report: outcomes, per account, per reason, per hour",
               tag=tag, responses={200: TaskReport}, errors=(404,))
    routes.add("GET", f"{base}/report.csv", export, summary="Per-target outcomes as CSV (formula-safe cells)",
               tag=tag, responses={200: "text/csv"}, errors=(404,))
    routes.add("GET", f"{base}/logs", logs, summary="Execution log, newest first: filter by outcome and account",
               tag=tag, query=LogQuery, responses={200: LogPage}, errors=(404,))
