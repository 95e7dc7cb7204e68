"""Audience import rate: a CSV of N rows through the whole service, against a bare COPY of the same rows.

What it does, in one run on the embedded parts (tansu, PostgreSQL, Redis,
sandbox) and one real ``invite-service worker`` subprocess:

1. writes an N-row CSV (default 1 000 000): username, user_id, first_name,
   last_name, and a phone on every tenth row — a parser's usual output;
2. **service**: ``POST /api/v1/import/file`` (multipart upload; the worker
   spools it, validates every row, spools the normalized targets, publishes
   ``targets.imported`` batches), then polls ``GET /api/v1/imports/{id}`` until
   the importer agent applied every batch (validation again, COPY into a
   temporary table, INSERT with the suppression check). Timed from the first
   byte uploaded to the last batch applied;
3. **baseline**: the same rows, already parsed and keyed in this process,
   COPYed straight into ``targets`` for another task (asyncpg
   ``copy_records_to_table``) — the database's own loading rate, with the
   table's real indexes;
4. prints both rates, their ratio (goal >= 0.5), and the worker's resident
   memory before and at its peak during the import (sampled every 0.1 s).

Run from the repository root: ``python benchmarks/import_rate.py [--rows N]``.
It takes a few minutes for a million rows on two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from adapters.embedded import EmbeddedStack, free_port
from adapters.embedded.sandbox import start_sandbox
from adapters.postgres.migrate import migrate
from models.targets import TargetIn

JWT_SECRET = "benchmark-secret-long-enough-for-hs256"
FIRST = ["Ivan", "Maria", "Olga", "Sergey", "Anna", "Dmitry", "Elena", "Alexey"]
LAST = ["Petrov", "Ivanova", "Smirnov", "Kuznetsova", "Popov", "Sokolova", "Lebedev", "Novikova"]


def write_csv(path: Path, rows: int) -> None:
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["username", "user_id", "first_name", "last_name", "phone"])
        for i in range(rows):
            phone = f"+7916{i % 10_000_000:07d}" if i % 10 == 0 else ""
            out.writerow([f"user_{i:08d}", 100_000_000 + i, FIRST[i % 8], LAST[(i // 8) % 8], phone])


def baseline_records(path: Path, task_id: str) -> list[tuple[Any, ...]]:
    """The rows as ``targets`` records, keyed like the importer keys them (not timed)."""
    records = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        for row in reader:
            target = TargetIn.model_construct(
                username=row["username"], user_id=int(row["user_id"]), phone=row["phone"] or None,
                first_name=row["first_name"], last_name=row["last_name"], extra=None,
            )
            records.append((task_id, target.key, target.username, target.user_id, target.phone,
                            target.first_name, target.last_name))
    return records


async def copy_baseline(database_url: str, records: list[tuple[Any, ...]], task_id: str) -> float:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO tasks (id, owner, name, kind, platform) VALUES ($1, 'bench', 'copy', 'invite', 'telegram')",
            task_id,
        )
        started = time.perf_counter()
        await conn.copy_records_to_table(
            "targets", records=records,
            columns=("task_id", "target_key", "username", "user_id", "phone", "first_name", "last_name"),
        )
        return time.perf_counter() - started
    finally:
        await conn.close()


async def prepare_database(admin_url: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return url


class RssSampler(threading.Thread):
    """Peak resident memory of a process, sampled every 0.1 s."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop_flag = threading.Event()

    def run(self) -> None:
        while not self._stop_flag.is_set():
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.1)

    def stop(self) -> int:
        self._stop_flag.set()
        self.join()
        return self.peak


