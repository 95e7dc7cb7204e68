"""Claims: what an account's scheduler takes from PostgreSQL before each send.

A claim moves one target to ``in_flight`` and records the action in
``account_actions`` in the same statement, so the durable record of what an
account did never lags behind what it sent. The record lets a new owner of
an account rebuild limit bookkeeping the changelog lost, and orders equal
tasks round-robin. Settling a claim left behind by a dead worker also lives
here.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from models.events import TaskLimits
from models.limits import ActionKind
from models.scheduling import TaskWork
from models.targets import ClaimedTarget, TargetStatus

_CLAIM_COLUMNS = """
    t.id, t.task_id, k.owner, t.account_id, t.attempts AS attempt, k.kind, k.platform, k.chat,
    k.message_template, t.username, t.user_id, t.phone, t.first_name, t.last_name, t.claimed_at
"""


# A task's optional sending window (set through the API). Outside it the task
# is not offered; the reconciler's next wake-up (seconds) starts it on time.
_IN_WINDOW = (
    "(k.schedule_start_at IS NULL OR k.schedule_start_at <= now())"
    " AND (k.schedule_end_at IS NULL OR k.schedule_end_at > now())"
)


class ClaimStore:
    """Claims, in-flight targets and the account action record."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def work_for(self, account_id: str) -> list[TaskWork]:
        """Running tasks with targets waiting for this account, with what the scheduler needs to pick."""
        rows = await self._pool.fetch(
            f"""
            SELECT k.id, k.kind, k.priority, k.limits, extract(epoch FROM k.started_at) AS started_at,
                   (SELECT extract(epoch FROM max(a.at)) FROM account_actions a
                    WHERE a.account_id = $1 AND a.task_id = k.id) AS last_served_at,
                   CASE WHEN k.limits IS NOT NULL THEN
                       (SELECT array_agg(extract(epoch FROM a.at)::float8) FROM account_actions a
                        WHERE a.account_id = $1 AND a.task_id = k.id AND a.at > now() - interval '1 day')
                   END AS served
            FROM tasks k JOIN task_accounts ta ON ta.task_id = k.id AND ta.account_id = $1 AND ta.state = 'active'
            WHERE k.status = 'running' AND {_IN_WINDOW} AND EXISTS (
                SELECT 1 FROM targets t WHERE t.task_id = k.id AND t.account_id = $1 AND t.status = 'pending')
            """,
            account_id,
        )
        # Task limits are per hour and per day (TaskLimits): a day of history covers them.
        return [
            TaskWork(
                task_id=r["id"], kind=ActionKind(r["kind"]), priority=r["priority"],
                started_at=float(r["started_at"] or 0.0),
                last_served_at=None if r["last_served_at"] is None else float(r["last_served_at"]),
                limits=TaskLimits.model_validate(r["limits"]).windows_for(ActionKind(r["kind"])) if r["limits"] else (),
                served=tuple(r["served"] or ()),
            )
            for r in rows
        ]

    async def claim(self, account_id: str, task_id: str, at: datetime) -> ClaimedTarget | None:
        """Claim the account's next waiting target of a running task, recording the action at ``at``."""
        row = await self._pool.fetchrow(
            f"""
            WITH next AS (
                SELECT t.id FROM targets t
                WHERE t.task_id = $2 AND t.account_id = $1 AND t.status = 'pending'
                ORDER BY t.id LIMIT 1 FOR UPDATE SKIP LOCKED),
            claimed AS (
                UPDATE targets t SET status = 'in_flight', attempts = t.attempts + 1, claimed_at = $3
                FROM next, tasks k
                WHERE t.id = next.id AND k.id = t.task_id AND k.status = 'running' AND {_IN_WINDOW}
                RETURNING {_CLAIM_COLUMNS}),
            recorded AS (
                INSERT INTO account_actions (account_id, at, task_id, target_id, kind)
                SELECT account_id, claimed_at, task_id, id, kind FROM claimed)
            SELECT * FROM claimed
            """,
            account_id, task_id, at,
        )
        return ClaimedTarget(**dict(row)) if row else None

    async def recent_actions(self, account_id: str, since: datetime) -> list[tuple[ActionKind, float]]:
        rows = await self._pool.fetch(
            "SELECT kind, extract(epoch FROM at) AS at FROM account_actions WHERE account_id = $1 AND at > $2",
            account_id, since,
        )
        return [(ActionKind(r["kind"]), float(r["at"])) for r in rows]

    async def in_flight(
        self, account_id: str | None = None, claimed_before: datetime | None = None
    ) -> list[ClaimedTarget]:
        """Targets in flight, of one account and/or claimed before a time."""
        rows = await self._pool.fetch(
            f"""
            SELECT {_CLAIM_COLUMNS} FROM targets t JOIN tasks k ON k.id = t.task_id
            WHERE t.status = 'in_flight' AND ($1::text IS NULL OR t.account_id = $1)
              AND ($2::timestamptz IS NULL OR t.claimed_at < $2)
            ORDER BY t.claimed_at
            """,
            account_id, claimed_before,
        )
        return [ClaimedTarget(**dict(r)) for r in rows]

    async def release(self, target_id: int, attempt: int, status: TargetStatus) -> bool:
        """Give up a claim that never reached the platform (or whose fate is unknown)."""
        # A claim of a task cancelled meanwhile is cancelled, not queued again.
        changed = await self._pool.fetchval(
            """
            UPDATE targets t SET
                status = CASE WHEN k.status = 'cancelled' THEN 'cancelled' ELSE $3 END,
                finished_at = CASE WHEN k.status = 'cancelled' THEN now() ELSE t.finished_at END
            FROM tasks k
            WHERE t.id = $1 AND t.attempts = $2 AND t.status = 'in_flight' AND k.id = t.task_id
            RETURNING true
            """,
            target_id, attempt, status.value,
        )
        return bool(changed)

    async def restricted_accounts(self) -> list[tuple[str, str]]:
        """(account, owner) of accounts restricted in a live task: their quarantine may be over."""
        rows = await self._pool.fetch(
            "SELECT DISTINCT ta.account_id, k.owner FROM task_accounts ta JOIN tasks k ON k.id = ta.task_id"
            " WHERE ta.state = 'restricted' AND k.status IN ('running', 'paused')"
        )
        return [(r["account_id"], r["owner"]) for r in rows]

    async def forget_actions(self, before: datetime) -> int:
        """Drop action records older than every window needs."""
        result = await self._pool.execute("DELETE FROM account_actions WHERE at < $1", before)
        return int(result.split()[-1])
