"""Connection pool creation with the JSON codecs the stores rely on."""

from __future__ import annotations

import json

import asyncpg


async def _init_connection(conn: asyncpg.Connection) -> None:
    # Binary format, because COPY (copy_records_to_table) only speaks binary;
    # jsonb's binary form is a version byte followed by the JSON text.
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda value: b"\x01" + json.dumps(value).encode(),
        decoder=lambda data: json.loads(data[1:]),
        schema="pg_catalog",
        format="binary",
    )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """No reset query when a connection goes back to the pool.

    asyncpg's default reset (unlock advisory locks, close cursors, UNLISTEN,
    RESET ALL) costs a round trip per query; we hold no session state: only
    transaction-level advisory locks, no LISTEN, no session SET, no cursors
    outside transactions. asyncpg still rolls back an open transaction.
    Measured by benchmarks/pipeline_throughput.py.
    """


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, reset=_keep_session
    )
    assert pool is not None
    return pool
