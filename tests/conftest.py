"""Session fixtures: the real broker, PostgreSQL and Redis (tests/support/stack.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from adapters.embedded.sandbox import start_sandbox
from tests.support.stack import TestStack, start_test_stack
from tests.support.worker import Campaign


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def stack(session_dir: Path) -> Iterator[TestStack]:
    started = start_test_stack(session_dir)
    yield started
    started.stop()


async def _create_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@pytest.fixture
def fresh_database(stack: TestStack) -> str:
    """A new, empty database on the session's PostgreSQL server."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_create_database(stack.database_url, name))
    return stack.database_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[str]:
    service = start_sandbox(tmp_path, latency_ms=5)
    yield service.url
    service.stop()


@pytest.fixture
def campaign(stack: TestStack, fresh_database: str, sandbox: str, tmp_path: Path) -> Campaign:
    app_id = f"it-{uuid.uuid4().hex[:8]}"
    return Campaign(stack, fresh_database, sandbox, app_id, tmp_path)
