"""The Integration Service contract, through TelegramAdapter, on the sandbox and on a respx mock.

Each case of ``cases.py`` is one call; it runs against every side that can
produce it (the sandbox over real HTTP, a respx mock of the same contract for
the edge cases the sandbox never produces) and must come to the same
normalized :class:`~models.outcomes.InviteResult` on both, with the same
checks: outcome, raw error, retry_after, whether the delivery is unknown, how
many HTTP attempts were made, whether anything was delivered, and what a
lookup by the key says afterwards.
"""

from __future__ import annotations

import logging

import httpx
import pytest
import respx

from adapters.integration import IntegrationClient, IntegrationUnavailable
from adapters.platforms import TargetRef, delivery_unknown
from adapters.platforms.telegram import ERROR_OUTCOMES, TelegramAdapter
from models.outcomes import SCOPE, Outcome, Scope

from .backends import MOCK_URL, open_backend
from .cases import CASES, Case, telegram_error

RUNS = [pytest.param(kind, case, id=f"{kind}-{case.id}") for case in CASES for kind in case.backends()]


def target_of(case: Case) -> TargetRef:
    return TargetRef(username=case.username, phone=case.phone)


async def call(adapter: TelegramAdapter, case: Case, key: str):  # type: ignore[no-untyped-def]
    if case.action == "invite":
        return await adapter.send_invite(case.account, case.chat, target_of(case), key)
    return await adapter.send_message(case.account, target_of(case), "hello", key)


@pytest.mark.parametrize(("kind", "case"), RUNS)
async def test_contract(kind: str, case: Case) -> None:
    key = f"contract:{case.id}:1"
    async with open_backend(kind, case) as backend:
        result = await call(backend.adapter, case, key)

        assert result.outcome is case.expect
        assert result.raw_error == case.raw_error
        assert result.retry_after == case.retry_after
        assert delivery_unknown(result) is case.unknown
        assert result.platform == "telegram"
        assert result.scope is SCOPE[case.expect]

        attempts = await backend.attempts(key)
        if case.attempts is not None:
            assert attempts == case.attempts
        if case.attempts_at_least is not None:
            assert attempts >= case.attempts_at_least
        # Nobody counts as invited or messaged who was not, and nobody was reached twice.
        assert await backend.delivered(key) == (1 if result.scope is Scope.SUCCESS else 0)

        if case.lookup == "same":
            assert await backend.adapter.lookup(key) == result
        elif case.lookup == "none":
            assert await backend.adapter.lookup(key) is None


def test_every_shared_table_row_and_issue_case_is_in_the_contract() -> None:
    covered = {case.raw_error for case in CASES}
    assert set(ERROR_OUTCOMES) <= covered
    assert {"MISSING_INVITEES", "NOT_ADDED", "PEER_ID_INVALID", "UNAVAILABLE:HTTP_503"} <= covered
    # Every outcome of the taxonomy is reached by some case.
    assert {case.expect for case in CASES} == set(Outcome)
    # The sandbox produces every scope of the taxonomy over real HTTP.
    assert {SCOPE[case.expect] for case in CASES if case.sandbox is not None} == set(Scope)


@pytest.mark.parametrize("kind", ["sandbox", "mock"])
async def test_lookup_of_a_key_never_used_is_none(kind: str) -> None:
    case = Case("lookup_only", Outcome.INVITED, wire=())
    async with open_backend(kind, case) as backend:
        assert await backend.adapter.lookup("contract:never-sent:1") is None
        assert await backend.attempts("contract:never-sent:1") == 0


@pytest.mark.parametrize("kind", ["sandbox", "mock"])
async def test_same_key_twice_is_one_delivery_and_the_same_result(kind: str) -> None:
    case = Case("replay", Outcome.INVITED, wire=({"status": "ok", "added": True, "missing_invitees": []},))
    async with open_backend(kind, case) as backend:
        first = await call(backend.adapter, case, "contract:replay:1")
        second = await call(backend.adapter, case, "contract:replay:1")
        assert first == second
        assert first.outcome is Outcome.INVITED
        assert await backend.attempts("contract:replay:1") == 2
        assert await backend.delivered("contract:replay:1") == 1


async def test_lookup_raises_when_the_service_cannot_say() -> None:
    # "Don't know" must never read as "never happened", or a lost answer turns into a resend.
    with respx.mock(base_url=MOCK_URL) as mock:
        route = mock.get(path__regex=r"^/v1/calls/").mock(return_value=httpx.Response(503))
        client = IntegrationClient(MOCK_URL, max_retries=2, backoff_base=0.001, backoff_max=0.01)
        async with client:
            with pytest.raises(IntegrationUnavailable):
                await TelegramAdapter(client).lookup("contract:k:1")
        assert route.call_count == 3


async def test_unknown_error_code_is_logged_with_the_code(caplog: pytest.LogCaptureFixture) -> None:
    case = Case("unknown", Outcome.TRANSIENT_ERROR, wire=(telegram_error("BRAND_NEW_TELEGRAM_ERROR"),))
    async with open_backend("mock", case) as backend:
        with caplog.at_level(logging.WARNING, logger="adapters.platforms.telegram"):
            result = await call(backend.adapter, case, "contract:unknown:1")
    assert result.raw_error == "BRAND_NEW_TELEGRAM_ERROR"
    assert "BRAND_NEW_TELEGRAM_ERROR" in caplog.text
