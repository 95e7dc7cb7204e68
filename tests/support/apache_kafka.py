"""Apache Kafka (KRaft, single node) for tests, run from the Maven Central jars.

The broker is the one ``deploy/kafka/kafka.sh`` runs (same pom, server.properties
template, log4j2 config and JVM flags): this helper makes sure the jars are
there (``kafka.sh jars``, a no-op once ``deploy/kafka/lib/`` matches the pom),
then runs ``kafka.sh run PORT`` as a child process that execs the JVM, and
waits until the broker logs "Kafka Server started" *and* answers a metadata
request on ``127.0.0.1:PORT``.

The child is a :class:`adapters.embedded.process.ManagedProcess`, so it asks
the kernel for ``PR_SET_PDEATHSIG``: the broker gets SIGTERM when the test
process dies, even by SIGKILL. ``stop()`` sends SIGTERM (a clean shutdown takes
under 1 s) and SIGKILLs after ``stop_timeout``.

Usage, e.g. in a session fixture::

    kafka = start_apache_kafka(tmp_path_factory.mktemp("kafka"))
    try:
        yield kafka.bootstrap          # "127.0.0.1:PORT"
    finally:
        kafka.stop()

Needs Java 17+ on PATH, and Maven the first time (or after deploy/kafka/pom.xml
changes) to fetch the jars.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

from adapters.embedded.process import ManagedProcess, free_port, start_on_port
from adapters.embedded.service import EmbeddedService, run_coroutine

__all__ = [
    "KAFKA_DIR",
    "KAFKA_SH",
    "TEST_JVM_PERFORMANCE_OPTS",
    "ApacheKafka",
    "ApacheKafkaError",
    "ensure_kafka_jars",
    "missing_tools",
    "start_apache_kafka",
]

KAFKA_DIR = Path(__file__).resolve().parents[2] / "deploy" / "kafka"
KAFKA_SH = KAFKA_DIR / "kafka.sh"

_HOST = "127.0.0.1"
_READY_LINE = b"Kafka Server started"
# For the short, light runs of a test session: C1 only and the serial GC start
# the broker with ~40% less CPU (about 1.5 s less on 2 cores) than Kafka's
# G1 + C2 defaults that kafka.sh keeps. KAFKA_JVM_PERFORMANCE_OPTS in the
# environment, or the argument, overrides it.
TEST_JVM_PERFORMANCE_OPTS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
# Fetching the jars from Maven Central: seconds on a warm ~/.m2, a few minutes
# on a slow network.
_JARS_TIMEOUT = 900.0


class ApacheKafkaError(RuntimeError):
    """The Kafka jars could not be fetched."""


class ApacheKafka(EmbeddedService):
    """A running single-node Apache Kafka.

    ``bootstrap`` (= ``url``) is ``"127.0.0.1:PORT"``; ``server_log`` is the
    broker's log4j log; ``log_path`` is the JVM's stdout/stderr (crashes,
    script errors). ``stop()`` is idempotent.
    """

    def __init__(self, process: ManagedProcess, data_dir: Path) -> None:
        super().__init__("apache-kafka", f"{_HOST}:{process.port}", process)
        self.data_dir = data_dir

    @property
    def bootstrap(self) -> str:
        return self.url

    @property
    def server_log(self) -> Path:
        return self.data_dir / "logs" / "server.log"

    def __repr__(self) -> str:
        return f"ApacheKafka(bootstrap={self.bootstrap!r}, pid={self.pid}, data_dir={str(self.data_dir)!r})"


def missing_tools() -> list[str]:
    """What this machine lacks to run the broker: "java", and "mvn" while the
    jars are not fetched yet. Empty when start_apache_kafka can work."""
    missing = [] if shutil.which("java") else ["java"]
    stamp = KAFKA_DIR / "lib" / ".pom.sha256"
    pom_hash = hashlib.sha256((KAFKA_DIR / "pom.xml").read_bytes()).hexdigest()
    jars_ok = stamp.exists() and stamp.read_text().strip() == pom_hash
    if not jars_ok and not shutil.which("mvn"):
        missing.append("mvn")
    return missing


def ensure_kafka_jars(timeout: float = _JARS_TIMEOUT) -> None:
    """Make sure deploy/kafka/lib/ holds the jars the pom pins (runs Maven if not)."""
    try:
        result = subprocess.run(
            [str(KAFKA_SH), "jars"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ApacheKafkaError(f"fetching the Kafka jars took over {timeout:.0f}s") from exc
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode(errors="replace")
        raise ApacheKafkaError(f"{KAFKA_SH} jars failed (exit {result.returncode}):\n{output[-4000:]}")


def start_apache_kafka(
    data_dir: Path,
    port: int | None = None,
    *,
    start_timeout: float = 120.0,
    stop_timeout: float = 15.0,
    jvm_performance_opts: str | None = None,
) -> ApacheKafka:
    """Start Apache Kafka on 127.0.0.1 (a free port unless given), storing in data_dir.

    A fresh data_dir is formatted; an already formatted one keeps its topics
    and offsets. Blocks until the broker serves; raises
    ``adapters.embedded.EmbeddedStartError`` (with the log tail) if it does not.
    Other kafka.sh variables in the environment (KAFKA_HEAP_OPTS,
    KAFKA_JVM_OPTS, JAVA) apply as well.
    """
    perf_opts = (
        jvm_performance_opts or os.environ.get("KAFKA_JVM_PERFORMANCE_OPTS") or TEST_JVM_PERFORMANCE_OPTS
    )
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    ensure_kafka_jars()
    server_log = data_dir / "logs" / "server.log"

    def build(p: int) -> ManagedProcess:
        # Lines of an earlier run in the same data dir must not count.
        offset = server_log.stat().st_size if server_log.exists() else 0
        controller_port = free_port(_HOST)
        while controller_port == p:
            controller_port = free_port(_HOST)
        env = {
            **os.environ,
            "KAFKA_DATA_DIR": str(data_dir),
            "KAFKA_CONTROLLER_PORT": str(controller_port),
            "KAFKA_JVM_PERFORMANCE_OPTS": perf_opts,
        }
        return ManagedProcess(
            "apache-kafka",
            [KAFKA_SH, "run", str(p)],
            port=p,
            host=_HOST,
            log_path=data_dir / "kafka.out",
            ready=lambda: _logged_ready(server_log, offset) and _answers_metadata(f"{_HOST}:{p}"),
            env=env,
            start_timeout=start_timeout,
            stop_timeout=stop_timeout,
            stop_signal=signal.SIGTERM,
        )

    process = start_on_port(build, port)
    return ApacheKafka(process, data_dir)


def _logged_ready(server_log: Path, offset: int) -> bool:
    try:
        with open(server_log, "rb") as log:
            log.seek(offset)
            return _READY_LINE in log.read()
    except FileNotFoundError:
        return False


def _answers_metadata(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    async def probe() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            await admin.list_topics()
            return True
        finally:
            await admin.close()

    return run_coroutine(probe)
