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

from adapters import metrics
from adapters.platforms.base import DeliveryUnknown
from models.events import AccountDue, AccountDueData
from models.limits import DAY
from models.targets import ClaimedTarget, TargetStatus

from .planner import plan
from .publish import send_event
from .runtime import Runtime
from .sender import report
from .topics import Topics

log = logging.getLogger(__name__)


async def settle_claim(rt: Runtime, topics: Topics, claim: ClaimedTarget, release_unseen: bool) -> bool:
    """Ask the platform what became of an attempt and report it; True if settled.

    An attempt the platform never saw is queued again only with
    ``release_unseen`` (the claim is older than any call can take), because a
    live worker may still be making it.
    """
    try:
        result = await rt.adapter(claim.platform).lookup(claim.idempotency_key)
    except DeliveryUnknown:
        if not release_unseen:
            return False
        # Nobody will ever know: an operator decides (never resent blindly).
        log.warning("target %s: delivery of its attempt unknown; marked for an operator", claim.id)
        await rt.claims.release(claim.id, claim.attempt, TargetStatus.UNKNOWN)
        return True
    except Exception as exc:  # cannot say now; try again next round
        log.warning("lookup of target %s failed: %r", claim.id, exc)
        return False
    if result is not None:
        await report(rt, topics, claim, result, claimed_at=claim.claimed_at)
        return True
    if release_unseen:
        await rt.claims.release(claim.id, claim.attempt, TargetStatus.PENDING)
        metrics.retry(claim.platform, metrics.RetryReason.INFLIGHT_TIMEOUT)
        return True
    return False


async def settle_stale_claims(rt: Runtime, topics: Topics) -> int:
    cutoff = datetime.now(UTC) - timedelta(seconds=rt.settings.inflight_timeout_seconds)
    settled = 0
    for claim in await rt.claims.in_flight(claimed_before=cutoff):
        settled += await settle_claim(rt, topics, claim, release_unseen=True)
    return settled


async def reconcile(rt: Runtime, topics: Topics, wake_all: bool = True) -> None:
    """One round. Without ``wake_all``, accounts that acted lately are left alone (they are scheduled)."""
    settled = await settle_stale_claims(rt, topics)
    if settled:
        log.info("reconciler settled %d stale in-flight targets", settled)
    # Keep a day of slack beyond the longest window: recovery reads this record.
    await rt.claims.forget_actions(datetime.now(UTC) - timedelta(seconds=rt.policy.longest_window() + DAY))
    idle_since = None if wake_all else datetime.now(UTC) - timedelta(seconds=2 * rt.settings.reconcile_interval_seconds)
    for task_id, owner in await rt.tasks.running():
        await plan(rt, topics, task_id, owner, idle_since)
    # A quarantine ends at a timer of the worker that set it; after a restart
    # nobody would wake the account (its targets went to others): wake it here.
    for account_id, owner in await rt.claims.restricted_accounts():
        await send_event(topics.account_work, account_id,
                         AccountDue(user_id=owner, data=AccountDueData(account_id=account_id)))


def register(app: faust.App, topics: Topics, rt: Runtime) -> None:
    # After a rebalance every account may have lost its timers with its old
    # owner: the next round wakes them all, later rounds only the idle ones.
    rebalanced = {"since_last_round": True}

    @app.on_partitions_assigned.connect
    async def _note_rebalance(sender: object, assigned: object, **kwargs: object) -> None:
        rebalanced["since_last_round"] = True

    @app.timer(interval=rt.settings.reconcile_interval_seconds, on_leader=True)
    async def reconciler() -> None:
        wake_all, rebalanced["since_last_round"] = rebalanced["since_last_round"], False
        try:
            await reconcile(rt, topics, wake_all)
        except Exception:  # an outage now is retried on the next tick
            rebalanced["since_last_round"] = wake_all
            log.exception("reconciler round failed")
