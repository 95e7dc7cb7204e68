"""Smoke check of the Docker-free Apache Kafka in deploy/kafka, with timings.

    python deploy/kafka/smoke.py [--refetch]

1. ``kafka.sh jars`` (``--refetch`` deletes deploy/kafka/lib/ first, to time
   the Maven download; ~/.m2 is kept);
2. ``kafka.sh start`` in a temporary data dir, then with aiokafka: produce and
   consume through an auto-created topic, create an 8-partition topic with
   AIOKafkaAdminClient, an idempotent producer, a transactional producer, a
   consumer group commit; with confluent_kafka: produce and consume;
3. ``kafka.sh status`` and ``kafka.sh stop``;
4. the same broker through tests/support/apache_kafka.py: start, produce, stop.

Prints what it did and a table of timings; exits non-zero on the first failure.
Not part of the test suite (it takes ~30 s and needs Java + Maven).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

KAFKA_DIR = Path(__file__).resolve().parent
REPO_ROOT = KAFKA_DIR.parents[1]
KAFKA_SH = KAFKA_DIR / "kafka.sh"
LIB_DIR = KAFKA_DIR / "lib"

timings: dict[str, float] = {}


@contextmanager
def timed(name: str):
    t0 = time.monotonic()
    yield
    timings[name] = time.monotonic() - t0
    print(f"  {name}: {timings[name]:.2f}s", flush=True)


def sh(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run([str(KAFKA_SH), *args], env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"kafka.sh {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


async def aiokafka_checks(bootstrap: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    suffix = uuid.uuid4().hex[:8]

    # Produce to a topic nobody created: auto.create.topics.enable, num.partitions=4.
    auto_topic = f"smoke-auto-{suffix}"
    with timed("aiokafka produce (auto-create topic)"):
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            meta = await producer.send_and_wait(auto_topic, b"hello", key=b"k1")
        finally:
            await producer.stop()
    print(f"    -> {auto_topic}[{meta.partition}]@{meta.offset}")

    with timed("aiokafka consume (group join, first group on the broker)"):
        consumer = AIOKafkaConsumer(
            auto_topic,
            bootstrap_servers=bootstrap,
            group_id=f"smoke-{suffix}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            msg = await asyncio.wait_for(consumer.getone(), 60)
            assert msg.value == b"hello" and msg.key == b"k1", msg
            await consumer.commit()
            tp = TopicPartition(auto_topic, msg.partition)
            assert await consumer.committed(tp) == msg.offset + 1
            parts = consumer.partitions_for_topic(auto_topic)
        finally:
            await consumer.stop()
    assert parts is not None and len(parts) == 4, f"auto-created topic has partitions {parts}, expected 4"
    print(f"    -> consumed {msg.value!r}, committed, topic has {len(parts)} partitions")

    topic8 = f"smoke-eight-{suffix}"
    with timed("admin create_topics (8 partitions)"):
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic8, num_partitions=8, replication_factor=1)])
            described = await admin.describe_topics([topic8])
        finally:
            await admin.close()
    n = len(described[0]["partitions"])
    assert n == 8, described
    print(f"    -> {topic8} has {n} partitions")

    with timed("aiokafka idempotent producer"):
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
        await producer.start()
        try:
            for i in range(8):
                await producer.send_and_wait(topic8, f"idem-{i}".encode(), partition=i)
        finally:
            await producer.stop()

    with timed("aiokafka transactional producer + read_committed consumer"):
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"smoke-tx-{suffix}")
        await producer.start()
        try:
            async with producer.transaction():
                await producer.send_and_wait(topic8, b"tx", partition=0)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, isolation_level="read_committed", auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            tp0 = TopicPartition(topic8, 0)
            consumer.assign([tp0])
            values = []
            while b"tx" not in values:
                batch = await asyncio.wait_for(consumer.getmany(tp0, timeout_ms=1000), 30)
                values += [m.value for m in batch.get(tp0, [])]
        finally:
            await consumer.stop()
    assert values == [b"idem-0", b"tx"], values
    print(f"    -> partition 0 read_committed: {values}")


def confluent_checks(bootstrap: str) -> None:
    from confluent_kafka import Consumer, Producer

    topic = f"smoke-confluent-{uuid.uuid4().hex[:8]}"
    with timed("confluent_kafka produce + consume"):
        delivered = []
        producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
        producer.produce(topic, b"from-librdkafka", on_delivery=lambda err, m: delivered.append((err, m)))
        assert producer.flush(30) == 0
        err, _ = delivered[0]
        assert err is None, err
        consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": "smoke-confluent", "auto.offset.reset": "earliest"}
        )
        consumer.subscribe([topic])
        try:
            deadline = time.monotonic() + 60
            got = None
            while got is None and time.monotonic() < deadline:
                m = consumer.poll(1.0)
                if m is not None and m.error() is None:
                    got = m.value()
        finally:
            consumer.close()
    assert got == b"from-librdkafka", got
    print(f"    -> {topic}: produced and consumed {got!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--refetch", action="store_true", help="delete deploy/kafka/lib/ first")
    args = parser.parse_args()

    if args.refetch:
        shutil.rmtree(LIB_DIR, ignore_errors=True)
    print("jars:")
    with timed("kafka.sh jars" + (" (fresh download)" if args.refetch else "")):
        sh("jars")
    lib_mb = dir_size(LIB_DIR) / 2**20
    print(f"    -> {len(list(LIB_DIR.glob('*.jar')))} jars, {lib_mb:.1f} MiB in {LIB_DIR}")

    with tempfile.TemporaryDirectory(prefix="kafka-smoke-") as tmp:
        env = {**os.environ, "KAFKA_DATA_DIR": str(Path(tmp) / "sh")}
        print("kafka.sh:")
        try:
            with timed("kafka.sh start (format + ready)"):
                bootstrap = sh("start", env=env).strip().splitlines()[-1]
            print(f"    -> {bootstrap}")
            asyncio.run(aiokafka_checks(bootstrap))
            confluent_checks(bootstrap)
            assert sh("status", env=env).strip() == bootstrap
        finally:
            with timed("kafka.sh stop"):
                sh("stop", env=env)
        with timed("kafka.sh start (restart, already formatted)"):
            bootstrap = sh("start", env=env).strip().splitlines()[-1]
        with timed("kafka.sh stop (after restart)"):
            sh("stop", env=env)

        print("tests/support/apache_kafka.py:")
        sys.path.insert(0, str(REPO_ROOT))
        from tests.support.apache_kafka import start_apache_kafka

        with timed("start_apache_kafka (format + ready)"):
            kafka = start_apache_kafka(Path(tmp) / "py")
        try:
            print(f"    -> {kafka!r}")

            async def one_message() -> None:
                from aiokafka import AIOKafkaProducer

                producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, enable_idempotence=True)
                await producer.start()
                try:
                    await producer.send_and_wait("smoke-helper", b"x")
                finally:
                    await producer.stop()

            with timed("aiokafka produce via helper broker"):
                asyncio.run(one_message())
        finally:
            with timed("ApacheKafka.stop()"):
                kafka.stop()
        assert not kafka.running

    print("\ntimings:")
    for name, seconds in timings.items():
        print(f"  {seconds:7.2f}s  {name}")
    print(f"  lib/: {lib_mb:.1f} MiB")
    print("OK")


if __name__ == "__main__":
    main()
