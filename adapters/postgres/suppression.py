"""The per-user suppression list in PostgreSQL (table ``suppressions``, migration 0002).

Every call is one statement (or one transaction of batched statements), and
adding is idempotent: the unique key (owner, kind, value) turns a repeat into
a no-op, and the first reason recorded for an identity is the one kept.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import asyncpg

from models.audience import (
    PRIVACY_OUTCOMES,
    SuppressionEntry,
    SuppressionPage,
    SuppressionReason,
    SuppressionRecord,
)
from models.targets import (
    DEFAULT_PHONE_REGION,
    IdentityKind,
    TargetIn,
    normalize_identity,
)

# Rows per INSERT; a suppression list imported from a file arrives in these.
_ADD_BATCH = 10_000
MAX_PAGE = 1_000


class SuppressionStore:
    """One owner's suppression entries: add, remove, page through, and filter targets against them."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add(self, owner: str, entries: Sequence[SuppressionEntry], *, task_id: str | None = None) -> int:
        """Add entries (already normalized by SuppressionEntry); returns how many were new."""
        added = 0
        async with self._pool.acquire() as conn, conn.transaction():
            for start in range(0, len(entries), _ADD_BATCH):
                batch = entries[start : start + _ADD_BATCH]
                added += await conn.fetchval(
                    """
                    WITH ins AS (
                        INSERT INTO suppressions (owner, kind, value, reason, task_id)
                        SELECT $1, kind, value, reason, $5
                        FROM unnest($2::text[], $3::text[], $4::text[]) AS e(kind, value, reason)
                        ON CONFLICT (owner, kind, value) DO NOTHING RETURNING 1)
                    SELECT count(*) FROM ins
                    """,
                    owner, [str(e.kind) for e in batch], [e.value for e in batch],
                    [str(e.reason) for e in batch], task_id,
                )
        return added

    async def remove(
        self, owner: str, kind: IdentityKind, value: str, *, default_region: str | None = DEFAULT_PHONE_REGION
    ) -> bool:
        """Remove one identity (given in any accepted spelling); False when it was not listed."""
        normalized = normalize_identity(kind, value, default_region)
        removed = await self._pool.fetchval(
            "DELETE FROM suppressions WHERE owner = $1 AND kind = $2 AND value = $3 RETURNING true",
            owner, str(kind), normalized,
        )
        return bool(removed)

    async def list_entries(
        self,
        owner: str,
        *,
        limit: int = 100,
        cursor: int | None = None,
        kind: IdentityKind | None = None,
        reason: SuppressionReason | None = None,
    ) -> SuppressionPage:
        """One page, newest first; ``cursor`` is the previous page's ``next_cursor``."""
        limit = max(1, min(limit, MAX_PAGE))
        rows = await self._pool.fetch(
            """
            SELECT id, kind, value, reason, task_id, created_at FROM suppressions
            WHERE owner = $1 AND ($2::bigint IS NULL OR id < $2)
              AND ($3::text IS NULL OR kind = $3) AND ($4::text IS NULL OR reason = $4)
            ORDER BY id DESC LIMIT $5
            """,
            owner, cursor, None if kind is None else str(kind), None if reason is None else str(reason), limit + 1,
        )
        # Stored values were normalized on the way in; no need to parse phones again.
        items = [
            SuppressionRecord.model_construct(
                id=r["id"], kind=IdentityKind(r["kind"]), value=r["value"], reason=SuppressionReason(r["reason"]),
                task_id=r["task_id"], created_at=r["created_at"],
            )
            for r in rows[:limit]
        ]
        return SuppressionPage(items=items, next_cursor=items[-1].id if len(rows) > limit else None)

    async def count(self, owner: str) -> int:
        return int(await self._pool.fetchval("SELECT count(*) FROM suppressions WHERE owner = $1", owner))

    async def filter_suppressed(
        self,
        owner: str,
        targets: Sequence[TargetIn],
        *,
        reasons: Collection[SuppressionReason] | None = None,
    ) -> tuple[list[TargetIn], list[TargetIn]]:
        """Split targets into (kept, suppressed) in one query; any listed identity suppresses.

        ``reasons`` limits which entries count (a task that does not skip
        earlier privacy failures passes opt_out and never_contact only).
        """
        indexes: list[int] = []
        kinds: list[str] = []
        values: list[str] = []
        for index, target in enumerate(targets):
            for kind, value in target.identities:
                indexes.append(index)
                kinds.append(str(kind))
                values.append(value)
        if not indexes:
            return list(targets), []
        rows = await self._pool.fetch(
            """
            SELECT DISTINCT i.idx FROM unnest($2::int[], $3::text[], $4::text[]) AS i(idx, kind, value)
            JOIN suppressions s ON s.owner = $1 AND s.kind = i.kind AND s.value = i.value
            WHERE $5::text[] IS NULL OR s.reason = ANY($5::text[])
            """,
            owner, indexes, kinds, values, None if reasons is None else [str(r) for r in reasons],
        )
        hit = {r["idx"] for r in rows}
        kept = [t for i, t in enumerate(targets) if i not in hit]
        suppressed = [t for i, t in enumerate(targets) if i in hit]
        return kept, suppressed

    async def skip_waiting_targets(self, owner: str, entries: Sequence[SuppressionEntry]) -> int:
        """Skip (reason ``suppressed``) the owner's still-pending targets that these entries name.

        A person added to the list while a campaign runs is left out of it
        from now on, not only of later imports. Only ``pending`` targets move:
        one already claimed is in flight and settles as it will. Entries that
        remember privacy failures apply to tasks that skip them.
        """
        if not entries:
            return 0
        result = await self._pool.execute(
            """
            WITH e AS (SELECT * FROM unnest($2::text[], $3::text[], $4::text[]) AS e(kind, value, reason)),
            open AS (SELECT id, skip_privacy_failed FROM tasks
                     WHERE owner = $1 AND status IN ('draft', 'running', 'paused')),
            waiting AS (SELECT t.id, t.username, t.user_id::text AS user_id, t.phone, k.skip_privacy_failed
                        FROM targets t JOIN open k ON k.id = t.task_id WHERE t.status = 'pending'),
            -- One equality join per kind (hash joins), not one join with ORs.
            hit AS (
                SELECT w.id FROM waiting w JOIN e ON e.kind = 'username' AND e.value = w.username
                WHERE w.skip_privacy_failed OR e.reason <> 'privacy'
                UNION SELECT w.id FROM waiting w JOIN e ON e.kind = 'user_id' AND e.value = w.user_id
                WHERE w.skip_privacy_failed OR e.reason <> 'privacy'
                UNION SELECT w.id FROM waiting w JOIN e ON e.kind = 'phone' AND e.value = w.phone
                WHERE w.skip_privacy_failed OR e.reason <> 'privacy')
            UPDATE targets SET status = 'skipped', reason = 'suppressed', finished_at = now()
            WHERE id IN (SELECT id FROM hit) AND status = 'pending'
            """,
            owner, [str(e.kind) for e in entries], [e.value for e in entries], [str(e.reason) for e in entries],
        )
        return int(result.split()[-1])

    async def remember_privacy_failures(self, owner: str, task_id: str) -> int:
        """Add every identity of the task's targets that failed for a privacy reason; returns how many were new.

        Only the owner's own task counts; running it again adds nothing.
        """
        return int(
            await self._pool.fetchval(
                """
                WITH failed AS (
                    SELECT t.username, t.user_id, t.phone FROM targets t JOIN tasks k ON k.id = t.task_id
                    WHERE t.task_id = $2 AND k.owner = $1 AND t.status = 'failed' AND t.reason = ANY($3::text[])),
                ids AS (
                    SELECT 'username' AS kind, username AS value FROM failed WHERE username IS NOT NULL
                    UNION ALL SELECT 'user_id', user_id::text FROM failed WHERE user_id IS NOT NULL
                    UNION ALL SELECT 'phone', phone FROM failed WHERE phone IS NOT NULL),
                ins AS (
                    INSERT INTO suppressions (owner, kind, value, reason, task_id)
                    SELECT $1, kind, value, 'privacy', $2 FROM ids
                    ON CONFLICT (owner, kind, value) DO NOTHING RETURNING 1)
                SELECT count(*) FROM ins
                """,
                owner, task_id, sorted(o.value for o in PRIVACY_OUTCOMES),
            )
        )
