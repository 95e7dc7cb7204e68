"""ImportStore against a real PostgreSQL: batches applied once, suppressed targets skipped, imports recorded."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from adapters.postgres.imports import ImportStore
from adapters.postgres.migrate import migrate
from adapters.postgres.pool import create_pool
from adapters.postgres.suppression import SuppressionStore
from models.audience import SuppressionEntry
from models.imports import (
    ImportReport,
    ImportSource,
    ImportStatus,
    batch_id_for,
    import_view,
)
from models.targets import TargetIn


@pytest.fixture
async def pool(fresh_database: str) -> AsyncIterator[asyncpg.Pool]:
    conn = await asyncpg.connect(fresh_database)
    try:
        assert "0005_imports" in await migrate(conn)
    finally:
        await conn.close()
    created = await create_pool(fresh_database, max_size=4)
    yield created
    await created.close()


async def _task(pool: asyncpg.Pool, owner: str, *, skip_privacy_failed: bool = True) -> str:
    task_id = str(uuid.uuid4())
    await pool.execute(
        "INSERT INTO tasks (id, owner, name, kind, platform, skip_privacy_failed)"
        " VALUES ($1, $2, 'n', 'invite', 'telegram', $3)",
        task_id, owner, skip_privacy_failed,
    )
    return task_id


def entry(value: str, reason: str = "opt_out") -> SuppressionEntry:
    return SuppressionEntry.model_validate({"value": value, "reason": reason})


async def test_a_batch_is_applied_once_and_counts_duplicates_against_the_task(pool: asyncpg.Pool) -> None:
    store = ImportStore(pool)
    task_id = await _task(pool, "ann")
    rows = [TargetIn(username="alice_99"), TargetIn(username="bob_22"), TargetIn(username="alice_99")]
    report = await store.import_batch(task_id, "b1", rows, [{"row": 4, "reason": "bad"}])
    assert report is not None
    assert (report.accepted, report.duplicate, report.invalid, report.suppressed) == (2, 1, 1, 0)
    assert await store.import_batch(task_id, "b1", rows, []) is None  # re-delivered: a no-op
    again = await store.import_batch(task_id, "b2", [TargetIn(username="bob_22"), TargetIn(user_id=7)], [])
    assert again is not None and (again.accepted, again.duplicate) == (1, 1)
    assert await pool.fetchval("SELECT count(*) FROM targets WHERE task_id = $1", task_id) == 3


async def test_suppressed_targets_are_stored_as_skipped_by_any_identity(pool: asyncpg.Pool) -> None:
    store, suppression = ImportStore(pool), SuppressionStore(pool)
    task_id = await _task(pool, "ann")
    await suppression.add("ann", [entry("alice_99"), entry("+79161234567"), entry("42")])
    await suppression.add("bob", [entry("carol_33")])  # another user's list does not count
    rows = [
        TargetIn(username="alice_99"),
        TargetIn(username="dave_44", phone="89161234567"),  # listed by phone only
        TargetIn(user_id=42),
        TargetIn(username="carol_33"),
        TargetIn(username="erin_55"),
    ]
    report = await store.import_batch(task_id, "b1", rows, [])
    assert report is not None and (report.accepted, report.suppressed, report.duplicate) == (2, 3, 0)
    stored = {r["target_key"]: (r["status"], r["reason"], r["finished_at"] is not None) for r in await pool.fetch(
        "SELECT target_key, status, reason, finished_at FROM targets WHERE task_id = $1", task_id)}
    assert stored == {
        "u:alice_99": ("skipped", "suppressed", True),
        "u:dave_44": ("skipped", "suppressed", True),
        "id:42": ("skipped", "suppressed", True),
        "u:carol_33": ("pending", None, False),
        "u:erin_55": ("pending", None, False),
    }
    counted = await pool.fetchval("SELECT suppressed FROM import_batches WHERE batch_id = 'b1'")
    assert counted == 3


async def test_earlier_privacy_failures_are_skipped_only_when_the_task_says_so(pool: asyncpg.Pool) -> None:
    store, suppression = ImportStore(pool), SuppressionStore(pool)
    await suppression.add("ann", [entry("priv_one", "privacy"), entry("never_two", "never_contact")])
    rows = [TargetIn(username="priv_one"), TargetIn(username="never_two")]
    skipping = await _task(pool, "ann", skip_privacy_failed=True)
    keeping = await _task(pool, "ann", skip_privacy_failed=False)
    a = await store.import_batch(skipping, "s1", rows, [])
    b = await store.import_batch(keeping, "k1", rows, [])
    assert a is not None and b is not None
    assert (a.accepted, a.suppressed) == (0, 2)
    assert (b.accepted, b.suppressed) == (1, 1)  # the opt-out still counts; the privacy memory does not
    status = await pool.fetchval(
        "SELECT status FROM targets WHERE task_id = $1 AND username = 'priv_one'", keeping)
    assert status == "pending"


async def test_an_import_is_recorded_and_its_batches_summed(pool: asyncpg.Pool) -> None:
    store = ImportStore(pool)
    task_id = await _task(pool, "ann")
    other_task = await _task(pool, "ann")
    import_id = str(uuid.uuid4())
    await store.create_import(import_id, "ann", task_id, ImportSource.CSV, ImportStatus.VALIDATING, filename="a.csv")
    report = ImportReport(accepted=3, rejected=1, duplicate=2)
    await store.touch(import_id, rows_read=6, report=report, status=ImportStatus.PUBLISHING)
    await store.import_batch(task_id, batch_id_for(import_id, 1), [TargetIn(username="alice_99")], [],
                             import_id=import_id)
    await store.import_batch(task_id, batch_id_for(import_id, 2),
                             [TargetIn(username="bob_22"), TargetIn(username="alice_99")], [], import_id=import_id)
    # A batch naming this import but landing in another task is not this import's.
    await store.import_batch(other_task, batch_id_for(import_id, 3), [TargetIn(username="carol_33")], [],
                             import_id=import_id)
    await store.touch(import_id, rows_published=3, batches=2, status=ImportStatus.PUBLISHED)
    record = await store.get_import(import_id, "ann")
    assert record is not None and record.report == report and record.filename == "a.csv"
    assert await store.get_import(import_id, "bob") is None
    applied = (await store.applied([import_id]))[import_id]
    assert (applied.batches, applied.accepted, applied.duplicate) == (2, 2, 1)
    view = import_view(record, applied, now=datetime.now(UTC), stale_after=60)
    assert view.status is ImportStatus.COMPLETED
    assert view.result.model_dump() == {"accepted": 2, "duplicate": 3, "invalid": 1, "suppressed": 0}
    assert [r.id for r in await store.imports_of_task(task_id, "ann")] == [import_id]
    assert await store.imports_of_task(task_id, "bob") == []


async def test_listing_someone_skips_their_waiting_targets_in_open_tasks_only(pool: asyncpg.Pool) -> None:
    store, suppression = ImportStore(pool), SuppressionStore(pool)
    running = await _task(pool, "ann")
    keeping = await _task(pool, "ann", skip_privacy_failed=False)
    finished = await _task(pool, "ann")
    others = await _task(pool, "bob")
    rows = [TargetIn(username="alice_99"), TargetIn(user_id=42, username="bob_22"), TargetIn(username="carol_33")]
    for task_id in (running, keeping, finished, others):
        await store.import_batch(task_id, f"b-{task_id}", rows, [])
    await pool.execute("UPDATE tasks SET status = 'completed' WHERE id = $1", finished)
    await pool.execute("UPDATE targets SET status = 'in_flight' WHERE task_id = $1 AND username = 'carol_33'", running)
    entries = [entry("alice_99"), entry("42", "privacy"), entry("carol_33")]
    assert await suppression.skip_waiting_targets("ann", entries) == 4
    status = {(r["task_id"], r["target_key"]): r["status"] for r in await pool.fetch(
        "SELECT task_id, target_key, status FROM targets")}
    assert status[(running, "u:alice_99")] == "skipped"
    assert status[(running, "id:42")] == "skipped"            # privacy memory, and this task skips those
    assert status[(running, "u:carol_33")] == "in_flight"      # already claimed: left to settle
    assert status[(keeping, "u:alice_99")] == "skipped"
    assert status[(keeping, "id:42")] == "pending"             # this task does not skip privacy memories
    assert status[(keeping, "u:carol_33")] == "skipped"
    assert {status[(finished, k)] for k in ("u:alice_99", "id:42", "u:carol_33")} == {"pending"}
    assert {status[(others, k)] for k in ("u:alice_99", "id:42", "u:carol_33")} == {"pending"}
