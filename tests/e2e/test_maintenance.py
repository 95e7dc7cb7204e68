"""Maintenance timers on a real worker: cluster gauges on /metrics, drift, dependency health, retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.worker import Campaign, Worker, api, query, start_campaign, token_for, wait_for, wait_status

pytestmark = pytest.mark.e2e


def samples(worker: Worker) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{worker.base_url}/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }


def test_maintenance_exports_cluster_state_and_forgets_old_tasks(campaign: Campaign) -> None:
    campaign.extra_env.update(INVITE_MAINTENANCE_INTERVAL_SECONDS="1", INVITE_RETENTION_DAYS="1")
    worker = Worker(campaign)
    try:
        worker.wait_ready()
        http = api(worker.base_url, token_for("mo"))
        done = start_campaign(http, "maint", ["mt-1", "mt-2"], 20)
        wait_status(http, done, "completed")
        # A task finished long ago, as an old database would hold it.
        old = start_campaign(http, "ancient", ["mt-3"], 2)
        wait_status(http, old, "completed")
        query(campaign.database_url, "UPDATE tasks SET finished_at = $2 WHERE id = $1",
              old, datetime.now(UTC) - timedelta(days=2))
        wait_for(lambda: not query(campaign.database_url, "SELECT id FROM tasks WHERE id = $1", old), 60,
                 what="retention to forget the old task")
        gauges = wait_for(
            lambda: (s := samples(worker)).get(("invite_tasks", (("status", "completed"),))) == 1.0 and s,
            60, every=0.5, what="the one remaining completed task in invite_tasks",
        )
    except BaseException:
        print(worker.log_tail(100))
        raise
    finally:
        worker.stop()
    assert gauges[("invite_leader", ())] == 1.0
    assert gauges[("invite_dependency_up", (("dependency", "postgres"),))] == 1.0
    assert gauges[("invite_dependency_up", (("dependency", "integration_service"),))] == 1.0
    assert gauges[("invite_stats_drift", ())] == 0.0
    assert gauges[("invite_pending_targets", ())] == 0.0
    assert len(query(campaign.database_url, "SELECT id FROM tasks WHERE id = $1", done)) == 1
