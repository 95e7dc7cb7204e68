"""Reconciler: repairs what at-least-once delivery with holes leaves behind.

A timer on the leader. It re-wakes the accounts of running tasks (their
in-memory due timers die with a worker), completes tasks whose last
completion request was lost, and settles targets left in flight by a dead
worker: asked of the Integration Service by idempotency key, never resent
blindly (DESIGN.md, Invariants).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import faust

from models.targets import TargetStatus

from .planner import plan
from .runtime import Runtime
from .sender import report
from .topics import Topics

log = logging.getLogger(__name__)


async def settle_stale_claims(rt: Runtime, topics: Topics) -> int:
    cutoff = datetime.now(UTC) - timedelta(seconds=rt.settings.inflight_timeout_seconds)
    settled = 0
    for claim in await rt.targets.stale_in_flight(cutoff):
        try:
            result = await rt.adapter(claim.platform).lookup(claim.idempotency_key)
        except Exception as exc:  # cannot say now; try again next round
            log.warning("lookup of target %s failed: %r", claim.id, exc)
            continue
        if result is None:
            # The platform never saw this attempt: safe to queue it again.
            await rt.targets.release_claim(claim.id, claim.attempt, TargetStatus.PENDING)
        else:
            await report(rt, topics, claim, result, claimed_at=claim.claimed_at)
        settled += 1
    return settled


async def reconcile(rt: Runtime, topics: Topics) -> None:
    settled = await settle_stale_claims(rt, topics)
    if settled:
        log.info("reconciler settled %d stale in-flight targets", settled)
    for task_id, owner in await rt.tasks.running():
        await plan(rt, topics, task_id, owner)


def register(app: faust.App, topics: Topics, rt: Runtime) -> None:
    @app.timer(interval=rt.settings.reconcile_interval_seconds, on_leader=True)
    async def reconciler() -> None:
        try:
            await reconcile(rt, topics)
        except Exception:  # an outage now is retried on the next tick
            log.exception("reconciler round failed")
