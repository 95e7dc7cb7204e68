"""Importer agent: targets.imported batches into PostgreSQL.

Every import path ends here: the API, file and parsing-service imports of
this service, and the parsing service publishing on its own (AsyncAPI
contract in docs/asyncapi.yaml). Rows are validated one by one (a bad row is
counted, not fatal), then the batch is COPYed in once: the batch id makes a
re-delivered batch a no-op, and targets on the owner's suppression list are
stored as skipped (``ImportStore.import_batch``).

Works whatever partition a batch lands on: nothing here is partition state,
so an outside producer that partitions the key differently (librdkafka's
default CRC32 instead of murmur2) is imported just the same. Only one batch
is held at a time, so importing a million targets costs no more memory than
importing a thousand.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import asyncpg
import faust

from adapters import metrics
from adapters.postgres.imports import BatchReport
from models.events import Event, TargetsImported
from models.imports import import_id_of, validate_rows
from models.targets import TargetIn
from models.tasks import TERMINAL_STATUSES, TaskStatus

from ..consume import Unprocessable, consume
from ..planner import plan
from ..runtime import Runtime
from ..topics import Topics

log = logging.getLogger(__name__)

# task.created and targets.imported travel on different topics; give the
# task a moment to be recorded before calling the batch an orphan.
_TASK_WAIT_SECONDS = 30.0
IMPORT_CONCURRENCY = 2
_DEADLOCK_RETRIES = 5


def register(app: faust.App, topics: Topics, rt: Runtime) -> None:
    async def wait_for_task(task_id: str) -> dict | None:
        deadline = asyncio.get_running_loop().time() + _TASK_WAIT_SECONDS
        while True:
            task = await rt.tasks.get(task_id)
            if task is not None or asyncio.get_running_loop().time() > deadline:
                return task
            await asyncio.sleep(0.2)

    async def import_batch(task_id: str, batch_id: str, accepted: list[TargetIn], problems: list[dict[str, Any]]
                           ) -> BatchReport | None:
        # Rows go in target_key order, so two concurrent batches should never
        # deadlock; should PostgreSQL still pick one as a victim, its
        # transaction rolled back whole and is simply run again.
        for attempt in range(1, _DEADLOCK_RETRIES + 1):
            try:
                return await rt.imports.import_batch(
                    task_id, batch_id, accepted, problems, import_id=import_id_of(batch_id)
                )
            except asyncpg.exceptions.DeadlockDetectedError:
                if attempt == _DEADLOCK_RETRIES:
                    raise
                log.warning("batch %s was a deadlock victim; running it again", batch_id)
                await asyncio.sleep(0.05 * attempt)
        raise AssertionError("unreachable")

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
        started = time.perf_counter()
        accepted, problems = validate_rows(data.targets, default_region=rt.settings.phone_default_region)
        report = await import_batch(data.task_id, data.batch_id, accepted, problems)
        if report is None:
            return  # already applied
        source = metrics.ImportSource.PARSER if "pars" in event.source else metrics.ImportSource.API
        metrics.targets_imported(source, report.accepted, report.invalid, report.duplicate)
        metrics.import_duration_observed(time.perf_counter() - started)
        log.info(
            "batch %s into task %s: %d accepted, %d duplicate, %d invalid, %d suppressed",
            data.batch_id, data.task_id, report.accepted, report.duplicate, report.invalid, report.suppressed,
        )
        if task["status"] == TaskStatus.RUNNING:
            await plan(rt, topics, data.task_id, event.user_id)

    # Two batches at a time: one is validated in Python while PostgreSQL
    # inserts the other. Allowed because this agent writes no table (DESIGN.md,
    # "Faust facts"); safe because batches are idempotent by batch id and
    # insert their rows in target_key order, so two never deadlock.
    @app.agent(topics.targets, name="importer", concurrency=IMPORT_CONCURRENCY)
    async def importer(stream: faust.StreamT) -> None:
        await consume(stream, handle, topics.dead_letters, accepted_types=frozenset({"targets.imported"}))
