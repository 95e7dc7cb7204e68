"""The worker's connections to the outside world, started before the app.

One mode Service owns the PostgreSQL pool, Redis, the Integration Service
client and the platform adapters; agents and views receive it instead of
reaching for globals.
"""

from __future__ import annotations

import logging

import mode
import redis.asyncio as redis

from adapters.integration import IntegrationClient, TokenProvider, jwt_token_provider
from adapters.kafka_admin import ensure_topics
from adapters.platforms.base import PlatformAdapter
from adapters.platforms.registry import get_adapter
from adapters.postgres.claims import ClaimStore
from adapters.postgres.imports import ImportStore
from adapters.postgres.migrate import migrate
from adapters.postgres.pool import create_pool
from adapters.postgres.suppression import SuppressionStore
from adapters.postgres.targets import TargetStore
from adapters.postgres.tasks import TaskStore
from adapters.redis_mirror import AccountMirror
from models.circuit import BreakerPolicy
from models.settings import Settings

log = logging.getLogger(__name__)


class Runtime(mode.Service):
    """Connections shared by every agent, timer and view of one worker."""

    def __init__(self, settings: Settings, topics_to_create: dict[str, int], **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self._topics_to_create = topics_to_create
        self.policy = settings.limit_policy()

    async def on_start(self) -> None:
        s = self.settings
        assert s.database_url and s.redis_url and s.kafka_broker and s.integration_service_url
        await ensure_topics(s.kafka_broker, self._topics_to_create)
        self.pool = await create_pool(s.database_url)
        async with self.pool.acquire() as conn:
            applied = await migrate(conn)
        if applied:
            log.info("applied migrations %s", applied)
        self.tasks = TaskStore(self.pool)
        self.targets = TargetStore(self.pool)
        self.claims = ClaimStore(self.pool)
        self.imports = ImportStore(self.pool)
        self.suppression = SuppressionStore(self.pool)
        # Blocking: under a burst of API requests, wait for a connection
        # rather than fail with "Too many connections" (benchmarks/api_load.py).
        self.redis = redis.Redis(
            connection_pool=redis.BlockingConnectionPool.from_url(s.redis_url, max_connections=50, timeout=5)
        )
        self.mirror = AccountMirror(self.redis)
        token: str | TokenProvider | None = (
            s.integration_service_token.get_secret_value() if s.integration_service_token else None
        )
        if s.integration_service_jwt_secret is not None:
            token = jwt_token_provider(s.integration_service_jwt_secret.get_secret_value(), issuer=s.app_id)
        self.integration = IntegrationClient(
            s.integration_service_url, token=token,
            breaker_policy=BreakerPolicy(
                failure_threshold=s.breaker_failure_threshold, reset_seconds=s.breaker_reset_seconds
            ),
        )
        self._adapters: dict[str, PlatformAdapter] = {}

    def sending_blocked_until(self) -> float | None:
        """While the Integration Service's circuit is open: when to try again."""
        return self.integration.open_until()

    def adapter(self, platform: str) -> PlatformAdapter:
        if platform not in self._adapters:
            self._adapters[platform] = get_adapter(platform, client=self.integration)
        return self._adapters[platform]

    async def on_stop(self) -> None:
        await self.integration.aclose()
        await self.redis.aclose()
        await self.pool.close()
