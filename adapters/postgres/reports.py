"""Reads behind reports, logs, exports and live account limits (PostgreSQL only, read-only).

Everything here reads records other parts write: the execution log (one row
per attempt, projected once by event id), targets, and the account action
record that claims write before every send.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from models.limits import ActionKind


class ReportStore:
    """Aggregates and pages for the statistics endpoints."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def outcomes(self, task_id: str) -> dict[str, int]:
        rows = await self._pool.fetch(
            "SELECT outcome, count(*) AS n FROM execution_log WHERE task_id = $1 GROUP BY outcome", task_id
        )
        return {r["outcome"]: r["n"] for r in rows}

    async def by_account(self, task_id: str) -> dict[str, dict[str, int]]:
        rows = await self._pool.fetch(
            "SELECT account_id, outcome, count(*) AS n FROM execution_log WHERE task_id = $1"
            " GROUP BY account_id, outcome ORDER BY account_id",
            task_id,
        )
        found: dict[str, dict[str, int]] = {}
        for r in rows:
            found.setdefault(r["account_id"], {})[r["outcome"]] = r["n"]
        return found

    async def timeline(self, task_id: str) -> list[tuple[datetime, dict[str, int]]]:
        """Attempts per hour (UTC) by outcome."""
        rows = await self._pool.fetch(
            "SELECT date_trunc('hour', finished_at AT TIME ZONE 'UTC') AS hour, outcome, count(*) AS n"
            " FROM execution_log WHERE task_id = $1 GROUP BY 1, 2 ORDER BY 1",
            task_id,
        )
        hours: dict[datetime, dict[str, int]] = {}
        for r in rows:
            hours.setdefault(r["hour"], {})[r["outcome"]] = r["n"]
        return list(hours.items())

    async def attempts_since(self, task_id: str, since: datetime) -> int:
        return int(
            await self._pool.fetchval(
                "SELECT count(*) FROM execution_log WHERE task_id = $1 AND finished_at > $2", task_id, since
            )
        )

    async def log_page(
        self, task_id: str, *, outcome: str | None, account_id: str | None, before_id: int | None, limit: int
    ) -> list[dict[str, Any]]:
        """Newest attempts first, keyset on the log id."""
        rows = await self._pool.fetch(
            """
            SELECT id, target_id, account_id, action, attempt, outcome, scope, raw_error, retry_after,
                   claimed_at, finished_at
            FROM execution_log
            WHERE task_id = $1 AND ($2::text IS NULL OR outcome = $2) AND ($3::text IS NULL OR account_id = $3)
              AND ($4::bigint IS NULL OR id < $4)
            ORDER BY id DESC LIMIT $5
            """,
            task_id, outcome, account_id, before_id, limit,
        )
        return [dict(r) for r in rows]

    async def target_outcomes(self, task_id: str, batch: int = 5000) -> AsyncIterator[list[dict[str, Any]]]:
        """Every target of the task with its outcome, in batches by id (for exports of any size)."""
        after = 0
        while True:
            rows = await self._pool.fetch(
                """
                SELECT id, username, user_id, phone, first_name, last_name, status, last_outcome, reason,
                       account_id, attempts, finished_at
                FROM targets WHERE task_id = $1 AND id > $2 ORDER BY id LIMIT $3
                """,
                task_id, after, batch,
            )
            if not rows:
                return
            yield [dict(r) for r in rows]
            after = rows[-1]["id"]

    async def account_actions(
        self, account_ids: Sequence[str], since: datetime
    ) -> dict[str, list[tuple[ActionKind, float]]]:
        """Each account's recorded actions since ``since`` (what its limit windows count)."""
        rows = await self._pool.fetch(
            "SELECT account_id, kind, extract(epoch FROM at) AS at FROM account_actions"
            " WHERE account_id = ANY($1::text[]) AND at > $2",
            list(account_ids), since,
        )
        found: dict[str, list[tuple[ActionKind, float]]] = {a: [] for a in account_ids}
        for r in rows:
            found[r["account_id"]].append((ActionKind(r["kind"]), float(r["at"])))
        return found

    async def busy_accounts(self, account_ids: Sequence[str]) -> set[str]:
        """Accounts that are serving a running task or have an attempt in flight."""
        rows = await self._pool.fetch(
            """
            SELECT ta.account_id FROM task_accounts ta JOIN tasks k ON k.id = ta.task_id
            WHERE ta.account_id = ANY($1::text[]) AND ta.state = 'active' AND k.status = 'running'
            UNION
            SELECT account_id FROM targets WHERE account_id = ANY($1::text[]) AND status IN ('in_flight', 'unknown')
            """,
            list(account_ids),
        )
        return {r["account_id"] for r in rows}

    async def record_test_action(
        self, account_id: str, task_id: str, kind: ActionKind, at: datetime
    ) -> None:
        """Record a test send in the account action record, like a claim does (target 0: none)."""
        await self._pool.execute(
            "INSERT INTO account_actions (account_id, at, task_id, target_id, kind) VALUES ($1, $2, $3, 0, $4)"
            " ON CONFLICT DO NOTHING",
            account_id, at, task_id, kind.value,
        )
