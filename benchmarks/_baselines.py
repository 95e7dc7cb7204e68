"""Baselines measured on the same broker in the same run: raw aiokafka and a trivial faust agent.

* ``raw_kafka``: aiokafka produces N messages (event-sized JSON, keyed by
  account, to a topic with the service's partition count), then one consumer
  reads them all back. What the broker and the Kafka client can do.
* ``faust_ceiling``: a faust app in its own process (like the worker: one
  process, the same memory store and the same consumer fetch wait) whose one
  agent does exactly one table increment per event, over N events already in
  the topic. DESIGN.md's "Faust facts" measured ~3.8k events/s on this
  machine: faust, not Kafka, is the ceiling. The pipeline's goal is
  targets/s >= 0.3 x this figure.

Run as a script, this module *is* that faust process (the benchmark starts it).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PARTITIONS = 8  # the service's default topic partition count
_KEYS = 1000


def _value(i: int) -> bytes:
    """About the size of one of the service's event envelopes (~300 bytes)."""
    return json.dumps({
        "type": "work.assigned", "version": 1, "id": str(uuid.uuid4()),
        "occurred_at": "2026-11-27T10:00:00.000000Z", "source": "benchmark", "user_id": "bench-user",
        "data": {"task_id": "00000000-0000-0000-0000-000000000000", "account_id": f"acc-{i % _KEYS:05d}",
                 "targets": i},
    }).encode()


@dataclass
class RawKafka:
    messages: int
    produce_seconds: float
    consume_seconds: float

    @property
    def produce_rate(self) -> float:
        return self.messages / self.produce_seconds

    @property
    def consume_rate(self) -> float:
        return self.messages / self.consume_seconds

    @property
    def round_trip_rate(self) -> float:
        """Messages produced and consumed back, per second of both phases."""
        return self.messages / (self.produce_seconds + self.consume_seconds)


async def _produce(bootstrap: str, topic: str, n: int) -> float:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks=1)
    await producer.start()
    try:
        started = time.perf_counter()
        pending = [await producer.send(topic, _value(i), key=f"acc-{i % _KEYS:05d}".encode()) for i in range(n)]
        await asyncio.gather(*pending)
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def _consume(bootstrap: str, topic: str, n: int) -> float:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
        enable_auto_commit=False, fetch_max_wait_ms=50,
    )
    await consumer.start()
    try:
        started = time.perf_counter()
        seen = 0
        while seen < n:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            seen += sum(len(records) for records in batches.values())
            if time.perf_counter() - started > 600:
                raise TimeoutError(f"consumed only {seen} of {n} messages in 600 s")
        return time.perf_counter() - started
    finally:
        await consumer.stop()


async def raw_kafka(bootstrap: str, n: int) -> RawKafka:
    from adapters.kafka_admin import ensure_topics

    topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, {topic: PARTITIONS})
    produced = await _produce(bootstrap, topic, n)
    consumed = await _consume(bootstrap, topic, n)
    return RawKafka(n, produced, consumed)


@dataclass
class FaustCeiling:
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def faust_ceiling(bootstrap: str, n: int, work_dir: Path, fetch_max_wait_ms: int = 50) -> FaustCeiling:
    """Fill a topic with ``n`` events, then time a faust agent through them (its own process)."""
    from adapters.kafka_admin import ensure_topics

    app_id = f"bench-faust-{uuid.uuid4().hex[:8]}"
    topic = f"{app_id}-events"
    # tansu auto-creates unknown topics with 4 partitions: create both up front.
    asyncio.run(ensure_topics(bootstrap, {topic: PARTITIONS, f"{app_id}-counts-changelog": PARTITIONS}))
    asyncio.run(_produce(bootstrap, topic, n))
    result = work_dir / f"{app_id}.json"
    log_path = work_dir / f"{app_id}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, __file__, bootstrap, app_id, topic, str(n), str(result), str(fetch_max_wait_ms),
             str(work_dir / app_id)],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        try:
            deadline = time.monotonic() + 120 + n / 500
            while not result.exists():
                if process.poll() is not None:
                    raise RuntimeError(f"faust baseline exited with {process.returncode}; log: {log_path}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"faust baseline did not finish; log: {log_path}")
                time.sleep(0.2)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    timing = json.loads(result.read_text())
    return FaustCeiling(timing["events"], timing["seconds"])


def _run_faust_agent(bootstrap: str, app_id: str, topic_name: str, n: int, result: Path,
                     fetch_max_wait_ms: int, data_dir: str) -> None:
    """The baseline's faust process: one agent, one table increment per event."""
    import faust

    from streams import transport

    transport.install(fetch_max_wait_ms)  # the worker's consumer settings
    app = faust.App(
        app_id, broker=f"kafka://{bootstrap}", store="memory://", autodiscover=False, datadir=data_dir,
        topic_partitions=PARTITIONS, topic_replication_factor=1, consumer_auto_offset_reset="earliest",
        processing_guarantee="at_least_once", web_enabled=False,
        broker_session_timeout=3, broker_heartbeat_interval=0.5, broker_rebalance_timeout=2,
    )
    topic = app.topic(topic_name, key_type=bytes, value_type=bytes, key_serializer="raw",
                      value_serializer="raw", partitions=PARTITIONS)
    counts = app.Table("counts", default=int, partitions=PARTITIONS)
    seen = 0
    first = 0.0

    @app.agent(topic)
    async def count(stream: faust.StreamT) -> None:
        nonlocal seen, first
        async for event in stream.events():
            counts[event.key.decode()] += 1
            seen += 1
            if seen == 1:
                first = time.perf_counter()
            elif seen == n:
                # n - 1 events after the first one started the clock.
                result.write_text(json.dumps({"events": n - 1, "seconds": time.perf_counter() - first}))

    worker = faust.Worker(app, loglevel="WARNING", redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise


if __name__ == "__main__":
    bootstrap_, app_id_, topic_, n_, result_, wait_, data_dir_ = sys.argv[1:8]
    _run_faust_agent(bootstrap_, app_id_, topic_, int(n_), Path(result_), int(wait_), data_dir_)
