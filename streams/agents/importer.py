"""Importer agent: targets.imported batches into PostgreSQL.

Rows are validated one by one (a bad row is counted, not fatal), then the
batch is COPYed in once: the batch id makes a re-delivered batch a no-op.
Works whatever partition a batch lands on: nothing here is partition state.
"""

from __future__ import annotations

import asyncio
import logging

import faust

from models.events import Event, TargetsImported
from models.imports import validate_rows
from models.tasks import TERMINAL_STATUSES, TaskStatus

from ..consume import Unprocessable, consume
from ..planner import plan
from ..runtime import Runtime
from ..topics import Topics

log = logging.getLogger(__name__)

# task.created and targets.imported travel on different topics; give the
# task a moment to be recorded before calling the batch an orphan.
_TASK_WAIT_SECONDS = 30.0


def register(app: faust.App, topics: Topics, rt: Runtime) -> None:
    async def wait_for_task(task_id: str) -> dict | None:
        deadline = asyncio.get_running_loop().time() + _TASK_WAIT_SECONDS
        while True:
            task = await rt.tasks.get(task_id)
            if task is not None or asyncio.get_running_loop().time() > deadline:
                return task
            await asyncio.sleep(0.2)

    async def handle(event: Event) -> None:
        assert isinstance(event, TargetsImported)
        data = event.data
        task = await wait_for_task(data.task_id)
        if task is None:
            raise Unprocessable(f"targets for unknown task {data.task_id}")
        if task["owner"] != event.user_id:
            # Never reveal or touch another user's task.
            raise Unprocessable(f"targets for unknown task {data.task_id}")
        if task["status"] in TERMINAL_STATUSES:
            raise Unprocessable(f"task {data.task_id} is {task['status']}; targets not accepted")
        accepted, problems = validate_rows(data.targets)
        report = await rt.imports.import_batch(data.task_id, data.batch_id, accepted, problems)
        if report is None:
            return  # already applied
        log.info(
            "import %s into task %s: %d accepted, %d duplicate, %d invalid",
            data.batch_id, data.task_id, report.accepted, report.duplicate, report.invalid,
        )
        if task["status"] == TaskStatus.RUNNING:
            await plan(rt, topics, data.task_id, event.user_id)

    @app.agent(topics.targets, name="importer")
    async def importer(stream: faust.StreamT) -> None:
        await consume(stream, handle, topics.dead_letters, accepted_types=frozenset({"targets.imported"}))
