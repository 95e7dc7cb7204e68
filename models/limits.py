"""Limit policy of the account scheduler: when may a sender account act next.

Pure rules (DESIGN.md, "Outcomes and limits"): sliding-window limits per action
kind, a randomized pause between two actions of one account, FloodWait
cooldowns, PeerFlood quarantine and disabling dead accounts. Nothing here reads
a clock or draws randomness by itself: callers pass ``now`` (epoch seconds) and
the drawn pause (or a ``random.Random``), so every function is deterministic
and a state can be replayed from its events.

Layering: platform default (:meth:`LimitPolicy.telegram_default`) ->
per-account :meth:`LimitPolicy.override`. A task's own limits count only the
account's actions for that task and add to these (``models/scheduling.py``),
so they can only lower what an account does for it.

:class:`AccountLimitState` is a small JSON value meant for a Faust table: the
timestamps of the last N actions per kind rather than a windowed table
(DESIGN.md, "Faust facts": windowed tables expire by a wall-clock timer).

Sliding-window rule: an action at ``t`` is allowed iff fewer than ``limit``
recorded actions ``x`` of that kind lie in ``(t - seconds, t]``. Membership is
computed as ``x <= t and x + seconds > t`` (the same interval in exact
arithmetic) so that the boundary :func:`next_allowed_at` returns,
``x + seconds``, is *exactly* outside the window in floating point; otherwise
rounding could refuse the very time we computed (a livelock).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.dataclasses import dataclass

HOUR = 3600.0
DAY = 24 * HOUR


class ActionKind(StrEnum):
    """What an account does; each kind has its own windows, the pause is shared."""

    INVITE = "invite"
    MESSAGE = "message"


@dataclass(frozen=True)
class Window:
    """At most ``limit`` actions in any interval of ``seconds`` seconds.

    A frozen (hashable) pydantic dataclass so that ``Window(5, 3600)`` works
    positionally and a window can key the :func:`remaining` display.
    ``limit == 0`` means the kind is never allowed.
    """

    limit: Annotated[int, Field(ge=0)]
    seconds: Annotated[float, Field(gt=0, allow_inf_nan=False)]


class LimitPolicy(BaseModel):
    """How often one account may act; see the module docstring for layering."""

    # extra="forbid": a typo in override(pause_mni=...) must fail, not be ignored.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    windows: dict[ActionKind, list[Window]]
    pause_min: float = Field(ge=0)
    pause_max: float = Field(ge=0)
    flood_margin: float = Field(default=0.0, ge=0)
    """Seconds added to every FloodWait."""
    flood_margin_ratio: float = Field(default=0.0, ge=0)
    """Fraction of the FloodWait added on top (0.1 = +10 %)."""
    quarantine_seconds: float = Field(default=DAY, ge=0)

    @model_validator(mode="after")
    def _pause_range(self) -> Self:
        if self.pause_min > self.pause_max:
            raise ValueError("pause_min must not exceed pause_max")
        return self

    @classmethod
    def telegram_default(cls) -> LimitPolicy:
        """Default limits of one Telegram account.

        Deliberately conservative, below what Telegram tolerates: the accounts
        are the users' capital, and a PeerFlood or a ban costs far more than a
        slower campaign. The randomized 30-90 s pause also keeps the rhythm
        from looking automated. FloodWait gets 10 % + 5 s on top because
        acting right at its end tends to earn another one.
        """
        return cls(
            windows={
                ActionKind.INVITE: [Window(5, HOUR), Window(50, DAY)],
                ActionKind.MESSAGE: [Window(40, DAY)],
            },
            pause_min=30.0,
            pause_max=90.0,
            flood_margin=5.0,
            flood_margin_ratio=0.1,
            quarantine_seconds=DAY,
        )

    def override(self, **changes: Any) -> LimitPolicy:
        """Per-account override: a validated copy with ``changes`` applied.

        ``windows`` is merged per kind: ``override(windows={MESSAGE: [...]})``
        replaces the message windows and keeps the invite windows. An override
        may raise limits (it is the account owner's decision, not a task's).
        """
        data = self.model_dump()
        if "windows" in changes:
            data["windows"] = {**data["windows"], **changes.pop("windows")}
        return type(self).model_validate({**data, **changes})

    def longest_window(self) -> float:
        """Seconds of history any window of this policy looks back."""
        return max((w.seconds for ws in self.windows.values() for w in ws), default=0.0)

    def history_size(self, kind: ActionKind) -> int:
        """How many recent timestamps of ``kind`` the windows need (max limit)."""
        return max((w.limit for w in self.windows.get(kind, [])), default=0)


class AccountLimitState(BaseModel):
    """The limit bookkeeping of one account; a JSON value in a Faust table.

    ``recent`` holds the sorted timestamps of the last actions per kind, at
    most the largest limit of the policies it was recorded with: for a time
    ``t`` after every recorded action, the actions in a window ending at ``t``
    are the most recent ones, so the last ``limit`` timestamps decide it.
    """

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    recent: dict[ActionKind, list[float]] = Field(default_factory=dict)
    last_action_at: float | None = None
    next_pause: float = 0.0
    """The pause drawn after the last action (any kind)."""
    cooldown_until: float | None = None
    quarantine_until: float | None = None
    disabled: bool = False
    disabled_reason: str | None = None


def next_allowed_at(
    policy: LimitPolicy, state: AccountLimitState, kind: ActionKind, now: float
) -> float | None:
    """The earliest time ``>= now`` at which the account may do ``kind``.

    ``None`` means never: the account is disabled or a window has limit 0.
    Every constraint has the form ``t >= bound``, so the answer is the max of
    the bounds; evaluated at its own result it returns the same time.
    """
    windows = policy.windows.get(kind, [])
    if state.disabled or any(w.limit == 0 for w in windows):
        return None
    times = state.recent.get(kind, [])
    bounds = [now]
    if state.last_action_at is not None:
        # The pause is >= 0, so this also keeps t after the last action, which
        # the "last `limit` timestamps decide" argument relies on.
        bounds.append(state.last_action_at + state.next_pause)
    if times:
        bounds.append(times[-1])  # defensive: same guarantee if the state is odd
    if state.cooldown_until is not None:
        bounds.append(state.cooldown_until)
    if state.quarantine_until is not None:
        bounds.append(state.quarantine_until)
    for w in windows:
        if len(times) >= w.limit:
            # Allowed once the limit-th most recent action leaves the window.
            bounds.append(times[-w.limit] + w.seconds)
    return max(bounds)


def record_action(
    policy: LimitPolicy,
    state: AccountLimitState,
    kind: ActionKind,
    at: float,
    pause: float,
) -> AccountLimitState:
    """A new state with one action of ``kind`` claimed at ``at``.

    ``pause`` is the pause drawn for after this action (:func:`draw_pause`).
    The history kept is the policy's largest limit, and it never shrinks below
    what it already holds (a policy lowered later must not drop history).
    Not idempotent: de-duplicating re-delivered events is the caller's job.
    """
    if not (math.isfinite(at) and math.isfinite(pause) and pause >= 0):
        raise ValueError(f"invalid action time {at!r} or pause {pause!r}")
    old = state.recent.get(kind, [])
    keep = max(policy.history_size(kind), len(old))
    times = sorted([*old, at])[-keep:] if keep else []
    recent = {k: v for k, v in state.recent.items() if k != kind}
    if times:
        recent[kind] = times
    update: dict[str, Any] = {"recent": recent}
    # A late (re-ordered) action does not move the pause back in time.
    if state.last_action_at is None or at >= state.last_action_at:
        update |= {"last_action_at": at, "next_pause": pause}
    return state.model_copy(update=update)


def apply_cooldown(
    state: AccountLimitState, seconds: float, now: float, policy: LimitPolicy
) -> AccountLimitState:
    """FloodWait(seconds) at ``now``: cool down for seconds plus the margin.

    Never shortens an existing cooldown (a re-delivered older FloodWait must
    not cut a longer one short).
    """
    until = now + seconds * (1 + policy.flood_margin_ratio) + policy.flood_margin
    if state.cooldown_until is not None:
        until = max(until, state.cooldown_until)
    return state.model_copy(update={"cooldown_until": until})


def apply_quarantine(
    state: AccountLimitState, now: float, policy: LimitPolicy
) -> AccountLimitState:
    """PeerFlood at ``now``: quarantine the account (never shortened)."""
    until = now + policy.quarantine_seconds
    if state.quarantine_until is not None:
        until = max(until, state.quarantine_until)
    return state.model_copy(update={"quarantine_until": until})


def disable(state: AccountLimitState, reason: str) -> AccountLimitState:
    """Account dead (banned, session revoked): never act again."""
    return state.model_copy(update={"disabled": True, "disabled_reason": reason})


def remaining(
    policy: LimitPolicy, state: AccountLimitState, kind: ActionKind, now: float
) -> dict[Window, int]:
    """Actions of ``kind`` left in each window ending at ``now`` (for display).

    Ignores pause, cooldown, quarantine and disabling; see
    :func:`next_allowed_at` for whether the account may act.
    """
    times = state.recent.get(kind, [])
    return {
        w: max(0, w.limit - sum(1 for x in times if x <= now and x + w.seconds > now))
        for w in policy.windows.get(kind, [])
    }


def merge_recorded(
    policy: LimitPolicy,
    state: AccountLimitState,
    actions: Iterable[tuple[ActionKind, float]],
    pause: float,
) -> AccountLimitState:
    """Fold in actions the durable claim record holds but ``state`` lacks.

    After a crash the changelog may miss the last actions a worker took
    (its table writes were still buffered), while the claims made before each
    send are in PostgreSQL. Actions already in ``state`` (same kind, same
    time) are skipped, so merging is idempotent. The pause drawn after a lost
    action is unknown; the caller passes a conservative one (the policy's
    maximum).
    """
    merged = state
    for kind, at in sorted(actions, key=lambda action: action[1]):
        if any(abs(x - at) < _SAME_ACTION for x in merged.recent.get(kind, [])):
            continue
        merged = record_action(policy, merged, kind, at, pause)
    return merged


# Claim times round-trip through PostgreSQL's microsecond timestamps.
_SAME_ACTION = 1e-4


def draw_pause(policy: LimitPolicy, rng: random.Random) -> float:
    """A pause in ``[pause_min, pause_max]``; the caller owns the randomness."""
    # Clamp: uniform() may round a hair outside its bounds.
    pause = rng.uniform(policy.pause_min, policy.pause_max)
    return min(max(pause, policy.pause_min), policy.pause_max)
