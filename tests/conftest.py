"""Session fixtures: the real broker, PostgreSQL and Redis (tests/support/stack.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.embedded.sandbox import start_sandbox
from tests.support.stack import TestStack, create_database, start_test_stack
from tests.support.worker import Campaign


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def stack(session_dir: Path) -> Iterator[TestStack]:
    started = start_test_stack(session_dir)
    yield started
    started.stop()


@pytest.fixture
def fresh_database(stack: TestStack) -> str:
    """A new, empty database on the session's PostgreSQL server."""
    return create_database(stack.database_url)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[str]:
    service = start_sandbox(tmp_path, latency_ms=5)
    yield service.url
    service.stop()


@pytest.fixture
def campaign(stack: TestStack, fresh_database: str, sandbox: str, tmp_path: Path) -> Campaign:
    app_id = f"it-{uuid.uuid4().hex[:8]}"
    return Campaign(stack, fresh_database, sandbox, app_id, tmp_path)
