"""A whole invite campaign on the real parts: 500 targets, 5 accounts, one worker.

Asserts that the statistics view, the PostgreSQL rows and the sandbox's
record of deliveries agree exactly, that nobody was sent twice and that every
account kept its minimum pause between two actions.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.worker import FAST_LIMITS, Campaign, Worker, api, wait_for, create_task, query, token_for

pytestmark = pytest.mark.e2e

TARGETS = 500
ACCOUNTS = [f"acc-{i}" for i in range(1, 6)]


def test_campaign_runs_end_to_end(campaign: Campaign) -> None:
    worker = Worker(campaign)
    try:
        worker.wait_ready()
        http = api(worker.base_url, token_for("alice"))
        task_id = create_task(http, "e2e", ACCOUNTS)

        audience = [{"username": f"person_{i:04d}"} for i in range(TARGETS)]
        audience += audience[:7]  # duplicates within the task are dropped
        assert http.post(f"/api/v1/tasks/{task_id}/targets", json={"targets": audience}).status_code == 202
        wait_for(lambda: http.get(f"/api/v1/tasks/{task_id}/stats").json()["progress"]["total"] == TARGETS,
                 30, what="targets imported")

        assert http.post(f"/api/v1/tasks/{task_id}/execute").status_code == 202
        stats = wait_for(
            lambda: (s := http.get(f"/api/v1/tasks/{task_id}/stats").json())["status"] == "completed" and s,
            240, every=1, what="campaign completion",
        )
        scraped = httpx.get(f"{worker.base_url}/metrics", timeout=10).text
    except BaseException:
        print(worker.log_tail(200))
        raise
    finally:
        worker.stop()

    # Every target ended in exactly one terminal state.
    progress = stats["progress"]
    assert progress == {**progress, "total": TARGETS, "done": TARGETS, "open": 0, "percent": 100.0}

    targets = query(campaign.database_url, f"SELECT * FROM targets WHERE task_id = '{task_id}'")
    log = query(campaign.database_url, f"SELECT * FROM execution_log WHERE task_id = '{task_id}'")
    deliveries = httpx.get(f"{campaign.integration_url}/sandbox/deliveries").json()["deliveries"]

    # The statistics view agrees with PostgreSQL...
    assert stats["attempts"] == len(log)
    assert stats["outcomes"] == dict(Counter(r["outcome"] for r in log))
    final = Counter(r["last_outcome"] for r in targets)
    assert final == Counter(stats["outcomes"])  # no retries happen in this run
    assert Counter(r["status"] for r in targets) == Counter(
        {"invited": final["invited"], "already_member": final["already_member"],
         "failed": TARGETS - final["invited"] - final["already_member"]}
    ) - Counter()
    # ...and with what the sandbox delivered: exactly the invited targets, once each.
    invite_keys = [(d["account_id"], d["target"]) for d in deliveries if d["action"] == "invite"]
    delivered_targets = [target for _, target in invite_keys]
    assert len(delivered_targets) == len(set(delivered_targets)), "a target was delivered twice"
    invited = {f"u:{r['username']}" for r in targets if r["status"] == "invited"}
    assert set(delivered_targets) == invited
    assert stats["outcomes"].get("invited", 0) > TARGETS * 0.8  # the sandbox's default shares

    # /metrics counted every projected result once, by outcome.
    counted = {
        sample.labels["outcome"]: int(sample.value)
        for family in text_string_to_metric_families(scraped) if family.name == "invite_results"
        for sample in family.samples
        if sample.name == "invite_results_total" and sample.labels["platform"] == "telegram" and sample.value
    }
    assert counted == stats["outcomes"]

    # Each account kept at least the minimum pause between two of its actions.
    pause_min = float(FAST_LIMITS["INVITE_PAUSE_MIN_SECONDS"])
    by_account: dict[str, list[float]] = defaultdict(list)
    for row in log:
        by_account[row["account_id"]].append(row["claimed_at"].timestamp())
    assert set(by_account) == set(ACCOUNTS)
    for account, times in by_account.items():
        times.sort()
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert min(gaps) >= pause_min - 1e-3, f"{account} acted {min(gaps):.3f}s after its previous action"
