"""IntegrationClient's retries, against a respx mock of the Integration Service.

Rules under test (``adapters/integration.py``): transient failures —
connection errors, timeouts, 5xx, 429 and a 2xx that is not JSON — are
retried with exponential backoff and full jitter, a server's Retry-After as a
floor; other 4xx are raised at once; the last failure is not followed by a
sleep; every retry of a POST carries the same body and idempotency key.

Time is controlled, not waited for: the client's ``asyncio.sleep`` and
``random.uniform`` are replaced (in its module only) by :class:`Controlled`,
which records each requested delay and jitter range and returns at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from adapters.integration import IntegrationClient, IntegrationHTTPError, IntegrationUnavailable

URL = "http://integration.test"
INVITE = r"^/v1/accounts/[^/]+/invite$"
OK = {"status": "ok", "action": "invite", "added": True, "missing_invitees": []}


class Controlled:
    """Sleeps that take no time, and a jitter draw the test chooses (the top or the bottom of the range)."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.ranges: list[tuple[float, float]] = []
        self.draw = "top"

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def uniform(self, low: float, high: float) -> float:
        self.ranges.append((low, high))
        return high if self.draw == "top" else low


_current = Controlled()


@pytest.fixture(autouse=True)
def time() -> Controlled:
    """The sleep and jitter every client of this test gets (IntegrationClient's sleep= and rng=)."""
    global _current
    _current = Controlled()
    return _current


@pytest.fixture
def service() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=URL, assert_all_called=False) as mock:
        yield mock


def client(**options: Any) -> IntegrationClient:
    defaults = {"backoff_base": 0.1, "backoff_max": 0.5, "sleep": _current.sleep, "rng": _current}
    return IntegrationClient(URL, **{**defaults, **options})


async def invite(c: IntegrationClient, key: str = "task:1:1") -> dict[str, Any]:
    return await c.invite("acc-1", "grp", {"username": "alice"}, key)


# ---- backoff -----------------------------------------------------------------------------


async def test_backoff_doubles_up_to_the_cap(time: Controlled, service: respx.MockRouter) -> None:
    route = service.post(path__regex=INVITE).mock(return_value=httpx.Response(503))
    async with client(max_retries=5) as c:
        with pytest.raises(IntegrationUnavailable) as failed:
            await invite(c)
    assert route.call_count == 6
    assert (failed.value.attempts, failed.value.status_code, failed.value.cause) == (6, 503, "HTTP_503")
    # Full jitter: each delay is drawn from [0, min(cap, base * 2**n)].
    assert time.ranges == [(0, 0.1), (0, 0.2), (0, 0.4), (0, 0.5), (0, 0.5)]
    assert time.sleeps == [0.1, 0.2, 0.4, 0.5, 0.5]  # no sleep after the last attempt


async def test_the_delay_is_the_jitter_draw_not_the_cap(time: Controlled, service: respx.MockRouter) -> None:
    time.draw = "bottom"
    service.post(path__regex=INVITE).mock(
        side_effect=[httpx.Response(502), httpx.Response(502), httpx.Response(200, json=OK)]
    )
    async with client(max_retries=3) as c:
        assert await invite(c) == OK
    assert time.sleeps == [0.0, 0.0]


async def test_backoff_starts_again_for_every_call(time: Controlled, service: respx.MockRouter) -> None:
    service.post(path__regex=INVITE).mock(
        side_effect=[
            httpx.Response(503),
            httpx.Response(200, json=OK),
            httpx.Response(503),
            httpx.Response(200, json=OK),
        ]
    )
    async with client() as c:
        await invite(c, "k1")
        await invite(c, "k2")
    assert time.sleeps == [0.1, 0.1]


@pytest.mark.parametrize(
    ("retry_after", "draw", "slept"),
    [
        ("2", "bottom", 2.0),  # a floor under the jitter
        ("0.05", "top", 0.1),  # ... that never shortens the backoff
        ("60", "bottom", 5.0),  # capped by backoff_max: the circuit breaker handles long outages
        ("Wed, 21 Oct 2026 07:28:00 GMT", "bottom", 0.0),  # the date form is ignored
    ],
)
async def test_retry_after_of_a_429(
    time: Controlled, service: respx.MockRouter, retry_after: str, draw: str, slept: float
) -> None:
    time.draw = draw
    service.post(path__regex=INVITE).mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": retry_after}), httpx.Response(200, json=OK)]
    )
    async with client(backoff_max=5.0) as c:
        assert await invite(c) == OK
    assert time.sleeps == [slept]


# ---- what is retried, and what is not --------------------------------------------------------

