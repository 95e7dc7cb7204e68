"""Bad input never stops an agent (DESIGN.md, "Invariants").

An outside producer (librdkafka via confluent-kafka, partitioned the way the
contract says: murmur2 on the key) writes poison into every inbound topic
while one real worker runs. Every poison message must come out on
``{app_id}.dead-letters`` with the source topic, the raw message and a reason
that names the problem, and a normal campaign afterwards must still run to
completion on the same partitions.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

from models.events import (
    InviteResultData,
    InviteResultEvent,
    TargetsImported,
    TargetsImportedData,
    TaskCreated,
    TaskCreatedData,
    WorkAssigned,
    WorkAssignedData,
    dump_event,
)
from models.outcomes import Outcome, Scope, Severity
from models.tasks import TaskKind
from tests.support.worker import Campaign, Worker, api, create_task, poll_stats, query, token_for, wait_for

pytestmark = pytest.mark.broker

INBOUND = ("tasks", "targets", "account-work", "results")
BIG_VALUE_BYTES = 5 * 1024 * 1024
CAMPAIGN_TARGETS = 30
ACCOUNTS = ["dl-acc-1", "dl-acc-2", "dl-acc-3"]






@dataclass
class Poison:
    """One message we produce and expect back on the dead-letter topic."""

    name: str
    topic: str
    key: bytes | None
    value: bytes
    # Every fragment must appear in the dead-letter reason (case-insensitive).
    reason_has: tuple[str, ...]
    partition: int | None = None
    marker: str = ""  # for keyless messages: a string found in the parked value

    def matches(self, parked: dict[str, Any]) -> bool:
        if parked.get("topic") != self.topic:
            return False
        if self.key is not None:
            return parked.get("key") == self.key.decode()
        return parked.get("key") is None and self.marker in (parked.get("value") or "")


def valid_event(topic: str, user_id: str = "poisoner") -> dict[str, Any]:
    """A well-formed event of a type this topic accepts (as JSON, like an outside producer holds it)."""
    task_id = str(uuid.uuid4())
    if topic == "tasks":
        event: Any = TaskCreated(user_id=user_id, data=TaskCreatedData(
            task_id=task_id, name="poison", chat="@poison", account_ids=["poison-acc"]))
    elif topic == "targets":
        event = TargetsImported(user_id=user_id, data=TargetsImportedData(
            task_id=task_id, targets=[{"username": "someone"}]))
    elif topic == "account-work":
        event = WorkAssigned(user_id=user_id, data=WorkAssignedData(
            task_id=task_id, account_id="poison-acc", targets=1))
    else:
        now = datetime.now(UTC)
        event = InviteResultEvent(user_id=user_id, data=InviteResultData(
            task_id=task_id, target_id=1, account_id="poison-acc", platform="telegram", action=TaskKind.INVITE,
            attempt=1, max_attempts=3, outcome=Outcome.INVITED, reason_category=Scope.SUCCESS,
            severity=Severity.PERMANENT, retryable=False, claimed_at=now, finished_at=now))
    return json.loads(dump_event(event))


# A valid event of a type the topic does *not* accept (it went to the wrong topic).
MISROUTED_FROM = {"tasks": "account-work", "targets": "tasks", "account-work": "targets", "results": "tasks"}
# Field names the "wrong schema" reason must name, per topic.
SCHEMA_FIELDS = {
    "tasks": ("task_id", "account_ids"),
    "targets": ("task_id", "targets"),
    "account-work": ("task_id", "account_id"),
    "results": ("task_id", "outcome"),
}


def poison_for(topic_name: Callable[[str], str], partitions: int) -> list[Poison]:
    poison: list[Poison] = []
    for short in INBOUND:
        topic = topic_name(short)

        def key(kind: str, short: str = short) -> bytes:
            return f"poison-{kind}-{short}-{uuid.uuid4().hex[:6]}".encode()

        # Not JSON at all, keyless, on every partition: each partition's stream must survive.
        for p in range(partitions):
            marker = f"garbage-{short}-p{p}-{uuid.uuid4().hex[:6]}"
            poison.append(Poison(f"invalid-json/{short}/p{p}", topic, None,
                                 f'{{"type": "task.created", "version": 1, {marker}'.encode(),
                                 ("invalid json",), partition=p, marker=marker))
        # JSON, but not an event at all.
        poison.append(Poison(f"not-an-envelope/{short}", topic, key("shape"),
                             json.dumps(["just", "a", "list"]).encode(), ("invalid event",)))
        # The right event type with a payload of the wrong shape.
        wrong = valid_event(short)
        wrong["data"] = {"unexpected": True}
        poison.append(Poison(f"wrong-schema/{short}", topic, key("schema"), json.dumps(wrong).encode(),
                             ("invalid event", "unexpected", *SCHEMA_FIELDS[short])))
        # Everything right except the version: a breaking change is a new version we do not speak.
        v2 = valid_event(short)
        v2["version"] = 2
        poison.append(Poison(f"version-2/{short}", topic, key("version"), json.dumps(v2).encode(),
                             ("invalid event", "version")))
        # A type nobody defined.
        unknown = valid_event(short)
        unknown["type"] = "task.exploded"
        poison.append(Poison(f"unknown-type/{short}", topic, key("unknown"), json.dumps(unknown).encode(),
                             ("task.exploded",)))
        # A real event type, on the wrong topic.
        misrouted = valid_event(MISROUTED_FROM[short])
        poison.append(Poison(f"misrouted/{short}", topic, key("misrouted"), json.dumps(misrouted).encode(),
                             ("unexpected event type", misrouted["type"])))
    return poison


def big_poison(topic: str) -> Poison:
    """~5 MB: a targets.imported batch far over the 10 000-row limit of one event."""
    event = valid_event("targets")
    row = {"username": "big_batch_row_username_padding_xxxxxxxxxxxxxxxxxxxx", "first_name": "Padding"}
    per_row = len(json.dumps(row)) + 2
    event["data"]["targets"] = [row] * (BIG_VALUE_BYTES // per_row + 1)
    value = json.dumps(event).encode()
    assert len(value) >= BIG_VALUE_BYTES
    return Poison("five-megabytes/targets", topic, f"poison-big-{uuid.uuid4().hex[:6]}".encode(), value,
                  ("invalid event", "10000"))


def produce(bootstrap: str, messages: list[Poison]) -> dict[str, KafkaError | None]:
    """Produce with librdkafka as another team would; returns each message's delivery error (None = ok)."""
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "partitioner": "murmur2_random",  # the contract: same partition as Java/aiokafka for a key
        "message.max.bytes": 8 * 1024 * 1024,
        "enable.idempotence": False,  # tansu has no InitProducerId
        "linger.ms": 5,
    })
    errors: dict[str, KafkaError | None] = {}

    def report(name: str) -> Callable[[KafkaError | None, Any], None]:
        return lambda err, _msg: errors.__setitem__(name, err)

    for p in messages:
        kwargs: dict[str, Any] = {"key": p.key, "value": p.value, "on_delivery": report(p.name)}
        if p.partition is not None:
            kwargs["partition"] = p.partition
        try:
            producer.produce(p.topic, **kwargs)
        except KafkaException as exc:  # refused locally (e.g. too large for the client)
            errors[p.name] = exc.args[0]
        producer.poll(0)
    assert producer.flush(60) == 0, "messages still queued after 60 s"
    return errors


