"""Account agent: the one scheduler of each account it owns.

Consumes ``invite.account-work`` (keyed by account). Its tables hold each
account's limit state and the action in flight; both are written only here,
while processing that account's events, so the changelog follows the
partition and a new owner recovers them before it sends (DESIGN.md).
"""

from __future__ import annotations

import logging
import random
import time
from datetime import UTC, datetime

import faust

from models.events import (
    AccountDue,
    AccountStateChanged,
    AccountStateData,
    ActionCompleted,
    Event,
    TaskLifecycle,
    TaskRefData,
    WorkAssigned,
)
from models.limits import (
    AccountLimitState,
    LimitPolicy,
    draw_pause,
    merge_recorded,
    record_action,
)
from models.outcomes import SCOPE, Scope
from models.scheduling import account_effect, next_action_at, pick_task

from ..consume import consume
from ..planner import plan
from ..publish import send_event
from ..reconciler import settle_claim
from ..runtime import Runtime
from ..scheduler import DueTimers
from ..sender import Sender
from ..topics import Topics, table_schema

log = logging.getLogger(__name__)

_UNHEALTHY = {"account.restricted": "restricted", "account.disabled": "disabled"}

LIMITS_TABLE = "account-limits"
# action.completed of an operator's test invite carries no real target.
TEST_INVITE_TARGET = 0
INFLIGHT_TABLE = "account-inflight"


