"""``invite-service doctor``: every part the service needs, checked, each with a verdict in words.

Runs outside the workers, against the configured URLs (nothing embedded is
started). With ``--task`` it also explains that task: its state, accounts,
limits, cooldowns, last errors and the most likely reason it is not sending
(``models.diagnosis``). The exit code is non-zero when any check fails.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import redis.asyncio as redis
from aiokafka.admin import AIOKafkaAdminClient

from adapters.kafka_admin import describe_group
from adapters.postgres.diagnostics import DiagnosticsStore
from adapters.postgres.migrate import pending_migrations
from adapters.redis_mirror import AccountMirror
from models.diagnosis import TaskFacts, why_not_sending
from models.limits import DAY, HOUR, ActionKind
from models.settings import Settings

from .topics import CONSUMED_TOPIC_NAMES, TOPIC_NAMES

LAG_WARNING = 10_000


@dataclass
class Check:
    """One verdict: what was checked, whether it is fine, and what we saw."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


async def _check(name: str, probe: Callable[[], Awaitable[str]]) -> Check:
    try:
        return Check(name, True, await asyncio.wait_for(probe(), 15))
    except Exception as exc:  # every failure becomes a verdict, never a traceback
        return Check(name, False, f"{type(exc).__name__}: {str(exc)[:200] or 'no detail'}")


async def check_broker(settings: Settings) -> list[Check]:
    assert settings.kafka_broker
    bootstrap = settings.kafka_broker
    expected = {settings.topic(n): settings.topic_partitions for n in TOPIC_NAMES}

    async def topics() -> str:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
        await admin.start()
        try:
            described = {d["topic"]: len(d["partitions"]) for d in await admin.describe_topics(list(expected))}
        finally:
            await admin.close()
        wrong = {t: described.get(t) for t, n in expected.items() if described.get(t) != n}
        if wrong:
            raise RuntimeError(f"topics missing or with other partition counts than {settings.topic_partitions}: {wrong}")
        return f"{len(expected)} topics with {settings.topic_partitions} partitions each at {bootstrap}"

    topic_check = await _check("broker and topics", topics)
    if not topic_check.ok:
        return [topic_check]

    async def group() -> str:
        consumed = {settings.topic(n): settings.topic_partitions for n in CONSUMED_TOPIC_NAMES}
        view = await describe_group(bootstrap, settings.app_id, consumed)
        total = sum(view.lag.values())
        worst = max(view.lag.items(), key=lambda item: item[1], default=(("-", 0), 0))
        members = "unknown (this broker does not report members)" if view.members is None else str(view.members)
        if total > LAG_WARNING:
            raise RuntimeError(f"lag {total} messages (worst {worst[0][0]}[{worst[0][1]}]: {worst[1]}); workers: {members}")
        return f"workers in group {settings.app_id!r}: {members}; lag {total} messages"

    return [topic_check, await _check("consumer group", group)]


async def check_postgres(settings: Settings) -> Check:
    async def probe() -> str:
        conn = await asyncpg.connect(settings.database_url, timeout=10)
        try:
            pending = await pending_migrations(conn)
        finally:
            await conn.close()
        if pending:
            raise RuntimeError(f"reachable, but migrations not applied: {', '.join(pending)} (run `invite-service migrate`)")
        return "reachable, migrations current"

    return await _check("PostgreSQL", probe)


async def check_redis(settings: Settings) -> Check:
    async def probe() -> str:
        client = redis.from_url(settings.redis_url or "", socket_connect_timeout=5)
        try:
            await client.ping()
        finally:
            await client.aclose()
        return "reachable (a mirror only: sending goes on without it)"

    return await _check("Redis", probe)


async def check_integration(settings: Settings) -> Check:
    async def probe() -> str:
        token = settings.integration_service_token
        headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
        async with httpx.AsyncClient(timeout=10, headers=headers) as http:
            response = await http.get(f"{(settings.integration_service_url or '').rstrip('/')}/v1/health")
        response.raise_for_status()
        return f"healthy at {settings.integration_service_url}"

    return await _check("Integration Service", probe)


async def check_vault(settings: Settings) -> Check | None:
    if not settings.vault_addr:
        return None

    async def probe() -> str:
        from adapters.vault import VaultClient

        health = await asyncio.to_thread(VaultClient(settings).health)
        return str(health.model_dump() if hasattr(health, "model_dump") else health)

    return await _check("Vault", probe)


async def explain_task(settings: Settings, task_id: str, broker_ok: bool) -> list[str]:
    """The task's facts and the one-sentence verdict."""
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        store = DiagnosticsStore(pool)
        now = datetime.now(UTC)
        facts = await store.task_facts(task_id, now - timedelta(hours=1), now - timedelta(days=1))
        if facts is None:
            return [f"task {task_id}: not found"]
        errors = await store.last_errors(task_id)
    finally:
        await pool.close()
    facts = await _with_account_blocks(settings, facts)
    facts.broker_reachable = broker_ok
    lines = [
        f"task {task_id}: {facts.status.value}" + (f" ({facts.status_reason})" if facts.status_reason else ""),
        f"  targets: {facts.pending} pending, {facts.in_flight} in flight, {facts.unknown} unknown",
    ]
    for a in facts.accounts:
        block = f", blocked until {datetime.fromtimestamp(a.blocked_until, UTC):%H:%M:%S} UTC ({a.block_reason})" \
            if a.blocked_until and a.blocked_until > time.time() else ""
        lines.append(f"  account {a.account_id}: {a.health}; {a.actions_last_hour}/{a.hourly_limit} this hour, "
                     f"{a.actions_last_day}/{a.daily_limit} today{block}")
    for e in errors:
        lines.append(f"  error {e['finished_at']:%H:%M:%S} {e['account_id']}: {e['outcome']} ({e['raw_error'] or '-'})")
    lines.append(f"  verdict: {why_not_sending(facts, time.time())}")
    return lines


async def _with_account_blocks(settings: Settings, facts: TaskFacts) -> TaskFacts:
    """Limits from the policy; cooldowns and quarantines from the Redis mirror (if Redis answers)."""
    client = redis.from_url(settings.redis_url or "", socket_connect_timeout=3)
    mirror = AccountMirror(client)
    accounts = []
    for a in facts.accounts:
        policy = settings.limit_policy(a.account_id)
        windows = {w.seconds: w.limit for w in policy.windows.get(ActionKind.INVITE, [])}
        update: dict[str, object] = {"hourly_limit": windows.get(HOUR), "daily_limit": windows.get(DAY)}
        try:
            mirrored = await mirror.read(a.account_id)
        except Exception:  # Redis is a mirror: doctor goes on without it
            mirrored = None
        if mirrored:
            update |= {"blocked_until": mirrored.get("until"), "block_reason": mirrored.get("state")}
        accounts.append(a.model_copy(update=update))
    await client.aclose()
    return facts.model_copy(update={"accounts": accounts})


async def run_doctor(settings: Settings, task_id: str | None) -> tuple[bool, list[str]]:
    checks: list[Check] = []
    checks += await check_broker(settings)
    checks.append(await check_postgres(settings))
    checks.append(await check_redis(settings))
    checks.append(await check_integration(settings))
    vault = await check_vault(settings)
    if vault is not None:
        checks.append(vault)
    lines = [c.line() for c in checks]
    healthy = all(c.ok for c in checks)
    if task_id:
        lines += await explain_task(settings, task_id, broker_ok=checks[0].ok)
    return healthy, lines
