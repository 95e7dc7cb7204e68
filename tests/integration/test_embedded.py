"""The embedded services really serve, stop cleanly and never outlive us."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from adapters.embedded import (
    EmbeddedService,
    EmbeddedStack,
    EmbeddedStartError,
    ManagedProcess,
    ProcessDiedError,
    free_port,
    start_postgres,
    start_redis,
    start_tansu,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def process_tree(pid: int) -> list[int]:
    proc = psutil.Process(pid)
    return [pid, *(child.pid for child in proc.children(recursive=True))]


def is_alive(pid: int) -> bool:
    # An orphan reparented to a PID 1 that does not reap stays a zombie:
    # that is a dead process for our purposes.
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def assert_all_gone(pids: list[int], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if is_alive(pid)]
        if not alive:
            return
        time.sleep(0.05)
    pytest.fail(f"processes still alive: {alive}")


def stop_and_check(service: EmbeddedService) -> None:
    assert service.pid is not None
    pids = process_tree(service.pid)
    service.stop()
    assert service.pid is None and not service.running
    assert_all_gone(pids, timeout=0.5)  # stop() waits for the process itself


def test_tansu_produces_and_consumes(tmp_path: Path) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    service = start_tansu(tmp_path)
    try:
        assert service.url == f"127.0.0.1:{service.port}"

        async def roundtrip() -> bytes:
            producer = AIOKafkaProducer(bootstrap_servers=service.url)
            await producer.start()
            try:
                sent = await producer.send_and_wait("embedded.test", b"hello", key=b"k")
            finally:
                await producer.stop()
            consumer = AIOKafkaConsumer(
                bootstrap_servers=service.url, auto_offset_reset="earliest", enable_auto_commit=False
            )
            await consumer.start()
            try:
                consumer.assign([TopicPartition("embedded.test", sent.partition)])
                message = await asyncio.wait_for(consumer.getone(), timeout=10)
                return bytes(message.value)
            finally:
                await consumer.stop()

        assert asyncio.run(roundtrip()) == b"hello"
    finally:
        stop_and_check(service)


def test_postgres_serves_and_keeps_data_across_restarts(tmp_path: Path) -> None:
    import asyncpg

    async def run(url: str, *statements: str) -> object:
        conn = await asyncpg.connect(url)
        try:
            result: object = None
            for statement in statements:
                result = await conn.fetchval(statement)
            return result
        finally:
            await conn.close()

    first = start_postgres(tmp_path)
    try:
        assert first.url == f"postgresql://postgres@127.0.0.1:{first.port}/postgres"
        assert asyncio.run(run(first.url, "SELECT 1")) == 1
        asyncio.run(run(first.url, "CREATE TABLE kept (v text)", "INSERT INTO kept VALUES ('still here')"))
    finally:
        stop_and_check(first)

    second = start_postgres(tmp_path)
    try:
        assert asyncio.run(run(second.url, "SELECT v FROM kept")) == "still here"
        # Unicode-aware case mapping regardless of the OS locales.
        assert asyncio.run(run(second.url, "SELECT upper('привет')")) == "ПРИВЕТ"
    finally:
        stop_and_check(second)


def test_postgres_in_a_deep_data_dir(tmp_path: Path) -> None:
    # Too long for a unix socket path inside the data dir.
    service = start_postgres(tmp_path / ("deep" * 20))
    try:
        assert asyncio.run(_select_one(service.url)) == 1
    finally:
        stop_and_check(service)


def test_postgres_starts_over_a_stale_pid_file(tmp_path: Path) -> None:
    service = start_postgres(tmp_path)
    pids = process_tree(service.pid or 0)
    os.kill(pids[0], signal.SIGKILL)
    assert_all_gone(pids)
    service.stop()
    # The dead postmaster's PID now belongs to an unrelated live process of
    # the same user (PID reuse, common in containers): postgres alone would
    # refuse to start ("lock file already exists").
    squatter = subprocess.Popen(
        ["sleep", "60"], user="embedded_postgres" if os.geteuid() == 0 else None
    )
    try:
        pid_file = tmp_path / "postgres" / "postmaster.pid"
        lines = pid_file.read_text().split("\n")
        pid_file.write_text("\n".join([str(squatter.pid), *lines[1:]]))
        again = start_postgres(tmp_path)
        stop_and_check(again)
    finally:
        squatter.kill()
        squatter.wait()


def test_redis_set_get(tmp_path: Path) -> None:
    import redis

    service = start_redis(tmp_path)
    try:
        assert service.url == f"redis://127.0.0.1:{service.port}/0"
        client = redis.Redis.from_url(service.url)
        client.set("greeting", "hi")
        assert client.get("greeting") == b"hi"
        client.close()
        # Ctrl-C on our terminal must not reach the server directly.
        assert os.getpgid(service.pid or 0) != os.getpgid(0)
    finally:
        stop_and_check(service)


CHILD = """
import sys, time
from pathlib import Path
from adapters.embedded import {starter}
service = {starter}(Path(sys.argv[1]))
print(service.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("starter", ["start_redis", "start_postgres", "start_tansu"])
def test_sigkilled_parent_leaves_no_orphan(tmp_path: Path, starter: str) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(starter=starter), str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line.strip(), f"child did not start the service (exit {parent.poll()})"
        pids = process_tree(int(line))
        assert all(is_alive(pid) for pid in pids)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert_all_gone(pids)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_start_from_event_loop_and_worker_thread(tmp_path: Path) -> None:
    # The kernel's parent-death signal fires when the forking *thread* exits:
    # a service started via asyncio.to_thread must outlive that thread.
    async def main() -> tuple[EmbeddedService, EmbeddedService]:
        direct = start_tansu(tmp_path)  # blocking call on a running loop
        threaded = await asyncio.to_thread(start_redis, tmp_path)
        return direct, threaded

    services = asyncio.run(main())  # also shuts down the to_thread worker
    try:
        time.sleep(0.3)
        assert all(s.running for s in services)
    finally:
        for service in services:
            stop_and_check(service)


def test_postgres_refuses_a_data_dir_in_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("adapters.embedded.postgres._IN_USE_WAIT", 0.5)
    service = start_postgres(tmp_path)
    try:
        with pytest.raises(EmbeddedStartError, match="in use by a running server"):
            start_postgres(tmp_path)
        assert asyncio.run(_select_one(service.url)) == 1
    finally:
        stop_and_check(service)


async def _select_one(url: str) -> object:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SELECT 1")
    finally:
        await conn.close()


def test_stack_starts_only_missing_parts_and_stops_them(tmp_path: Path) -> None:
    stack = EmbeddedStack.for_missing(
        tmp_path, kafka_url="kafka.example:9092", database_url=None, redis_url=""
    )
    assert stack.parts == ("postgres", "redis")
    with stack:
        assert stack.kafka_url is None
        assert stack.postgres_url is not None and stack.postgres_url.startswith("postgresql://")
        assert stack.redis_url is not None and stack.redis_url.startswith("redis://")
        pids = [pid for s in stack.services.values() for pid in process_tree(s.pid or 0)]
    assert stack.services == {}
    assert_all_gone(pids, timeout=0.5)


def test_stack_rejects_unknown_parts(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        EmbeddedStack(tmp_path, ["kafka", "mysql"])  # type: ignore[list-item]


def managed(tmp_path: Path, script: str, **kwargs: object) -> ManagedProcess:
    return ManagedProcess(
        "dummy", ["sh", "-c", script], port=free_port(), log_path=tmp_path / "dummy.log", **kwargs  # type: ignore[arg-type]
    )


def test_start_failure_reports_the_log(tmp_path: Path) -> None:
    with pytest.raises(ProcessDiedError, match="(?s)exited with code 3.*boom"):
        managed(tmp_path, "echo boom; exit 3").start()


def test_never_ready_times_out_and_is_killed(tmp_path: Path) -> None:
    process = managed(tmp_path, "echo waiting; exec sleep 60", start_timeout=0.5, stop_timeout=0.5)
    with pytest.raises(EmbeddedStartError, match="(?s)not ready.*waiting"):
        process.start()
    assert process.pid is None


def test_readiness_errors_are_retried_then_reported(tmp_path: Path) -> None:
    calls: list[int] = []

    def never(_calls: list[int] = calls) -> bool:
        _calls.append(1)
        raise ConnectionError("not yet")

    port = free_port()
    process = ManagedProcess(
        "listener",
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        port=port,
        log_path=tmp_path / "listener.log",
        ready=never,
        start_timeout=1.5,
    )
    with pytest.raises(EmbeddedStartError, match="not yet"):
        process.start()
    assert len(calls) > 1
    assert not process.running


def test_free_port_is_bindable() -> None:
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))

