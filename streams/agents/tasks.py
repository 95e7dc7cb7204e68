"""Task agent: records the task lifecycle, settings changes and accounts in PostgreSQL.

Every transition is a compare-and-set from the states the state machine
allows, and every settings change one from the states that allow those
fields, so a re-delivered (or overtaken) event changes nothing it should not.
"""

from __future__ import annotations

import logging

import faust

from models.events import (
    Event,
    TaskAccountsChanged,
    TaskCreated,
    TaskLifecycle,
    TaskRefData,
    TaskUpdated,
)
from models.tasks import (
    ACCOUNT_CHANGE_STATES,
    EVENT_COMMANDS,
    TaskCommand,
    TaskStatus,
    destination,
    sources,
    states_allowing,
)

from ..consume import consume
from ..planner import plan
from ..publish import send_event
from ..runtime import Runtime
from ..topics import Topics

log = logging.getLogger(__name__)

ACCEPTED = frozenset({
    "task.created", *EVENT_COMMANDS, "task.deleted", "task.updated", "task.accounts_attached",
    "task.accounts_detached",
})


def register(app: faust.App, topics: Topics, rt: Runtime) -> None:
    async def updated(event: TaskUpdated, task: dict) -> None:
        changes = event.data.changes
        fields = set(changes.model_fields_set)
        applied = await rt.tasks.update(task["id"], changes.changed(), expected=states_allowing(fields))
        log.info("task %s: %s changed (%s)", task["id"], ", ".join(sorted(fields)), "applied" if applied else "refused")

    async def deleted(task: dict) -> None:
        # Cancel first: nothing may keep sending for a task nobody can see any more.
        task_id = task["id"]
        if TaskStatus(task["status"]) in sources(TaskCommand.CANCEL):
            await rt.tasks.set_status(task_id, TaskStatus.CANCELLED, expected=sources(TaskCommand.CANCEL),
                                      reason="deleted")
            await rt.targets.cancel_pending(task_id)
        await rt.tasks.mark_deleted(task_id)
        log.info("task %s deleted", task_id)

    async def accounts_changed(event: TaskAccountsChanged, task: dict) -> None:
        task_id, owner = task["id"], event.user_id
        if TaskStatus(task["status"]) not in ACCOUNT_CHANGE_STATES:
            return
        if event.type == "task.accounts_attached":
            await rt.tasks.attach_accounts(task_id, event.data.account_ids)
        else:
            gone = await rt.tasks.detach_accounts(task_id, event.data.account_ids)
            await rt.targets.unassign_from_task(task_id, gone)
        log.info("task %s: accounts %s %s", task_id, ", ".join(event.data.account_ids), event.type.rsplit("_", 1)[1])
        if task["status"] != TaskStatus.RUNNING:
            return
        if await rt.tasks.accounts(task_id):
            await plan(rt, topics, task_id, owner)
        else:
            pause = TaskLifecycle(type="task.paused", user_id=owner,
                                  data=TaskRefData(task_id=task_id, reason="no account left"))
            await send_event(topics.tasks, task_id, pause)

    async def handle(event: Event) -> None:
        if isinstance(event, TaskCreated):
            await rt.tasks.create(event.user_id, event.data)
            return
        assert isinstance(event, (TaskLifecycle, TaskUpdated, TaskAccountsChanged))
        task_id = event.data.task_id
        task = await rt.tasks.get(task_id, owner=event.user_id)
        if task is None:
            log.warning("%s for unknown task %s (or not the owner's)", event.type, task_id)
            return
        if isinstance(event, TaskUpdated):
            await updated(event, task)
            return
        if isinstance(event, TaskAccountsChanged):
            await accounts_changed(event, task)
            return
        if event.type == "task.deleted":
            await deleted(task)
            return
        command = EVENT_COMMANDS[event.type]
        if command is TaskCommand.COMPLETE and await rt.targets.has_open(task_id):
            return  # a stale completion request: results are still coming
        new = destination(command)
        changed = await rt.tasks.set_status(task_id, new, expected=sources(command), reason=event.data.reason)
        log.info("task %s: %s -> %s (%s)", task_id, task["status"], new.value, "applied" if changed else "no-op")
        if command is TaskCommand.CANCEL:
            await rt.targets.cancel_pending(task_id)
        if new in (TaskStatus.COMPLETED, TaskStatus.CANCELLED):
            # Later tasks of this user may skip who refused for privacy (idempotent).
            await rt.suppression.remember_privacy_failures(event.user_id, task_id)
        # Also on a no-op: a re-delivered start must still wake the accounts. Only
        # this agent writes a task's status, so ``task`` is current when nothing changed.
        if new is TaskStatus.RUNNING and (changed or task["status"] == TaskStatus.RUNNING):
            await plan(rt, topics, task_id, event.user_id)

    @app.agent(topics.tasks, name="task-agent")
    async def task_agent(stream: faust.StreamT) -> None:
        await consume(stream, handle, topics.dead_letters, accepted_types=ACCEPTED)

