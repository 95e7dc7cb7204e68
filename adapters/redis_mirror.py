"""Mirror of account cooldowns and quarantines in Redis, for other services to see.

Redis is never the source of truth: every write here is best effort, and
losing Redis changes nothing about scheduling (DESIGN.md, Invariants).
"""

from __future__ import annotations

import json
import logging

import redis.asyncio as redis

log = logging.getLogger(__name__)


class AccountMirror:
    """Publishes ``invite:account:{id}`` with a TTL equal to the state's lifetime."""

    def __init__(self, client: redis.Redis, prefix: str = "invite:account:") -> None:
        self._client = client
        self._prefix = prefix

    async def publish(self, account_id: str, state: dict[str, object], ttl_seconds: float) -> None:
        if ttl_seconds <= 0:
            return
        try:
            await self._client.set(
                self._prefix + account_id, json.dumps(state), px=max(1, int(ttl_seconds * 1000))
            )
        except (redis.RedisError, OSError) as exc:
            log.warning("redis mirror unavailable, skipping: %s", exc)

    async def read(self, account_id: str) -> dict[str, object] | None:
        raw = await self._client.get(self._prefix + account_id)
        return json.loads(raw) if raw else None
