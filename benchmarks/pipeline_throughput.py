"""Pipeline throughput: targets per second end to end, against faust's and Kafka's own ceilings.

Run from the repository root (takes its own embedded stack; default = issue 11's size)::

    python benchmarks/pipeline_throughput.py                      # 100 000 targets, 1 000 accounts
    python benchmarks/pipeline_throughput.py --targets 20000 --accounts 200   # a quick run

What it drives
--------------
The real service: one ``invite-service worker`` subprocess on the embedded
broker, PostgreSQL and Redis, with the sandbox Integration Service answering
at once (``latency_ms=0``) and every account limit off (windows of 10^9, no
pause). Through the public API it creates one invite task over ``--accounts``
accounts, adds ``--targets`` targets (POSTs of 10 000 rows; the API publishes
``targets.imported`` batches of 1 000, the importer COPYs them in), waits
until all are stored, starts the task and waits until it is ``completed``.
Every target makes the full trip: ``work.assigned``/``account.due`` →
account agent (limit state in its table, claim in PostgreSQL) → sandbox call
→ ``invite.result`` → results agent (projection into PostgreSQL, statistics
table, completion check) and ``action.completed`` → account agent → next.

Printed figures
---------------
* import: targets stored per second (first POST → all rows in PostgreSQL);
* run: targets per second from ``execute`` until the task is completed, and
  the steady rate between 10 % and 90 % done;
* end to end: targets / (first POST → task completed): **the figure**;
* the CPU each process used during the run (share of one core), which says
  what limits the figure;
* in the same run on the same broker: a faust agent doing one table
  increment per event over the same number of events (faust's ceiling; goal
  end-to-end >= 0.3 x it), and raw aiokafka produce + consume of the same
  number of messages, each with the pipeline's ratio to it.
* checks: targets the sandbox delivered twice, attempts in the execution log
  twice, results the statistics count beyond one per target (all must be 0;
  the exit status is 1 otherwise).

``--profile-seconds S`` records the worker with py-spy (``pip install
py-spy``) for S seconds of the run and prints where its time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _baselines import FaustCeiling, RawKafka, faust_ceiling, raw_kafka
from _harness import (
    LIMITS_OFF,
    Api,
    Bench,
    CpuMeter,
    LagSampler,
    ServiceWorker,
    accounts,
    audience,
    bench_stack,
    load_warning,
    machine,
    running_worker,
    sigterm_as_interrupt,
)

GOAL_RATIO = 0.3


@dataclass
class Pipeline:
    targets: int
    accounts: int
    import_seconds: float = 0.0
    run_seconds: float = 0.0  # execute -> completed
    terminal_seconds: float = 0.0  # execute -> no target open
    timeline: list[tuple[float, int]] = field(default_factory=list)  # (s since execute, done)
    cpu: str = ""
    outcomes: dict[str, int] = field(default_factory=dict)
    delivered: int = 0
    delivered_twice: int = 0
    profile: str = ""
    latency: str = ""
    logged_again: int = 0  # attempts in the execution log more than once
    lag: str = ""

    @property
    def end_to_end_seconds(self) -> float:
        return self.import_seconds + self.run_seconds

    @property
    def rate(self) -> float:
        return self.targets / self.end_to_end_seconds

    def problems(self) -> list[str]:
        """What the run got wrong (every figure is then suspect); empty when all is well."""
        found = []
        counted = sum(self.outcomes.values())
        # The sandbox fails nothing here, so there are no retries: one result per target.
        if counted != self.targets:
            found.append(f"the statistics count {counted} results for {self.targets} targets")
        if self.logged_again:
            found.append(f"{self.logged_again} attempts are in the execution log more than once")
        if self.delivered_twice:
            found.append(f"{self.delivered_twice} targets were delivered twice")
        return found

    def steady_rate(self) -> float | None:
        """Targets/s between 10 % and 90 % done (no start-up, no tail)."""
        low = next(((t, d) for t, d in self.timeline if d >= 0.1 * self.targets), None)
        high = next(((t, d) for t, d in self.timeline if d >= 0.9 * self.targets), None)
        if low is None or high is None or high[0] <= low[0]:
            return None
        return (high[1] - low[1]) / (high[0] - low[0])


async def run_pipeline(bench: Bench, worker: ServiceWorker, n_targets: int, n_accounts: int,
                       profile_seconds: float) -> Pipeline:
    result = Pipeline(n_targets, n_accounts)
    api = Api(worker.base_url)
    meter = CpuMeter({"worker": worker.pid, **bench.pids()})
    try:
        task_id = await api.create_task("pipeline", accounts(n_accounts))
        people = audience(n_targets)
        started = time.monotonic()
        await api.add_targets(task_id, people)
        await api.until(lambda: api.stats(task_id), lambda s: s["progress"]["total"] >= n_targets,
                        every=0.2, timeout=600)
        result.import_seconds = time.monotonic() - started
        print(f"import: {n_targets} targets stored in {result.import_seconds:.1f} s", flush=True)

        lags = LagSampler(bench.stack.kafka, bench.app_id,
                          [f"{bench.app_id}.{t}" for t in ("account-work", "results", "tasks")])
        await lags.__aenter__()
        meter.start()
        executed = time.monotonic()
        await api.command(task_id, "execute")
        profiler = _start_profiler(worker.pid, profile_seconds, bench.data_dir)
        last_print = executed
        while True:
            stats = await api.stats(task_id)
            now = time.monotonic() - executed
            done = stats["progress"]["done"]
            result.timeline.append((now, done))
            if not result.terminal_seconds and stats["progress"]["open"] == 0 and done >= n_targets:
                result.terminal_seconds = now
            if stats["status"] == "completed":
                result.run_seconds = now
                result.outcomes = stats["outcomes"]
                break
            if stats["status"] in ("failed", "cancelled", "paused"):
                raise RuntimeError(f"task ended {stats['status']}: {stats}")
            if time.monotonic() - last_print >= 10:
                last_print = time.monotonic()
                print(f"  {now:6.0f} s  {done}/{n_targets} done", flush=True)
            if now > 3600:
                raise TimeoutError(f"campaign not completed after an hour: {stats}")
            await asyncio.sleep(0.5)
        meter.stop()
        await lags.__aexit__()
        result.cpu = meter.report()
        result.lag = lags.report()
        if profiler is not None:
            result.profile = _finish_profiler(*profiler)
    finally:
        await api.aclose()

    async with httpx.AsyncClient(base_url=bench.sandbox.url, timeout=120) as sandbox:
        rows = (await sandbox.get("/sandbox/deliveries", params={"action": "invite"})).json()["deliveries"]
    result.latency, result.logged_again = await latency_breakdown(bench.database_url)
    per_target = collections.Counter(row["target"] for row in rows)
    result.delivered = len(rows)
    result.delivered_twice = sum(1 for n in per_target.values() if n > 1)
    return result


async def latency_breakdown(database_url: str) -> tuple[str, int]:
    """Where one target's round trip goes, from the execution log's claim and finish times.

    send: claim -> result (the sandbox call and the report); turnaround: one
    result -> the same account's next claim (action.completed and account.due
    through the broker, the account agent's queue, its PostgreSQL queries).
    Only the first log row of an attempt counts; the second number returned
    is how many attempts were logged more than once (should be 0).
    """
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            """
            WITH first AS (
                SELECT DISTINCT ON (target_id, attempt) account_id, claimed_at, finished_at
                FROM execution_log ORDER BY target_id, attempt, finished_at),
            l AS (
                SELECT claimed_at, finished_at,
                       lead(claimed_at) OVER (PARTITION BY account_id ORDER BY claimed_at) AS next_claim
                FROM first)
            SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (
                       ORDER BY extract(epoch FROM finished_at - claimed_at)) AS send,
                   percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (
                       ORDER BY extract(epoch FROM next_claim - finished_at)) AS turnaround,
                   (SELECT count(*) FROM execution_log) - (SELECT count(*) FROM first) AS logged_again
            FROM l
            """
        )
    finally:
        await conn.close()
    send, turn = row["send"], row["turnaround"]
    if send is None or turn is None:
        return "no execution log", 0
    return (f"send (claim -> result) p50 {send[0] * 1000:.0f} ms, p99 {send[1] * 1000:.0f} ms; "
            f"turnaround (result -> same account's next claim) p50 {turn[0] * 1000:.0f} ms, "
            f"p99 {turn[1] * 1000:.0f} ms"), int(row["logged_again"])


def _start_profiler(pid: int, seconds: float, out_dir: Path) -> tuple[subprocess.Popen[bytes], Path] | None:
    if seconds <= 0:
        return None
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        print("--profile-seconds needs py-spy: pip install py-spy", file=sys.stderr)
        return None
    out = out_dir / "worker-profile.txt"
    # --idle off: only samples where the worker runs Python, i.e. CPU time.
    process = subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200",
         "--format", "raw", "--output", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return process, out


def _finish_profiler(process: subprocess.Popen[bytes], out: Path) -> str:
    try:
        process.wait(120)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if not out.exists():
        return "py-spy wrote no profile (ptrace not permitted?)"
    return summarize_profile(out)


def summarize_profile(path: Path, top: int = 25) -> str:
    """Collapsed stacks (py-spy ``raw``) → the functions with the most samples, inclusive and self."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    if not total:
        return "no samples"

    def table(counter: collections.Counter[str]) -> str:
        return "\n".join(f"  {n / total:6.1%}  {frame}" for frame, n in counter.most_common(top))

    return (f"{total} samples\ninclusive (a frame anywhere on the stack):\n{table(inclusive)}\n"
            f"self (the innermost frame):\n{table(own)}")


