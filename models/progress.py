"""How one attempt's outcome moves its target, and how a task's progress reads."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from .outcomes import SCOPE, Outcome, Scope
from .targets import TERMINAL_TARGET_STATUSES, TargetStatus


def target_status_after(
    outcome: Outcome, transient_failures: int, max_attempts: int, *, task_cancelled: bool = False
) -> TargetStatus:
    """The target's state after an attempt ended with ``outcome``.

    ``transient_failures`` counts this attempt too when it was transient. A
    target that would wait for another try is cancelled with its task (the
    attempt was in flight when the task was cancelled).
    """
    status = _after(outcome, transient_failures, max_attempts)
    if task_cancelled and status is TargetStatus.PENDING:
        return TargetStatus.CANCELLED
    return status


def _after(outcome: Outcome, transient_failures: int, max_attempts: int) -> TargetStatus:
    scope = SCOPE[outcome]
    if scope is Scope.SUCCESS:
        return TargetStatus.INVITED
    if scope is Scope.TARGET_DONE:
        return TargetStatus.ALREADY_MEMBER
    if scope is Scope.TARGET_PERMANENT:
        return TargetStatus.FAILED
    if scope is Scope.TRANSIENT and transient_failures >= max_attempts:
        return TargetStatus.FAILED
    # Account- and task-scoped trouble says nothing about the target: it waits
    # for another try (by this account later, or by another one).
    return TargetStatus.PENDING




class TaskProgress(BaseModel):
    """Counts of a task's targets by state, with derived totals."""

    by_status: dict[TargetStatus, int]

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def done(self) -> int:
        return sum(n for s, n in self.by_status.items() if s in TERMINAL_TARGET_STATUSES)

    @property
    def open(self) -> int:
        return self.total - self.done

    @property
    def percent(self) -> float:
        return 100.0 if self.total == 0 else round(100.0 * self.done / self.total, 2)


class TaskCounts(BaseModel):
    """A task's statistics view: attempts by outcome (a value of the task-stats table)."""

    attempts: int = 0
    outcomes: dict[str, int] = {}
    last_result_at: str | None = None

    def with_result(self, outcome: Outcome, finished_at: datetime) -> "TaskCounts":
        outcomes = dict(self.outcomes)
        outcomes[outcome.value] = outcomes.get(outcome.value, 0) + 1
        return TaskCounts(attempts=self.attempts + 1, outcomes=outcomes, last_result_at=finished_at.isoformat())
