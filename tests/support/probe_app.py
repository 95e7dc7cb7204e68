"""A minimal faust worker that records every event it processes, for broker measurements.

Run as ``python -m tests.support.probe_app`` with ``PROBE_BROKER``,
``PROBE_APP_ID``, ``PROBE_TOPIC`` and ``PROBE_OUT`` (a file) and ``PROBE_DATA`` (faust's data dir) in the
environment. Configured like the service's workers in tests (same transport,
session, heartbeat, rebalance and commit settings) and with a
changelog-backed table, so that changelog recovery runs on every assignment
as it does in the service (faust-streaming issue #596 is a race in exactly
that recovery). Each processed event appends ``seq pid time`` to the file.
"""

from __future__ import annotations

import os
import time

import faust

from streams import transport


def main() -> None:
    transport.install(50)
    app = faust.App(
        os.environ["PROBE_APP_ID"],
        broker=f"kafka://{os.environ['PROBE_BROKER']}",
        store="memory://",
        autodiscover=False,
        datadir=os.environ["PROBE_DATA"],
        topic_partitions=4,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=3.0,
        broker_heartbeat_interval=0.5,
        broker_rebalance_timeout=2.0,
        broker_commit_interval=1.0,
        web_enabled=False,
    )
    topic = app.topic(os.environ["PROBE_TOPIC"], key_type=bytes, value_type=bytes, partitions=4)
    counts = app.Table("probe-counts", default=int, partitions=4, key_type=str, value_type=int)
    out = open(os.environ["PROBE_OUT"], "a", buffering=1)
    pid = os.getpid()

    @app.agent(topic)
    async def probe(stream: faust.StreamT) -> None:
        async for key, value in stream.items():
            counts[key.decode()] += 1
            out.write(f"{int(value)} {pid} {time.time():.3f}\n")

    worker = faust.Worker(app, loglevel="WARNING", redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
