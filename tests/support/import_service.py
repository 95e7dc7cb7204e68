"""One real worker shared by a module of import tests, and helpers to upload files to it.

Import tests ask many small questions of the same service; starting a worker
per question would cost minutes. Each test creates its own task (and its own
owner where suppression lists are involved), so tests cannot see each
other's data.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx


from .api_worker import running_worker
from .stack import TestStack
from .worker import Campaign, Worker, api, create_task, query, token_for, wait_for


@dataclass
class ImportService:
    """A running worker and what tests need to talk to it."""

    campaign: Campaign
    worker: Worker

    @property
    def database_url(self) -> str:
        return self.campaign.database_url

    def client(self, owner: str) -> httpx.Client:
        http = api(self.worker.base_url, token_for(owner))
        http.timeout = httpx.Timeout(120)
        return http

    def new_task(self, http: httpx.Client, name: str | None = None) -> str:
        name = name or f"imp_{uuid.uuid4().hex[:8]}"
        return create_task(http, name, ["imp-acc-1"])

    def targets(self, task_id: str) -> list[dict[str, Any]]:
        """The task's target rows, ``extra`` decoded (a plain connection reads jsonb as text)."""
        rows = query(self.database_url, "SELECT * FROM targets WHERE task_id = $1 ORDER BY id", task_id)
        return [{**r, "extra": json.loads(r["extra"]) if r["extra"] is not None else None} for r in rows]

    def batches(self, task_id: str) -> list[asyncpg.Record]:
        return query(self.database_url, "SELECT * FROM import_batches WHERE task_id = $1", task_id)


@contextmanager
def import_service(stack: TestStack, data_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[ImportService]:
    """A fresh database and one worker on it (``api_worker.running_worker``), stopped at the end."""
    with running_worker(stack, data_dir, **(extra_env or {})) as served:
        yield ImportService(served.campaign, served.worker)


def upload(http: httpx.Client, path: str, content: bytes, filename: str, *,
           content_type: str = "application/octet-stream", **fields: Any) -> httpx.Response:
    """POST a multipart upload: ``file`` plus text fields (dicts are sent as JSON)."""
    data = {k: json.dumps(v) if isinstance(v, dict) else str(v) for k, v in fields.items() if v is not None}
    return http.post(path, files={"file": (filename, content, content_type)}, data=data)


def wait_import(http: httpx.Client, import_id: str, timeout: float = 60) -> dict[str, Any]:
    """The import's view once it completed or failed."""
    return wait_for(
        lambda: (v := http.get(f"/api/v1/imports/{import_id}").json())["status"] in ("completed", "failed") and v,
        timeout, what=f"import {import_id} to end",
    )
