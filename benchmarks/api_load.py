"""API load: the status and stats endpoints polled by many clients during a running campaign.

Run from the repository root (takes its own embedded stack)::

    python benchmarks/api_load.py                     # 200 clients for 60 s
    python benchmarks/api_load.py --clients 50 --duration 20   # a quick run

What it drives
--------------
One ``invite-service worker`` subprocess on the embedded broker, PostgreSQL
and Redis and the sandbox Integration Service (its default 20 ms per call),
account limits off and no pause, so the campaign is as busy as it gets: one
invite task over ``--accounts`` accounts and ``--targets`` targets, started
before the load and still running after it (the script says so if it was
not). Then ``--clients`` concurrent clients (aiohttp, one connection each,
closed loop: the next request leaves when the answer to the previous one
arrived) poll ``GET /api/v1/tasks/{id}`` and ``GET /api/v1/tasks/{id}/stats``
alternately for ``--warmup`` (not counted) + ``--duration`` seconds, with a
valid bearer token. All clients are one user, so the API's per-user rate
limit (6 000 requests a minute by default) is switched off: with it, most
answers would be 429s, which measures the limiter, not the endpoints
(``--rate-limit-per-minute 6000`` puts it back; 429s then count as errors).

Printed figures
---------------
Per endpoint and in total: requests, requests/s, p50 / p90 / p99 / max
latency, and errors (a non-200 answer, a timeout after 10 s or a broken
connection, by kind). Also the campaign's progress (targets/s) in the
``--duration`` before the load and during it, and the CPU each process used
during the load (the load generator shares the machine's two cores with the
worker it measures).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    LIMITS_OFF,
    Api,
    Bench,
    CpuMeter,
    ServiceWorker,
    accounts,
    audience,
    bench_stack,
    load_warning,
    machine,
    running_worker,
    sigterm_as_interrupt,
    token,
)

ENDPOINTS = {"status": "/api/v1/tasks/{id}", "stats": "/api/v1/tasks/{id}/stats"}
REQUEST_TIMEOUT = 10.0


@dataclass
class Endpoint:
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests
    errors: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def requests(self) -> int:
        return len(self.latencies) + sum(self.errors.values())


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank on the sorted values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


async def client(session: aiohttp.ClientSession, base_url: str, task_id: str, first: int,
                 record_from: float, until: float, results: dict[str, Endpoint]) -> None:
    names = list(ENDPOINTS)
    i = first
    while time.monotonic() < until:
        name = names[i % len(names)]
        i += 1
        url = base_url + ENDPOINTS[name].format(id=task_id)
        started = time.perf_counter()
        # Warm-up answers (connection set-up of every client at once) are not counted.
        sink = results[name] if time.monotonic() >= record_from else Endpoint()
        try:
            async with session.get(url) as response:
                await response.read()
                if response.status == 200:
                    sink.latencies.append(time.perf_counter() - started)
                else:
                    sink.errors[f"HTTP {response.status}"] += 1
        except TimeoutError:
            sink.errors["timeout"] += 1
        except aiohttp.ClientError as exc:
            sink.errors[type(exc).__name__] += 1


async def load(base_url: str, task_id: str, clients: int, duration: float,
               warmup: float) -> tuple[dict[str, Endpoint], float]:
    results = {name: Endpoint() for name in ENDPOINTS}
    # One connection per client, like that many separate pollers.
    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    headers = {"Authorization": f"Bearer {token()}"}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as session:
        started = time.monotonic() + warmup
        until = started + duration
        await asyncio.gather(
            *(client(session, base_url, task_id, i, started, until, results) for i in range(clients))
        )
        elapsed = time.monotonic() - started
    return results, elapsed


async def run(bench: Bench, worker: ServiceWorker, args: argparse.Namespace) -> None:
    api = Api(worker.base_url)
    try:
        task_id = await api.create_task("apiload", accounts(args.accounts))
        await api.add_targets(task_id, audience(args.targets))
        await api.until(lambda: api.stats(task_id), lambda s: s["progress"]["total"] >= args.targets, timeout=600)
        await api.command(task_id, "execute")
        await api.until(lambda: api.stats(task_id), lambda s: s["progress"]["done"] > 0, timeout=120)
        before_start = (await api.stats(task_id))["progress"]["done"]
        quiet = min(args.duration, 30.0)
        await asyncio.sleep(quiet)
        at_load = await api.stats(task_id)
        quiet_rate = (at_load["progress"]["done"] - before_start) / quiet

        meter = CpuMeter({"worker": worker.pid, **bench.pids()}, alone={"load generator": os.getpid()})
        meter.start()
        results, elapsed = await load(worker.base_url, task_id, args.clients, args.duration, args.warmup)
        meter.stop()
        after = await api.stats(task_id)
    finally:
        await api.aclose()
    loaded_rate = (after["progress"]["done"] - at_load["progress"]["done"]) / elapsed
    report(args, results, elapsed, quiet_rate, loaded_rate, after, meter)


def report(args: argparse.Namespace, results: dict[str, Endpoint], elapsed: float, quiet_rate: float,
           loaded_rate: float, after: dict, meter: CpuMeter) -> None:
    limit = args.rate_limit_per_minute or "off"
    print(f"\n== api_load: {args.clients} clients for {elapsed:.1f} s during a running campaign"
          f" (API rate limit {limit}) ==")
    print(f"machine: {machine()}")
    print(f"{'endpoint':<8} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}"
          f" {'max ms':>8} {'errors':>7}")
    everything = Endpoint()
    for name, endpoint in [*results.items(), ("total", everything)]:
        if name != "total":
            everything.latencies += endpoint.latencies
            everything.errors.update(endpoint.errors)
        lat = endpoint.latencies
        print(f"{name:<8} {endpoint.requests:>9} {endpoint.requests / elapsed:>8.0f}"
              f" {percentile(lat, 50) * 1000:>8.1f} {percentile(lat, 90) * 1000:>8.1f}"
              f" {percentile(lat, 99) * 1000:>8.1f} {max(lat, default=float('nan')) * 1000:>8.1f}"
              f" {sum(endpoint.errors.values()):>7}")
    if everything.errors:
        print(f"errors by kind: {dict(everything.errors)}")
    if everything.latencies:
        print(f"mean latency {statistics.fmean(everything.latencies) * 1000:.1f} ms")
    print(f"campaign: {quiet_rate:.0f} targets/s before the load, {loaded_rate:.0f} targets/s during it;"
          f" task {after['status']} with {after['progress']['done']}/{after['progress']['total']} done")
    if after["status"] != "running":
        print("WARNING: the campaign was not running at the end of the load; raise --targets")
    print(f"CPU during the load: {meter.report()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load not counted")
    parser.add_argument("--targets", type=int, default=50_000, help="enough to keep the campaign running")
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--sandbox-latency-ms", type=int, default=20)
    parser.add_argument("--rate-limit-per-minute", type=int, default=0,
                        help="the API's per-user limit (INVITE_API_RATE_LIMIT_PER_MINUTE); 0 = off")
    parser.add_argument("--keep", action="store_true", help="keep the data dir (logs)")
    args = parser.parse_args(argv)
    if warning := load_warning():
        print(warning)
    with sigterm_as_interrupt(), bench_stack(sandbox_latency_ms=args.sandbox_latency_ms, keep=args.keep) as bench:
        env = {**LIMITS_OFF, "INVITE_API_RATE_LIMIT_PER_MINUTE": str(args.rate_limit_per_minute)}
        with running_worker(bench, env) as worker:
            asyncio.run(run(bench, worker, args))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        sys.exit(130)
