"""The demo campaign: a demo user, sandbox accounts and a few hundred targets.

Runs inside the worker as an app task and drives the service only through
its public HTTP API, exactly as an operator's client would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import click
import httpx

from models.settings import Settings

from .web.auth import issue_token

DEMO_USER = "demo-user"


def demo_overrides() -> dict[str, Any]:
    """Fast limits so a demo finishes in about a minute instead of days."""
    return {
        "invites_per_hour": 10_000,
        "invites_per_day": 100_000,
        "messages_per_day": 100_000,
        "pause_min_seconds": 0.2,
        "pause_max_seconds": 0.6,
    }


def demo_audience(n: int) -> list[dict[str, Any]]:
    return [{"username": f"demo_user_{i:05d}", "first_name": f"Demo {i}"} for i in range(n)]


def demo_task(settings: Settings, *, targets: int, accounts: int) -> Callable[[], Awaitable[None]]:
    base = f"http://{settings.web_host}:{settings.web_port}"
    token = issue_token(settings, DEMO_USER)
    headers = {"Authorization": f"Bearer {token}"}

    async def run() -> None:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as http:
            await _wait_until_up(http)
            await _cancel_earlier_demos(http)
            created = (await http.post("/api/v1/tasks", json={
                "name": "Demo campaign", "kind": "invite", "chat": "@demo_channel",
                "account_ids": [f"demo-account-{i}" for i in range(1, accounts + 1)],
            })).json()
            task_id = created["task_id"]
            await _until(lambda: http.get(f"/api/v1/tasks/{task_id}"), lambda r: r.status_code == 200)
            await http.post(f"/api/v1/tasks/{task_id}/targets", json={"targets": demo_audience(targets)})
            await _until(
                lambda: http.get(f"/api/v1/tasks/{task_id}/stats"),
                lambda r: r.json()["progress"]["total"] >= targets,
            )
            await http.post(f"/api/v1/tasks/{task_id}/execute")
            click.echo(f"\ndemo task {task_id} started: {targets} targets over {accounts} sandbox accounts")
            click.echo(f"stats: {base}/api/v1/tasks/{task_id}/stats")
            click.echo(f"token: export INVITE_TOKEN={token}")
            click.echo(f"console: {base}/#token={token}\n")
            await _report_until_done(http, task_id)

    return run


async def _cancel_earlier_demos(http: httpx.AsyncClient) -> None:
    """The data dir survives restarts: an unfinished earlier demo would share the accounts."""
    for status in ("running", "paused"):
        for task in (await http.get("/api/v1/tasks", params={"status": status})).json()["items"]:
            await http.post(f"/api/v1/tasks/{task['id']}/cancel")
            click.echo(f"cancelled the earlier demo task {task['id']}")


async def _wait_until_up(http: httpx.AsyncClient) -> None:
    await _until(lambda: http.get("/health"), lambda r: r.status_code == 200)


async def _until(
    call: Callable[[], Awaitable[httpx.Response]], done: Callable[[httpx.Response], bool], every: float = 0.3
) -> httpx.Response:
    while True:
        try:
            response = await call()
            if done(response):
                return response
        except httpx.HTTPError:
            pass
        await asyncio.sleep(every)


async def _report_until_done(http: httpx.AsyncClient, task_id: str) -> None:
    while True:
        stats = (await http.get(f"/api/v1/tasks/{task_id}/stats")).json()
        progress = stats["progress"]
        outcomes = ", ".join(f"{k}={v}" for k, v in sorted(stats["outcomes"].items()))
        click.echo(f"[demo] {stats['status']:>9}  {progress['done']}/{progress['total']} ({progress['percent']}%)  {outcomes}")
        if stats["status"] in ("completed", "cancelled", "failed"):
            click.echo("[demo] campaign finished; the service keeps running (Ctrl-C to stop)")
            return
        await asyncio.sleep(2)
