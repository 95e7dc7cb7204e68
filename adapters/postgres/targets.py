"""Target rows: assignment to accounts, result projection, progress.

Targets wait here, not in Kafka consumer lag (DESIGN.md, "Flow"). Every write
is a compare-and-set on the target's state, so re-delivered events are no-ops.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from models.events import InviteResultData
from models.outcomes import SCOPE, Scope
from models.progress import (
    DELETABLE_TARGET_STATUSES,
    RETRYABLE_FAILURES,
    TaskProgress,
    target_status_after,
)
from models.targets import TargetIn, TargetStatus
from models.tasks import TaskStatus

_TARGET_COLUMNS = """
    id, task_id, username, user_id, phone, first_name, last_name, extra, status, account_id, attempts,
    last_outcome, reason, claimed_at, finished_at, created_at
"""


def _count(result: str) -> int:
    return int(result.split()[-1])


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

    async def accounts_with_work(self, task_id: str, idle_since: datetime | None = None) -> dict[str, int]:
        """Pending targets per account; with ``idle_since``, only accounts that have not acted since then."""
        rows = await self._pool.fetch(
            """
            WITH work AS (
                SELECT account_id, count(*) AS n FROM targets
                WHERE task_id = $1 AND status = 'pending' AND account_id IS NOT NULL GROUP BY account_id)
            SELECT account_id, n FROM work
            WHERE $2::timestamptz IS NULL OR NOT EXISTS (
                SELECT 1 FROM account_actions a WHERE a.account_id = work.account_id AND a.at > $2)
            """,
            task_id, idle_since,
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
            # A restricted or dead account keeps nothing, nor one detached from the
            # task while this attempt was in flight: the planner gives the target
            # to a healthy account (whichever agent runs first).
            release = SCOPE[result.outcome] in (Scope.ACCOUNT_RESTRICTED, Scope.ACCOUNT_DEAD)
            await conn.execute(
                """
                UPDATE targets SET status = $2, last_outcome = $3, transient_failures = $4,
                    reason = CASE WHEN $2 = 'failed' THEN $3 ELSE reason END,
                    finished_at = CASE WHEN $2 = 'pending' THEN NULL ELSE $5::timestamptz END,
                    account_id = CASE WHEN $6 OR NOT EXISTS (
                        SELECT 1 FROM task_accounts ta WHERE ta.task_id = targets.task_id
                          AND ta.account_id = targets.account_id AND ta.state = 'active')
                        THEN NULL ELSE account_id END
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

    # ---- reads for the API ---------------------------------------------------

    async def page(
        self,
        task_id: str,
        *,
        status: str | None,
        account_id: str | None,
        q: str | None,
        after_id: int | None,
        limit: int,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of a task's targets by id (new targets only ever append), and the total matching."""
        like = None if not q else "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        exact_id = int(q) if q and q.isascii() and q.isdigit() and len(q) < 19 else None
        where = """task_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR account_id = $3)
            AND ($4::text IS NULL OR username ILIKE $4 OR first_name ILIKE $4 OR last_name ILIKE $4
                 OR user_id = $5::bigint)"""
        args = [task_id, status, account_id, like, exact_id]
        total = await self._pool.fetchval(f"SELECT count(*) FROM targets WHERE {where}", *args)
        rows = await self._pool.fetch(
            f"SELECT {_TARGET_COLUMNS} FROM targets WHERE {where} AND ($6::bigint IS NULL OR id > $6)"
            " ORDER BY id LIMIT $7",
            *args, after_id, limit,
        )
        return [dict(r) for r in rows], int(total)

    async def get(self, task_id: str, target_id: int) -> dict[str, Any] | None:
        row = await self._pool.fetchrow(
            f"SELECT {_TARGET_COLUMNS} FROM targets WHERE task_id = $1 AND id = $2", task_id, target_id
        )
        return dict(row) if row else None

    async def identities(self, task_id: str, after_id: int, limit: int) -> list[dict[str, Any]]:
        """Targets as import rows (identity and names only), by id: to copy an audience."""
        rows = await self._pool.fetch(
            "SELECT id, username, user_id, phone, first_name, last_name, extra FROM targets"
            " WHERE task_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            task_id, after_id, limit,
        )
        return [dict(r) for r in rows]

    async def breakdown(self, task_id: str) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
        """Targets by account and status, and failed targets by reason."""
        by_account: dict[str, dict[str, int]] = {}
        for r in await self._pool.fetch(
            "SELECT COALESCE(account_id, '') AS account_id, status, count(*) AS n FROM targets"
            " WHERE task_id = $1 GROUP BY 1, 2",
            task_id,
        ):
            by_account.setdefault(r["account_id"], {})[r["status"]] = r["n"]
        reasons = await self._pool.fetch(
            "SELECT COALESCE(reason, 'unknown') AS reason, count(*) AS n FROM targets"
            " WHERE task_id = $1 AND status = 'failed' GROUP BY 1",
            task_id,
        )
        return by_account, {r["reason"]: r["n"] for r in reasons}

    # ---- operator changes ------------------------------------------------------

    async def update(
        self, task_id: str, target_id: int, changes: dict[str, Any], identity: TargetIn | None
    ) -> tuple[str, dict[str, Any] | None]:
        """Change a target; ("ok", row), ("not_found", None), ("state", row) or ("duplicate", row).

        Names change unless the target is in flight; the identity only while it
        was never attempted (the idempotency keys of earlier attempts name it).
        """
        sets, args = [], [task_id, target_id]
        for column in ("first_name", "last_name", "extra"):
            if column in changes:
                args.append(changes[column])
                sets.append(f"{column} = ${len(args)}")
        guard = "status NOT IN ('in_flight', 'unknown')"
        if identity is not None:
            for column, value in (("target_key", identity.key), ("username", identity.username),
                                  ("user_id", identity.user_id), ("phone", identity.phone)):
                args.append(value)
                sets.append(f"{column} = ${len(args)}")
            guard = "status = 'pending' AND attempts = 0 AND claimed_at IS NULL"
        try:
            row = await self._pool.fetchrow(
                f"UPDATE targets SET {', '.join(sets)} WHERE task_id = $1 AND id = $2 AND {guard}"
                f" RETURNING {_TARGET_COLUMNS}",
                *args,
            )
        except asyncpg.UniqueViolationError:
            return "duplicate", await self.get(task_id, target_id)
        if row is not None:
            return "ok", dict(row)
        current = await self.get(task_id, target_id)
        return ("not_found", None) if current is None else ("state", current)

    async def retry_failed(self, task_id: str, ids: Sequence[int] | None) -> list[int]:
        """Send transiently failed targets again (unassigned, for the planner); returns their ids.

        ``attempts`` is kept: the next attempt gets a new idempotency key.
        """
        rows = await self._pool.fetch(
            """
            UPDATE targets SET status = 'pending', account_id = NULL, transient_failures = 0, reason = NULL,
                finished_at = NULL
            WHERE task_id = $1 AND status = 'failed' AND reason = ANY($2::text[])
              AND ($3::bigint[] IS NULL OR id = ANY($3::bigint[]))
            RETURNING id
            """,
            task_id, [o.value for o in RETRYABLE_FAILURES], None if ids is None else list(ids),
        )
        return [r["id"] for r in rows]

    async def skip(self, task_id: str, ids: Sequence[int] | None) -> list[int]:
        """Skip waiting targets (never attempted again); returns their ids."""
        rows = await self._pool.fetch(
            """
            UPDATE targets SET status = 'skipped', reason = 'skipped_by_operator', finished_at = now()
            WHERE task_id = $1 AND status = 'pending' AND ($2::bigint[] IS NULL OR id = ANY($2::bigint[]))
            RETURNING id
            """,
            task_id, None if ids is None else list(ids),
        )
        return [r["id"] for r in rows]

    async def delete(self, task_id: str, ids: Sequence[int] | None) -> list[int]:
        """Delete targets whose record may go (see DELETABLE_TARGET_STATUSES); returns their ids."""
        rows = await self._pool.fetch(
            """
            DELETE FROM targets WHERE task_id = $1 AND status = ANY($2::text[])
              AND ($3::bigint[] IS NULL OR id = ANY($3::bigint[]))
            RETURNING id
            """,
            task_id, [s.value for s in DELETABLE_TARGET_STATUSES], None if ids is None else list(ids),
        )
        return [r["id"] for r in rows]

    async def states(self, task_id: str, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Status and reason of some targets of the task (to explain why an action passed them by)."""
        rows = await self._pool.fetch(
            "SELECT id, status, reason FROM targets WHERE task_id = $1 AND id = ANY($2::bigint[])",
            task_id, list(ids),
        )
        return {r["id"]: dict(r) for r in rows}

    async def unassign_from_task(self, task_id: str, account_ids: Sequence[str]) -> int:
        """Hand the waiting targets of accounts leaving a task back to the planner."""
        result = await self._pool.execute(
            "UPDATE targets SET account_id = NULL WHERE task_id = $1 AND account_id = ANY($2::text[])"
            " AND status = 'pending'",
            task_id, list(account_ids),
        )
        return _count(result)
