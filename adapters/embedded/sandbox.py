"""The sandbox Integration Service as a child process, like the other embedded parts.

A separate process (``python -m adapters.sandbox``) so it is a real HTTP peer
that fault tests can stop and restart independently of the worker.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx

from .process import ManagedProcess, start_on_port
from .service import EmbeddedService

_HOST = "127.0.0.1"


def start_sandbox(data_dir: Path, port: int | None = None, *, latency_ms: int = 20) -> EmbeddedService:
    """Start the sandbox on 127.0.0.1; ``url`` is its base URL."""
    config = Path(data_dir) / "sandbox.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"latency_ms": latency_ms}))

    def build(p: int) -> ManagedProcess:
        return ManagedProcess(
            "sandbox",
            [sys.executable, "-m", "adapters.sandbox", "--host", _HOST, "--port", str(p), "--config", str(config)],
            port=p,
            log_path=Path(data_dir) / "logs" / "sandbox.log",
            host=_HOST,
            ready=lambda: _healthy(f"http://{_HOST}:{p}"),
        )

    process = start_on_port(build, port)
    return EmbeddedService("sandbox", f"http://{_HOST}:{process.port}", process)


def _healthy(base_url: str) -> bool:
    return httpx.get(f"{base_url}/v1/health", timeout=2).status_code == 200
