"""Topic administration: create every topic with its intended partition count.

tansu auto-creates unknown topics with 4 partitions, so topics must exist
before anything produces to them (DESIGN.md, "The embedded broker").
"""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

log = logging.getLogger(__name__)


async def ensure_topics(bootstrap: str, partitions_by_topic: dict[str, int]) -> dict[str, int]:
    """Create missing topics; returns the partition count each topic really has."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, num_partitions=n, replication_factor=1)
            for name, n in partitions_by_topic.items()
            if name not in existing
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another worker won the race; the check below still holds
        described = await admin.describe_topics(list(partitions_by_topic))
        actual = {d["topic"]: len(d["partitions"]) for d in described}
        for name, wanted in partitions_by_topic.items():
            if actual.get(name) != wanted:
                log.warning("topic %s has %s partitions, expected %s", name, actual.get(name), wanted)
        return actual
    finally:
        await admin.close()
