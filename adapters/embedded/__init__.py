"""Embedded default services: Kafka (tansu), PostgreSQL and Redis.

Started by our CLI and by the test fixtures for every part whose URL is not
configured (DESIGN.md, "Runtime parts and their defaults"). Each server is a
child process of ours bound to 127.0.0.1 on a free port; it is stopped with
``stop()`` and, should we be killed, by the kernel (PR_SET_PDEATHSIG).
"""

from .postgres import start_postgres
from .process import EmbeddedStartError, ManagedProcess, ProcessDiedError, free_port
from .redis import start_redis
from .service import EmbeddedService
from .stack import EmbeddedStack, Part
from .tansu import start_tansu

__all__ = [
    "EmbeddedService",
    "EmbeddedStack",
    "EmbeddedStartError",
    "ManagedProcess",
    "Part",
    "ProcessDiedError",
    "free_port",
    "start_postgres",
    "start_redis",
    "start_tansu",
]
