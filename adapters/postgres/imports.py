"""Audience batches into PostgreSQL, and the record of every import.

Batches: COPY through a temporary table, once per batch id. Targets wait
here, not in Kafka consumer lag (DESIGN.md, "Flow"); a re-delivered
``targets.imported`` batch finds its id recorded and is a no-op. Targets on
the owner's suppression list are stored as ``skipped`` with reason
``suppressed`` (never contacted, still traceable), in the same statement.

Imports (table ``imports``, migration 0005): one row per file or
parsing-service import, touched at every step so that its progress, its
final report, or the fact that its worker went away, can be read back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from pydantic import BaseModel

from models.audience import SKIP_REASON_SUPPRESSED
from models.imports import (
    AppliedBatches,
    ImportFailure,
    ImportRecord,
    ImportReport,
    ImportSource,
    ImportStatus,
)
from models.targets import TargetIn

_COPY_COLUMNS = ("target_key", "username", "user_id", "phone", "first_name", "last_name", "extra")

# Any identity on the owner's list suppresses the target; a task that does not
# skip earlier privacy failures ignores entries the service added for those.
# Three EXISTS, one per identity kind, so each is a probe of the unique key
# (owner, kind, value).
_INSERT_TARGETS = """
WITH task AS (SELECT owner, skip_privacy_failed FROM tasks WHERE id = $1),
src AS (SELECT DISTINCT ON (target_key) * FROM incoming ORDER BY target_key),
marked AS (
    SELECT src.*, {suppressed} AS suppressed FROM src),
ins AS (
    INSERT INTO targets (task_id, target_key, username, user_id, phone, first_name, last_name, extra,
                         status, reason, finished_at)
    SELECT $1, target_key, username, user_id, phone, first_name, last_name, extra,
           CASE WHEN suppressed THEN 'skipped' ELSE 'pending' END,
           CASE WHEN suppressed THEN $2 END,
           CASE WHEN suppressed THEN now() END
    FROM marked
    ON CONFLICT (task_id, target_key) DO NOTHING RETURNING status)
SELECT count(*) FILTER (WHERE status = 'pending') AS accepted,
       count(*) FILTER (WHERE status = 'skipped') AS suppressed
