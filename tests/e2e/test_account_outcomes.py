"""Account- and task-scoped outcomes on the real parts (DESIGN.md outcome taxonomy).

The sandbox decides misbehaviour from account and chat names
(adapters/sandbox/behaviour.py): ``peerflood_*`` accounts answer PEER_FLOOD,
``banned_*`` USER_DEACTIVATED_BAN, ``flood_*`` FLOOD_WAIT, and a
``noadmin_*`` chat CHAT_ADMIN_REQUIRED.
"""

from __future__ import annotations

from collections import Counter

import asyncpg
import httpx
import pytest
import redis

from tests.support.worker import Campaign, Worker, api, create_task, fill_task, query, token_for, wait_for, wait_status

pytestmark = pytest.mark.e2e






def fetch(campaign: Campaign, sql: str, *args: object) -> list[asyncpg.Record]:
    return query(campaign.database_url, sql, *args)


def start_outcomes_campaign(worker: Worker, accounts: list[str], n: int, chat: str = "@outcomes") -> tuple[httpx.Client, str]:
    http = api(worker.base_url, token_for("bob"))
    task_id = create_task(http, "outcomes", accounts, chat=chat)
    fill_task(http, task_id, [{"username": f"target_{i:04d}"} for i in range(n)])
    assert http.post(f"/api/v1/tasks/{task_id}/execute").status_code == 202
    return http, task_id


def sandbox(campaign: Campaign, path: str) -> dict:
    return httpx.get(f"{campaign.integration_url}{path}").json()


@pytest.fixture
def worker(campaign: Campaign):
    w = Worker(campaign)
    try:
        w.wait_ready()
        yield w
    except BaseException:
        print(w.log_tail(150))
        raise
    finally:
        w.stop()


def test_peer_flood_quarantines_the_account_and_hands_its_targets_over(campaign: Campaign, worker: Worker) -> None:
    http, task_id = start_outcomes_campaign(worker, ["healthy-1", "healthy-2", "peerflood_1"], 60)
    stats = wait_status(http, task_id, "completed")

    assert stats["progress"]["done"] == 60
    calls = [c for c in sandbox(campaign, "/sandbox/calls")["calls"] if c["account_id"] == "peerflood_1"]
    assert len(calls) == 1, "a restricted account must not be used again"
    accounts = Counter(r["account_id"] for r in fetch(campaign, "SELECT account_id FROM targets WHERE status <> 'pending'"))
    assert accounts["peerflood_1"] <= 1 and accounts["healthy-1"] + accounts["healthy-2"] >= 59
    health = fetch(campaign, "SELECT state FROM task_accounts WHERE account_id = 'peerflood_1'")
    assert [r["state"] for r in health] == ["restricted"]
    mirrored = redis.Redis.from_url(campaign.stack.redis_url).get("invite:account:peerflood_1")
    assert mirrored is not None and b"account.restricted" in mirrored


def test_banned_account_is_disabled_and_its_targets_reassigned(campaign: Campaign, worker: Worker) -> None:
    http, task_id = start_outcomes_campaign(worker, ["healthy-1", "banned_1"], 40)
    wait_status(http, task_id, "completed")
    calls = [c for c in sandbox(campaign, "/sandbox/calls")["calls"] if c["account_id"] == "banned_1"]
    assert len(calls) == 1
    rows = fetch(campaign, "SELECT status, count(*) AS n FROM targets GROUP BY status")
    assert sum(r["n"] for r in rows if r["status"] in ("pending", "in_flight")) == 0


def test_task_pauses_when_no_healthy_account_is_left(campaign: Campaign, worker: Worker) -> None:
    http, task_id = start_outcomes_campaign(worker, ["banned_1", "banned_2"], 20)
    wait_status(http, task_id, "paused", timeout=60)
    task = http.get(f"/api/v1/tasks/{task_id}").json()
    assert task["status_reason"] == "no healthy account left"
    pending = fetch(campaign, "SELECT count(*) AS n FROM targets WHERE status = 'pending'")[0]["n"]
    assert pending >= 18, "targets wait for an operator instead of being burnt"


def test_task_fatal_error_pauses_the_task_with_the_reason(campaign: Campaign, worker: Worker) -> None:
    http, task_id = start_outcomes_campaign(worker, ["healthy-1", "healthy-2"], 20, chat="noadmin_chat")
    wait_status(http, task_id, "paused", timeout=60)
    task = http.get(f"/api/v1/tasks/{task_id}").json()
    assert "chat_admin_required" in task["status_reason"]
    failed = fetch(campaign, "SELECT count(*) AS n FROM targets WHERE status = 'failed'")[0]["n"]
    assert failed == 0, "a task-fatal error is not the targets' fault"


def test_flood_wait_cools_the_account_down_and_keeps_the_target(campaign: Campaign, worker: Worker) -> None:
    http, task_id = start_outcomes_campaign(worker, ["healthy-1", "flood_1"], 20)
    # The healthy account finishes its half; flood_1 keeps answering FLOOD_WAIT.
    wait_for(lambda: fetch(campaign, "SELECT count(*) AS n FROM targets WHERE status <> 'pending'"
                                     " AND account_id = 'healthy-1'")[0]["n"] == 10, 60, what="healthy half")
    calls = [c for c in sandbox(campaign, "/sandbox/calls")["calls"] if c["account_id"] == "flood_1"]
    # FLOOD_WAIT of 60 s (sandbox default) + margin: exactly one call so far, no retry inside the wait.
    assert len(calls) == 1
    assert sandbox(campaign, "/sandbox/violations")["count"] == 0
    flood_targets = fetch(campaign, "SELECT status, last_outcome FROM targets WHERE account_id = 'flood_1'")
    assert {r["status"] for r in flood_targets} == {"pending"}
    assert Counter(r["last_outcome"] for r in flood_targets)["flood_wait"] == 1
    assert http.get(f"/api/v1/tasks/{task_id}/stats").json()["status"] == "running"