TRANSIENT: list[Any] = [
    httpx.Response(500),
    httpx.Response(502),
    httpx.Response(503, json={"status": "error", "error": {"code": "SANDBOX_UNAVAILABLE"}}),
    httpx.Response(504),
    httpx.Response(429),
    httpx.Response(200, text="<html>proxy error</html>"),  # a 2xx that is not the contract's JSON
    httpx.Response(200, json=["not", "an", "object"]),
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.PoolTimeout,
    httpx.ReadError,
    httpx.RemoteProtocolError,
]


def _name(failure: Any) -> str:
    return failure.__name__ if isinstance(failure, type) else f"HTTP_{failure.status_code}"


@pytest.mark.parametrize("failure", TRANSIENT, ids=map(_name, TRANSIENT))
async def test_transient_failures_are_retried(time: Controlled, service: respx.MockRouter, failure: Any) -> None:
    route = service.post(path__regex=INVITE).mock(side_effect=[failure, httpx.Response(200, json=OK)])
    async with client() as c:
        assert await invite(c) == OK
    assert route.call_count == 2
    assert len(time.sleeps) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 410, 413, 422])
async def test_other_4xx_are_raised_at_once(time: Controlled, service: respx.MockRouter, status: int) -> None:
    route = service.post(path__regex=INVITE).mock(
        return_value=httpx.Response(status, json={"status": "error", "error": {"code": f"CODE_{status}"}})
    )
    async with client(max_retries=5) as c:
        with pytest.raises(IntegrationHTTPError) as refused:
            await invite(c)
    assert (refused.value.status_code, refused.value.code) == (status, f"CODE_{status}")
    assert route.call_count == 1
    assert time.sleeps == []


async def test_no_retries_when_max_retries_is_zero(time: Controlled, service: respx.MockRouter) -> None:
    route = service.post(path__regex=INVITE).mock(side_effect=httpx.ReadTimeout)
    async with client(max_retries=0) as c:
        with pytest.raises(IntegrationUnavailable) as failed:
            await invite(c)
    assert (route.call_count, failed.value.attempts, failed.value.cause) == (1, 1, "ReadTimeout")
    assert time.sleeps == []
    with pytest.raises(ValueError, match="max_retries"):
        IntegrationClient(URL, max_retries=-1)


async def test_lookup_not_found_is_none_without_retry(time: Controlled, service: respx.MockRouter) -> None:
    route = service.get(path__regex=r"^/v1/calls/").mock(
        return_value=httpx.Response(404, json={"status": "error", "error": {"code": "CALL_NOT_FOUND"}})
    )
    async with client() as c:
        assert await c.lookup_call("task:1:1") is None
    assert route.call_count == 1
    assert route.calls.last.request.url.raw_path == b"/v1/calls/task%3A1%3A1"  # the key is one path segment
    assert time.sleeps == []


# ---- every retry is the same call ---------------------------------------------------------------


async def test_retries_repeat_the_same_body_and_key_with_a_fresh_token(
    time: Controlled, service: respx.MockRouter
) -> None:
    tokens = iter(["t1", "t2", "t3"])

    async def token() -> str:
        return next(tokens)

    route = service.post(path__regex=INVITE).mock(
        side_effect=[httpx.ConnectError, httpx.Response(503), httpx.Response(200, json=OK)]
    )
    async with client(token=token) as c:
        await invite(c, "task:7:2")
    bodies = [json.loads(call.request.content) for call in route.calls]
    assert bodies == [{"chat": "grp", "target": {"username": "alice"}, "idempotency_key": "task:7:2"}] * 3
    # A rotating token (Vault) is asked for on every attempt, so a retry never uses an expired one.
    assert [call.request.headers["Authorization"] for call in route.calls] == ["Bearer t1", "Bearer t2", "Bearer t3"]


async def test_service_to_service_jwt_is_signed_short_lived_and_renewed(service: respx.MockRouter) -> None:
    import jwt

    from adapters.integration import jwt_token_provider

    import time as wall

    now = [wall.time() - 1000]  # a controlled clock, in the past so iat checks pass
    provider = jwt_token_provider("s2s-secret-for-tests-0123456789abcdef", issuer="invite-service",
                                  ttl_seconds=300, clock=lambda: now[0])
    route = service.post(path__regex=INVITE).mock(return_value=httpx.Response(200, json=OK))
    async with client(token=provider) as c:
        await invite(c)
        now[0] += 250  # past 2/3 of the lifetime: a fresh token
        await invite(c, key="task:1:2")
    tokens = [call.request.headers["Authorization"].removeprefix("Bearer ") for call in route.calls]
    assert tokens[0] != tokens[1]
    claims = jwt.decode(tokens[0], "s2s-secret-for-tests-0123456789abcdef", algorithms=["HS256"],
                        audience="integration-service", options={"verify_exp": False})
    assert claims["iss"] == "invite-service" and claims["exp"] - claims["iat"] == 300
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(tokens[0], "another-secret-0123456789abcdefghij", algorithms=["HS256"],
                   audience="integration-service", options={"verify_exp": False})
