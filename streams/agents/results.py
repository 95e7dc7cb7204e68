"""Results agent: statistics views, projection into PostgreSQL, task completion.

Consumes ``invite.results`` (keyed by task). The PostgreSQL projection is
idempotent by event id, and the statistics table only counts an event the
projection applied for the first time, so re-delivery never double-counts.
"""

from __future__ import annotations

import logging

import faust

from adapters import metrics
from models.events import Event, InviteResultData, InviteResultEvent
from models.outcomes import SCOPE, Scope
from models.progress import TaskCounts

from ..consume import consume
from ..planner import request_completion
from ..runtime import Runtime
from ..topics import Topics, table_schema

log = logging.getLogger(__name__)

STATS_TABLE = "task-stats"


_BLOCKS = {
    Scope.ACCOUNT_TEMPORARY: metrics.BlockKind.COOLDOWN,
    Scope.ACCOUNT_RESTRICTED: metrics.BlockKind.QUARANTINE,
    Scope.ACCOUNT_DEAD: metrics.BlockKind.DISABLED,
}


def record_metrics(data: InviteResultData) -> None:
    """Counted here, once per projected result, so re-delivery never double-counts."""
    try:
        count_result(data)
    except metrics.LabelValueError:  # a metric must never stop the projection
        log.warning("result of target %s not counted in metrics", data.target_id, exc_info=True)


def count_result(data: InviteResultData) -> None:
    metrics.invite_result(data.platform, data.outcome)
    metrics.claim_to_result_observed(max(0.0, (data.finished_at - data.claimed_at).total_seconds()))
    scope = SCOPE[data.outcome]
    if scope in _BLOCKS:
        metrics.account_blocked(data.platform, _BLOCKS[scope])
    if data.retryable and scope is not Scope.SUCCESS:
        metrics.retry(data.platform, scope.value)


def register(app: faust.App, topics: Topics, rt: Runtime) -> faust.Table:
    stats = app.Table(
        STATS_TABLE, default=None, partitions=rt.settings.topic_partitions,
        schema=table_schema(),
    )

    async def handle(event: Event) -> None:
        assert isinstance(event, InviteResultEvent)
        data = event.data
        applied = await rt.targets.project_result(event.id, data, rt.settings.max_attempts)
        if not applied:
            return
        record_metrics(data)
        counts = TaskCounts.model_validate(stats.get(data.task_id) or {})
        # Assign a new value: the changelog only sees assignments.
        stats[data.task_id] = counts.with_result(data.outcome, data.finished_at).model_dump()
        await request_completion(rt, topics, data.task_id, event.user_id)

    @app.agent(topics.results, name="results-agent")
    async def results_agent(stream: faust.StreamT) -> None:
        await consume(stream, handle, topics.dead_letters, accepted_types=frozenset({"invite.result"}))

    return stats
