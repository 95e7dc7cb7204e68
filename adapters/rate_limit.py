"""Per-user request rate limit in Redis: a fixed window counted with INCR and EXPIRE.

Shared by every worker, so a user gets one budget whichever worker answers.
Redis is not the source of truth of anything here: when it cannot be
reached the request is let through (an outage of the cache must not take
the API down) and the failure is logged.
"""

from __future__ import annotations

import logging
import time

import redis.asyncio as redis

log = logging.getLogger(__name__)


class RateLimiter:
    """``limit`` requests per ``window_seconds`` per key."""

    def __init__(self, client: redis.Redis, limit: int, window_seconds: int = 60,
                 prefix: str = "invite:ratelimit:") -> None:
        self._client = client
        self.limit = limit
        self.window = window_seconds
        self._prefix = prefix

    async def hit(self, key: str, now: float | None = None) -> int | None:
        """Count one request; None if allowed, else the seconds until the window resets."""
        if self.limit <= 0:
            return None
        now = time.time() if now is None else now
        window_start = int(now // self.window) * self.window
        redis_key = f"{self._prefix}{key}:{window_start}"
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.incr(redis_key)
                pipe.expire(redis_key, self.window + 1)
                count, _ = await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            log.warning("rate limit store unavailable, letting the request through: %s", exc)
            return None
        if int(count) <= self.limit:
            return None
        return max(1, int(window_start + self.window - now + 0.999))