def topic_partition_count(bootstrap: str, topic: str) -> int:
    producer = Producer({"bootstrap.servers": bootstrap})
    metadata = producer.list_topics(topic, timeout=10)
    return len(metadata.topics[topic].partitions)


def read_dead_letters(bootstrap: str, topic: str, until: Callable[[list[dict[str, Any]]], bool],
                      timeout: float) -> list[dict[str, Any]]:
    """Every message on the dead-letter topic (explicit assignment: no group rebalance on tansu)."""
    partitions = topic_partition_count(bootstrap, topic)
    consumer = KafkaConsumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"dead-letter-reader-{uuid.uuid4().hex[:6]}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    parked: list[dict[str, Any]] = []
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not until(parked):
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(msg.error())
            parked.append({**json.loads(msg.value()), "_kafka_key": msg.key(), "_partition": msg.partition()})
    finally:
        consumer.close()
    return parked


def run_normal_campaign(http: Any, name: str) -> dict[str, Any]:
    created = http.post("/api/v1/tasks", json={
        "name": name, "kind": "invite", "chat": "@after_poison", "account_ids": ACCOUNTS,
    })
    assert created.status_code == 202, created.text
    task_id = created.json()["task_id"]
    wait_for(lambda: http.get(f"/api/v1/tasks/{task_id}").status_code == 200, 60, what="task recorded")
    audience = [{"username": f"after_poison_{i:03d}"} for i in range(CAMPAIGN_TARGETS)]
    assert http.post(f"/api/v1/tasks/{task_id}/targets", json={"targets": audience}).status_code == 202
    wait_for(lambda: (s := poll_stats(http, task_id)) is not None and s["progress"]["total"] == CAMPAIGN_TARGETS,
             60, what="targets imported")
    assert http.post(f"/api/v1/tasks/{task_id}/execute").status_code == 202
    return wait_for(
        lambda: (s := http.get(f"/api/v1/tasks/{task_id}/stats").json())["status"] == "completed" and s,
        180, every=1, what="campaign completion after the poison",
    )


