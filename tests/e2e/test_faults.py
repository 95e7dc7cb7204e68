"""Faults of the parts around the service, injected mid-campaign on real parts.

* The Integration Service answers 503, or drops every connection, for a
  while (the sandbox's outage switch): no target may fail because of it, the
  circuit breaker opens instead of burning targets, and sending resumes by
  itself once the service is back.
* Redis stops: sending goes on (Redis is a mirror, never the source of truth).
* PostgreSQL stops for a few seconds: agents back off and resume, nothing is
  lost or sent twice. These two tests run their own server, not the session's.
"""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from tests.support.worker import Campaign, Worker, api, query, start_campaign, token_for, wait_for, wait_stats, wait_status

pytestmark = pytest.mark.e2e

ACCOUNTS = [f"flt-acc-{i}" for i in range(1, 5)]
TARGETS = 160
OUTAGE_SECONDS = 60  # "down for a minute" (issue 11)


def start_paced_campaign(worker: Worker, name: str) -> tuple[httpx.Client, str]:
    http = api(worker.base_url, token_for("fay"))
    task_id = start_campaign(http, name, ACCOUNTS, TARGETS)
    wait_stats(http, task_id, lambda s: s["progress"]["done"] >= TARGETS // 4, what="a quarter of the campaign")
    return http, task_id


@pytest.fixture
def paced(campaign: Campaign) -> Campaign:
    campaign.extra_env.update(
        INVITE_PAUSE_MIN_SECONDS="0.3", INVITE_PAUSE_MAX_SECONDS="0.4",
        INVITE_BREAKER_RESET_SECONDS="3", INVITE_INFLIGHT_TIMEOUT_SECONDS="5",
    )
    return campaign


@pytest.mark.parametrize("mode", ["503", "drop"])
def test_integration_service_outage_pauses_sending_and_loses_nothing(paced: Campaign, mode: str) -> None:
    sandbox = paced.integration_url
    worker = Worker(paced)
    try:
        worker.wait_ready()
        http, task_id = start_paced_campaign(worker, f"outage{mode}")
        assert httpx.post(f"{sandbox}/sandbox/outage", json={"seconds": OUTAGE_SECONDS, "mode": mode}).is_success
        wait_for(lambda: "circuit open" in worker.log_tail(400), 60, what="the circuit to open")
        final = wait_status(http, task_id, "completed", 240)
    except BaseException:
        print(worker.log_tail(200))
        raise
    finally:
        worker.stop()

    assert final["progress"]["done"] == TARGETS
    targets = query(paced.database_url, "SELECT status, last_outcome FROM targets WHERE task_id = $1", task_id)
    statuses = Counter(r["status"] for r in targets)
    assert statuses["unknown"] == 0 and statuses["pending"] == 0 and statuses["in_flight"] == 0
    failed_transient = [r for r in targets if r["status"] == "failed" and r["last_outcome"] == "transient_error"]
    assert failed_transient == [], "a target failed because the Integration Service was down"
    assert httpx.get(f"{sandbox}/sandbox/outage").json()["refused"] > 0  # the outage really hit us
    deliveries = httpx.get(f"{sandbox}/sandbox/deliveries").json()["deliveries"]
    delivered = [d["target"] for d in deliveries if d["action"] == "invite"]
    assert len(delivered) == len(set(delivered)), "a target was invited twice"
    assert httpx.get(f"{sandbox}/sandbox/violations").json()["count"] == 0


def finish_and_check(worker: Worker, http: httpx.Client, task_id: str, campaign: Campaign, database_url: str) -> None:
    """Wait for completion, then: every target terminal, nobody invited twice, no sandbox violation."""
    final = wait_status(http, task_id, "completed", 240)
    assert final["progress"]["done"] == TARGETS
    statuses = Counter(r["status"] for r in query(database_url, "SELECT status FROM targets WHERE task_id = $1", task_id))
    assert sum(statuses.values()) == TARGETS
    assert not {"pending", "in_flight", "unknown"} & set(statuses)
    deliveries = httpx.get(f"{campaign.integration_url}/sandbox/deliveries").json()["deliveries"]
    delivered = [d["target"] for d in deliveries if d["action"] == "invite"]
    assert len(delivered) == len(set(delivered)), "a target was invited twice"
    assert httpx.get(f"{campaign.integration_url}/sandbox/violations").json()["count"] == 0


def test_redis_stopping_changes_nothing(paced: Campaign, tmp_path) -> None:
    from adapters.embedded import start_redis

    redis = start_redis(tmp_path / "own-redis")
    paced.extra_env["INVITE_REDIS_URL"] = redis.url
    worker = Worker(paced)
    try:
        worker.wait_ready()
        http, task_id = start_paced_campaign(worker, "noredis")
        redis.stop()
        finish_and_check(worker, http, task_id, paced, paced.database_url)
    except BaseException:
        print(worker.log_tail(200))
        raise
    finally:
        worker.stop()
        redis.stop()


def test_postgresql_stopping_for_seconds_is_waited_out(paced: Campaign, tmp_path) -> None:
    import time

    from adapters.embedded import start_postgres

    pg_dir = tmp_path / "own-postgres"
    pg = start_postgres(pg_dir)
    database_url = pg.url
    paced.database_url = database_url
    worker = Worker(paced)
    try:
        worker.wait_ready()
        http, task_id = start_paced_campaign(worker, "nopg")
        port = pg.port
        pg.stop()
        time.sleep(5)  # the outage itself
        pg = start_postgres(pg_dir, port=port)
        finish_and_check(worker, http, task_id, paced, database_url)
    except BaseException:
        print(worker.log_tail(200))
        raise
    finally:
        worker.stop()
        pg.stop()
