"""Resolving a target for an account: the same answers from the sandbox over HTTP and from a mock.

The sandbox decides from its documented markers (``nobody_`` usernames do
not exist, ``bot_`` ones are bots, ``banned_`` accounts are dead); the respx
mock scripts what the real Integration Service would answer for the same
cases, including a FLOOD_WAIT on the resolve itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import respx

from adapters.integration import IntegrationClient
from adapters.platforms.base import ResolvedTarget, TargetRef
from adapters.platforms.telegram import TelegramAdapter
from adapters.sandbox import SandboxConfig, SandboxServer
from models.outcomes import InviteResult, Outcome

MOCK_URL = "http://integration.test"


@pytest.fixture
async def sandbox_adapter() -> AsyncIterator[TelegramAdapter]:
    async with SandboxServer(config=SandboxConfig(latency_ms=1)) as server:
        adapter = TelegramAdapter(IntegrationClient(server.url, max_retries=1), owns_client=True)
        yield adapter
        await adapter.aclose()


async def test_sandbox_resolves_a_user_as_the_account_sees_it(sandbox_adapter: TelegramAdapter) -> None:
    found = await sandbox_adapter.resolve_target("acc-1", TargetRef(username="@Alice_01"))
    assert isinstance(found, ResolvedTarget)
    assert found.username == "alice_01" and found.user_id > 0 and not found.bot
    again = await sandbox_adapter.resolve_target("acc-2", TargetRef(username="alice_01"))
    assert isinstance(again, ResolvedTarget) and again.user_id == found.user_id  # stable: no side effect


@pytest.mark.parametrize(
    ("account", "username", "expected"),
    [
        ("acc-1", "nobody_here", Outcome.USERNAME_NOT_FOUND),
        ("banned_1", "alice", Outcome.ACCOUNT_BANNED),
    ],
)
async def test_sandbox_refusals_map_like_calls(
    sandbox_adapter: TelegramAdapter, account: str, username: str, expected: Outcome
) -> None:
    refused = await sandbox_adapter.resolve_target(account, TargetRef(username=username))
    assert isinstance(refused, InviteResult) and refused.outcome is expected


async def test_sandbox_marks_bots(sandbox_adapter: TelegramAdapter) -> None:
    bot = await sandbox_adapter.resolve_target("acc-1", TargetRef(username="bot_helper"))
    assert isinstance(bot, ResolvedTarget) and bot.bot


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (httpx.Response(200, json={"status": "ok", "peer": {"user_id": 42, "username": "zed"}}), 42),
        (httpx.Response(200, json={"status": "error", "error": {"code": "FLOOD_WAIT", "seconds": 30}}),
         Outcome.FLOOD_WAIT),
        (httpx.Response(200, json={"status": "ok"}), Outcome.TRANSIENT_ERROR),  # no peer: a bad answer
        (httpx.Response(503), Outcome.TRANSIENT_ERROR),
    ],
)
async def test_mocked_service_answers(reply: httpx.Response, expected: int | Outcome) -> None:
    with respx.mock(base_url=MOCK_URL) as mock:
        route = mock.post("/v1/accounts/acc-1/resolve").mock(return_value=reply)
        adapter = TelegramAdapter(IntegrationClient(MOCK_URL, max_retries=0), owns_client=True)
        result = await adapter.resolve_target("acc-1", TargetRef(username="zed"))
        await adapter.aclose()
    assert route.calls.last.request.content == b'{"target":{"username":"zed"}}'
    if isinstance(expected, Outcome):
        assert isinstance(result, InviteResult) and result.outcome is expected
        if expected is Outcome.FLOOD_WAIT:
            assert result.retry_after == 30
    else:
        assert isinstance(result, ResolvedTarget) and result.user_id == expected


async def test_rate_limit_status_follows_a_flood_wait(sandbox_adapter: TelegramAdapter) -> None:
    from adapters.platforms.base import RateLimitStatus

    free = await sandbox_adapter.rate_limit_status("acc-9")
    assert free == RateLimitStatus(account_id="acc-9", limited=False)
    await sandbox_adapter.send_invite("flood_9", "@chat", TargetRef(username="someone"), "t:1:1")
    held = await sandbox_adapter.rate_limit_status("flood_9")
    assert held.limited and held.until is not None and held.reason
