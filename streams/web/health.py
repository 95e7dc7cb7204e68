"""Health routes: ``/health`` (the process answers) and ``/api/v1/health/detailed`` (its dependencies).

The detailed check answers 200 with ``status: ok`` when every configured part
is reachable, and 503 with ``status: degraded`` naming the parts that are
not. Neither needs a token (load balancers and the gateway call them); they
show no addresses or credentials.
"""

from __future__ import annotations

import asyncio
import logging

from faust.web import Request, Response, View

from adapters import probes
from models.api import Check, HealthView, Liveness

from .context import Api

log = logging.getLogger(__name__)


def register(api: Api) -> None:
    rt, settings = api.rt, api.rt.settings

    async def live(view: View, request: Request) -> Response:
        return view.json(Liveness(status="ok").model_dump())

    async def detailed(view: View, request: Request) -> Response:
        names = ["broker", "postgres", "redis", "integration_service"]
        checks = [
            probes.probe(lambda: probes.broker(settings.kafka_broker or "")),
            probes.probe(lambda: probes.postgres(rt.pool)),
            probes.probe(lambda: probes.redis_ping(rt.redis)),
            probes.probe(lambda: probes.integration(rt.integration)),
        ]
        if settings.vault_addr:
            names.append("vault")
            checks.append(probes.probe(lambda: probes.vault(settings)))
        results: dict[str, Check] = dict(zip(names, await asyncio.gather(*checks), strict=True))
        if not settings.vault_addr:
            results["vault"] = Check(status="skipped", detail="not configured")
        healthy = all(c.status != "down" for c in results.values())
        body = HealthView(status="ok" if healthy else "degraded", checks=results, consumer_lag=await consumer_lag())
        return view.json(body.model_dump(mode="json"), status=200 if healthy else 503)

    async def consumer_lag() -> int | None:
        """Messages behind on this worker's assigned partitions (highwater minus committed)."""
        try:
            consumer = api.app.consumer
            assigned = list(consumer.assignment())
            if not assigned:
                return 0
            highwaters = await asyncio.wait_for(consumer.highwaters(*assigned), 3.0)
            committed = consumer._committed_offset  # faust keeps no public accessor for it
            return sum(max(0, hw - (committed.get(tp) or 0)) for tp, hw in highwaters.items())
        except Exception as exc:  # noqa: BLE001 - no lag is better than no health answer
            log.debug("consumer lag unknown: %r", exc)
            return None

    api.routes.add("GET", "/health", live, summary="Liveness", tag="health", responses={200: Liveness}, auth=False)
    api.routes.add("GET", "/api/v1/health/detailed", detailed, summary="Broker, PostgreSQL, Redis, Integration"
                   " Service, Vault and consumer lag", tag="health", responses={200: HealthView, 503: HealthView},
                   auth=False)
