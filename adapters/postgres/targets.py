"""Target rows: assignment to accounts, result projection, progress.

Targets wait here, not in Kafka consumer lag (DESIGN.md, "Flow"). Every write
is a compare-and-set on the target's state, so re-delivered events are no-ops.
"""

from __future__ import annotations

from collections.abc import Sequence
import asyncpg

from models.events import InviteResultData
from models.outcomes import SCOPE, Scope
from models.progress import TaskProgress, target_status_after
from models.targets import TargetStatus
from models.tasks import TaskStatus

class TargetStore:
    """Targets of all tasks in PostgreSQL."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def assign_unassigned(self, task_id: str, accounts: Sequence[str]) -> dict[str, int]:
        """Spread the task's unassigned pending targets evenly over ``accounts``."""
        if not accounts:
            return {}
        rows = await self._pool.fetch(
            """
            WITH acc AS (SELECT a, ord - 1 AS idx FROM unnest($2::text[]) WITH ORDINALITY AS x(a, ord)),
            locked AS (SELECT id FROM targets WHERE task_id = $1 AND status = 'pending' AND account_id IS NULL
                       FOR UPDATE SKIP LOCKED),
            t AS (SELECT id, (row_number() OVER (ORDER BY id) - 1) % cardinality($2::text[]) AS idx FROM locked),
            upd AS (UPDATE targets SET account_id = acc.a FROM t JOIN acc USING (idx)
                    WHERE targets.id = t.id RETURNING targets.account_id)
            SELECT account_id, count(*) AS n FROM upd GROUP BY account_id
            """,
            task_id, list(accounts),
        )
        return {r["account_id"]: r["n"] for r in rows}

    async def accounts_with_work(self, task_id: str) -> dict[str, int]:
        rows = await self._pool.fetch(
            "SELECT account_id, count(*) AS n FROM targets WHERE task_id = $1 AND status = 'pending'"
            " AND account_id IS NOT NULL GROUP BY account_id",
            task_id,
        )
        return {r["account_id"]: r["n"] for r in rows}

    async def project_result(self, event_id: str, result: InviteResultData, max_attempts: int) -> bool:
        """Write one attempt's result; False when this event was already projected."""
        async with self._pool.acquire() as conn, conn.transaction():
            logged = await conn.fetchval(
                """
                INSERT INTO execution_log (event_id, task_id, target_id, account_id, action, attempt,
                    outcome, scope, raw_error, retry_after, claimed_at, finished_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                ON CONFLICT (event_id) DO NOTHING RETURNING true
                """,
                event_id, result.task_id, result.target_id, result.account_id, result.action.value,
                result.attempt, result.outcome.value, result.reason_category.value, result.raw_error,
                result.retry_after, result.claimed_at, result.finished_at,
            )
            if not logged:
                return False
            transient = SCOPE[result.outcome] is Scope.TRANSIENT
            row = await conn.fetchrow(
                "SELECT t.status, t.attempts, t.transient_failures, k.status AS task_status"
                " FROM targets t JOIN tasks k ON k.id = t.task_id WHERE t.id = $1 FOR UPDATE OF t",
                result.target_id,
            )
            # Only the attempt that holds the claim may move the target.
            if row is None or row["status"] != TargetStatus.IN_FLIGHT or row["attempts"] != result.attempt:
                return True
            failures = row["transient_failures"] + int(transient)
            status = target_status_after(
                result.outcome, failures, max_attempts, task_cancelled=row["task_status"] == TaskStatus.CANCELLED
            )
            # A restricted or dead account keeps nothing: the planner gives the
            # target to a healthy account (whichever agent runs first).
            release = SCOPE[result.outcome] in (Scope.ACCOUNT_RESTRICTED, Scope.ACCOUNT_DEAD)
            await conn.execute(
                """
                UPDATE targets SET status = $2, last_outcome = $3, transient_failures = $4,
                    reason = CASE WHEN $2 = 'failed' THEN $3 ELSE reason END,
                    finished_at = CASE WHEN $2 = 'pending' THEN NULL ELSE $5::timestamptz END,
                    account_id = CASE WHEN $6 THEN NULL ELSE account_id END
                WHERE id = $1
                """,
                result.target_id, status.value, result.outcome.value, failures, result.finished_at, release,
            )
            return True

    async def progress(self, task_id: str) -> TaskProgress:
        rows = await self._pool.fetch(
            "SELECT status, count(*) AS n FROM targets WHERE task_id = $1 GROUP BY status", task_id
        )
        return TaskProgress(by_status={TargetStatus(r["status"]): r["n"] for r in rows})

    async def cancel_pending(self, task_id: str) -> int:
        result = await self._pool.execute(
            "UPDATE targets SET status = 'cancelled', finished_at = now() WHERE task_id = $1 AND status = 'pending'",
            task_id,
        )
        return int(result.split()[-1])

    async def has_open(self, task_id: str) -> bool:
        """Whether any target of the task is still waiting, in flight or unresolved."""
        return bool(
            await self._pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM targets WHERE task_id = $1"
                " AND status IN ('pending', 'in_flight', 'unknown'))",
                task_id,
            )
        )

    async def unassign_account(self, account_id: str) -> int:
        """Hand an unhealthy account's waiting targets back to the planner."""
        result = await self._pool.execute(
            "UPDATE targets SET account_id = NULL WHERE account_id = $1 AND status = 'pending'", account_id
        )
        return int(result.split()[-1])
