"""Read-only views for operators: cluster gauges for the maintenance timer, task facts for doctor.

Also the one destructive housekeeping query: forgetting finished tasks past
their retention period.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from models.diagnosis import AccountFacts, TaskFacts
from models.tasks import TaskStatus


class DiagnosticsStore:
    """Counts and facts across tasks, targets, accounts and the execution log."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def tasks_by_status(self) -> dict[str, int]:
        rows = await self._pool.fetch("SELECT status, count(*) AS n FROM tasks GROUP BY status")
        return {r["status"]: r["n"] for r in rows}

    async def accounts_by_health(self) -> dict[str, int]:
        """Each account once, at its worst state across its running tasks."""
        rows = await self._pool.fetch(
            """
            SELECT state, count(*) AS n FROM (
                SELECT ta.account_id, max(ta.state) AS state FROM task_accounts ta
                JOIN tasks k ON k.id = ta.task_id WHERE k.status = 'running' GROUP BY ta.account_id) a
            GROUP BY state
            """
        )
        return {r["state"]: r["n"] for r in rows}

    async def pending_targets(self) -> int:
        return int(await self._pool.fetchval(
            "SELECT count(*) FROM targets t JOIN tasks k ON k.id = t.task_id"
            " WHERE k.status IN ('running', 'paused') AND t.status = 'pending'"
        ))

    async def running_without_healthy_account(self) -> int:
        return int(await self._pool.fetchval(
            "SELECT count(*) FROM tasks k WHERE k.status = 'running' AND NOT EXISTS ("
            " SELECT 1 FROM task_accounts ta WHERE ta.task_id = k.id AND ta.state = 'active')"
        ))

    async def running_stalled(self, since: datetime) -> int:
        """Running tasks with targets waiting and no result since ``since``."""
        return int(await self._pool.fetchval(
            """
            SELECT count(*) FROM tasks k WHERE k.status = 'running' AND k.started_at < $1
              AND EXISTS (SELECT 1 FROM targets t WHERE t.task_id = k.id AND t.status = 'pending')
              AND NOT EXISTS (SELECT 1 FROM execution_log e WHERE e.task_id = k.id AND e.finished_at >= $1)
            """,
            since,
        ))

    async def result_counts(self, task_ids: list[str]) -> dict[str, int]:
        """Projected attempts per task that still exists (what the statistics table must agree with)."""
        rows = await self._pool.fetch(
            "SELECT k.id, count(e.id) AS n FROM tasks k LEFT JOIN execution_log e ON e.task_id = k.id"
            " WHERE k.id = ANY($1::text[]) GROUP BY k.id",
            task_ids,
        )
        return {r["id"]: r["n"] for r in rows}

    async def running_task_ids(self) -> list[str]:
        return [r["id"] for r in await self._pool.fetch("SELECT id FROM tasks WHERE status = 'running'")]

    async def forget_finished(self, before: datetime) -> int:
        """Delete tasks finished before ``before`` (targets and logs go with them)."""
        result = await self._pool.execute(
            "DELETE FROM tasks WHERE status IN ('completed', 'cancelled', 'failed') AND finished_at < $1", before
        )
        return int(result.split()[-1])

    async def task_facts(self, task_id: str, hour_ago: datetime, day_ago: datetime) -> TaskFacts | None:
        task = await self._pool.fetchrow("SELECT id, status, status_reason FROM tasks WHERE id = $1", task_id)
        if task is None:
            return None
        counts = {r["status"]: r["n"] for r in await self._pool.fetch(
            "SELECT status, count(*) AS n FROM targets WHERE task_id = $1 GROUP BY status", task_id)}
        accounts = await self._pool.fetch(
            """
            SELECT ta.account_id, ta.state,
                   (SELECT count(*) FROM account_actions a WHERE a.account_id = ta.account_id AND a.at > $2) AS hour,
                   (SELECT count(*) FROM account_actions a WHERE a.account_id = ta.account_id AND a.at > $3) AS day
            FROM task_accounts ta WHERE ta.task_id = $1 ORDER BY ta.account_id
            """,
            task_id, hour_ago, day_ago,
        )
        last = await self._pool.fetchval("SELECT max(finished_at) FROM execution_log WHERE task_id = $1", task_id)
        return TaskFacts(
            task_id=task_id, status=TaskStatus(task["status"]), status_reason=task["status_reason"],
            pending=counts.get("pending", 0), in_flight=counts.get("in_flight", 0), unknown=counts.get("unknown", 0),
            accounts=[AccountFacts(account_id=a["account_id"], health=a["state"], actions_last_hour=a["hour"],
                                   actions_last_day=a["day"]) for a in accounts],
            last_result_at=last,
        )

    async def last_errors(self, task_id: str, limit: int = 5) -> list[asyncpg.Record]:
        return await self._pool.fetch(
            "SELECT finished_at, account_id, outcome, raw_error FROM execution_log"
            " WHERE task_id = $1 AND scope NOT IN ('success', 'target_done') ORDER BY finished_at DESC LIMIT $2",
            task_id, limit,
        )
