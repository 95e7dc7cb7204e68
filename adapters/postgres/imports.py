"""Audience batches into PostgreSQL: COPY through a temporary table, once per batch id.

Targets wait here, not in Kafka consumer lag (DESIGN.md, "Flow"); a
re-delivered ``targets.imported`` batch finds its id recorded and is a no-op.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from pydantic import BaseModel

from models.targets import TargetIn

_COPY_COLUMNS = ("target_key", "username", "user_id", "phone", "first_name", "last_name", "extra")


class BatchReport(BaseModel):
    """What one targets.imported batch came to."""

    batch_id: str
    task_id: str
    accepted: int
    duplicate: int
    invalid: int
    errors: list[dict[str, Any]] = []


class ImportStore:
    """Import batches of all tasks."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def import_batch(
        self,
        task_id: str,
        batch_id: str,
        rows: Sequence[TargetIn],
        invalid: list[dict[str, Any]],
    ) -> BatchReport | None:
        """COPY a batch in; None when this batch was already applied."""
        records = [
            (t.key, t.username, t.user_id, t.phone, t.first_name, t.last_name, t.extra) for t in rows
        ]
        async with self._pool.acquire() as conn, conn.transaction():
            claimed = await conn.fetchval(
                "INSERT INTO import_batches (batch_id, task_id, accepted, duplicate, invalid)"
                " VALUES ($1, $2, 0, 0, 0) ON CONFLICT (batch_id) DO NOTHING RETURNING true",
                batch_id, task_id,
            )
            if not claimed:
                return None
            await conn.execute(
                "CREATE TEMP TABLE incoming (target_key text, username text, user_id bigint, phone text,"
                " first_name text, last_name text, extra jsonb) ON COMMIT DROP"
            )
            await conn.copy_records_to_table("incoming", records=records, columns=_COPY_COLUMNS)
            accepted = await conn.fetchval(
                """
                WITH ins AS (
                    INSERT INTO targets (task_id, target_key, username, user_id, phone, first_name, last_name, extra)
                    SELECT DISTINCT ON (target_key) $1, target_key, username, user_id, phone, first_name, last_name, extra
                    FROM incoming ORDER BY target_key
                    ON CONFLICT (task_id, target_key) DO NOTHING RETURNING 1)
                SELECT count(*) FROM ins
                """,
                task_id,
            )
            report = BatchReport(
                batch_id=batch_id, task_id=task_id, accepted=accepted,
                duplicate=len(records) - accepted, invalid=len(invalid), errors=invalid[:100],
            )
            await conn.execute(
                "UPDATE import_batches SET accepted=$2, duplicate=$3, invalid=$4, errors=$5 WHERE batch_id=$1",
                batch_id, report.accepted, report.duplicate, report.invalid, report.errors,
            )
            return report
