"""Table routing that answers 503 while a starting worker cannot place a key yet.

faust's router turns "partition not assigned yet" into 503 Service
Unavailable, but right after a (re)start the producer may have no metadata
for a changelog topic at all, and aiokafka then raises ``TypeError`` from
deep inside ``key_partition`` — a 500. Both mean "ask again in a moment".
"""

from __future__ import annotations

from typing import Any

from faust.app.router import Router as FaustRouter
from yarl import URL


class Router(FaustRouter):
    """faust's router, with missing topic metadata reported as not ready."""

    def key_store(self, table_name: str, key: Any) -> URL:
        try:
            return super().key_store(table_name, key)
        except TypeError:
            # Only lookups happen here; faust maps KeyError to 503.
            raise KeyError(table_name) from None
