"""Pure scheduling decisions of an account's scheduler.

Which task an account serves next, which kinds it may do now, when it may act
next, and what an attempt's outcome does to the account (DESIGN.md, outcome
scopes).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

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


def kinds_allowed_now(policy: LimitPolicy, state: AccountLimitState, now: float) -> list[ActionKind]:
    allowed = []
    for kind in ActionKind:
        at = next_allowed_at(policy, state, kind, now)
        if at is not None and at <= now:
            allowed.append(kind)
    return allowed


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
    limits: Mapping[ActionKind, Sequence[Window]] = field(default_factory=dict)
    """The task's own limits, which can only lower the account's."""


@dataclass(frozen=True)
class Pick:
    """The task to serve now (with the policy that allowed it), or when to look again."""

    work: TaskWork | None = None
    policy: LimitPolicy | None = None
    wake_at: float | None = None


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
    """The first task in :func:`serving_order` whose limits allow an action now.

    A task whose own (lowered) limits are used up does not block a task of
    lower priority. With nothing allowed now, ``wake_at`` is the earliest time
    something will be (None: never, e.g. the account is disabled).
    """
    wake_at: float | None = None
    for w in serving_order(work):
        effective = policy.lowered_by(w.limits) if w.limits else policy
        at = next_allowed_at(effective, state, w.kind, now)
        if at is None:
            continue
        if at <= now:
            return Pick(w, effective)
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
