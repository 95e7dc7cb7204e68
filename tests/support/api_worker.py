"""One worker (with its own database and sandbox) shared by the tests of an API test module.

API tests exercise many routes against one running service; starting a worker
per test would cost more than the tests themselves.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt

from adapters.embedded.sandbox import start_sandbox

from .stack import TestStack, create_database
from .worker import JWT_SECRET, Campaign, Worker, api, wait_for


@dataclass
class Served:
    """A running worker and how to reach it."""

    worker: Worker
    campaign: Campaign

    @property
    def url(self) -> str:
        return self.worker.base_url

    def client(self, owner: str) -> httpx.Client:
        return api(self.worker.base_url, token(owner))


def token(owner: str, *, secret: str = JWT_SECRET, ttl: float = 3600, **claims: Any) -> str:
    """An HS256 API token; extra claims (aud, iss, nbf ...) as given."""
    return jwt.encode({"sub": owner, "exp": int(time.time() + ttl), **claims}, secret, algorithm="HS256")


@contextmanager
def running_worker(stack: TestStack, data_dir: Path, **env: str) -> Iterator[Served]:
    database_url = create_database(stack.database_url)
    sandbox = start_sandbox(data_dir, latency_ms=5)
    campaign = Campaign(stack, database_url, sandbox.url, f"api-{uuid.uuid4().hex[:8]}", data_dir, extra_env=env)
    worker = Worker(campaign, name="api")
    try:
        worker.wait_ready()
        yield Served(worker, campaign)
    except BaseException:
        print(worker.log_tail(200))
        raise
    finally:
        worker.stop()
        sandbox.stop()


def recorded(http: httpx.Client, task_id: str, check: Any = None, timeout: float = 60) -> dict[str, Any]:
    """The task once the task agent recorded it (and ``check(task)`` holds)."""

    def ready() -> dict[str, Any] | None:
        response = http.get(f"/api/v1/tasks/{task_id}")
        if response.status_code != 200:
            return None
        task: dict[str, Any] = response.json()
        return task if check is None or check(task) else None

    result: dict[str, Any] = wait_for(ready, timeout, what=f"task {task_id}")
    return result


def new_task(http: httpx.Client, name: str, accounts: list[str] | None = None, **fields: Any) -> str:
    body = {"name": name, "kind": "invite", "chat": f"@{name}_chat", "account_ids": accounts or ["acc-1"], **fields}
    created = http.post("/api/v1/tasks", json=body)
    assert created.status_code == 202, created.text
    task_id: str = created.json()["task_id"]
    recorded(http, task_id)
    return task_id


def filled(http: httpx.Client, task_id: str, usernames: list[str]) -> list[dict[str, Any]]:
    """Add targets by username and wait until they are all listed; returns the targets."""
    response = http.post(f"/api/v1/tasks/{task_id}/targets", json={"targets": [{"username": u} for u in usernames]})
    assert response.status_code == 202, response.text

    def listed() -> list[dict[str, Any]] | None:
        page = http.get(f"/api/v1/tasks/{task_id}/targets", params={"limit": 1000}).json()
        return page["items"] if page["total"] >= len(usernames) else None

    result: list[dict[str, Any]] = wait_for(listed, 60, what="targets imported")
    return result
