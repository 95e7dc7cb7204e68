"""`EmbeddedStack`: start the embedded parts that have no configured URL."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Literal, Self, get_args

from .postgres import start_postgres
from .redis import start_redis
from .service import EmbeddedService
from .tansu import start_tansu

__all__ = ["EmbeddedStack", "Part"]

Part = Literal["kafka", "postgres", "redis"]
PARTS: tuple[Part, ...] = get_args(Part)

_STARTERS: dict[Part, Callable[[Path, int | None], EmbeddedService]] = {
    "kafka": start_tansu,
    "postgres": start_postgres,
    "redis": start_redis,
}


class EmbeddedStack:
    """The embedded services for one data dir, started in a fixed order and
    stopped in reverse.

    >>> with EmbeddedStack.for_missing(data_dir, kafka_url=None, database_url=db_url) as stack:
    ...     kafka = stack.kafka_url  # embedded tansu; postgres was configured
    """

    def __init__(self, data_dir: Path, parts: Iterable[Part] = PARTS) -> None:
        wanted = set(parts)
        unknown = wanted - set(PARTS)
        if unknown:
            raise ValueError(f"unknown embedded parts {sorted(unknown)}; known: {PARTS}")
        self.data_dir = Path(data_dir)
        self.parts: tuple[Part, ...] = tuple(p for p in PARTS if p in wanted)
        self.services: dict[Part, EmbeddedService] = {}

    @classmethod
    def for_missing(
        cls,
        data_dir: Path,
        *,
        kafka_url: str | None,
        database_url: str | None,
        redis_url: str | None,
    ) -> EmbeddedStack:
        """A stack of exactly the parts whose URL is None or empty."""
        given: dict[Part, str | None] = {
            "kafka": kafka_url, "postgres": database_url, "redis": redis_url,
        }
        return cls(data_dir, [part for part, url in given.items() if not url])

    def start(self) -> Self:
        """Start every part not yet running; on failure stop what was started."""
        try:
            for part in self.parts:
                if part not in self.services:
                    self.services[part] = _STARTERS[part](self.data_dir, None)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop everything this stack started, last started first."""
        errors: list[BaseException] = []
        for part in reversed(list(self.services)):
            try:
                self.services.pop(part).stop()
            except Exception as exc:  # still stop the others
                errors.append(exc)
        if errors:
            raise errors[0]

    def url(self, part: Part) -> str | None:
        """The embedded URL of ``part``, None if this stack does not run it."""
        service = self.services.get(part)
        return service.url if service is not None else None

    @property
    def urls(self) -> dict[Part, str]:
        return {part: service.url for part, service in self.services.items()}

    @property
    def kafka_url(self) -> str | None:
        """Kafka bootstrap address (``host:port``)."""
        return self.url("kafka")

    @property
    def postgres_url(self) -> str | None:
        return self.url("postgres")

    @property
    def redis_url(self) -> str | None:
        return self.url("redis")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedStack({str(self.data_dir)!r}, parts={self.parts}, urls={self.urls})"
