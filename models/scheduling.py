"""Pure scheduling decisions of an account's scheduler.

Which task an account serves next, when it may act next, and what an
attempt's outcome does to the account (DESIGN.md, outcome scopes).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from .limits import (
    AccountLimitState,
    ActionKind,
    LimitPolicy,
    apply_cooldown,
    apply_quarantine,
    disable,
    next_allowed_at,
    Window,
)
from .outcomes import SCOPE, Outcome, Scope


def next_action_at(
    policy: LimitPolicy, state: AccountLimitState, now: float, exclude: Collection[ActionKind] = ()
) -> float | None:
    """The earliest time any kind of action (not in ``exclude``) is allowed; None if never."""
    times = [
        t for kind in ActionKind
        if kind not in exclude and (t := next_allowed_at(policy, state, kind, now)) is not None
    ]
    return min(times) if times else None


@dataclass(frozen=True)
class TaskWork:
    """A running task that has targets waiting for this account."""

    task_id: str
    kind: ActionKind
    priority: int
    started_at: float
    last_served_at: float | None = None
    """When this account last acted for the task; None if never."""
    limits: Sequence[Window] = ()
    """The task's own windows for this account: at most ``limit`` of this
    account's actions *for this task* in any ``seconds``. They add to the
    account's limits (which count all its actions), so they can only lower
    what the account does for the task, never raise it."""
    served: Sequence[float] = ()
    """This account's recent action times for this task (for ``limits``)."""


@dataclass(frozen=True)
class Pick:
    """The task to serve now, or when to look again."""

    work: TaskWork | None = None
    wake_at: float | None = None


def task_allows_at(work: TaskWork, now: float) -> float | None:
    """The earliest time ``>= now`` the task's own windows allow this account to act for it."""
    if not work.limits:
        return now
    policy = LimitPolicy(windows={work.kind: list(work.limits)}, pause_min=0.0, pause_max=0.0)
    served = AccountLimitState(recent={work.kind: sorted(work.served)})
    return next_allowed_at(policy, served, work.kind, now)


def serving_order(work: Sequence[TaskWork]) -> list[TaskWork]:
    """Highest priority first; among equals, the task this account served least recently.

    Round-robin by last service keeps two equal tasks sharing an account
    alternating instead of the older one starving the newer.
    """
    return sorted(
        work,
        key=lambda w: (
            -w.priority,
            -math.inf if w.last_served_at is None else w.last_served_at,
            w.started_at,
            w.task_id,
        ),
    )


def pick_task(policy: LimitPolicy, state: AccountLimitState, work: Sequence[TaskWork], now: float) -> Pick:
    """The first task in :func:`serving_order` that the account's and the task's limits allow now.

    A task whose own limits are used up does not block a task of lower
    priority. With nothing allowed now, ``wake_at`` is the earliest time
    something will be (None: never, e.g. the account is disabled).
    """
    wake_at: float | None = None
    for w in serving_order(work):
        account_at = next_allowed_at(policy, state, w.kind, now)
        task_at = task_allows_at(w, now)
        if account_at is None or task_at is None:
            continue
        at = max(account_at, task_at)
        if at <= now:
            return Pick(w)
        wake_at = at if wake_at is None else min(wake_at, at)
    return Pick(wake_at=wake_at)


@dataclass(frozen=True)
class AccountEffect:
    """What an outcome did to the account: the new state and the event to announce."""

    state: AccountLimitState
    event_type: str | None = None
    until: float | None = None


def account_effect(
    policy: LimitPolicy, state: AccountLimitState, outcome: Outcome, retry_after: float | None, now: float
) -> AccountEffect:
    scope = SCOPE[outcome]
    if scope is Scope.ACCOUNT_TEMPORARY:
        # SessionDuplicated carries no wait; a minute keeps the two sessions apart.
        new = apply_cooldown(state, retry_after if retry_after is not None else 60.0, now, policy)
        return AccountEffect(new, "account.cooldown", new.cooldown_until)
    if scope is Scope.ACCOUNT_RESTRICTED:
        new = apply_quarantine(state, now, policy)
        return AccountEffect(new, "account.restricted", new.quarantine_until)
    if scope is Scope.ACCOUNT_DEAD:
        return AccountEffect(disable(state, outcome.value), "account.disabled")
    return AccountEffect(state)
