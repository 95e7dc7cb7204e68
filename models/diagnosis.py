"""Why a task is not sending, in one sentence: the seed's diagnosis checklist as pure rules.

``invite-service doctor --task ID`` gathers :class:`TaskFacts` from
PostgreSQL, Redis and the broker; :func:`why_not_sending` turns them into the
most likely reason. The rules run in the order an operator would check:
the task's own state first, then its work, its accounts, then the workers.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from .tasks import TaskStatus

STALLED_AFTER_SECONDS = 300.0


class AccountFacts(BaseModel):
    """One account of the task, as the checks see it."""

    account_id: str
    health: str = "active"  # task_accounts.state: active / restricted / disabled
    blocked_until: float | None = None  # cooldown or quarantine from the Redis mirror
    block_reason: str | None = None
    actions_last_hour: int = 0
    actions_last_day: int = 0
    hourly_limit: int | None = None
    daily_limit: int | None = None

    def at_limit(self) -> bool:
        return (self.hourly_limit is not None and self.actions_last_hour >= self.hourly_limit) or (
            self.daily_limit is not None and self.actions_last_day >= self.daily_limit
        )


class TaskFacts(BaseModel):
    """What doctor knows about one task."""

    task_id: str
    status: TaskStatus
    status_reason: str | None = None
    pending: int = 0
    in_flight: int = 0
    unknown: int = 0
    accounts: list[AccountFacts] = Field(default_factory=list)
    last_result_at: datetime | None = None
    workers: int | None = None  # consumer group members; None = could not tell
    broker_reachable: bool = True


def _at(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def why_not_sending(facts: TaskFacts, now: float) -> str:
    """The most likely reason the task is (not) sending right now."""
    status = facts.status
    if status is TaskStatus.DRAFT:
        return "The task was never started: execute it (POST /api/v1/tasks/{id}/execute)."
    if status is TaskStatus.PAUSED:
        return f"The task is paused: {facts.status_reason or 'by an operator'}. Resume it when that is fixed."
    if status in (TaskStatus.COMPLETED, TaskStatus.CANCELLED, TaskStatus.FAILED):
        return f"The task is {status.value}; there is nothing left to send."
    if not facts.broker_reachable:
        return "The Kafka broker cannot be reached: no worker can schedule anything."
    if facts.workers == 0:
        return "No worker is running (the consumer group is empty): start `invite-service worker`."
    if facts.pending == 0 and facts.in_flight == 0:
        if facts.unknown:
            return (f"{facts.unknown} targets have an unknown delivery and wait for an operator;"
                    " nothing else is left to send.")
        return "Every target is done; the task completes on the next reconciler round."
    if not facts.accounts:
        return "The task has no sender accounts: attach at least one."
    healthy = [a for a in facts.accounts if a.health == "active"]
    if not healthy:
        states = ", ".join(sorted({a.health for a in facts.accounts}))
        return f"No healthy account left (all {states}): attach healthy accounts, then resume."
    free = [a for a in healthy if a.blocked_until is None or a.blocked_until <= now]
    if not free:
        until = min(a.blocked_until for a in healthy if a.blocked_until is not None)
        reasons = ", ".join(sorted({a.block_reason or "cooldown" for a in healthy}))
        return f"Every healthy account is cooling down ({reasons}); the first is free again at {_at(until)}."
    if all(a.at_limit() for a in free):
        return "Every free account has used its hourly or daily limit; sending resumes as their windows move on."
    if facts.last_result_at is not None and now - facts.last_result_at.timestamp() > STALLED_AFTER_SECONDS:
        idle = int(now - facts.last_result_at.timestamp()) // 60
        return (f"Accounts may send, but no result for {idle} min: check the Integration Service"
                " (circuit breaker) and the workers' logs.")
    if facts.last_result_at is None:
        return "Accounts may send and no result has arrived yet: the first sends follow the accounts' pauses."
    return f"Sending normally: {len(free)} account(s) free, last result {int(now - facts.last_result_at.timestamp())} s ago."
