"""The suppression list against a real PostgreSQL (migration 0002 applied by the real migrator)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from adapters.postgres.migrate import migrate
from adapters.postgres.pool import create_pool
from adapters.postgres.suppression import SuppressionStore
from models.audience import SuppressionEntry, SuppressionReason
from models.targets import IdentityKind, TargetIn


@pytest.fixture
async def pool(fresh_database: str) -> AsyncIterator[asyncpg.Pool]:
    conn = await asyncpg.connect(fresh_database)
    try:
        assert "0002_audience" in await migrate(conn)
        assert await migrate(conn) == []  # a second worker start applies nothing
    finally:
        await conn.close()
    created = await create_pool(fresh_database, max_size=4)
    yield created
    await created.close()


def entry(value: str, reason: str = "opt_out", kind: str | None = None) -> SuppressionEntry:
    return SuppressionEntry.model_validate({"value": value, "reason": reason, "kind": kind})


async def test_adding_is_idempotent_and_per_owner(pool: asyncpg.Pool) -> None:
    store = SuppressionStore(pool)
    assert await store.add("ann", [entry("@Alice_99"), entry("+7 916 123-45-67"), entry("42")]) == 3
    # Same identities in other spellings, one repeated within the call: nothing new, first reason kept.
    again = [entry("https://t.me/alice_99", "never_contact"), entry("89161234567", kind="phone"), entry("42"),
             entry("42")]
    assert await store.add("ann", again) == 0
    assert await store.add("bob", [entry("alice_99")]) == 1
    assert (await store.count("ann"), await store.count("bob")) == (3, 1)
    page = await store.list_entries("ann", kind=IdentityKind.USERNAME)
    assert [(e.value, e.reason) for e in page.items] == [("alice_99", SuppressionReason.OPT_OUT)]


async def test_removing_takes_any_spelling(pool: asyncpg.Pool) -> None:
    store = SuppressionStore(pool)
    await store.add("ann", [entry("alice_99"), entry("+79161234567")])
    assert await store.remove("ann", IdentityKind.USERNAME, "@ALICE_99") is True
    assert await store.remove("ann", IdentityKind.USERNAME, "alice_99") is False
    assert await store.remove("bob", IdentityKind.PHONE, "+79161234567") is False  # not bob's
    assert await store.remove("ann", IdentityKind.PHONE, "8 916 123 45 67") is True
    assert await store.count("ann") == 0


async def test_listing_pages_newest_first_without_gaps_or_repeats(pool: asyncpg.Pool) -> None:
    store = SuppressionStore(pool)
    await store.add("ann", [entry(f"user_{i:03d}", "never_contact" if i % 3 == 0 else "opt_out") for i in range(25)])
    await store.add("bob", [entry("user_999")])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await store.list_entries("ann", limit=10, cursor=cursor)
        seen += [e.value for e in page.items]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 3
    assert seen == [f"user_{i:03d}" for i in reversed(range(25))]
    never = await store.list_entries("ann", reason=SuppressionReason.NEVER_CONTACT, limit=100)
    assert len(never.items) == 9 and never.next_cursor is None
    assert all(e.reason is SuppressionReason.NEVER_CONTACT and e.created_at is not None for e in never.items)


async def test_filter_suppressed_matches_any_identity_in_one_pass(pool: asyncpg.Pool) -> None:
    store = SuppressionStore(pool)
    await store.add("ann", [entry("alice_99"), entry("+79161234567"), entry("42")])
    await store.add("ann", [entry("dave_44", "privacy")])
    await store.add("bob", [entry("carol")])
    targets = [
        TargetIn(username="alice_99"),
        TargetIn(username="bob_22", phone="+79161234567"),   # listed by phone only
        TargetIn(username="carol"),                          # listed by bob, not ann
        TargetIn(user_id=42, username="erin_55"),
        TargetIn(user_id=43),
        TargetIn(username="dave_44"),
    ]
    kept, suppressed = await store.filter_suppressed("ann", targets)
    assert [t.key for t in kept] == ["u:carol", "id:43"]
    assert [t.key for t in suppressed] == ["u:alice_99", "u:bob_22", "id:42", "u:dave_44"]
    # A task that does not skip earlier privacy failures asks for the user's own entries only.
    kept, _ = await store.filter_suppressed(
        "ann", targets, reasons=[SuppressionReason.OPT_OUT, SuppressionReason.NEVER_CONTACT]
    )
    assert [t.key for t in kept] == ["u:carol", "id:43", "u:dave_44"]
    assert await store.filter_suppressed("ann", []) == ([], [])


async def _task_with_targets(pool: asyncpg.Pool, task_id: str, owner: str, rows: list[tuple]) -> None:
    await pool.execute(
        "INSERT INTO tasks (id, owner, name, kind, platform, status) VALUES ($1, $2, 'n', 'invite', 'telegram', 'completed')",
        task_id, owner,
    )
    await pool.executemany(
        "INSERT INTO targets (task_id, target_key, username, user_id, phone, status, reason)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [(task_id, *row) for row in rows],
    )


async def test_privacy_failures_are_remembered_for_the_owner_only(pool: asyncpg.Pool) -> None:
    store = SuppressionStore(pool)
    await _task_with_targets(pool, "t1", "ann", [
        ("u:priv_one", "priv_one", 1001, "+79161234501", "failed", "privacy_restricted"),
        ("u:mutual_two", "mutual_two", None, None, "failed", "not_mutual_contact"),
        ("id:1003", None, 1003, None, "failed", "user_deactivated"),   # permanent, but not privacy
        ("u:invited", "invited", None, None, "invited", None),
        ("u:later", "later", None, None, "pending", None),
    ])
    await store.add("ann", [entry("mutual_two", "never_contact")])
    assert await store.remember_privacy_failures("bob", "t1") == 0  # not bob's task
    assert await store.remember_privacy_failures("ann", "t1") == 3  # priv_one x3 identities; mutual_two known
    assert await store.remember_privacy_failures("ann", "t1") == 0
    records = (await store.list_entries("ann", limit=100)).items
    assert {(e.kind, e.value, e.reason, e.task_id) for e in records} == {
        (IdentityKind.USERNAME, "mutual_two", SuppressionReason.NEVER_CONTACT, None),
        (IdentityKind.USERNAME, "priv_one", SuppressionReason.PRIVACY, "t1"),
        (IdentityKind.USER_ID, "1001", SuppressionReason.PRIVACY, "t1"),
        (IdentityKind.PHONE, "+79161234501", SuppressionReason.PRIVACY, "t1"),
    }
    # A later task of the same owner skips the person by any identity.
    _, suppressed = await store.filter_suppressed("ann", [TargetIn(phone="89161234501"), TargetIn(username="later")])
    assert [t.phone for t in suppressed] == ["+79161234501"]


async def test_the_schema_refuses_unknown_kinds_and_reasons(pool: asyncpg.Pool) -> None:
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute("INSERT INTO suppressions (owner, kind, value, reason) VALUES ('a', 'email', 'x', 'opt_out')")
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute("INSERT INTO suppressions (owner, kind, value, reason) VALUES ('a', 'phone', 'x', 'dislike')")
    columns = {r["column_name"] for r in await pool.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_name IN ('import_batches', 'tasks')"
    )}
    assert {"suppressed", "skip_privacy_failed"} <= columns
