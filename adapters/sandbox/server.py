"""Running the sandbox: in the caller's event loop, or as a process of its own.

    async with SandboxServer(SandboxConfig(), port=0) as sandbox:
        client = IntegrationClient(sandbox.url)

``port=0`` takes a free port; ``url`` tells which. The CLI runs it next to the
Faust app in one loop; ``run_sandbox`` (or ``python -m adapters.sandbox``)
serves it standalone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

from aiohttp import web

from .app import ENGINE, create_app
from .config import SandboxConfig
from .engine import SandboxEngine

__all__ = ["SandboxServer", "run_sandbox"]


class SandboxServer:
    """The sandbox HTTP server bound to ``host:port`` inside the running event loop."""

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config or SandboxConfig()
        self.host = host
        self._requested_port = port
        self.app = create_app(self.config, clock=clock)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def engine(self) -> SandboxEngine:
        """Direct access to the state (tests may read it without HTTP)."""
        return self.app[ENGINE]

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("sandbox not started")
        return self._port

    @property
    def url(self) -> str:
        """Base URL of the running server, e.g. ``http://127.0.0.1:41234``."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self) -> Self:
        """Bind and serve; returns at once, the server runs in this loop."""
        if self._runner is not None:
            return self
        # access_log=None: request lines would only be noise in tests and demos.
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        # A deep backlog: a burst of hundreds of new connections (benchmarks)
        # would otherwise overflow the default 128 and be reset.
        site = web.TCPSite(runner, self.host, self._requested_port, backlog=1024)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = _bound_port(runner)
        return self

    async def stop(self) -> None:
        """Stop serving and drop the state (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "not started"
        return f"SandboxServer({where})"


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError("sandbox bound to no TCP address")


def run_sandbox(host: str = "127.0.0.1", port: int = 8765, config: SandboxConfig | None = None) -> None:
    """Serve the sandbox until interrupted (blocks; owns its own event loop)."""
    web.run_app(create_app(config or SandboxConfig()), host=host, port=port, access_log=None, print=None)
