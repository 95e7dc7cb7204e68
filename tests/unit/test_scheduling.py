"""Which task an account serves next: priority, round-robin among equals, task limits."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from models.events import TaskLimits
from models.limits import HOUR, AccountLimitState, ActionKind, LimitPolicy, Window, record_action
from models.scheduling import TaskWork, pick_task, serving_order

T0 = 1_700_000_000.0
INVITE, MESSAGE = ActionKind.INVITE, ActionKind.MESSAGE
POLICY = LimitPolicy.telegram_default().override(
    pause_min=0.0, pause_max=0.0, windows={INVITE: [Window(100, HOUR)], MESSAGE: [Window(100, HOUR)]}
)


def work(task_id: str, priority: int = 1, last: float | None = None, started: float = T0, **kw) -> TaskWork:
    return TaskWork(task_id=task_id, kind=kw.pop("kind", INVITE), priority=priority, started_at=started,
                    last_served_at=last, **kw)


def test_higher_priority_first():
    picked = pick_task(POLICY, AccountLimitState(), [work("low", 0), work("high", 2), work("normal", 1)], T0)
    assert picked.work is not None and picked.work.task_id == "high"


def test_equal_priorities_take_turns():
    """The task served least recently goes next; a never-served task goes first."""
    a, b, c = work("a", last=T0 - 10), work("b", last=T0 - 20), work("c", last=None, started=T0 + 5)
    assert [w.task_id for w in serving_order([a, b, c])] == ["c", "b", "a"]


def test_round_robin_alternates_over_a_run():
    tasks = {"first": work("first", started=T0), "second": work("second", started=T0 + 1)}
    served: list[str] = []
    state, now = AccountLimitState(), T0
    for _ in range(6):
        pick = pick_task(POLICY, state, list(tasks.values()), now)
        assert pick.work is not None
        served.append(pick.work.task_id)
        state = record_action(POLICY, state, pick.work.kind, now, 0.0)
        tasks[pick.work.task_id] = work(pick.work.task_id, last=now, started=pick.work.started_at)
        now += 1
    assert served == ["first", "second"] * 3


def test_a_task_out_of_its_own_limit_does_not_block_lower_priorities():
    capped = work("capped", 2, limits=TaskLimits(invites_per_hour=1).windows_for(INVITE), served=(T0 - 60,))
    picked = pick_task(POLICY, AccountLimitState(), [capped, work("other", 1)], T0)
    assert picked.work is not None and picked.work.task_id == "other"


def test_task_limits_count_only_the_tasks_own_actions():
    """Other tasks' invites fill the account's hour; the capped task still gets its share."""
    busy = AccountLimitState()
    for t in (T0 - 300, T0 - 200, T0 - 100):
        busy = record_action(POLICY, busy, INVITE, t, 0.0)
    capped = work("capped", 2, limits=TaskLimits(invites_per_hour=2).windows_for(INVITE), served=())
    picked = pick_task(POLICY, busy, [capped, work("other", 1)], T0)
    assert picked.work is not None and picked.work.task_id == "capped"


def test_nothing_allowed_now_says_when_to_look_again():
    capped = work("capped", limits=TaskLimits(invites_per_hour=1).windows_for(INVITE), served=(T0,))
    picked = pick_task(POLICY, AccountLimitState(), [capped], T0 + 10)
    assert picked.work is None and picked.wake_at == T0 + HOUR


def test_disabled_or_no_work_never_wakes():
    assert pick_task(POLICY, AccountLimitState(), [], T0).wake_at is None
    dead = AccountLimitState(disabled=True)
    assert pick_task(POLICY, dead, [work("a")], T0) == pick_task(POLICY, dead, [], T0)


def test_message_windows_apply_to_message_tasks():
    policy = POLICY.override(windows={MESSAGE: [Window(0, HOUR)]})
    picked = pick_task(policy, AccountLimitState(), [work("msg", 2, kind=MESSAGE), work("inv", 1)], T0)
    assert picked.work is not None and picked.work.task_id == "inv"


# --- property: a scheduler driven by pick_task keeps every account and task window

windows_st = st.lists(st.builds(Window, st.integers(1, 5), st.floats(1, 20_000)), max_size=2)


@settings(max_examples=200, deadline=None)
@given(
    account_windows=windows_st,
    task_limits=st.lists(windows_st, min_size=1, max_size=3),
    priorities=st.lists(st.integers(0, 2), min_size=3, max_size=3),
    advances=st.lists(st.floats(0, 5_000), max_size=50),
)
def test_picks_never_exceed_account_or_task_windows(account_windows, task_limits, priorities, advances):
    policy = POLICY.override(windows={INVITE: account_windows})
    tasks = {f"t{i}": limits for i, limits in enumerate(task_limits)}
    served: dict[str, list[float]] = {name: [] for name in tasks}
    done: list[float] = []
    state, now = AccountLimitState(), T0
    for advance in advances:
        now += advance
        work = [
            TaskWork(task_id=name, kind=INVITE, priority=priorities[i], started_at=T0,
                     last_served_at=max(served[name], default=None), limits=tuple(limits),
                     served=tuple(served[name]))
            for i, (name, limits) in enumerate(tasks.items())
        ]
        pick = pick_task(policy, state, work, now)
        if pick.work is None:
            if pick.wake_at is None:
                break
            now = pick.wake_at
            continue
        state = record_action(policy, state, INVITE, now, 0.0)
        served[pick.work.task_id].append(now)
        done.append(now)

    def worst(times: list[float], seconds: float) -> int:
        return max((sum(1 for x in times if t - seconds < x <= t) for t in times), default=0)

    for w in account_windows:
        assert worst(done, w.seconds) <= w.limit
    for name, limits in tasks.items():
        for w in limits:
            assert worst(served[name], w.seconds) <= w.limit
