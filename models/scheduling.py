"""Pure scheduling decisions of an account's scheduler.

Which kinds an account may do now, when it may act next, and what an
attempt's outcome does to the account (DESIGN.md, outcome scopes).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from .limits import (
    AccountLimitState,
    ActionKind,
    LimitPolicy,
    apply_cooldown,
    apply_quarantine,
    disable,
    next_allowed_at,
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
