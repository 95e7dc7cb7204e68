"""Health probes of the parts a worker depends on: each answers ok/down with how long it took.

A probe never raises and never reports a URL or credential, only what failed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import redis.asyncio as redis
from aiokafka.admin import AIOKafkaAdminClient

from models.api import Check
from models.settings import Settings

from .integration import IntegrationClient


async def probe(check: Callable[[], Awaitable[Any]], timeout: float = 3.0) -> Check:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), timeout)
    except Exception as exc:  # noqa: BLE001 - any failure is "down", named by its type only
        return Check(status="down", latency_ms=_ms(started), detail=type(exc).__name__)
    return Check(status="ok", latency_ms=_ms(started))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


async def broker(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    await admin.start()
    try:
        await admin.describe_cluster()
    finally:
        await admin.close()


async def postgres(pool: asyncpg.Pool) -> None:
    await pool.fetchval("SELECT 1")


async def redis_ping(client: redis.Redis) -> None:
    await client.ping()


async def integration(client: IntegrationClient) -> None:
    await client.health()


async def vault(settings: Settings) -> None:
    from .vault import VaultClient  # only when configured

    health = await asyncio.to_thread(VaultClient(settings).health)
    if getattr(health, "sealed", False):
        raise RuntimeError("sealed")
