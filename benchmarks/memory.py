"""Memory: the peak RSS of a worker that holds 1 000 000 pending targets over 10 000 accounts.

Run from the repository root (takes its own embedded stack)::

    python benchmarks/memory.py                                  # 1 000 000 targets, 10 000 accounts
    python benchmarks/memory.py --targets 100000 --accounts 1000 --hold 60   # a quick run

What it drives
--------------
One ``invite-service worker`` subprocess on the embedded broker, PostgreSQL
and Redis and the sandbox Integration Service (20 ms per call), with the
default Telegram limits (``--limits off`` for none). A task takes at most
1 000 accounts, so the audience is split into ``accounts / 1000`` invite
tasks created through the API, each with its own 1 000 accounts.

To save time the targets are **loaded straight into PostgreSQL with COPY**
(unassigned and pending, as the importer leaves them; the import path has
its own figure in ``pipeline_throughput.py``). Then every task is started
through the API, so the worker really plans them (assigns every target to an
account, wakes every account) and schedules them: each account claims,
calls the sandbox and waits out its limits, for ``--hold`` seconds.

Printed figures
---------------
The worker's RSS when idle (ready, before any task), its peak RSS over the
whole run (``VmHWM`` from ``/proc/<pid>/status``, the kernel's own high-water
mark, so no spike between two samples is missed), its RSS at the end, the
sampled RSS over time, and what it did meanwhile (actions claimed, targets
still pending), so the figure is known to come from a worker at work.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import asyncpg
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    LIMITS_OFF,
    Api,
    Bench,
    CpuMeter,
    ServiceWorker,
    accounts,
    bench_stack,
    load_warning,
    machine,
    running_worker,
    sigterm_as_interrupt,
)

ACCOUNTS_PER_TASK = 1000  # TaskCreateRequest.account_ids allows at most this many
MIB = 2**20


def high_water_mark(pid: int) -> int:
    """Peak resident set size of a live process, in bytes (the kernel's VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc (not Linux?)")


async def copy_targets(database_url: str, task_ids: list[str], per_task: int) -> float:
    """COPY ``per_task`` pending, unassigned targets into each task; returns the seconds it took."""
    started = time.monotonic()
    conn = await asyncpg.connect(database_url)
    try:
        for t, task_id in enumerate(task_ids):
            records = [(task_id, f"u:mem_{t:02d}_{i:07d}", f"mem_{t:02d}_{i:07d}") for i in range(per_task)]
            await conn.copy_records_to_table("targets", records=records,
                                             columns=("task_id", "target_key", "username"))
        await conn.execute("ANALYZE targets")
    finally:
        await conn.close()
    return time.monotonic() - started


async def counts(database_url: str) -> tuple[int, int]:
    """(actions claimed so far, targets still pending)."""
    conn = await asyncpg.connect(database_url)
    try:
        claimed = await conn.fetchval("SELECT count(*) FROM account_actions")
        pending = await conn.fetchval("SELECT count(*) FROM targets WHERE status = 'pending'")
        return int(claimed), int(pending)
    finally:
        await conn.close()


async def run(bench: Bench, worker: ServiceWorker, args: argparse.Namespace) -> None:
    process = psutil.Process(worker.pid)
    idle_rss = process.memory_info().rss
    n_tasks = max(1, -(-args.accounts // ACCOUNTS_PER_TASK))
    everyone = accounts(args.accounts)
    api = Api(worker.base_url)
    try:
        task_ids = []
        for t in range(n_tasks):
            group = everyone[t * ACCOUNTS_PER_TASK : (t + 1) * ACCOUNTS_PER_TASK]
            task_ids.append(await api.create_task(f"memory{t}", group))
        per_task = args.targets // n_tasks
        copy_seconds = await copy_targets(bench.database_url, task_ids, per_task)
        print(f"COPYed {per_task * n_tasks} targets into {n_tasks} tasks in {copy_seconds:.1f} s", flush=True)

        meter = CpuMeter({"worker": worker.pid, **bench.pids()})
        meter.start()
        started = time.monotonic()
        for task_id in task_ids:
            await api.command(task_id, "execute")
        samples: list[tuple[float, int]] = []
        last_print = started
        while (now := time.monotonic() - started) < args.hold:
            samples.append((now, process.memory_info().rss))
            if time.monotonic() - last_print >= 15:
                last_print = time.monotonic()
                claimed, pending = await counts(bench.database_url)
                print(f"  {now:5.0f} s  RSS {samples[-1][1] / MIB:6.0f} MiB, {claimed} actions claimed,"
                      f" {pending} pending", flush=True)
            await asyncio.sleep(0.5)
        peak = high_water_mark(worker.pid)
        end_rss = process.memory_info().rss
        meter.stop()
        claimed, pending = await counts(bench.database_url)
        statuses = [(await api.stats(t))["status"] for t in task_ids]
    finally:
        await api.aclose()

    print(f"\n== memory: one worker, {per_task * n_tasks} targets over {args.accounts} accounts"
          f" ({n_tasks} tasks), limits {args.limits}, held {args.hold:.0f} s ==")
    print(f"machine: {machine()}")
    print(f"worker RSS idle   {idle_rss / MIB:8.0f} MiB")
    print(f"worker RSS PEAK   {peak / MIB:8.0f} MiB  (VmHWM)")
    print(f"worker RSS at end {end_rss / MIB:8.0f} MiB")
    step = max(1, len(samples) // 12)
    print("RSS over time: " + ", ".join(f"{t:.0f}s {rss / MIB:.0f}" for t, rss in samples[::step]) + " MiB")
    print(f"while held: {claimed} actions claimed, {pending} targets still pending;"
          f" tasks {sorted(set(statuses))}")
    print(f"CPU while held: {meter.report()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--hold", type=float, default=300.0, help="seconds the worker schedules after the start")
    parser.add_argument("--limits", choices=["default", "off"], default="default",
                        help="default Telegram limits (5/h, 50/day, 30-90 s pause) or none")
    parser.add_argument("--keep", action="store_true", help="keep the data dir (logs)")
    args = parser.parse_args(argv)
    if warning := load_warning():
        print(warning)
    env = LIMITS_OFF if args.limits == "off" else {}
    with (
        sigterm_as_interrupt(),
        bench_stack(sandbox_latency_ms=20, keep=args.keep) as bench,
        running_worker(bench, env) as worker,
    ):
        asyncio.run(run(bench, worker, args))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        sys.exit(130)
