"""The HTTP edge with its knobs turned: audience and issuer required, per-user rate limit, CORS."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.api_worker import Served, running_worker, token
from tests.support.stack import TestStack

pytestmark = pytest.mark.broker

LIMIT = 20
ORIGIN = "https://app.example"
CLAIMS = {"aud": "invite-api", "iss": "https://platform.example"}


@pytest.fixture(scope="module")
def served(stack: TestStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with running_worker(stack, tmp_path_factory.mktemp("api-edges"), INVITE_API_RATE_LIMIT_PER_MINUTE=str(LIMIT),
                        INVITE_CORS_ALLOW_ORIGINS=f"{ORIGIN}, https://admin.example",
                        INVITE_JWT_AUDIENCE=CLAIMS["aud"], INVITE_JWT_ISSUER=CLAIMS["iss"]) as running:
        yield running


def get(served: Served, bearer: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{served.url}/api/v1/tasks", headers={"Authorization": f"Bearer {bearer}", **headers},
                     timeout=10)


def test_audience_and_issuer_are_checked_when_configured(served: Served) -> None:
    assert get(served, token("aud-ok", **CLAIMS)).status_code == 200
    for claims in ({}, {"aud": "invite-api"}, {**CLAIMS, "aud": "another-api"}, {**CLAIMS, "iss": "https://evil"}):
        response = get(served, token("aud-bad", **claims))
        assert response.status_code == 401, claims
        assert response.json()["error"]["code"] == "unauthorized"


def test_each_user_has_a_request_budget(served: Served) -> None:
    # 2 * LIMIT + 1 requests within at most two windows: one window sees more than LIMIT.
    answers = [get(served, token("greedy", **CLAIMS)) for _ in range(2 * LIMIT + 1)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert {a.status_code for a in answers} <= {200, 429}
    first = limited[0]
    assert first.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(first.headers["Retry-After"]) <= 60
    assert get(served, token("patient", **CLAIMS)).status_code == 200, "another user's budget is untouched"


def test_cors_answers_allowed_origins_only(served: Served) -> None:
    preflight = httpx.options(f"{served.url}/api/v1/tasks", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization, Content-Type"}, timeout=10)
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    simple = get(served, token("cors", **CLAIMS), Origin=ORIGIN)
    assert simple.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Retry-After" in simple.headers["Access-Control-Expose-Headers"]
    foreign = httpx.options(f"{served.url}/api/v1/tasks", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}, timeout=10)
    assert "Access-Control-Allow-Origin" not in foreign.headers
    assert "Access-Control-Allow-Origin" not in get(served, token("cors", **CLAIMS), Origin="https://evil.example").headers
