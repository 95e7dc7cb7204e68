"""How one attempt's outcome moves its target, how a task's progress reads, and how long it will take."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from pydantic import BaseModel

from .limits import (
    HOUR,
    AccountLimitState,
    ActionKind,
    LimitPolicy,
    Window,
    merge_recorded,
    next_allowed_at,
    remaining,
)
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

    def with_result(self, outcome: Outcome, finished_at: datetime) -> TaskCounts:
        outcomes = dict(self.outcomes)
        outcomes[outcome.value] = outcomes.get(outcome.value, 0) + 1
        return TaskCounts(attempts=self.attempts + 1, outcomes=outcomes, last_result_at=finished_at.isoformat())


class AccountOutlook(BaseModel):
    """What one account can still do, read from its durable action record and its mirrored state."""

    account_id: str
    state: str
    until: float | None
    reason: str | None
    remaining: dict[ActionKind, list[tuple[Window, int]]]
    next_action_at: float | None
    rate_per_hour: float


def account_outlook(
    policy: LimitPolicy,
    account_id: str,
    actions: Sequence[tuple[ActionKind, float]],
    kind: ActionKind,
    now: float,
    mirrored: Mapping[str, object] | None = None,
    disabled: bool = False,
) -> AccountOutlook:
    """The live limit state of an account for display, status and ETA.

    ``actions`` are the account's recorded actions (the claim record, written
    before every send); ``mirrored`` is the cooldown/quarantine state the
    account agent mirrors to Redis. The pause after the last action is not
    recorded, so the shortest one stands in for it (the display never claims
    an account is busier than it is... by more than one pause).
    """
    state = merge_recorded(policy, AccountLimitState(), actions, policy.pause_min)
    label, until, reason = "active", None, None
    if mirrored:
        kind_of = str(mirrored.get("state", ""))
        raw_until = mirrored.get("until")
        until = float(raw_until) if isinstance(raw_until, (int, float)) else None
        reason = str(mirrored["reason"]) if mirrored.get("reason") is not None else None
        if kind_of == "account.cooldown" and until is not None and until > now:
            state, label = state.model_copy(update={"cooldown_until": until}), "cooldown"
        elif kind_of == "account.restricted" and until is not None and until > now:
            state, label = state.model_copy(update={"quarantine_until": until}), "restricted"
        elif kind_of == "account.disabled":
            disabled = True
    if disabled:
        state, label = state.model_copy(update={"disabled": True}), "disabled"
    if label == "active":
        until = None
    return AccountOutlook(
        account_id=account_id, state=label, until=until, reason=reason if label != "active" else None,
        remaining={k: list(remaining(policy, state, k, now).items()) for k in policy.windows},
        next_action_at=next_allowed_at(policy, state, kind, now),
        rate_per_hour=0.0 if state.disabled else steady_rate_per_hour(policy, kind),
    )


def steady_rate_per_hour(policy: LimitPolicy, kind: ActionKind) -> float:
    """Actions per hour one account sustains: its tightest window, or its pauses if those are tighter."""
    rates = [w.limit * HOUR / w.seconds for w in policy.windows.get(kind, [])]
    mean_pause = (policy.pause_min + policy.pause_max) / 2
    if mean_pause > 0:
        rates.append(HOUR / mean_pause)
    return min(rates) if rates else 0.0


def estimate_eta(open_targets: int, accounts: Sequence[AccountOutlook], now: float) -> float | None:
    """Seconds until ``open_targets`` are worked off by ``accounts`` at their steady rates.

    Starts when the first account may act again; None when no account ever can.
    A rough figure by design: it ignores other tasks sharing the accounts.
    """
    if open_targets <= 0:
        return 0.0
    able = [a for a in accounts if a.next_action_at is not None and a.rate_per_hour > 0]
    if not able:
        return None
    start = max(0.0, min(a.next_action_at for a in able if a.next_action_at is not None) - now)
    per_second = sum(a.rate_per_hour for a in able) / HOUR
    return round(start + open_targets / per_second, 1)


# Failed targets an operator may send again. Only transient failures: a
# refusal (privacy, blocked, kicked) is a person who said no, and an invalid
# user stays invalid (DESIGN.md principle 3).
RETRYABLE_FAILURES = frozenset({Outcome.TRANSIENT_ERROR})
# Targets whose record an operator may delete: never one in flight or unresolved
# (an attempt may be landing), nor one that was done (the record of who was added).
DELETABLE_TARGET_STATUSES = frozenset(
    {TargetStatus.PENDING, TargetStatus.SKIPPED, TargetStatus.FAILED, TargetStatus.CANCELLED}
)