def test_poison_goes_to_dead_letters_and_processing_goes_on(campaign: Campaign) -> None:
    bootstrap = campaign.stack.kafka
    prefix = campaign.app_id + "."  # INVITE_TOPIC_PREFIX in tests/support/worker.py

    def topic_name(short: str) -> str:
        return prefix + short

    worker = Worker(campaign)
    try:
        worker.wait_ready()
        alice = api(worker.base_url, token_for("alice"))

        # A task of alice's, for mallory's forged import.
        alice_task = create_task(alice, "alice's", ["alice-acc"], chat="@alice_channel")

        partitions = topic_partition_count(bootstrap, topic_name("targets"))
        poison = poison_for(topic_name, partitions)
        forged = TargetsImported(user_id="mallory", data=TargetsImportedData(
            task_id=alice_task, targets=[{"username": "mallory_plant"}]))
        poison.append(Poison("foreign-task/targets", topic_name("targets"), alice_task.encode(),
                             dump_event(forged), ("unknown task", alice_task)))
        big = big_poison(topic_name("targets"))

        errors = produce(bootstrap, [*poison, big])
        assert {n: e for n, e in errors.items() if n != big.name and e is not None} == {}
        big_refused = errors.get(big.name)
        if big_refused is not None:
            # The broker may cap message size; then the poison never enters and that is the answer.
            assert big_refused.code() in (KafkaError.MSG_SIZE_TOO_LARGE, KafkaError._MSG_TIMED_OUT), big_refused
            print(f"NOTE: the broker refused the {len(big.value)} byte message: {big_refused}")
        else:
            poison.append(big)

        # Processing goes on: a whole campaign after the poison, on the same partitions.
        stats = run_normal_campaign(alice, "after the poison")
        assert stats["progress"]["total"] == CAMPAIGN_TARGETS
        assert stats["progress"]["done"] == CAMPAIGN_TARGETS and stats["progress"]["open"] == 0

        def all_parked(parked: list[dict[str, Any]]) -> bool:
            return all(any(p.matches(m) for m in parked) for p in poison)

        parked = read_dead_letters(bootstrap, topic_name("dead-letters"), all_parked, timeout=120)
        alive = worker.process.poll() is None
    except BaseException:
        print(worker.log_tail(200))
        raise
    finally:
        worker.stop()
    assert alive, "the worker died"

    missing = [p.name for p in poison if not any(p.matches(m) for m in parked)]
    assert missing == [], f"not dead-lettered: {missing}"
    for p in poison:
        (entry,) = [m for m in parked if p.matches(m)]  # each exactly once
        reason = entry["reason"].lower()
        for fragment in p.reason_has:
            assert fragment.lower() in reason, f"{p.name}: reason {entry['reason'][:300]!r} lacks {fragment!r}"
        assert entry["value_size"] == len(p.value), p.name
        assert entry["_kafka_key"] == p.key, f"{p.name}: parked under another key"
        if len(p.value) <= 64 * 1024:
            assert entry["value"] == p.value.decode() and entry["value_truncated"] is False, p.name
        else:
            assert entry["value_truncated"] is True and p.value.decode().startswith(entry["value"]), p.name
        datetime.fromisoformat(entry["at"])
    # Nothing else was parked: the normal campaign produced no dead letters.
    extra = [m for m in parked if not any(p.matches(m) for p in poison)]
    assert extra == [], f"unexpected dead letters: {[(m['topic'], m['reason'][:200]) for m in extra]}"

    # mallory's forged batch touched nothing of alice's.
    rows = query(campaign.database_url, "SELECT count(*) AS n FROM targets WHERE task_id = $1", alice_task)
    assert rows[0]["n"] == 0
    # None of the poison created a task.
    tasks = query(campaign.database_url, "SELECT name, owner FROM tasks ORDER BY name")
    assert sorted((t["name"], t["owner"]) for t in tasks) == [("after the poison", "alice"), ("alice's", "alice")]
