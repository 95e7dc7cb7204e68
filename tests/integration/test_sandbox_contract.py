"""The sandbox's own behaviour, driven over real HTTP through TelegramAdapter.

What every Integration Service must answer (one outcome per marker, retries,
timeouts, tokens) is the shared contract suite in ``tests/contract``, run on
the sandbox and on a respx mock alike. Here is what only the sandbox does:
its record of deliveries and calls, idempotent replays and concurrent calls
with one key, account limits and violations, determinism, and the OpenAPI
document matching its routes.

Each test starts its own sandbox on a free port in this event loop, so state
never leaks between tests. ``GET /sandbox/deliveries`` is the proof of what
actually "happened on Telegram".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.integration import IntegrationClient, WireTarget
from adapters.platforms import AccountState, TargetRef, delivery_unknown, get_adapter
from adapters.platforms.telegram import TelegramAdapter
from adapters.sandbox import SandboxAccount, SandboxConfig, SandboxLimits, SandboxServer
from adapters.sandbox.behaviour import target_key, target_verdict
from models.outcomes import Outcome

QUIET = {"latency_ms": 1, "privacy_share": 0.0, "already_member_share": 0.0}


@dataclass
class Rig:
    server: SandboxServer
    client: IntegrationClient
    adapter: TelegramAdapter
    http: httpx.AsyncClient  # plain client for /sandbox/* and raw checks

    async def deliveries(self, **query: str) -> list[dict[str, Any]]:
        response = await self.http.get("/sandbox/deliveries", params=query)
        response.raise_for_status()
        body = response.json()
        assert body["count"] == len(body["deliveries"])
        return body["deliveries"]

    async def calls(self) -> dict[str, dict[str, Any]]:
        body = (await self.http.get("/sandbox/calls")).json()
        return {c["idempotency_key"]: c for c in body["calls"]}

    async def violations(self) -> list[dict[str, Any]]:
        return (await self.http.get("/sandbox/violations")).json()["violations"]


@asynccontextmanager
async def sandbox(
    token: str | None = None, client_token: str | None = None, clock: Callable[[], float] | None = None, **config: Any
) -> AsyncIterator[Rig]:
    cfg = SandboxConfig(**{**QUIET, **config}, token=token)
    server = SandboxServer(cfg, port=0, **({"clock": clock} if clock else {}))
    async with server:
        client = IntegrationClient(
            server.url,
            client_token if client_token is not None else token,
            timeout=5.0,
            backoff_base=0.005,
            backoff_max=0.05,
        )
        adapter = get_adapter("telegram", client=client)
        assert isinstance(adapter, TelegramAdapter)
        async with client, httpx.AsyncClient(base_url=server.url) as http:
            yield Rig(server, client, adapter, http)


def u(name: str) -> TargetRef:
    return TargetRef(username=name)


# ---- outcomes over HTTP -------------------------------------------------------


async def test_health_and_success() -> None:
    async with sandbox() as rig:
        assert (await rig.client.health())["status"] == "ok"
        result = await rig.adapter.send_invite("acc-1", "@MyGroup", u("alice"), "t1:1:1")
        assert result.outcome is Outcome.INVITED
        [delivery] = await rig.deliveries()
        assert delivery["account_id"] == "acc-1"
        assert delivery["chat"] == "mygroup"  # @MyGroup, t.me/mygroup and mygroup are one chat
        assert delivery["target"] == "u:alice"
        assert delivery["action"] == "invite"
        assert delivery["idempotency_key"] == "t1:1:1"
        assert delivery["at"].endswith("Z")


async def test_missing_invitee_answer_shape() -> None:
    async with sandbox() as rig:
        answer = await rig.client.invite("acc-1", "grp", {"username": "missing_carol"}, "k")
        assert answer["status"] == "ok"
        assert answer["added"] is False
        [missing] = answer["missing_invitees"]
        assert missing["username"] == "missing_carol"
        assert isinstance(missing["user_id"], int) and missing["user_id"] > 0


async def test_messages() -> None:
    async with sandbox() as rig:
        sent = await rig.adapter.send_message("acc-1", u("alice"), "hello", "m1")
        blocked = await rig.adapter.send_message("acc-1", u("blocked_bob"), "hello", "m2")
        by_phone = await rig.adapter.send_message("acc-1", TargetRef(phone="+15550001111"), "hello", "m3")
        assert sent.outcome is Outcome.MESSAGE_SENT
        assert blocked.outcome is Outcome.USER_BLOCKED_SENDER
        assert by_phone.outcome is Outcome.MESSAGE_SENT
        rows = await rig.deliveries(action="message")
        assert [(r["target"], r["chat"]) for r in rows] == [("u:alice", None), ("p:+15550001111", None)]


async def test_second_invite_with_new_key_finds_a_member() -> None:
    async with sandbox() as rig:
        first = await rig.adapter.send_invite("acc-1", "grp", u("alice"), "k1")
        again = await rig.adapter.send_invite("acc-2", "t.me/grp", u("alice"), "k2")
        assert (first.outcome, again.outcome) == (Outcome.INVITED, Outcome.ALREADY_MEMBER)
        assert len(await rig.deliveries()) == 1


# ---- idempotency -----------------------------------------------------------------


async def test_idempotent_replay_is_one_delivery_and_the_same_answer() -> None:
    async with sandbox() as rig:
        first = await rig.client.invite("acc-1", "grp", {"username": "alice"}, "task:7:1")
        second = await rig.client.invite("acc-1", "grp", {"username": "alice"}, "task:7:1")
        assert first == second
        raw = await rig.http.post(
            "/v1/accounts/acc-1/invite",
            json={"chat": "grp", "target": {"username": "alice"}, "idempotency_key": "task:7:1"},
        )
        assert raw.headers["Idempotent-Replayed"] == "true"
        assert raw.json() == first
        assert len(await rig.deliveries()) == 1
        assert (await rig.calls())["task:7:1"]["attempts"] == 3


async def test_concurrent_calls_with_one_key_deliver_once() -> None:
    async with sandbox(latency_ms=50) as rig:
        answers = await asyncio.gather(
            *(rig.client.invite("acc-1", "grp", {"username": "alice"}, "same") for _ in range(5))
        )
        assert all(a == answers[0] for a in answers)
        assert answers[0]["added"] is True
        assert len(await rig.deliveries()) == 1


async def test_replayed_errors_stay_errors() -> None:
    async with sandbox() as rig:
        first = await rig.adapter.send_invite("acc-1", "grp", u("privacy_dan"), "k")
        second = await rig.adapter.send_invite("acc-1", "grp", u("privacy_dan"), "k")
        assert first == second
        assert first.outcome is Outcome.PRIVACY_RESTRICTED


async def test_key_reused_for_another_call_is_refused() -> None:
    async with sandbox() as rig:
        await rig.adapter.send_invite("acc-1", "grp", u("alice"), "k")
        other = await rig.adapter.send_invite("acc-1", "grp", u("bob_other"), "k")
        assert (other.outcome, other.raw_error) == (Outcome.TRANSIENT_ERROR, "HTTP_409:IDEMPOTENCY_KEY_REUSED")
        assert [d["target"] for d in await rig.deliveries()] == ["u:alice"]


async def test_lookup_by_key() -> None:
    async with sandbox() as rig:
        assert await rig.adapter.lookup("never-sent") is None
        assert await rig.client.lookup_call("never-sent") is None
        sent = await rig.adapter.send_invite("acc-1", "grp", u("alice"), "task:1:1")
        flood = await rig.adapter.send_invite("flood_acc", "grp", u("bob_b"), "task:2:1")
        assert await rig.adapter.lookup("task:1:1") == sent
        assert await rig.adapter.lookup("task:2:1") == flood
        assert flood.outcome is Outcome.FLOOD_WAIT and flood.retry_after == 60
        # The stored answer is exactly what the call returned.
        answer = await rig.client.invite("acc-1", "grp", {"username": "alice"}, "task:1:1")
        assert await rig.client.lookup_call("task:1:1") == answer


async def test_lookup_waits_for_a_call_in_flight() -> None:
    async with sandbox(latency_ms=200) as rig:
        call = asyncio.create_task(rig.adapter.send_invite("acc-1", "grp", u("alice"), "slow-key"))
        await asyncio.sleep(0.05)
        looked_up = await rig.adapter.lookup("slow-key")
        assert looked_up == await call
        assert looked_up is not None and looked_up.outcome is Outcome.INVITED


# ---- 5xx and retries ---------------------------------------------------------------


async def test_lost_answer_is_recovered_by_the_retry() -> None:
    # The action happens, the 503 loses the answer; the retry with the same key
    # gets the stored answer instead of acting again.
    async with sandbox(fail_rate=1.0, fail_phase="after") as rig:
        result = await rig.adapter.send_invite("acc-1", "grp", u("alice"), "k")
        assert result.outcome is Outcome.INVITED
        assert len(await rig.deliveries()) == 1
        assert (await rig.calls())["k"]["attempts"] == 2


async def test_random_5xx_with_retries_delivers_everyone_exactly_once() -> None:
    async with sandbox(fail_rate=0.4, seed=3) as rig:
        rig.client.max_retries = 8
        names = [f"user_{i:03d}" for i in range(40)]
        # One account per target: an account never has two calls in flight.
        results = await asyncio.gather(
            *(rig.adapter.send_invite(f"acc-{i}", "grp", u(n), f"t:{n}:1") for i, n in enumerate(names))
        )
        assert {r.outcome for r in results} == {Outcome.INVITED}
        rows = await rig.deliveries()
        assert sorted(r["target"] for r in rows) == sorted(f"u:{n}" for n in names)
        assert max(c["attempts"] for c in (await rig.calls()).values()) > 1  # failures did happen


async def test_unreachable_service_is_transient() -> None:
    async with sandbox() as rig:
        url = rig.server.url
    # The server is stopped now; nothing listens on its port.
    adapter = TelegramAdapter.from_url(url, max_retries=1, backoff_base=0.001)
    try:
        result = await adapter.send_invite("acc-1", "grp", u("alice"), "k")
    finally:
        await adapter.aclose()
    assert result.outcome is Outcome.TRANSIENT_ERROR
    assert delivery_unknown(result)


# ---- auth and accounts ---------------------------------------------------------------


async def test_accounts_listing_and_status() -> None:
    async with sandbox(accounts=[SandboxAccount(id="a-dead", user_id="owner-1", status="banned")]) as rig:
        made_up = await rig.adapter.list_accounts("owner-2")
        assert [a.id for a in made_up] == ["owner-2-tg-1", "owner-2-tg-2", "owner-2-tg-3"]
        assert {a.status for a in made_up} == {AccountState.ACTIVE}
        assert {a.platform for a in made_up} == {"telegram"}
        [configured] = await rig.adapter.list_accounts("owner-1")
        assert (configured.id, configured.status) == ("a-dead", AccountState.BANNED)
        result = await rig.adapter.send_invite("a-dead", "grp", u("alice"), "k")
        assert result.outcome is Outcome.ACCOUNT_BANNED


@pytest.mark.parametrize(
    ("account_id", "outcome", "state"),
    [
        ("banned_acc", Outcome.ACCOUNT_BANNED, AccountState.BANNED),
        ("revoked_acc", Outcome.SESSION_INVALID, AccountState.SESSION_INVALID),
        ("peerflood_acc", Outcome.PEER_FLOOD, AccountState.RESTRICTED),
        ("flood_acc", Outcome.FLOOD_WAIT, AccountState.COOLDOWN),
    ],
)
async def test_account_markers(account_id: str, outcome: Outcome, state: AccountState) -> None:
    async with sandbox() as rig:
        assert (await rig.adapter.send_invite(account_id, "grp", u("alice"), "k")).outcome is outcome
        assert (await rig.adapter.account_status(account_id)).status is state
        assert await rig.violations() == []
        # Acting again after being told is what the service must never do.
        await rig.adapter.send_invite(account_id, "grp", u("alice"), "k2")
        assert [v["account_id"] for v in await rig.violations()] == [account_id]


async def test_limits_flood_wait_then_peer_flood() -> None:
    now = [1_000_000.0]
    limits = SandboxLimits(invites_per_hour=2, invites_per_day=3)
    async with sandbox(clock=lambda: now[0], limits=limits) as rig:
        ok1 = await rig.adapter.send_invite("acc-1", "grp", u("user_a1"), "k1")
        now[0] += 60
        ok2 = await rig.adapter.send_invite("acc-1", "grp", u("user_a2"), "k2")
        flood = await rig.adapter.send_invite("acc-1", "grp", u("user_a3"), "k3")
        assert (ok1.outcome, ok2.outcome, flood.outcome) == (Outcome.INVITED, Outcome.INVITED, Outcome.FLOOD_WAIT)
        assert flood.retry_after == 3600 - 60  # until the first invite leaves the hour
        status = await rig.adapter.account_status("acc-1")
        assert status.status is AccountState.COOLDOWN and status.until is not None
        now[0] += 3600
        ok3 = await rig.adapter.send_invite("acc-1", "grp", u("user_a3"), "k4")
        peer = await rig.adapter.send_invite("acc-1", "grp", u("user_a4"), "k5")
        assert (ok3.outcome, peer.outcome) == (Outcome.INVITED, Outcome.PEER_FLOOD)
        assert (await rig.adapter.account_status("acc-1")).status is AccountState.RESTRICTED
        assert len(await rig.deliveries(account_id="acc-1")) == 3
        assert await rig.violations() == []


async def test_two_actions_at_once_on_one_account_are_auth_key_duplicated() -> None:
    async with sandbox(latency_ms=100) as rig:
        first, second = await asyncio.gather(
            rig.adapter.send_invite("acc-1", "grp", u("alice"), "k1"),
            rig.adapter.send_invite("acc-1", "grp", u("bobby"), "k2"),
        )
        assert {first.outcome, second.outcome} == {Outcome.INVITED, Outcome.SESSION_DUPLICATED}
        [violation] = await rig.violations()
        assert violation["reason"] == "concurrent_use"
        # Other accounts in parallel are fine.
        results = await asyncio.gather(
            *(rig.adapter.send_invite(f"acc-{i}", "grp", u(f"user_p{i}"), f"p{i}") for i in range(2, 6))
        )
        assert {r.outcome for r in results} == {Outcome.INVITED}


async def test_reset() -> None:
    async with sandbox() as rig:
        await rig.adapter.send_invite("acc-1", "grp", u("alice"), "k")
        assert (await rig.http.post("/sandbox/reset")).json() == {"status": "ok"}
        assert await rig.deliveries() == []
        assert await rig.adapter.lookup("k") is None
        assert (await rig.adapter.send_invite("acc-1", "grp", u("alice"), "k")).outcome is Outcome.INVITED


# ---- determinism of the shares --------------------------------------------------------


async def test_shares_are_deterministic_and_predictable() -> None:
    config = {"privacy_share": 0.05, "already_member_share": 0.05, "seed": 11}
    names = [f"person_{i:04d}" for i in range(400)]

    async def run() -> list[Outcome]:
        # Sequential on purpose: httpx's pool slows down sharply under many
        # concurrent requests (encode/httpx#3215), and order must not matter anyway.
        async with sandbox(latency_ms=0, **config) as rig:
            return [
                (await rig.adapter.send_invite(f"acc-{i % 4}", "grp", u(n), f"k{i}")).outcome
                for i, n in enumerate(names)
            ]

    first, second = await run(), await run()
    assert first == second
    predicted = [target_verdict("invite", WireTarget(username=n), SandboxConfig(**config)) for n in names]
    expected = [
        Outcome.PRIVACY_RESTRICTED if v.missing else Outcome.ALREADY_MEMBER if v.code else Outcome.INVITED
        for v in predicted
    ]
    assert first == expected
    privacy = first.count(Outcome.PRIVACY_RESTRICTED)
    member = first.count(Outcome.ALREADY_MEMBER)
    assert 5 <= privacy <= 45 and 5 <= member <= 45  # ~20 each expected out of 400
    assert target_key(WireTarget(username="@Person_0001", user_id=5)) == "id:5"


# ---- the OpenAPI document tells the truth ------------------------------------------------


def test_openapi_document_matches_routes() -> None:
    yaml = pytest.importorskip("yaml")
    spec_path = Path(__file__).resolve().parents[2] / "adapters" / "integration-service.openapi.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    assert spec["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    app = SandboxServer(SandboxConfig()).app
    served = {
        (route.resource.canonical, route.method)
        for route in app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/v1/") and route.method != "HEAD"
    }
    assert documented == served
