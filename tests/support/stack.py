"""The real parts a test session runs against, chosen from the environment.

- broker: ``INVITE_TEST_BROKER=tansu`` (default: embedded tansu),
  ``apache`` (Apache Kafka started from the Maven Central jars), or a
  bootstrap address ``host:port`` of a running broker;
- PostgreSQL / Redis: ``INVITE_DATABASE_URL`` / ``INVITE_REDIS_URL`` when set,
  otherwise the embedded servers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from adapters.embedded import EmbeddedService, start_postgres, start_redis, start_tansu


@dataclass
class TestStack:
    __test__ = False  # a fixture value, not a test class
    broker_kind: str
    kafka: str
    database_url: str
    redis_url: str
    _started: list[EmbeddedService] = field(default_factory=list)

    def stop(self) -> None:
        for service in reversed(self._started):
            service.stop()


def start_test_stack(data_dir: Path) -> TestStack:
    started: list[EmbeddedService] = []
    try:
        choice = os.environ.get("INVITE_TEST_BROKER", "tansu")
        if choice == "tansu":
            kafka = start_tansu(data_dir)
            started.append(kafka)
            bootstrap = kafka.url
        elif choice == "apache":
            from .apache_kafka import start_apache_kafka

            kafka = start_apache_kafka(data_dir / "apache-kafka")
            started.append(kafka)
            bootstrap = kafka.url
            choice = "apache"
        else:
            bootstrap, choice = choice, "external"
        database_url = os.environ.get("INVITE_DATABASE_URL")
        if not database_url:
            pg = start_postgres(data_dir)
            started.append(pg)
            database_url = pg.url
        redis_url = os.environ.get("INVITE_REDIS_URL")
        if not redis_url:
            rd = start_redis(data_dir)
            started.append(rd)
            redis_url = rd.url
    except BaseException:
        for service in reversed(started):
            service.stop()
        raise
    return TestStack(choice, bootstrap, database_url, redis_url, started)


def create_database(admin_url: str) -> str:
    """A new, empty database on the server of ``admin_url``; returns its URL."""
    import asyncio
    import uuid

    import asyncpg

    name = f"t_{uuid.uuid4().hex[:12]}"

    async def run() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(run())
    return admin_url.rsplit("/", 1)[0] + f"/{name}"