def token(owner: str) -> str:
    import jwt

    return jwt.encode({"sub": owner, "exp": int(time.time()) + 24 * 3600}, JWT_SECRET, algorithm="HS256")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the data dir (worker log) afterwards")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="import-bench-"))
    csv_path = work / "audience.csv"
    print(f"writing {args.rows} rows to {csv_path} ...", flush=True)
    write_csv(csv_path, args.rows)
    print(f"  {csv_path.stat().st_size / 1e6:.1f} MB", flush=True)

    stack = EmbeddedStack(work / "stack", ["kafka", "postgres", "redis"]).start()
    sandbox = start_sandbox(work / "sandbox", latency_ms=5)
    worker: subprocess.Popen[bytes] | None = None
    log = open(work / "worker.log", "wb")  # noqa: SIM115 - closed in the finally below
    try:
        database_url = asyncio.run(prepare_database(stack.services["postgres"].url))
        (work / "data").mkdir()
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("INVITE_")}
        env.update(
            INVITE_KAFKA_BROKER=stack.services["kafka"].url, INVITE_DATABASE_URL=database_url,
            INVITE_REDIS_URL=stack.services["redis"].url, INVITE_INTEGRATION_SERVICE_URL=sandbox.url,
            INVITE_APP_ID="import-bench", INVITE_TOPIC_PARTITIONS="4", INVITE_WEB_PORT=str(port),
            INVITE_DATA_DIR=str(work / "data"), INVITE_JWT_SECRET=JWT_SECRET,
            INVITE_IMPORT_MAX_BYTES=str(1024**3), INVITE_IMPORT_MAX_ROWS=str(max(args.rows, 1_000_000)),
            INVITE_LOG_LEVEL="WARNING", PYTHONPATH=str(REPO),
        )
        worker = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], env=env, stdout=log,
                                  stderr=subprocess.STDOUT, cwd=REPO)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker did not start; see {work / 'worker.log'}")
            time.sleep(0.2)
        http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token('bench')}"},
                            timeout=httpx.Timeout(30, read=None))
        created = http.post("/api/v1/tasks", json={"name": "bench", "kind": "invite", "chat": "@bench",
                                                    "account_ids": ["bench-acc"]})
        task_id = created.json()["task_id"]
        while http.get(f"/api/v1/tasks/{task_id}").status_code != 200:
            time.sleep(0.1)
        time.sleep(2)  # let the worker settle after its start (consumer group, metadata)
        rss_before = psutil.Process(worker.pid).memory_info().rss

        print("service: upload, validate, publish, import ...", flush=True)
        sampler = RssSampler(worker.pid)
        sampler.start()
        started = time.perf_counter()
        with open(csv_path, "rb") as f:
            response = http.post("/api/v1/import/file", data={"task_id": task_id},
                                 files={"file": ("audience.csv", f, "text/csv")})
        answered = time.perf_counter()
        if response.status_code != 202:
            raise SystemExit(f"import refused: {response.status_code} {response.text[:1000]}")
        import_id = response.json()["import_id"]
        while True:
            view = http.get(f"/api/v1/imports/{import_id}").json()
            if view["status"] in ("completed", "failed", "interrupted"):
                break
            time.sleep(0.05)
        finished = time.perf_counter()
        peak = sampler.stop()
        if view["status"] != "completed":
            raise SystemExit(f"import {view['status']}: {view.get('error')}")
        accepted = view["result"]["accepted"]
        service_seconds = finished - started
        service_rate = accepted / service_seconds

        print("baseline: COPY of the same rows straight into targets ...", flush=True)
        records = baseline_records(csv_path, "copy-" + uuid.uuid4().hex[:8])
        copy_seconds = asyncio.run(copy_baseline(database_url, records, records[0][0]))
        copy_rate = len(records) / copy_seconds

        print()
        print(f"rows in the file                 {args.rows:>12,}")
        print(f"targets added by the service     {accepted:>12,}   (duplicate {view['result']['duplicate']},"
              f" invalid {view['result']['invalid']})")
        print(f"service, end to end              {service_seconds:>10.1f} s   {service_rate:>10,.0f} rows/s")
        print(f"  upload + validation + publish  {answered - started:>10.1f} s")
        print(f"  importer after the answer      {finished - answered:>10.1f} s")
        print(f"COPY straight into PostgreSQL    {copy_seconds:>10.1f} s   {copy_rate:>10,.0f} rows/s")
        print(f"ratio service / COPY             {service_rate / copy_rate:>12.3f}   (goal >= 0.5)")
        print(f"worker RSS before / peak         {rss_before / 2**20:>8.0f} MiB / {peak / 2**20:.0f} MiB")
    finally:
        if worker is not None and worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
        log.close()
        sandbox.stop()
        stack.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
