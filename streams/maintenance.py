"""Maintenance timers: cluster gauges, statistics drift, retention, dependency health.

On the leader (one worker computes cluster-wide numbers, so dashboards read
``max`` over workers): tasks by state, accounts by health, pending targets,
tasks that cannot or do not send, consumer lag, and deletion of tasks
finished longer ago than the retention period. On every worker: whether it
leads, whether PostgreSQL, Redis and the Integration Service answer, and the
drift between its part of the ``task-stats`` table and PostgreSQL.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import faust

from adapters import metrics
from adapters.kafka_admin import describe_group
from adapters.postgres.diagnostics import DiagnosticsStore
from models.diagnosis import STALLED_AFTER_SECONDS
from models.progress import TaskCounts

from .runtime import Runtime
from .topics import CONSUMED_TOPIC_NAMES

log = logging.getLogger(__name__)


async def cluster_round(rt: Runtime) -> None:
    """The leader's numbers, and retention."""
    store = DiagnosticsStore(rt.pool)
    now = datetime.now(UTC)
    metrics.set_tasks_by_state(await store.tasks_by_status())
    metrics.set_accounts_by_health(await store.accounts_by_health())
    metrics.set_pending_targets(await store.pending_targets())
    metrics.set_running_tasks_without_healthy_account(await store.running_without_healthy_account())
    metrics.set_running_tasks_stalled(await store.running_stalled(now - timedelta(seconds=STALLED_AFTER_SECONDS)))
    forgotten = await store.forget_finished(now - timedelta(days=rt.settings.retention_days))
    if forgotten:
        log.info("retention: forgot %d tasks finished more than %d days ago", forgotten, rt.settings.retention_days)
    s = rt.settings
    assert s.kafka_broker
    view = await describe_group(
        s.kafka_broker, s.app_id, {s.topic(name): s.topic_partitions for name in CONSUMED_TOPIC_NAMES}
    )
    for (topic, partition), lag in view.lag.items():
        metrics.set_consumer_lag(topic, partition, lag)
    if view.members is not None:
        metrics.set_consumer_group_members(view.members, s.expected_workers)


async def stats_drift(store: DiagnosticsStore, stats: faust.Table) -> int:
    """Results PostgreSQL projected that this worker's part of the statistics table does not count.

    Each worker compares the tasks whose statistics it holds (the table is
    partitioned like the results topic), so the cluster's drift is the sum
    over workers. The table is only written by the results agent while it
    processes a result, so drift (a worker died between the projection and
    the changelog write) is reported, not repaired; the report and status
    views read PostgreSQL and stay exact.
    """
    local = {str(task_id): TaskCounts.model_validate(value or {}).attempts for task_id, value in stats.items()}
    projected = await store.result_counts(list(local))
    # Tasks retention deleted are gone from PostgreSQL: nothing to compare.
    return sum(abs(projected[task_id] - counted) for task_id, counted in local.items() if task_id in projected)


async def dependency_round(rt: Runtime) -> None:
    checks: dict[metrics.Dependency, Any] = {
        metrics.Dependency.POSTGRES: lambda: rt.pool.fetchval("SELECT 1"),
        metrics.Dependency.REDIS: lambda: rt.redis.ping(),
        metrics.Dependency.INTEGRATION_SERVICE: lambda: rt.integration.health(),
    }
    for dependency, probe in checks.items():
        try:
            await probe()
            metrics.set_dependency_up(dependency, True)
        except Exception:
            metrics.set_dependency_up(dependency, False)


def register(app: faust.App, rt: Runtime, stats: faust.Table) -> None:
    interval = rt.settings.maintenance_interval_seconds

    @app.timer(interval=interval, on_leader=True)
    async def maintenance() -> None:
        try:
            await cluster_round(rt)
        except Exception:  # an outage now is retried on the next tick
            log.exception("maintenance round failed")

    @app.timer(interval=interval)
    async def health() -> None:
        metrics.set_leader(app.is_leader())
        await dependency_round(rt)
        try:
            metrics.set_stats_drift(await stats_drift(DiagnosticsStore(rt.pool), stats))
        except Exception:
            log.exception("statistics drift check failed")
