"""What every service benchmark needs: the embedded stack, a real worker, the API.

The benchmarks run the service exactly as tests do (tests/support/stack.py
picks the broker from ``INVITE_TEST_BROKER``: embedded tansu by default,
``apache`` or ``host:port``; PostgreSQL and Redis from ``INVITE_DATABASE_URL``
and ``INVITE_REDIS_URL`` or embedded), plus the sandbox Integration Service,
and one ``invite-service worker`` subprocess configured only through its
``INVITE_*`` environment. Everything started here is stopped again on exit,
on an exception and on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import asyncpg
import httpx
import jwt
import psutil

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as ``python benchmarks/x.py`` from anywhere
    sys.path.insert(0, str(REPO))

from adapters.embedded import EmbeddedService, free_port
from adapters.embedded.sandbox import start_sandbox
from tests.support.stack import TestStack, start_test_stack

JWT_SECRET = "benchmark-secret-long-enough-for-hs256"
OWNER = "bench-user"

# "Limits off": windows nobody reaches and no pause between two actions.
LIMITS_OFF = {
    "INVITE_INVITES_PER_HOUR": "1000000000",
    "INVITE_INVITES_PER_DAY": "1000000000",
    "INVITE_MESSAGES_PER_DAY": "1000000000",
    "INVITE_PAUSE_MIN_SECONDS": "0",
    "INVITE_PAUSE_MAX_SECONDS": "0",
}


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM takes Ctrl-C's path, so every ``finally`` below stops what it started."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class Bench:
    """One benchmark's parts: stack, sandbox, a fresh database, a data dir."""

    data_dir: Path
    stack: TestStack
    sandbox: EmbeddedService
    database_url: str
    app_id: str = field(default_factory=lambda: f"bench-{uuid.uuid4().hex[:8]}")

    def pids(self) -> dict[str, int]:
        """Process ids of the embedded parts we run (none for external ones)."""
        found = {"sandbox": self.sandbox.pid}
        for service in self.stack._started:
            found[service.name] = service.pid
        return {name: pid for name, pid in found.items() if pid}


@contextlib.contextmanager
def bench_stack(*, sandbox_latency_ms: int = 0, keep: bool = False) -> Iterator[Bench]:
    """Start the stack and the sandbox; stop both (and drop the data dir) on exit."""
    data_dir = Path(tempfile.mkdtemp(prefix="invite-bench-"))
    stack: TestStack | None = None
    sandbox: EmbeddedService | None = None
    try:
        stack = start_test_stack(data_dir)
        sandbox = start_sandbox(data_dir, latency_ms=sandbox_latency_ms)
        database_url = asyncio.run(_fresh_database(stack.database_url))
        yield Bench(data_dir, stack, sandbox, database_url)
    finally:
        if sandbox is not None:
            sandbox.stop()
        if stack is not None:
            stack.stop()
        if keep:
            print(f"data dir kept: {data_dir}", file=sys.stderr)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


async def _fresh_database(admin_url: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


class ServiceWorker:
    """One ``invite-service worker`` subprocess; its log stays in the data dir."""

    def __init__(self, bench: Bench, env: dict[str, str] | None = None, name: str = "worker") -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = bench.data_dir / f"{name}-{self.port}.log"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("INVITE_")}
        full_env.update(
            INVITE_KAFKA_BROKER=bench.stack.kafka,
            INVITE_DATABASE_URL=bench.database_url,
            INVITE_REDIS_URL=bench.stack.redis_url,
            INVITE_INTEGRATION_SERVICE_URL=bench.sandbox.url,
            INVITE_APP_ID=bench.app_id,
            INVITE_TOPIC_PREFIX=f"{bench.app_id}.",
            INVITE_WEB_PORT=str(self.port),
            INVITE_DATA_DIR=str(bench.data_dir / name),
            INVITE_JWT_SECRET=JWT_SECRET,
            # tansu waits the full rebalance timeout on every group change
            # (DESIGN.md): short ones only shorten the start, not the run.
            INVITE_BROKER_SESSION_TIMEOUT="3",
            INVITE_BROKER_HEARTBEAT_INTERVAL="0.5",
            INVITE_BROKER_REBALANCE_TIMEOUT="2",
            PYTHONPATH=str(REPO),
        )
        full_env.update(env or {})
        (bench.data_dir / name).mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - open as long as the worker runs
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env=full_env, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready in {timeout}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        if not self._log.closed:
            self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def stop(self, timeout: float = 30) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@contextlib.contextmanager