def _ratio(rate: float, baseline: float) -> str:
    return f"{rate / baseline:.3f}" if baseline else "n/a"


def report(pipeline: Pipeline, ceiling: FaustCeiling | None, raw: RawKafka | None) -> None:
    n = pipeline.targets
    print(f"\n== pipeline_throughput: {n} targets over {pipeline.accounts} accounts, one worker ==")
    print(f"machine: {machine()}")
    print(f"import      {pipeline.import_seconds:8.1f} s  {n / pipeline.import_seconds:8.0f} targets/s")
    print(f"run         {pipeline.run_seconds:8.1f} s  {n / pipeline.run_seconds:8.0f} targets/s"
          f"  (all terminal after {pipeline.terminal_seconds:.1f} s)")
    steady = pipeline.steady_rate()
    if steady is not None:
        print(f"steady      {'':8}    {steady:8.0f} targets/s (10 % -> 90 % done)")
    print(f"END TO END  {pipeline.end_to_end_seconds:8.1f} s  {pipeline.rate:8.0f} targets/s")
    print(f"CPU during the run: {pipeline.cpu}")
    print(f"per target: {pipeline.latency}")
    print(f"consumer lag during the run (events waiting): {pipeline.lag}")
    print(f"outcomes: {pipeline.outcomes}")
    print(f"sandbox: {pipeline.delivered} invites delivered, {pipeline.delivered_twice} targets delivered twice")
    for problem in pipeline.problems():
        print(f"CHECK FAILED: {problem}")
    if ceiling is not None:
        verdict = "meets" if pipeline.rate >= GOAL_RATIO * ceiling.rate else "BELOW"
        print(f"faust ceiling (1 table increment/event): {ceiling.rate:8.0f} events/s;"
              f" pipeline / ceiling = {_ratio(pipeline.rate, ceiling.rate)}"
              f" ({verdict} the goal of >= {GOAL_RATIO})")
    if raw is not None:
        print(f"raw aiokafka: produce {raw.produce_rate:8.0f} msg/s, consume {raw.consume_rate:8.0f} msg/s,"
              f" produce+consume {raw.round_trip_rate:8.0f} msg/s;"
              f" pipeline / produce+consume = {_ratio(pipeline.rate, raw.round_trip_rate)}")
    if pipeline.profile:
        print(f"\nworker profile (py-spy):\n{pipeline.profile}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=1_000, help="at most 1000 (one task's limit)")
    parser.add_argument("--no-baselines", action="store_true", help="skip the faust and aiokafka baselines")
    parser.add_argument("--profile-seconds", type=float, default=0, help="py-spy the worker for this long")
    parser.add_argument("--keep", action="store_true", help="keep the data dir (logs, profile)")
    args = parser.parse_args(argv)
    if warning := load_warning():
        print(warning)
    with sigterm_as_interrupt(), bench_stack(sandbox_latency_ms=0, keep=args.keep) as bench:
        ceiling = raw = None
        if not args.no_baselines:
            raw = asyncio.run(raw_kafka(bench.stack.kafka, args.targets))
            print(f"raw aiokafka: {raw.round_trip_rate:.0f} msg/s produce+consume", flush=True)
            ceiling = faust_ceiling(bench.stack.kafka, args.targets, bench.data_dir)
            print(f"faust ceiling: {ceiling.rate:.0f} events/s", flush=True)
        with running_worker(bench, LIMITS_OFF) as worker:
            pipeline = asyncio.run(
                run_pipeline(bench, worker, args.targets, args.accounts, args.profile_seconds)
            )
        report(pipeline, ceiling, raw)
        if pipeline.problems():
            return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        sys.exit(130)
