"""Task rows: recording lifecycle events and settings changes, and reading tasks back.

Deleted tasks are kept (``deleted_at``): their targets, execution log and the
account action record stay for statistics and limit recovery, but no read
made for a user shows them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from models.events import TaskCreatedData
from models.tasks import TaskStatus

# The API's sort whitelist, mapped to columns (nothing else reaches the SQL text).
_SORT_COLUMNS = {"created_at": "created_at", "updated_at": "updated_at", "name": "name",
                 "priority": "priority", "status": "status"}
_TIME_SORTS = {"created_at", "updated_at"}
# A task as the API shows it: its settings plus its accounts.
_VIEW = """
    SELECT k.*, COALESCE((SELECT array_agg(ta.account_id ORDER BY ta.account_id) FROM task_accounts ta
                          WHERE ta.task_id = k.id), '{}') AS account_ids
    FROM tasks k
"""


def _like(text: str) -> str:
    """``text`` as a literal ILIKE substring pattern."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


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

    async def get(
        self, task_id: str, owner: str | None = None, *, include_deleted: bool = False
    ) -> dict[str, Any] | None:
        row = await self._pool.fetchrow(
            "SELECT * FROM tasks WHERE id = $1 AND ($2::text IS NULL OR owner = $2)"
            " AND ($3 OR deleted_at IS NULL)",
            task_id, owner, include_deleted,
        )
        return dict(row) if row else None

    async def view(self, task_id: str, owner: str) -> dict[str, Any] | None:
        """The owner's live task with its account ids."""
        row = await self._pool.fetchrow(
            _VIEW + " WHERE k.id = $1 AND k.owner = $2 AND k.deleted_at IS NULL", task_id, owner
        )
        return dict(row) if row else None

    async def page(
        self,
        owner: str,
        *,
        filters: dict[str, Any],
        sort: str,
        after: Sequence[Any] | None,
        limit: int,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of the owner's tasks (keyset on the sort column and id), and the total matching."""
        where = ["k.owner = $1", "k.deleted_at IS NULL"]
        args: list[Any] = [owner]

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        for column in ("status", "platform", "kind"):
            if filters.get(column) is not None:
                where.append(f"k.{column} = {arg(str(filters[column]))}")
        if filters.get("priority") is not None:
            where.append(f"k.priority = {arg(int(filters['priority']))}")
        if filters.get("created_from") is not None:
            where.append(f"k.created_at >= {arg(filters['created_from'])}")
        if filters.get("created_to") is not None:
            where.append(f"k.created_at < {arg(filters['created_to'])}")
        if filters.get("q"):
            where.append(f"k.name ILIKE {arg(_like(filters['q']))}")
        total = await self._pool.fetchval(f"SELECT count(*) FROM tasks k WHERE {' AND '.join(where)}", *args)
        descending = sort.startswith("-")
        name = sort.removeprefix("-")
        column = _SORT_COLUMNS[name]
        if after is not None:
            value = datetime.fromisoformat(after[0]) if name in _TIME_SORTS else after[0]
            where.append(f"(k.{column}, k.id) {'<' if descending else '>'} ({arg(value)}, {arg(str(after[1]))})")
        direction = "DESC" if descending else "ASC"
        rows = await self._pool.fetch(
            f"{_VIEW} WHERE {' AND '.join(where)} ORDER BY k.{column} {direction}, k.id {direction}"
            f" LIMIT {arg(limit)}",
            *args,
        )
        return [dict(r) for r in rows], int(total)

    async def update(self, task_id: str, changes: dict[str, Any], *, expected: set[TaskStatus]) -> bool:
        """Apply settings changes if the task is still in one of ``expected``; False otherwise."""
        sets: list[str] = []
        args: list[Any] = [task_id, [s.value for s in expected]]

        def put(column: str, value: Any) -> None:
            args.append(value)
            sets.append(f"{column} = ${len(args)}")

        for field in ("name", "chat", "message_template", "skip_privacy_failed"):
            if field in changes:
                put(field, changes[field])
        if "priority" in changes:
            put("priority", int(changes["priority"]))
        if "limits" in changes:
            limits = changes["limits"]
            put("limits", {k: v for k, v in limits.items() if v is not None} if limits else None)
        if "schedule" in changes:
            schedule = changes["schedule"] or {}
            put("schedule_start_at", _when(schedule.get("start_at")))
            put("schedule_end_at", _when(schedule.get("end_at")))
        if not sets:
            return False
        changed = await self._pool.fetchval(
            f"UPDATE tasks SET {', '.join(sets)}, updated_at = now()"
            " WHERE id = $1 AND status = ANY($2::text[]) AND deleted_at IS NULL RETURNING true",
            *args,
        )
        return bool(changed)

    async def mark_deleted(self, task_id: str) -> bool:
        """Hide the task from every read; False when it was already deleted."""
        changed = await self._pool.fetchval(
            "UPDATE tasks SET deleted_at = now(), updated_at = now() WHERE id = $1 AND deleted_at IS NULL"
            " RETURNING true",
            task_id,
        )
        return bool(changed)

    async def attach_accounts(self, task_id: str, account_ids: Sequence[str]) -> list[str]:
        """Add accounts to the task (a detached one comes back active); returns those now active."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO task_accounts (task_id, account_id) VALUES ($1, $2)"
                " ON CONFLICT (task_id, account_id) DO UPDATE SET state = 'active'"
                " WHERE task_accounts.state = 'detached'",
                [(task_id, a) for a in dict.fromkeys(account_ids)],
            )
            rows = await conn.fetch(
                "SELECT account_id FROM task_accounts WHERE task_id = $1 AND account_id = ANY($2::text[])"
                " AND state = 'active'",
                task_id, list(account_ids),
            )
        return [r["account_id"] for r in rows]

    async def detach_accounts(self, task_id: str, account_ids: Sequence[str]) -> list[str]:
        """Take accounts off the task (kept as 'detached' for its history); returns those detached now."""
        rows = await self._pool.fetch(
            "UPDATE task_accounts SET state = 'detached' WHERE task_id = $1 AND account_id = ANY($2::text[])"
            " AND state <> 'detached' RETURNING account_id",
            task_id, list(account_ids),
        )
        return [r["account_id"] for r in rows]

    async def account_states(self, task_id: str) -> dict[str, str]:
        """Every account the task has (had), with its state in the task."""
        rows = await self._pool.fetch(
            "SELECT account_id, state FROM task_accounts WHERE task_id = $1 ORDER BY account_id", task_id
        )
        return {r["account_id"]: r["state"] for r in rows}

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

    async def set_account_health(self, account_id: str, state: str, *, only_from: str | None = None) -> list[str]:
        """Mark the account in every task it serves; returns the ids of running/paused tasks touched."""
        rows = await self._pool.fetch(
            """
            UPDATE task_accounts ta SET state = $2 FROM tasks k
            WHERE ta.account_id = $1 AND k.id = ta.task_id AND k.status IN ('running', 'paused', 'draft')
              AND ta.state <> 'detached' AND ($3::text IS NULL OR ta.state = $3)
            RETURNING ta.task_id
            """,
            account_id, state, only_from,
        )
        return [r["task_id"] for r in rows]


def _when(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))