def running_worker(bench: Bench, env: dict[str, str] | None = None) -> Iterator[ServiceWorker]:
    worker = ServiceWorker(bench, env)
    try:
        worker.wait_ready()
        yield worker
    except BaseException:
        print(f"--- worker log tail ({worker.log_path}) ---\n{worker.log_tail()}", file=sys.stderr)
        raise
    finally:
        worker.stop()


def token(owner: str = OWNER) -> str:
    return jwt.encode({"sub": owner, "exp": int(time.time()) + 24 * 3600}, JWT_SECRET, algorithm="HS256")


class Api:
    """The service's public HTTP API, as an operator's client uses it."""

    def __init__(self, base_url: str, owner: str = OWNER) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {token(owner)}"}, timeout=60
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def create_task(self, name: str, accounts: list[str]) -> str:
        created = await self.http.post("/api/v1/tasks", json={
            "name": name, "kind": "invite", "chat": f"@{name}_channel", "account_ids": accounts,
        })
        created.raise_for_status()
        task_id: str = created.json()["task_id"]
        await self.until(lambda: self.http.get(f"/api/v1/tasks/{task_id}"), lambda r: r.status_code == 200)
        return task_id

    async def add_targets(self, task_id: str, targets: list[dict[str, Any]], chunk: int = 10_000) -> None:
        # aiohttp (faust web) caps a request body at 1 MiB by default.
        for start in range(0, len(targets), chunk):
            response = await self.http.post(
                f"/api/v1/tasks/{task_id}/targets", json={"targets": targets[start : start + chunk]}
            )
            if response.status_code != 202:
                raise RuntimeError(f"adding targets failed: {response.status_code} {response.text[:500]}")

    async def command(self, task_id: str, action: str) -> None:
        response = await self.http.post(f"/api/v1/tasks/{task_id}/{action}")
        if response.status_code != 202:
            raise RuntimeError(f"{action} failed: {response.status_code} {response.text[:500]}")

    async def stats(self, task_id: str) -> dict[str, Any]:
        while True:
            response = await self.http.get(f"/api/v1/tasks/{task_id}/stats")
            if response.status_code != 429:  # the per-user API rate limit: wait as told
                break
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
        response.raise_for_status()
        return dict(response.json())

    @staticmethod
    async def until(call: Any, done: Any, every: float = 0.2, timeout: float = 300) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                response = await call()
                if done(response):
                    return response
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the service did not get there in time")
            await asyncio.sleep(every)


def accounts(n: int, prefix: str = "bench-acc") -> list[str]:
    return [f"{prefix}-{i:05d}" for i in range(n)]


def audience(n: int, prefix: str = "bench_user") -> list[dict[str, Any]]:
    return [{"username": f"{prefix}_{i:07d}"} for i in range(n)]


