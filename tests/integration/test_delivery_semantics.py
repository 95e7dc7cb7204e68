"""What faust-streaming delivery looks like on the broker under test (docs/brokers.md).

A probe worker (tests/support/probe_app.py: the service's consumer settings
and a changelog table) records every event it processes. Measured and
printed, on whichever broker the session runs (tansu or Apache Kafka):

* restart with a backlog (faust-streaming issue #596): events never
  processed, events processed twice, and whether a clean restart after
  everything was processed replays anything (commits stuck behind a gap);
* a second worker joining and then being killed with SIGKILL: re-delivery,
  the join time and the longest time an event waited (the failover).

Asserted is what the service relies on: nothing is lost in either scenario.
Re-delivery is allowed (every handler is idempotent) and only reported.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from adapters.kafka_admin import ensure_topics
from tests.support.stack import TestStack
from tests.support.worker import REPO, wait_for

pytestmark = pytest.mark.broker


class Probe:
    def __init__(self, stack: TestStack, app_id: str, topic: str, out: Path, log: Path) -> None:
        env = {**os.environ, "PROBE_BROKER": stack.kafka, "PROBE_APP_ID": app_id, "PROBE_TOPIC": topic,
               "PROBE_OUT": str(out), "PROBE_DATA": str(out.parent / f"faust-{app_id}"), "PYTHONPATH": str(REPO)}
        self.started = time.time()
        self._log = open(log, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "tests.support.probe_app", "worker"],
                                        env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def records(out: Path) -> list[tuple[int, int, float]]:
    if not out.exists():
        return []
    rows = []
    for line in out.read_text().splitlines():
        seq, pid, at = line.split()
        rows.append((int(seq), int(pid), float(at)))
    return rows


async def produce(bootstrap: str, topic: str, seqs: range) -> dict[int, float]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    sent: dict[int, float] = {}
    try:
        for seq in seqs:
            sent[seq] = time.time()
            await producer.send(topic, key=f"k{seq % 64}".encode(), value=str(seq).encode())
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def setup_topic(stack: TestStack) -> tuple[str, str]:
    app_id = f"probe-{uuid.uuid4().hex[:8]}"
    topic = f"{app_id}.events"
    asyncio.run(ensure_topics(stack.kafka, {topic: 4}))
    return app_id, topic


def wait_processed(out: Path, expected: set[int], timeout: float = 90) -> None:
    """Until every expected event was processed, or nothing new arrived for 15 s."""
    last_count, last_change = -1, time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = {seq for seq, _, _ in records(out)}
        if expected <= seen:
            return
        if len(seen) != last_count:
            last_count, last_change = len(seen), time.monotonic()
        elif time.monotonic() - last_change > 15:
            return
        time.sleep(0.3)


def test_restart_with_a_backlog_loses_nothing(stack: TestStack, tmp_path: Path) -> None:
    app_id, topic = setup_topic(stack)
    out = tmp_path / "seen.txt"
    asyncio.run(produce(stack.kafka, topic, range(0, 3000)))
    first = Probe(stack, app_id, topic, out, tmp_path / "probe1.log")
    try:
        wait_for(lambda: len(records(out)) >= 1000, 90, what="a third of the backlog")
    finally:
        first.stop()  # SIGTERM mid-backlog
    asyncio.run(produce(stack.kafka, topic, range(3000, 4000)))
    second = Probe(stack, app_id, topic, out, tmp_path / "probe2.log")
    try:
        wait_processed(out, set(range(4000)))
        time.sleep(2.5)  # two commit intervals
    finally:
        second.stop()
    before_clean_restart = len(records(out))
    third = Probe(stack, app_id, topic, out, tmp_path / "probe3.log")
    try:
        time.sleep(12)  # join, recover, and replay whatever was not committed
    finally:
        third.stop()

    seen = Counter(seq for seq, _, _ in records(out))
    skipped = 4000 - len(seen)
    twice = sum(n - 1 for n in seen.values())
    replayed = len(records(out)) - before_clean_restart
    print(f"\n[{stack.broker_kind}] restart with backlog: skipped {skipped}, processed twice {twice}, "
          f"replayed by a clean restart afterwards {replayed}")
    assert skipped == 0, f"{skipped} events were never processed"


def test_join_and_sigkill_of_a_second_worker(stack: TestStack, tmp_path: Path) -> None:
    app_id, topic = setup_topic(stack)
    out = tmp_path / "seen.txt"
    sent: dict[int, float] = {}
    stop_producing = threading.Event()

    def producer() -> None:
        seq = 0
        while not stop_producing.is_set():
            sent.update(asyncio.run(produce(stack.kafka, topic, range(seq, seq + 20))))
            seq += 20
            time.sleep(0.2)

    thread = threading.Thread(target=producer, daemon=True)
    first = Probe(stack, app_id, topic, out, tmp_path / "first.log")
    second: Probe | None = None
    try:
        thread.start()
        wait_for(lambda: records(out), 60, what="the first worker processing")
        second = Probe(stack, app_id, topic, out, tmp_path / "second.log")
        wait_for(lambda: any(pid == second.process.pid for _, pid, _ in records(out)), 90,
                 what="the second worker processing")
        joined_after = min(at for _, pid, at in records(out) if pid == second.process.pid) - second.started
        time.sleep(3)
        killed_at = time.time()
        second.stop(signal.SIGKILL)
        time.sleep(12)
        stop_producing.set()
        thread.join(30)
        wait_processed(out, set(sent))
    finally:
        stop_producing.set()
        first.stop()
        if second is not None:
            second.stop()

    rows = records(out)
    processed_at: dict[int, float] = {}
    for seq, _, at in rows:
        processed_at.setdefault(seq, at)
    seen = Counter(seq for seq, _, _ in rows)
    lost = set(sent) - set(seen)
    twice = sum(n - 1 for n in seen.values())
    after_kill = [processed_at[s] - sent[s] for s in sent if s in processed_at and sent[s] >= killed_at]
    print(f"\n[{stack.broker_kind}] second worker: first event {joined_after:.1f}s after its start; "
          f"{len(sent)} events, processed twice {twice}, lost {len(lost)}; "
          f"longest wait of an event sent after the SIGKILL {max(after_kill, default=0):.1f}s")
    assert not lost, f"{len(lost)} events were never processed"
