"""An account shared by several running tasks: priority first, equal tasks take turns.

Read from the claim record (``account_actions``), which holds the order in
which the account's scheduler picked its tasks.
"""

from __future__ import annotations

import pytest

from tests.support.worker import Campaign, Worker, api, create_task, fill_task, query, token_for, wait_for, wait_status

pytestmark = pytest.mark.e2e

PER_TASK = 8


def served_order(campaign: Campaign, account: str) -> list[str]:
    rows = query(campaign.database_url, "SELECT task_id FROM account_actions WHERE account_id = $1 ORDER BY at", account)
    return [r["task_id"] for r in rows]


def start_tasks(campaign: Campaign, specs: list[tuple[str, int]], account: str) -> list[str]:
    """Create, fill and then start tasks sharing one account; returns their ids in ``specs`` order."""
    worker = Worker(campaign)
    try:
        worker.wait_ready()
        http = api(worker.base_url, token_for("pia"))
        ids = []
        for name, priority in specs:
            task_id = create_task(http, name, [account], priority=priority)
            fill_task(http, task_id, [{"username": f"{name}_{i}"} for i in range(PER_TASK)])
            ids.append(task_id)
        for task_id in ids:
            assert http.post(f"/api/v1/tasks/{task_id}/execute").status_code == 202
        for task_id in ids:
            wait_status(http, task_id, "completed")
    finally:
        worker.stop()
    return ids


@pytest.fixture
def paced(campaign: Campaign) -> Campaign:
    # Slow enough that every task is running long before the first one could finish.
    campaign.extra_env.update(INVITE_PAUSE_MIN_SECONDS="0.3", INVITE_PAUSE_MAX_SECONDS="0.4")
    return campaign


def test_equal_priorities_take_turns(paced: Campaign) -> None:
    first, second = start_tasks(paced, [("rr_a", 1), ("rr_b", 1)], "rr-acc")
    order = served_order(paced, "rr-acc")
    assert sorted(order) == sorted([first] * PER_TASK + [second] * PER_TASK)
    # From the moment both run until one runs out, the account alternates.
    start = order.index(second) - 1
    shared = order[start:start + 2 * (PER_TASK - start)]
    assert all(a != b for a, b in zip(shared, shared[1:])), order


def test_higher_priority_goes_first(paced: Campaign) -> None:
    low, high = start_tasks(paced, [("pr_low", 0), ("pr_high", 2)], "pr-acc")
    order = served_order(paced, "pr-acc")
    # Once the high task runs, the low one waits until the high one has nothing left.
    first_high = order.index(high)
    assert order[first_high:first_high + PER_TASK] == [high] * PER_TASK, order
    assert first_high <= 2, order  # the low task got at most the head start of its earlier execute


def test_raising_a_priority_applies_to_the_next_pick(paced: Campaign) -> None:
    """Two equal tasks take turns; once one is raised to high, the account serves only it."""
    worker = Worker(paced)
    try:
        worker.wait_ready()
        http = api(worker.base_url, token_for("pia"))
        ids = []
        for name in ("chg_a", "chg_b"):
            task_id = create_task(http, name, ["chg-acc"])
            fill_task(http, task_id, [{"username": f"{name}_{i}"} for i in range(PER_TASK)])
            ids.append(task_id)
        for task_id in ids:
            assert http.post(f"/api/v1/tasks/{task_id}/execute").status_code == 202
        first, second = ids
        wait_for(lambda: len(served_order(paced, "chg-acc")) >= 4, 60, what="a few turns")
        raised = http.put(f"/api/v1/tasks/{second}", json={"priority": "high"})
        assert raised.status_code in (200, 202), raised.text
        wait_for(lambda: http.get(f"/api/v1/tasks/{second}").json()["priority"] in (2, "high"), 30,
                 what="the new priority recorded")
        changed_at = len(served_order(paced, "chg-acc"))
        for task_id in ids:
            wait_status(http, task_id, "completed")
    finally:
        worker.stop()
    order = served_order(paced, "chg-acc")
    after = order[changed_at + 1:]  # one pick may have been decided before the row changed
    # Every remaining target of the raised task before any more of the other.
    assert second in after and after == sorted(after, key=lambda task: task != second), order
