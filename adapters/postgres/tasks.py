"""Task rows: recording lifecycle events and reading tasks back."""

from __future__ import annotations

from typing import Any

import asyncpg

from models.events import TaskCreatedData
from models.tasks import TaskStatus


class TaskStore:
    """Tasks and their accounts in PostgreSQL."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, owner: str, data: TaskCreatedData) -> bool:
        """Record a new task; False when it already exists (re-delivered event)."""
        async with self._pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetchval(
                """
                INSERT INTO tasks (id, owner, name, kind, platform, chat, message_template, priority, limits)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                ON CONFLICT (id) DO NOTHING RETURNING true
                """,
                data.task_id, owner, data.name, data.kind.value, data.platform, data.chat,
                data.message_template, int(data.priority),
                data.limits.model_dump(exclude_none=True) if data.limits else None,
            )
            if inserted:
                await conn.executemany(
                    "INSERT INTO task_accounts (task_id, account_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    [(data.task_id, account) for account in dict.fromkeys(data.account_ids)],
                )
            return bool(inserted)

    async def get(self, task_id: str, owner: str | None = None) -> dict[str, Any] | None:
        row = await self._pool.fetchrow(
            "SELECT * FROM tasks WHERE id = $1 AND ($2::text IS NULL OR owner = $2)", task_id, owner
        )
        return dict(row) if row else None

    async def set_status(
        self, task_id: str, new: TaskStatus, *, expected: set[TaskStatus], reason: str | None = None
    ) -> bool:
        """Compare-and-set the status, so re-delivered events change nothing twice."""
        stamp = {
            TaskStatus.RUNNING: "started_at = COALESCE(started_at, now()),",
            TaskStatus.COMPLETED: "finished_at = now(),",
            TaskStatus.CANCELLED: "finished_at = now(),",
            TaskStatus.FAILED: "finished_at = now(),",
        }.get(new, "")
        changed = await self._pool.fetchval(
            f"""
            UPDATE tasks SET status = $2, status_reason = $3, {stamp} updated_at = now()
            WHERE id = $1 AND status = ANY($4::text[]) RETURNING true
            """,
            task_id, new.value, reason, [s.value for s in expected],
        )
        return bool(changed)

    async def accounts(self, task_id: str) -> list[str]:
        rows = await self._pool.fetch(
            "SELECT account_id FROM task_accounts WHERE task_id = $1 AND state = 'active' ORDER BY account_id",
            task_id,
        )
        return [r["account_id"] for r in rows]

    async def running(self) -> list[tuple[str, str]]:
        """(task id, owner) of every running task."""
        rows = await self._pool.fetch("SELECT id, owner FROM tasks WHERE status = 'running'")
        return [(r["id"], r["owner"]) for r in rows]

    async def delete(self, task_id: str) -> None:
        await self._pool.execute("DELETE FROM tasks WHERE id = $1", task_id)

    async def list_for_owner(self, owner: str, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        rows = await self._pool.fetch(
            "SELECT * FROM tasks WHERE owner = $1 AND ($2::text IS NULL OR status = $2)"
            " ORDER BY created_at DESC, id LIMIT $3",
            owner, status, limit,
        )
        return [dict(r) for r in rows]

    async def set_account_health(self, account_id: str, state: str, *, only_from: str | None = None) -> list[str]:
        """Mark the account in every task it serves; returns the ids of running/paused tasks touched."""
        rows = await self._pool.fetch(
            """
            UPDATE task_accounts ta SET state = $2 FROM tasks k
            WHERE ta.account_id = $1 AND k.id = ta.task_id AND k.status IN ('running', 'paused', 'draft')
              AND ($3::text IS NULL OR ta.state = $3)
            RETURNING ta.task_id
            """,
            account_id, state, only_from,
        )
        return [r["task_id"] for r in rows]
