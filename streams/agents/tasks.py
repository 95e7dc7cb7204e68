"""Task agent: records the task lifecycle in PostgreSQL.

Every transition is a compare-and-set from the states the state machine
allows, so a re-delivered event changes nothing the second time.
"""

from __future__ import annotations

import logging

import faust

from models.events import Event, TaskCreated, TaskLifecycle
from models.tasks import EVENT_COMMANDS, TaskCommand, TaskStatus, destination, sources

from ..consume import consume
from ..planner import plan
from ..runtime import Runtime
from ..topics import Topics

log = logging.getLogger(__name__)



def register(app: faust.App, topics: Topics, rt: Runtime) -> None:
    async def handle(event: Event) -> None:
        if isinstance(event, TaskCreated):
            await rt.tasks.create(event.user_id, event.data)
            return
        assert isinstance(event, TaskLifecycle)
        task_id = event.data.task_id
        task = await rt.tasks.get(task_id, owner=event.user_id)
        if task is None:
            log.warning("%s for unknown task %s (or not the owner's)", event.type, task_id)
            return
        if event.type == "task.deleted":
            await rt.tasks.delete(task_id)
            return
        command = EVENT_COMMANDS[event.type]
        if command is TaskCommand.COMPLETE and await rt.targets.has_open(task_id):
            return  # a stale completion request: results are still coming
        new = destination(command)
        changed = await rt.tasks.set_status(task_id, new, expected=sources(command), reason=event.data.reason)
        log.info("task %s: %s -> %s (%s)", task_id, task["status"], new.value, "applied" if changed else "no-op")
        if command is TaskCommand.CANCEL:
            await rt.targets.cancel_pending(task_id)
        # Also on a no-op: a re-delivered start must still wake the accounts. Only
        # this agent writes a task's status, so ``task`` is current when nothing changed.
        if new is TaskStatus.RUNNING and (changed or task["status"] == TaskStatus.RUNNING):
            await plan(rt, topics, task_id, event.user_id)

    @app.agent(topics.tasks, name="task-agent")
    async def task_agent(stream: faust.StreamT) -> None:
        await consume(stream, handle, topics.dead_letters, accepted_types=frozenset({"task.created", *EVENT_COMMANDS, "task.deleted"}))

