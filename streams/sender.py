"""One attempt: call the platform, then report the result twice.

Runs as a background task so one slow platform call never holds up the other
accounts of a partition. It writes no table; the account agent records the
outcome when ``action.completed`` reaches it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from uuid import UUID, uuid5

from adapters import metrics
from adapters.platforms.base import TargetRef, delivery_unknown
from models.events import ActionCompleted, ActionCompletedData, InviteResultData, InviteResultEvent
from models.messages import render
from models.outcomes import InviteResult, Outcome
from models.targets import ClaimedTarget
from models.tasks import TaskKind

from .publish import send_event
from .runtime import Runtime
from .topics import Topics

log = logging.getLogger(__name__)

_RESULT_IDS = UUID("6f1f2b52-7c1e-4a57-9d3e-2b1c5e0a9f10")  # namespace of invite.result event ids


class Sender:
    """Starts attempts and keeps them referenced until they finish."""

    def __init__(self, rt: Runtime, topics: Topics) -> None:
        self._rt = rt
        self._topics = topics
        self._running: set[asyncio.Task[None]] = set()

    def start(self, claim: ClaimedTarget, claimed_at: datetime) -> None:
        task = asyncio.ensure_future(self._attempt(claim, claimed_at))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _attempt(self, claim: ClaimedTarget, claimed_at: datetime) -> None:
        result = await self._call_platform(claim)
        if delivery_unknown(result):
            metrics.retry(claim.platform, metrics.RetryReason.DELIVERY_UNKNOWN)
            result = await self._ask_platform(claim)
        if result is None:
            # Nobody can say yet whether it was delivered: the target stays in
            # flight for the reconciler, and the account is free to go on.
            await report_account_only(self._topics, claim, Outcome.TRANSIENT_ERROR)
            return
        await report(self._rt, self._topics, claim, result, claimed_at)

    async def _ask_platform(self, claim: ClaimedTarget) -> InviteResult | None:
        """The answer to a call whose reply was lost; a retry under the same key if it never landed."""
        adapter = self._rt.adapter(claim.platform)
        try:
            earlier = await adapter.lookup(claim.idempotency_key)
        except Exception:
            return None
        if earlier is not None:
            return earlier
        # Never reached the platform: the same key cannot deliver twice.
        result = await self._call_platform(claim)
        return None if delivery_unknown(result) else result

    async def _call_platform(self, claim: ClaimedTarget) -> InviteResult:
        started = time.perf_counter()
        result = await self._call_adapter(claim)
        metrics.platform_call_observed(
            claim.platform, claim.kind, time.perf_counter() - started, ok=not delivery_unknown(result)
        )
        return result

    async def _call_adapter(self, claim: ClaimedTarget) -> InviteResult:
        adapter = self._rt.adapter(claim.platform)
        target = TargetRef(username=claim.username, user_id=claim.user_id, phone=claim.phone)
        try:
            if claim.kind == TaskKind.MESSAGE:
                text = render(claim.message_template or "", claim.model_dump())
                return await adapter.send_message(claim.account_id, target, text, claim.idempotency_key)
            return await adapter.send_invite(claim.account_id, claim.chat or "", target, claim.idempotency_key)
        except Exception as exc:  # an adapter bug must not leave the account in flight forever
            log.exception("adapter failed for target %s", claim.id)
            return InviteResult(outcome=Outcome.TRANSIENT_ERROR, raw_error=type(exc).__name__, platform=claim.platform)


async def report(
    rt: Runtime, topics: Topics, claim: ClaimedTarget, result: InviteResult, claimed_at: datetime
) -> None:
    """invite.result for the results agent and analytics, action.completed for the account."""
    finished = datetime.now(UTC)
    data = InviteResultData(
        task_id=claim.task_id, target_id=claim.id, account_id=claim.account_id, platform=claim.platform,
        action=TaskKind(claim.kind), attempt=claim.attempt, max_attempts=rt.settings.max_attempts,
        outcome=result.outcome, reason_category=result.scope, severity=result.severity,
        retryable=result.retryable, retry_after=result.retry_after, raw_error=result.raw_error,
        claimed_at=claimed_at, finished_at=finished,
    )
    # One event id per attempt: the sender and the reconciler may both report
    # the same attempt (a result stuck behind a backlog looks lost), and the
    # projection counts an event id once (DESIGN.md, idempotent handlers).
    event_id = str(uuid5(_RESULT_IDS, claim.idempotency_key))
    await send_event(topics.results, claim.task_id, InviteResultEvent(id=event_id, user_id=claim.owner, data=data))
    await report_account_only(topics, claim, result.outcome, result.retry_after)


async def report_account_only(
    topics: Topics, claim: ClaimedTarget, outcome: Outcome, retry_after: float | None = None
) -> None:
    done = ActionCompletedData(
        account_id=claim.account_id, task_id=claim.task_id, target_id=claim.id,
        outcome=outcome, retry_after=retry_after,
    )
    await send_event(topics.account_work, claim.account_id, ActionCompleted(user_id=claim.owner, data=done))