class CpuMeter:
    """CPU seconds used by named process trees between ``start`` and ``stop``.

    A process tree because PostgreSQL works in one backend per connection;
    ``alone`` names processes counted without their children (the benchmark
    itself, whose children are everything else). A thread samples every
    second, so a backend that exits meanwhile loses at most its last second.
    """

    def __init__(self, pids: dict[str, int], alone: dict[str, int] | None = None) -> None:
        self._roots = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._alone = set(alone or {})
        self._roots.update({name: psutil.Process(pid) for name, pid in (alone or {}).items()})
        self._before: dict[str, dict[int, float]] = {}
        self._last: dict[str, dict[int, float]] = {}
        self._started = 0.0
        self._stopping = threading.Event()
        self._sampler: threading.Thread | None = None
        self.seconds: dict[str, float] = {}
        self.wall = 0.0

    def _tree_cpu(self, name: str) -> dict[int, float]:
        """CPU seconds of each live process of the tree, by pid."""
        root = self._roots[name]
        found: dict[int, float] = {}
        with contextlib.suppress(psutil.Error):
            for proc in [root] if name in self._alone else [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    t = proc.cpu_times()
                    found[proc.pid] = t.user + t.system
        return found

    def _sample(self) -> None:
        for name in self._roots:
            self._last[name].update(self._tree_cpu(name))

    def _run(self) -> None:
        while not self._stopping.wait(1.0):
            self._sample()

    def start(self) -> None:
        self._started = time.monotonic()
        self._before = {name: self._tree_cpu(name) for name in self._roots}
        self._last = {name: dict(before) for name, before in self._before.items()}
        self._sampler = threading.Thread(target=self._run, name="cpu-meter", daemon=True)
        self._sampler.start()

    def stop(self) -> None:
        self.wall = time.monotonic() - self._started
        self._stopping.set()
        if self._sampler is not None:
            self._sampler.join()
        self._sample()
        # Per pid: a process started meanwhile counts from zero.
        self.seconds = {
            name: sum(cpu - self._before[name].get(pid, 0.0) for pid, cpu in last.items())
            for name, last in self._last.items()
        }

    def report(self) -> str:
        """Each part's share of one core over the measured interval, busiest first."""
        if self.wall <= 0:
            return "no CPU measured"
        parts = sorted(self.seconds.items(), key=lambda kv: -kv[1])
        busy = sum(self.seconds.values()) / self.wall
        listed = ", ".join(f"{name} {sec / self.wall:.0%}" for name, sec in parts)
        return f"{listed} (of one core; sum {busy:.0%} of {psutil.cpu_count()} cores)"


def machine() -> str:
    """The machine and code a figure was measured on, for the printed report."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=5, check=False
        ).stdout.strip() or commit
    return (
        f"{cpu}, {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; "
        f"Python {platform.python_version()}; commit {commit} (plus uncommitted changes, if any)"
    )


def load_warning() -> str | None:
    """Other work on the machine skews every figure; say so when there is some."""
    load1, _, _ = os.getloadavg()
    if load1 > 0.5:
        return f"note: load average {load1:.1f} before the run; other processes share the cores"
    return None


class LagSampler:
    """Consumer lag of the worker's group on some topics, sampled while a phase runs.

    A topic whose lag keeps growing is where events queue: its agent is the
    bottleneck. Reads committed offsets (faust commits every second) with an
    admin client, never joining the group (that would start a rebalance).
    """

    def __init__(self, bootstrap: str, group: str, topics: list[str], every: float = 2.0) -> None:
        self._bootstrap = bootstrap
        self._group = group
        self._topics = topics
        self._every = every
        self.samples: dict[str, list[int]] = {t: [] for t in topics}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _run(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
        ends = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, group_id=None)
        await admin.start()
        await ends.start()
        try:
            partitions = [
                TopicPartition(t, p) for t in self._topics for p in (ends.partitions_for_topic(t) or ())
            ]
            if not partitions:
                await ends.client.force_metadata_update()
                partitions = [
                    TopicPartition(t, p) for t in self._topics for p in (ends.partitions_for_topic(t) or ())
                ]
            while True:
                with contextlib.suppress(Exception):  # a missed sample is no reason to stop
                    end = await ends.end_offsets(partitions)
                    done = await admin.list_consumer_group_offsets(self._group, partitions=partitions)
                    for topic in self._topics:
                        self.samples[topic].append(sum(
                            end[tp] - (done[tp].offset if tp in done and done[tp].offset >= 0 else 0)
                            for tp in partitions if tp.topic == topic
                        ))
                await asyncio.sleep(self._every)
        finally:
            await ends.stop()
            await admin.close()

    def report(self) -> str:
        parts = []
        for topic, lags in self.samples.items():
            if lags:
                parts.append(f"{topic.rsplit('.', 1)[-1]} mean {sum(lags) / len(lags):.0f} max {max(lags)}")
        return "; ".join(parts) or "no samples"