FROM ins
"""
_SUPPRESSED = """(
    EXISTS (SELECT 1 FROM suppressions s, task WHERE s.owner = task.owner AND s.kind = 'username'
            AND s.value = src.username AND (task.skip_privacy_failed OR s.reason <> 'privacy'))
    OR EXISTS (SELECT 1 FROM suppressions s, task WHERE s.owner = task.owner AND s.kind = 'user_id'
            AND s.value = src.user_id::text AND (task.skip_privacy_failed OR s.reason <> 'privacy'))
    OR EXISTS (SELECT 1 FROM suppressions s, task WHERE s.owner = task.owner AND s.kind = 'phone'
            AND s.value = src.phone AND (task.skip_privacy_failed OR s.reason <> 'privacy')))"""
# An owner with an empty list (the common case) pays no probe per row.
_WITH_SUPPRESSION = _INSERT_TARGETS.format(suppressed=_SUPPRESSED)
_WITHOUT_SUPPRESSION = _INSERT_TARGETS.format(suppressed="false")


class BatchReport(BaseModel):
    """What one targets.imported batch came to."""

    batch_id: str
    task_id: str
    import_id: str | None = None
    accepted: int
    duplicate: int
    invalid: int
    suppressed: int = 0
    errors: list[dict[str, Any]] = []


class ImportStore:
    """Import batches of all tasks, and the imports they belong to."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    # --- batches (the importer agent) ----------------------------------------------------------

    async def import_batch(
        self,
        task_id: str,
        batch_id: str,
        rows: Sequence[TargetIn],
        invalid: list[dict[str, Any]],
        *,
        import_id: str | None = None,
    ) -> BatchReport | None:
        """COPY a batch in, suppressed targets as skipped; None when this batch was already applied."""
        records = [
            (t.key, t.username, t.user_id, t.phone, t.first_name, t.last_name, t.extra) for t in rows
        ]
        async with self._pool.acquire() as conn, conn.transaction():
            claimed = await conn.fetchval(
                "INSERT INTO import_batches (batch_id, task_id, accepted, duplicate, invalid, import_id)"
                " VALUES ($1, $2, 0, 0, 0, $3) ON CONFLICT (batch_id) DO NOTHING RETURNING true",
                batch_id, task_id, import_id,
            )
            if not claimed:
                return None
            accepted = suppressed = 0
            if records:
                await conn.execute(
                    "CREATE TEMP TABLE incoming (target_key text, username text, user_id bigint, phone text,"
                    " first_name text, last_name text, extra jsonb) ON COMMIT DROP"
                )
                await conn.copy_records_to_table("incoming", records=records, columns=_COPY_COLUMNS)
                listed = await conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM suppressions s JOIN tasks k ON k.owner = s.owner WHERE k.id = $1)",
                    task_id,
                )
                row = await conn.fetchrow(
                    _WITH_SUPPRESSION if listed else _WITHOUT_SUPPRESSION, task_id, SKIP_REASON_SUPPRESSED
                )
                accepted, suppressed = row["accepted"], row["suppressed"]
            report = BatchReport(
                batch_id=batch_id, task_id=task_id, import_id=import_id, accepted=accepted, suppressed=suppressed,
                duplicate=len(records) - accepted - suppressed, invalid=len(invalid), errors=invalid[:100],
            )
            await conn.execute(
                "UPDATE import_batches SET accepted=$2, duplicate=$3, invalid=$4, suppressed=$5, errors=$6"
                " WHERE batch_id=$1",
                batch_id, report.accepted, report.duplicate, report.invalid, report.suppressed, report.errors,
            )
            return report

    # --- imports (the API) -----------------------------------------------------------------------

    async def create_import(
        self,
        import_id: str,
        owner: str,
        task_id: str,
        source: ImportSource,
        status: ImportStatus,
        *,
        filename: str | None = None,
        parsing_task_id: str | None = None,
    ) -> None:
        await self._pool.execute(
            "INSERT INTO imports (id, owner, task_id, source, status, filename, parsing_task_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            import_id, owner, task_id, source.value, status.value, filename, parsing_task_id,
        )

    async def touch(
        self,
        import_id: str,
        *,
        status: ImportStatus | None = None,
        rows_read: int | None = None,
        rows_published: int | None = None,
        batches: int | None = None,
        report: ImportReport | None = None,
        error: ImportFailure | None = None,
    ) -> None:
        """Record a step of a running import (every call also proves its worker is alive)."""
        await self._pool.execute(
            """
            UPDATE imports SET status = COALESCE($2, status), rows_read = COALESCE($3, rows_read),
                rows_published = COALESCE($4, rows_published), batches = COALESCE($5, batches),
                report = COALESCE($6, report), error = COALESCE($7, error), updated_at = now()
            WHERE id = $1
            """,
            import_id, status.value if status else None, rows_read, rows_published, batches,
            report.model_dump(mode="json") if report else None,
            error.model_dump(mode="json") if error else None,
        )

    async def get_import(self, import_id: str, owner: str) -> ImportRecord | None:
        row = await self._pool.fetchrow("SELECT * FROM imports WHERE id = $1 AND owner = $2", import_id, owner)
        return ImportRecord.model_validate(dict(row)) if row else None

    async def imports_of_task(self, task_id: str, owner: str, limit: int = 100) -> list[ImportRecord]:
        rows = await self._pool.fetch(
            "SELECT * FROM imports WHERE task_id = $1 AND owner = $2 ORDER BY created_at DESC, id LIMIT $3",
            task_id, owner, limit,
        )
        return [ImportRecord.model_validate(dict(r)) for r in rows]

    async def applied(self, import_ids: Sequence[str]) -> dict[str, AppliedBatches]:
        """What the importer applied of each import so far (batches of the import's own task only)."""
        rows = await self._pool.fetch(
            """
            SELECT b.import_id, count(*) AS batches, sum(b.accepted) AS accepted, sum(b.duplicate) AS duplicate,
                   sum(b.invalid) AS invalid, sum(b.suppressed) AS suppressed
            FROM import_batches b JOIN imports i ON i.id = b.import_id AND i.task_id = b.task_id
            WHERE b.import_id = ANY($1::text[]) GROUP BY b.import_id
            """,
            list(import_ids),
        )
        found = {r["import_id"]: AppliedBatches.model_validate({k: v for k, v in r.items() if k != "import_id"})
                 for r in rows}
        return {i: found.get(i, AppliedBatches()) for i in import_ids}
