"""Running real workers (``invite-service worker`` subprocesses) against a test stack."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from adapters.embedded import free_port

from .stack import TestStack

REPO = Path(__file__).resolve().parents[2]

# Fast limits for tests: a pause range well above timer jitter, windows out of the way.
FAST_LIMITS = {
    "INVITE_INVITES_PER_HOUR": "100000",
    "INVITE_INVITES_PER_DAY": "100000",
    "INVITE_MESSAGES_PER_DAY": "100000",
    "INVITE_PAUSE_MIN_SECONDS": "0.05",
    "INVITE_PAUSE_MAX_SECONDS": "0.1",
}


@dataclass
class Campaign:
    """Everything one test's service instance is configured with."""

    stack: TestStack
    database_url: str
    integration_url: str
    app_id: str
    data_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self, web_port: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INVITE_")}
        env.update(
            INVITE_KAFKA_BROKER=self.stack.kafka,
            INVITE_DATABASE_URL=self.database_url,
            INVITE_REDIS_URL=self.stack.redis_url,
            INVITE_INTEGRATION_SERVICE_URL=self.integration_url,
            INVITE_APP_ID=self.app_id,
            INVITE_TOPIC_PREFIX=f"{self.app_id}.",
            INVITE_TOPIC_PARTITIONS="4",
            INVITE_WEB_PORT=str(web_port),
            INVITE_DATA_DIR=str(self.data_dir),
            INVITE_JWT_SECRET=JWT_SECRET,
            INVITE_RECONCILE_INTERVAL_SECONDS="2",
            INVITE_BROKER_SESSION_TIMEOUT="3",
            INVITE_BROKER_HEARTBEAT_INTERVAL="0.5",
            INVITE_BROKER_REBALANCE_TIMEOUT="2",
            PYTHONPATH=str(REPO),
            **FAST_LIMITS,
        )
        env.update(self.extra_env)
        return env


class Worker:
    """One worker process; its log is kept for the test report."""

    def __init__(self, campaign: Campaign, name: str = "worker") -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = campaign.data_dir / f"{name}-{self.port}.log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env=campaign.env(self.port), stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready in {timeout}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 60) -> str:
        if not self._log.closed:
            self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def api(base_url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def wait_for(check: Any, timeout: float, every: float = 0.25, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


JWT_SECRET = "test-secret-long-enough-for-hs256-keys"  # the worker env's INVITE_JWT_SECRET


def token_for(owner: str) -> str:
    """A valid API token for ``owner``."""
    import jwt

    return jwt.encode({"sub": owner, "exp": int(time.time()) + 3600}, JWT_SECRET, algorithm="HS256")


def query(database_url: str, sql: str, *args: object) -> list[Any]:
    """Rows of one query, from a test's synchronous code."""
    import asyncio

    import asyncpg

    async def run() -> list[Any]:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


def create_task(
    http: httpx.Client, name: str, accounts: list[str], chat: str | None = None, **fields: Any
) -> str:
    """Create an invite task through the API and wait until the task agent recorded it."""
    created = http.post("/api/v1/tasks", json={
        "name": name, "kind": "invite", "chat": chat or f"@{name}_channel", "account_ids": accounts, **fields,
    })
    assert created.status_code == 202, created.text
    task_id: str = created.json()["task_id"]
    wait_for(lambda: http.get(f"/api/v1/tasks/{task_id}").status_code == 200, 60, what="task recorded")
    return task_id


def poll_stats(http: httpx.Client, task_id: str) -> dict[str, Any] | None:
    """A task's stats; None while a starting or rebalancing worker cannot place the key yet (503)."""
    response = http.get(f"/api/v1/tasks/{task_id}/stats")
    if response.status_code == 503:
        return None
    assert response.status_code == 200, response.text
    stats: dict[str, Any] = response.json()
    return stats


def wait_stats(
    http: httpx.Client, task_id: str, check: Any, timeout: float = 120, every: float = 0.25, what: str = "stats"
) -> dict[str, Any]:
    """Poll the task's stats until ``check(stats)`` holds; returns those stats."""
    result: dict[str, Any] = wait_for(
        lambda: (s := poll_stats(http, task_id)) is not None and check(s) and s, timeout, every, what
    )
    return result


def wait_status(http: httpx.Client, task_id: str, status: str, timeout: float = 120) -> dict[str, Any]:
    return wait_stats(http, task_id, lambda s: s["status"] == status, timeout, what=f"task {status}")


def fill_task(http: httpx.Client, task_id: str, audience: list[dict[str, Any]]) -> None:
    """Add targets and wait until the importer recorded them all."""
    assert http.post(f"/api/v1/tasks/{task_id}/targets", json={"targets": audience}).status_code == 202
    total = len({tuple(sorted(t.items())) for t in audience})
    # Generous: on Apache Kafka a partition moving mid-import can hold the batch for a while.
    wait_stats(http, task_id, lambda s: s["progress"]["total"] == total, 180, what="targets imported")


def start_campaign(
    http: httpx.Client, name: str, accounts: list[str], n: int, chat: str | None = None, **fields: Any
) -> str:
    """Create a task with ``n`` targets named after it, fill it and start it; returns its id."""
    task_id = create_task(http, name, accounts, chat=chat, **fields)
    fill_task(http, task_id, [{"username": f"{name}_{i:04d}"} for i in range(n)])
    assert http.post(f"/api/v1/tasks/{task_id}/execute").status_code == 202
    return task_id

