"""Topic and consumer-group administration: topics with their partition counts, lag, members.

tansu auto-creates unknown topics with 4 partitions, so topics must exist
before anything produces to them (DESIGN.md, "The embedded broker").
"""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from pydantic import BaseModel

log = logging.getLogger(__name__)


async def ensure_topics(bootstrap: str, partitions_by_topic: dict[str, int]) -> dict[str, int]:
    """Create missing topics; returns the partition count each topic really has.

    Table changelogs are compacted, as faust would create them: a delete
    policy would drop an account's limit state after the retention period.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, num_partitions=n, replication_factor=1,
                     topic_configs={"cleanup.policy": "compact"} if name.endswith("-changelog") else {})
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


class GroupView(BaseModel):
    """What the broker says about the workers' consumer group."""

    members: int | None  # None: the broker does not report members (tansu)
    lag: dict[tuple[str, int], int]  # (topic, partition) -> messages not yet committed


async def describe_group(bootstrap: str, group: str, partitions_by_topic: dict[str, int]) -> GroupView:
    """Members and lag of ``group`` on the given topics (partitions named explicitly: tansu needs them)."""
    partitions = [TopicPartition(t, p) for t, n in partitions_by_topic.items() for p in range(n)]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
        ends = await consumer.end_offsets(partitions)
        done = {tp: meta.offset for tp, meta in committed.items() if meta.offset >= 0}
        lag = {(tp.topic, tp.partition): max(0, end - done.get(tp, 0)) for tp, end in ends.items()}
        members: int | None = None
        try:
            described = await admin.describe_consumer_groups([group])
            # Raw DescribeGroups: (error, group_id, state, protocol_type, protocol, members, ...)
            found = [m for d in described for g in d.groups for m in g[5]]
            members = len(found) or None
        except Exception:  # not every broker answers DescribeGroups usefully
            members = None
        return GroupView(members=members, lag=lag)
    finally:
        await consumer.stop()
        await admin.close()
