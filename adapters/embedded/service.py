"""`EmbeddedService`: what callers get back from ``start_tansu`` and friends."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from .process import ManagedProcess

__all__ = ["EmbeddedService", "run_coroutine"]

T = TypeVar("T")


class EmbeddedService:
    """A running embedded server: its name, client URL and how to stop it."""

    def __init__(self, name: str, url: str, process: ManagedProcess) -> None:
        self.name = name
        self.url = url
        self._process = process

    @property
    def pid(self) -> int | None:
        """PID of the server process, None once stopped."""
        return self._process.pid

    @property
    def port(self) -> int:
        return self._process.port

    @property
    def log_path(self) -> Path:
        return self._process.log_path

    @property
    def running(self) -> bool:
        return self._process.running

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        self._process.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedService({self.name!r}, url={self.url!r}, pid={self.pid})"


def run_coroutine(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run an async readiness probe from sync code, even when the caller is
    itself inside an event loop (an async fixture): asyncio.run refuses to
    nest, so then the probe gets its own loop in a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()
