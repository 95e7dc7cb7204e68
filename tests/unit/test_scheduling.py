"""Which task an account serves next: priority, round-robin among equals, task limits."""

from __future__ import annotations

from models.events import TaskLimits
from models.limits import HOUR, AccountLimitState, ActionKind, LimitPolicy, Window, record_action
from models.scheduling import TaskWork, pick_task, serving_order

T0 = 1_700_000_000.0
INVITE, MESSAGE = ActionKind.INVITE, ActionKind.MESSAGE
POLICY = LimitPolicy.telegram_default().override(
    pause_min=0.0, pause_max=0.0, windows={INVITE: [Window(100, HOUR)], MESSAGE: [Window(100, HOUR)]}
)


def work(task_id: str, priority: int = 1, served: float | None = None, started: float = T0, **kw) -> TaskWork:
    return TaskWork(task_id=task_id, kind=kw.pop("kind", INVITE), priority=priority, started_at=started,
                    last_served_at=served, **kw)


def test_higher_priority_first():
    picked = pick_task(POLICY, AccountLimitState(), [work("low", 0), work("high", 2), work("normal", 1)], T0)
    assert picked.work is not None and picked.work.task_id == "high"


def test_equal_priorities_take_turns():
    """The task served least recently goes next; a never-served task goes first."""
    a, b, c = work("a", served=T0 - 10), work("b", served=T0 - 20), work("c", served=None, started=T0 + 5)
    assert [w.task_id for w in serving_order([a, b, c])] == ["c", "b", "a"]


def test_round_robin_alternates_over_a_run():
    tasks = {"first": work("first", started=T0), "second": work("second", started=T0 + 1)}
    served: list[str] = []
    state, now = AccountLimitState(), T0
    for _ in range(6):
        pick = pick_task(POLICY, state, list(tasks.values()), now)
        assert pick.work is not None and pick.policy is not None
        served.append(pick.work.task_id)
        state = record_action(pick.policy, state, pick.work.kind, now, 0.0)
        tasks[pick.work.task_id] = work(pick.work.task_id, served=now, started=pick.work.started_at)
        now += 1
    assert served == ["first", "second"] * 3


def test_a_task_out_of_its_own_limit_does_not_block_lower_priorities():
    state = record_action(POLICY, AccountLimitState(), INVITE, T0 - 60, 0.0)
    capped = work("capped", 2, limits=TaskLimits(invites_per_hour=1).windows())
    picked = pick_task(POLICY, state, [capped, work("other", 1)], T0)
    assert picked.work is not None and picked.work.task_id == "other"
    # and the policy returned is the one that allowed it, for record_action
    assert picked.policy == POLICY


def test_task_limits_lower_the_policy_used():
    capped = work("capped", limits=TaskLimits(invites_per_hour=2).windows())
    picked = pick_task(POLICY, AccountLimitState(), [capped], T0)
    assert picked.policy is not None and Window(2, HOUR) in picked.policy.windows[INVITE]


def test_nothing_allowed_now_says_when_to_look_again():
    state = record_action(POLICY, AccountLimitState(), INVITE, T0, 0.0)
    capped = work("capped", limits=TaskLimits(invites_per_hour=1).windows())
    picked = pick_task(POLICY, state, [capped], T0 + 10)
    assert picked.work is None and picked.wake_at == T0 + HOUR


def test_disabled_or_no_work_never_wakes():
    assert pick_task(POLICY, AccountLimitState(), [], T0).wake_at is None
    dead = AccountLimitState(disabled=True)
    assert pick_task(POLICY, dead, [work("a")], T0) == pick_task(POLICY, dead, [], T0)


def test_message_windows_apply_to_message_tasks():
    policy = POLICY.override(windows={MESSAGE: [Window(0, HOUR)]})
    picked = pick_task(policy, AccountLimitState(), [work("msg", 2, kind=MESSAGE), work("inv", 1)], T0)
    assert picked.work is not None and picked.work.task_id == "inv"