def register(app: faust.App, topics: Topics, rt: Runtime) -> None:
    table_args = dict(partitions=rt.settings.topic_partitions, schema=table_schema())
    limits = app.Table(LIMITS_TABLE, default=None, **table_args)
    inflight = app.Table(INFLIGHT_TABLE, default=None, **table_args)
    timers = DueTimers(topics.account_work)
    sender = Sender(rt, topics)
    rng = random.Random()
    policies: dict[str, LimitPolicy] = {}

    def policy_of(account_id: str) -> LimitPolicy:
        """The account's limits: the platform's, with its own overrides (settings)."""
        if account_id not in policies:
            policies[account_id] = rt.settings.limit_policy(account_id)
        return policies[account_id]

    def state_of(account_id: str) -> AccountLimitState:
        raw = limits.get(account_id)
        return AccountLimitState.model_validate(raw) if raw else AccountLimitState()

    def save(account_id: str, state: AccountLimitState) -> None:
        limits[account_id] = state.model_dump(mode="json")

    def arm(account_id: str, owner: str, state: AccountLimitState, now: float) -> None:
        at = next_action_at(policy_of(account_id), state, now)
        if at is not None:
            timers.arm(account_id, owner, at)

    # Accounts whose state this worker has made whole since it last got its
    # partitions; any rebalance may bring back an account another worker used.
    recovered: set[str] = set()
    # After a pick found nothing allowed yet: until when, for which tasks. The
    # reconciler wakes every account with work every few seconds; this spares
    # PostgreSQL those wake-ups while the account's window is full (measured
    # by benchmarks/scheduler_efficiency.py). Only a task it did not know can
    # make it look earlier. Memory only: a lost entry costs one query.
    quiet: dict[str, tuple[float, frozenset[str]]] = {}

    @app.on_partitions_revoked.connect
    async def _forget_recovered(sender: object, revoked: object, **kwargs: object) -> None:
        recovered.clear()
        quiet.clear()

    async def with_claim_record(account_id: str, state: AccountLimitState, now: float) -> AccountLimitState:
        """``state`` with every action PostgreSQL's claim record holds for the account's windows."""
        policy = policy_of(account_id)
        since = datetime.fromtimestamp(now - policy.longest_window(), UTC)
        return merge_recorded(policy, state, await rt.claims.recent_actions(account_id, since), policy.pause_max)

    async def recover(account_id: str, now: float) -> AccountLimitState:
        """Merge what PostgreSQL knows the account did into the changelog state.

        A worker killed mid-campaign may have claimed (and sent) after its
        last table write reached the changelog; its claims did reach
        PostgreSQL, before each send. A claim still in flight blocks the
        account until it is settled: the old owner may still be calling.
        """
        state = state_of(account_id)
        merged = await with_claim_record(account_id, state, now)
        if merged != state:
            save(account_id, merged)
            log.warning("account %s: limit state completed from the claim record", account_id)
        if inflight.get(account_id) is None:
            for claim in await rt.claims.in_flight(account_id):
                inflight[account_id] = {
                    "target_id": claim.id, "task_id": claim.task_id, "claimed_at": claim.claimed_at.timestamp(),
                }
                await settle_claim(rt, topics, claim, release_unseen=False)
        recovered.add(account_id)
        return merged

    async def try_act(account_id: str, owner: str, task_id: str | None = None) -> None:
        # Microseconds: the claim record stores this very time (see merge_recorded).
        now = round(time.time(), 6)
        policy = policy_of(account_id)
        state = state_of(account_id) if account_id in recovered else await recover(account_id, now)
        flight = inflight.get(account_id)
        if flight is not None:
            if now - flight["claimed_at"] < rt.settings.inflight_timeout_seconds:
                return  # one action at a time; its completion re-arms the account
            # The attempt's worker died; the reconciler settles the target itself.
            log.warning("account %s: dropping stale in-flight target %s", account_id, flight["target_id"])
            inflight[account_id] = None
        if state.quarantine_until is not None and now >= state.quarantine_until:
            state = state.model_copy(update={"quarantine_until": None})
            save(account_id, state)
            await rt.tasks.set_account_health(account_id, "active", only_from="restricted")
            await announce(owner, account_id, "account.recovered", None, "quarantine over")
        at = next_action_at(policy, state, now)
        if at is None or at > now:
            # Task limits only lower the account's: no need to ask PostgreSQL.
            if at is not None:
                timers.arm(account_id, owner, at)
            return
        blocked_until = rt.sending_blocked_until()
        if blocked_until is not None:
            # The Integration Service is down: claim nothing, look again when
            # the circuit lets a call through (targets stay pending, not burnt).
            timers.arm(account_id, owner, blocked_until)
            return
        quiet_until, known_tasks = quiet.get(account_id, (0.0, frozenset()))
        if now < quiet_until and (task_id is None or task_id in known_tasks):
            timers.arm(account_id, owner, quiet_until)  # in case an earlier timer took its place
            return  # nothing of the tasks it has can go before then
        work = await rt.claims.work_for(account_id)
        pick = pick_task(policy, state, work, now)
        if pick.work is None:
            if pick.wake_at is not None:
                timers.arm(account_id, owner, pick.wake_at)
                quiet[account_id] = (pick.wake_at, frozenset(w.task_id for w in work))
            return  # otherwise idle until work.assigned wakes it
        quiet.pop(account_id, None)
        claim = await rt.claims.claim(account_id, pick.work.task_id, datetime.fromtimestamp(now, UTC))
        if claim is None:
            return  # the task stopped running meanwhile
        state = record_action(policy, state, pick.work.kind, now, draw_pause(policy, rng))
        save(account_id, state)
        inflight[account_id] = {"target_id": claim.id, "task_id": claim.task_id, "claimed_at": now}
        sender.start(claim, datetime.fromtimestamp(now, UTC))

    async def completed(event: ActionCompleted) -> None:
        data = event.data
        now = time.time()
        flight = inflight.get(data.account_id)
        if flight is not None and flight["target_id"] == data.target_id:
            inflight[data.account_id] = None
        state = state_of(data.account_id)
        if data.target_id == TEST_INVITE_TARGET:
            # An operator's test invite (API) was recorded in the claim record,
            # not by this scheduler: count it in the limit state too.
            state = await with_claim_record(data.account_id, state, now)
        effect = account_effect(policy_of(data.account_id), state, data.outcome, data.retry_after, now)
        save(data.account_id, effect.state)
        if effect.event_type is not None:
            await announce(event.user_id, data.account_id, effect.event_type, effect.until, data.outcome.value)
        if effect.event_type in _UNHEALTHY:
            await hand_over_work(event.user_id, data.account_id, _UNHEALTHY[effect.event_type])
        if SCOPE[data.outcome] is Scope.TASK_FATAL:
            pause = TaskLifecycle(
                type="task.paused", user_id=event.user_id,
                data=TaskRefData(task_id=data.task_id, reason=f"task fatal: {data.outcome.value}"),
            )
            await send_event(topics.tasks, data.task_id, pause)
        arm(data.account_id, event.user_id, effect.state, now)

    async def hand_over_work(owner: str, account_id: str, health: str) -> None:
        """Give a restricted or dead account's targets to the tasks' healthy accounts."""
        tasks = await rt.tasks.set_account_health(account_id, health)
        moved = await rt.targets.unassign_account(account_id)
        log.warning("account %s is %s; %d pending targets handed over", account_id, health, moved)
        for task_id in tasks:
            if await rt.tasks.accounts(task_id):
                await plan(rt, topics, task_id, owner)
            else:
                pause = TaskLifecycle(
                    type="task.paused", user_id=owner,
                    data=TaskRefData(task_id=task_id, reason="no healthy account left"),
                )
                await send_event(topics.tasks, task_id, pause)

    async def announce(owner: str, account_id: str, kind: str, until: float | None, reason: str) -> None:
        until_at = datetime.fromtimestamp(until, UTC) if until else None
        event = AccountStateChanged(
            type=kind, user_id=owner, data=AccountStateData(account_id=account_id, until=until_at, reason=reason)
        )
        await send_event(topics.accounts, account_id, event)
        ttl = (until - time.time()) if until else 7 * 24 * 3600
        await rt.mirror.publish(account_id, {"state": kind, "until": until, "reason": reason}, ttl)

    async def handle(event: Event) -> None:
        if isinstance(event, ActionCompleted):
            await completed(event)
        elif isinstance(event, WorkAssigned):
            await try_act(event.data.account_id, event.user_id, event.data.task_id)
        elif isinstance(event, AccountDue):
            await try_act(event.data.account_id, event.user_id)

    @app.agent(topics.account_work, name="account-agent")
    async def account_agent(stream: faust.StreamT) -> None:
        await consume(
            stream, handle, topics.dead_letters,
            accepted_types=frozenset({"work.assigned", "account.due", "action.completed"}),
        )
