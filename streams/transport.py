"""aiokafka transport with a configurable consumer fetch wait.

faust-streaming hard-codes ``fetch_max_wait_ms=1500``; on a quiet topic each
hop then costs up to 1.5 s, which would make pause/cancel slow to reach the
schedulers (DESIGN.md, "Faust facts"). Registered as the ``kafka`` scheme.
"""

from __future__ import annotations

from typing import Any

import aiokafka
from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as faust_aiokafka

FETCH_MAX_WAIT_MS = 50


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # The value is only read when the consumer starts its fetcher.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer


def install(fetch_max_wait_ms: int) -> None:
    """Make ``kafka://`` URLs use this transport, with the given fetch wait."""
    global FETCH_MAX_WAIT_MS
    FETCH_MAX_WAIT_MS = fetch_max_wait_ms
    TRANSPORTS.data["kafka"] = f"{__name__}:Transport"
