"""Tests of the account limit policy (models/limits.py).

Examples pin the Telegram rules; hypothesis simulates a scheduler that acts
exactly at ``next_allowed_at`` and checks the recorded history by brute force.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from models.limits import (
    DAY,
    HOUR,
    AccountLimitState,
    ActionKind,
    LimitPolicy,
    Window,
    apply_cooldown,
    apply_quarantine,
    disable,
    draw_pause,
    merge_recorded,
    next_allowed_at,
    record_action,
    remaining,
)

INVITE, MESSAGE = ActionKind.INVITE, ActionKind.MESSAGE
T0 = 1_700_000_000.0  # realistic epoch magnitude: float rounding matters here


def no_pause(policy: LimitPolicy) -> LimitPolicy:
    return policy.override(pause_min=0.0, pause_max=0.0)


def replay(policy: LimitPolicy, kind: ActionKind, offsets: list[float], pause: float = 0.0):
    state = AccountLimitState()
    for off in offsets:
        state = record_action(policy, state, kind, T0 + off, pause)
    return state


# --- brute-force oracle, written from the definition, not from the closed form


def in_window(x: float, t: float, seconds: float) -> bool:
    """x in (t - seconds, t], evaluated the way models/limits.py documents."""
    return x <= t and x + seconds > t


def allowed(policy: LimitPolicy, state: AccountLimitState, kind: ActionKind, t: float) -> bool:
    if state.disabled:
        return False
    times = state.recent.get(kind, [])
    if state.last_action_at is not None and t < state.last_action_at + state.next_pause:
        return False
    if any(t < x for x in times):
        return False
    for until in (state.cooldown_until, state.quarantine_until):
        if until is not None and t < until:
            return False
    return all(
        sum(in_window(x, t, w.seconds) for x in times) < w.limit
        for w in policy.windows.get(kind, [])
    )


def max_in_any_window(times: list[float], seconds: float) -> int:
    """Most actions in any interval of length ``seconds`` (one ending at an action)."""
    return max((sum(in_window(x, t, seconds) for x in times) for t in times), default=0)


# --- examples

HOURLY = no_pause(LimitPolicy.telegram_default().override(windows={INVITE: [Window(5, HOUR)]}))
DAILY = no_pause(LimitPolicy.telegram_default().override(windows={INVITE: [Window(50, DAY)]}))
TELEGRAM = no_pause(LimitPolicy.telegram_default())
FIVE_AN_HOUR_FOR_TEN_HOURS = [h * HOUR + i * 100 for h in range(10) for i in range(5)]


@pytest.mark.parametrize(
    ("policy", "kind", "offsets", "now", "expected"),
    [
        # 5/hour: the 6th invite within the hour waits until the 1st leaves.
        (HOURLY, INVITE, [0, 60, 120, 180, 240], 300, HOUR),
        (HOURLY, INVITE, [0, 60, 120, 180, 240], HOUR, HOUR),
        (HOURLY, INVITE, [0, 60, 120, 180], 300, 300),
        (HOURLY, INVITE, [0, 600, 1200, 1800, 2400, HOUR], HOUR + 1, 600 + HOUR),
        # 50/day.
        (DAILY, INVITE, [i * 60 for i in range(50)], 3000, DAY),
        (DAILY, INVITE, [i * 60 for i in range(49)], 3000, 3000),
        # Both invite windows: 5 an hour for 10 hours, then the day is full.
        (TELEGRAM, INVITE, FIVE_AN_HOUR_FOR_TEN_HOURS, 10 * HOUR, DAY),
        # 40 messages/day; invites are not counted against messages.
        (TELEGRAM, MESSAGE, [i * 10 for i in range(40)], 500, DAY),
        (TELEGRAM, MESSAGE, [i * 10 for i in range(39)], 500, 500),
    ],
)
def test_window_examples(policy, kind, offsets, now, expected):
    state = replay(policy, kind, offsets)
    got = next_allowed_at(policy, state, kind, T0 + now)
    assert got == T0 + expected
    assert allowed(policy, state, kind, got)
    assert got == T0 + now or not allowed(policy, state, kind, math.nextafter(got, -math.inf))


def test_remaining_display():
    state = replay(TELEGRAM, INVITE, [0, 60, 120])
    assert remaining(TELEGRAM, state, INVITE, T0 + 200) == {Window(5, HOUR): 2, Window(50, DAY): 47}
    later = remaining(TELEGRAM, state, INVITE, T0 + HOUR + 61)
    assert later == {Window(5, HOUR): 4, Window(50, DAY): 47}
    assert remaining(TELEGRAM, state, MESSAGE, T0 + 200) == {Window(40, DAY): 40}


def test_pause_applies_across_kinds():
    policy = LimitPolicy.telegram_default()
    state = record_action(policy, AccountLimitState(), INVITE, T0, pause=45.0)
    assert next_allowed_at(policy, state, INVITE, T0 + 10) == T0 + 45
    assert next_allowed_at(policy, state, MESSAGE, T0 + 10) == T0 + 45
    assert next_allowed_at(policy, state, MESSAGE, T0 + 100) == T0 + 100


def test_late_action_does_not_move_pause_back():
    policy = LimitPolicy.telegram_default()
    state = record_action(policy, AccountLimitState(), INVITE, T0 + 100, pause=50.0)
    state = record_action(policy, state, INVITE, T0, pause=30.0)
    assert (state.last_action_at, state.next_pause) == (T0 + 100, 50.0)
    assert state.recent[INVITE] == [T0, T0 + 100]


def test_cooldown_adds_margin_and_never_shortens():
    policy = LimitPolicy.telegram_default()  # +10 % + 5 s
    state = apply_cooldown(AccountLimitState(), 100, T0, policy)
    assert state.cooldown_until == pytest.approx(T0 + 115)
    assert next_allowed_at(policy, state, INVITE, T0) == state.cooldown_until
    shorter = apply_cooldown(state, 10, T0 + 1, policy)
    assert shorter.cooldown_until == state.cooldown_until
    assert next_allowed_at(policy, state, INVITE, T0 + 200) == T0 + 200


def test_quarantine():
    policy = LimitPolicy.telegram_default()
    state = apply_quarantine(AccountLimitState(), T0, policy)
    assert state.quarantine_until == T0 + DAY
    assert next_allowed_at(policy, state, MESSAGE, T0 + 5) == T0 + DAY
    assert apply_quarantine(state, T0 - 10, policy).quarantine_until == T0 + DAY
    custom = policy.override(quarantine_seconds=HOUR)
    assert apply_quarantine(AccountLimitState(), T0, custom).quarantine_until == T0 + HOUR


def test_disabled_is_never():
    policy = LimitPolicy.telegram_default()
    state = disable(AccountLimitState(), "account_banned")
    assert state.disabled and state.disabled_reason == "account_banned"
    assert next_allowed_at(policy, state, INVITE, T0) is None
    assert next_allowed_at(policy, state, MESSAGE, T0) is None


def test_zero_limit_is_never():
    policy = LimitPolicy.telegram_default().override(windows={MESSAGE: [Window(0, DAY)]})
    assert next_allowed_at(policy, AccountLimitState(), MESSAGE, T0) is None
    assert next_allowed_at(policy, AccountLimitState(), INVITE, T0) == T0


def test_telegram_defaults():
    p = LimitPolicy.telegram_default()
    assert p.windows == {INVITE: [Window(5, HOUR), Window(50, DAY)], MESSAGE: [Window(40, DAY)]}
    assert (p.pause_min, p.pause_max, p.quarantine_seconds) == (30, 90, DAY)
    assert (p.flood_margin, p.flood_margin_ratio) == (5, 0.1)


def test_override_merges_windows_per_kind_and_validates():
    p = LimitPolicy.telegram_default()
    o = p.override(windows={MESSAGE: [Window(100, DAY)]}, pause_min=10)
    assert o.windows[INVITE] == p.windows[INVITE]
    assert o.windows[MESSAGE] == [Window(100, DAY)]  # an account override may raise
    assert (o.pause_min, o.pause_max) == (10, 90)
    assert p.pause_min == 30  # the original is untouched
    with pytest.raises(ValidationError):
        p.override(pause_mni=10)  # typo
    with pytest.raises(ValidationError):
        p.override(pause_min=100)  # > pause_max
    with pytest.raises(ValidationError):
        p.override(windows={INVITE: [{"limit": -1, "seconds": 10}]})


def effective_limit(policy: LimitPolicy, kind: ActionKind, seconds: float) -> int | None:
    limits = [w.limit for w in policy.windows.get(kind, []) if w.seconds == seconds]
    return min(limits) if limits else None


def test_history_is_bounded_by_max_limit():
    policy = no_pause(LimitPolicy.telegram_default())
    state = AccountLimitState()
    t = T0
    for _ in range(300):
        t = next_allowed_at(policy, state, INVITE, t)
        state = record_action(policy, state, INVITE, t, 0.0)
    assert len(state.recent[INVITE]) == 50
    assert len(state.model_dump_json()) < 2000


def test_history_never_shrinks_under_a_smaller_policy():
    """A policy with smaller limits (an override taken back) must not drop recorded history."""
    account = no_pause(LimitPolicy.telegram_default())
    weekly = account.override(windows={INVITE: [Window(5, HOUR), Window(60, 7 * DAY)]})
    state = replay(weekly, INVITE, [i * 2000 for i in range(60)])
    assert len(state.recent[INVITE]) == 60
    state = record_action(account, state, INVITE, T0 + 60 * 2000, 0.0)
    assert len(state.recent[INVITE]) == 60  # account policy alone would keep 50


def test_record_action_rejects_bad_input():
    policy = LimitPolicy.telegram_default()
    with pytest.raises(ValueError):
        record_action(policy, AccountLimitState(), INVITE, T0, -1.0)
    with pytest.raises(ValueError):
        record_action(policy, AccountLimitState(), INVITE, math.nan, 1.0)


def test_draw_pause_is_deterministic_and_in_range():
    policy = LimitPolicy.telegram_default()
    a = [draw_pause(policy, random.Random(7)) for _ in range(3)]
    b = [draw_pause(policy, random.Random(7)) for _ in range(3)]
    assert a == b
    rng = random.Random(1)
    assert all(30 <= draw_pause(policy, rng) <= 90 for _ in range(1000))
    fixed = policy.override(pause_min=42, pause_max=42)
    assert draw_pause(fixed, rng) == 42


def test_state_json_round_trip_example():
    policy = LimitPolicy.telegram_default()
    state = record_action(policy, AccountLimitState(), MESSAGE, T0 + 0.1, 33.3)
    state = apply_cooldown(apply_quarantine(state, T0, policy), 12.5, T0, policy)
    state = disable(state, "session_revoked")
    assert AccountLimitState.model_validate_json(state.model_dump_json()) == state
    assert LimitPolicy.model_validate_json(policy.model_dump_json()) == policy


# --- properties

seconds_st = st.floats(min_value=0.5, max_value=20_000, allow_nan=False)
windows_st = st.lists(st.builds(Window, st.integers(1, 6), seconds_st), max_size=3)


@st.composite
def policies(draw) -> LimitPolicy:
    pause_min = draw(st.floats(0, 100))
    return LimitPolicy(
        windows={INVITE: draw(windows_st), MESSAGE: draw(windows_st)},
        pause_min=pause_min,
        pause_max=pause_min + draw(st.floats(0, 100)),
        flood_margin=draw(st.floats(0, 10)),
        flood_margin_ratio=draw(st.floats(0, 0.5)),
        quarantine_seconds=draw(st.floats(0, DAY)),
    )


advance_st = st.floats(0, 30_000, allow_nan=False)
step_st = st.one_of(
    st.tuples(st.just("act"), advance_st, st.sampled_from(ActionKind)),
    st.tuples(st.just("flood"), advance_st, st.floats(0, 5_000)),
    st.tuples(st.just("peer_flood"), advance_st),
)


@dataclass
class Done:
    kind: ActionKind
    at: float
    pause: float


@dataclass
class Sim:
    state: AccountLimitState = field(default_factory=AccountLimitState)
    done: list[Done] = field(default_factory=list)
    # (actions done before, blocked until): cooldowns and quarantines
    blocked: list[tuple[int, float]] = field(default_factory=list)


def simulate(account, steps, rng, start) -> Sim:
    """A scheduler acting exactly at max(now, next_allowed_at), checking as it goes."""
    sim, now = Sim(), start
    for step in steps:
        now += step[1]
        if step[0] == "flood":
            sim.state = apply_cooldown(sim.state, step[2], now, account)
            sim.blocked.append((len(sim.done), sim.state.cooldown_until))
        elif step[0] == "peer_flood":
            sim.state = apply_quarantine(sim.state, now, account)
            sim.blocked.append((len(sim.done), sim.state.quarantine_until))
        else:
            _, _, kind = step
            policy = account
            t = next_allowed_at(policy, sim.state, kind, now)
            assert t is not None and t >= now
            at = max(now, t)
            # No livelock: asking again at that time gives that time, and it is allowed.
            assert next_allowed_at(policy, sim.state, kind, at) == at
            assert allowed(policy, sim.state, kind, at)
            # Earliest: one tick before is refused (unless it is `now` itself).
            if at > now:
                assert not allowed(policy, sim.state, kind, math.nextafter(at, -math.inf))
            pause = draw_pause(policy, rng)
            sim.state = record_action(policy, sim.state, kind, at, pause)
            sim.done.append(Done(kind, at, pause))
            now = at
    return sim


@settings(max_examples=300, deadline=None)
@given(
    account=policies(),
    steps=st.lists(step_st, max_size=60),
    rng=st.randoms(use_true_random=False),
    start=st.floats(T0, T0 + 1e7),
)
def test_scheduler_never_exceeds_any_window(account, steps, rng, start):
    sim = simulate(account, steps, rng, start)
    for kind in ActionKind:
        times = [d.at for d in sim.done if d.kind == kind]
        for w in account.windows[kind]:
            assert max_in_any_window(times, w.seconds) <= w.limit
        assert len(sim.state.recent.get(kind, [])) <= account.history_size(kind)  # bounded state
    for before, after in zip(sim.done, sim.done[1:]):
        assert after.at >= before.at + before.pause  # the drawn pause held
    for before_count, until in sim.blocked:
        assert all(d.at >= until for d in sim.done[before_count:])


@settings(max_examples=200, deadline=None)
@given(
    account=policies(),
    steps=st.lists(step_st, max_size=30),
    rng=st.randoms(use_true_random=False),
    reason=st.none() | st.text(max_size=20),
)
def test_state_json_round_trip(account, steps, rng, reason):
    state = simulate(account, steps, rng, T0).state
    if reason is not None:
        state = disable(state, reason)
    assert AccountLimitState.model_validate_json(state.model_dump_json()) == state
    assert LimitPolicy.model_validate_json(account.model_dump_json()) == account


# --- recovery: merging the claim record into a changelog state


@settings(max_examples=200, deadline=None)
@given(
    account=policies(),
    # One account acts at most once at a time: its claims are milliseconds apart at least.
    times=st.lists(st.integers(0, 50_000_000), min_size=1, max_size=40, unique=True),
    kinds=st.lists(st.sampled_from(ActionKind), min_size=40, max_size=40),
    kept=st.integers(0, 40),
    now_after=st.floats(0, 10_000),
)
def test_merged_state_is_never_less_strict_than_the_full_history(account, times, kinds, kept, now_after):
    """A state that lost its last actions, merged with the claim record, refuses what the full one refuses."""
    actions = sorted(((kind, T0 + t / 1000) for kind, t in zip(kinds, times)), key=lambda a: a[1])
    full = AccountLimitState()
    lost = AccountLimitState()
    for i, (kind, at) in enumerate(actions):
        full = record_action(account, full, kind, at, account.pause_max)
        if i < kept:  # the changelog only got the first `kept` writes
            lost = record_action(account, lost, kind, at, account.pause_max)
    merged = merge_recorded(account, lost, actions, account.pause_max)
    assert merge_recorded(account, merged, actions, account.pause_max) == merged  # idempotent
    now = actions[-1][1] + now_after
    for kind in ActionKind:
        assert next_allowed_at(account, merged, kind, now) == next_allowed_at(account, full, kind, now)


def test_merge_skips_actions_the_state_already_has():
    policy = LimitPolicy.telegram_default()
    state = record_action(policy, AccountLimitState(), INVITE, T0, 45.0)
    # the record's time went through PostgreSQL's microseconds
    assert merge_recorded(policy, state, [(INVITE, T0 + 4e-7)], policy.pause_max) == state
    merged = merge_recorded(policy, state, [(INVITE, T0 + 10)], policy.pause_max)
    assert merged.recent[INVITE] == [T0, T0 + 10]
    assert merged.last_action_at == T0 + 10 and merged.next_pause == policy.pause_max


def test_longest_window():
    assert LimitPolicy.telegram_default().longest_window() == DAY
    assert no_pause(LimitPolicy.telegram_default()).override(windows={INVITE: [], MESSAGE: []}).longest_window() == 0
