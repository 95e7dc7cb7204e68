"""The planner: spreads a running task's pending targets over its accounts.

Each account with work gets a ``work.assigned`` event keyed by the account, so
that the one worker owning that account's partition schedules it.
"""

from __future__ import annotations

from datetime import datetime

from models.events import TaskLifecycle, TaskRefData, WorkAssigned, WorkAssignedData

from .publish import send_event
from .runtime import Runtime
from .topics import Topics


async def plan(
    rt: Runtime, topics: Topics, task_id: str, owner: str, idle_since: datetime | None = None
) -> dict[str, int]:
    """Assign what is unassigned and wake every account that has work; idempotent.

    The reconciler passes ``idle_since``: an account that acted since then is
    clearly scheduled, and waking it would only queue an event behind real work.
    """
    accounts = await rt.tasks.accounts(task_id)
    await rt.targets.assign_unassigned(task_id, accounts)
    work = await rt.targets.accounts_with_work(task_id, idle_since)
    for account_id, n in work.items():
        event = WorkAssigned(
            user_id=owner, data=WorkAssignedData(task_id=task_id, account_id=account_id, targets=n)
        )
        await send_event(topics.account_work, account_id, event)
    if not work:
        await request_completion(rt, topics, task_id, owner)
    return work


async def request_completion(rt: Runtime, topics: Topics, task_id: str, owner: str) -> None:
    """Ask the task agent to complete the task if nothing is left open."""
    if not await rt.targets.has_open(task_id):
        event = TaskLifecycle(type="task.completed", user_id=owner, data=TaskRefData(task_id=task_id))
        await send_event(topics.tasks, task_id, event)
