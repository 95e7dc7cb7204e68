"""The two Integration Services the contract runs against.

* ``sandbox``: the real sandbox server on a free port, reached over real
  HTTP; what it did is read back from its ``/sandbox/*`` record.
* ``mock``: a respx mock of the same HTTP contract whose replies each case
  scripts (``Case.wire``). It keeps the answer of each completed call by key,
  as the contract requires: the same key gets that answer again without
  acting, and ``GET /v1/calls/{key}`` returns it.

Both hand the test a ``TelegramAdapter`` over a real ``IntegrationClient``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote

import httpx
import respx

from adapters.integration import IntegrationClient
from adapters.platforms import get_adapter
from adapters.platforms.telegram import TelegramAdapter
from adapters.sandbox import SandboxConfig, SandboxServer

from .cases import MAX_RETRIES, Case, Reply

MOCK_URL = "http://integration.test"
# No shares in the contract runs: only the markers decide, so every case knows its answer.
QUIET_SANDBOX: dict[str, Any] = {"latency_ms": 1, "privacy_share": 0.0, "already_member_share": 0.0}


def client_options(case: Case) -> dict[str, Any]:
    """The client every case uses: real retries with tiny backoff, unless the case says otherwise."""
    return {"timeout": 5.0, "max_retries": MAX_RETRIES, "backoff_base": 0.001, "backoff_max": 0.01, **case.client}


class Backend(Protocol):
    """An Integration Service plus a Telegram adapter talking to it."""

    adapter: TelegramAdapter

    async def attempts(self, key: str) -> int:
        """HTTP requests that reached the service for this idempotency key."""

    async def delivered(self, key: str) -> int:
        """Invites or messages the service actually delivered under this key."""


@dataclass
class SandboxBackend:
    adapter: TelegramAdapter
    http: httpx.AsyncClient

    async def attempts(self, key: str) -> int:
        calls = (await self.http.get("/sandbox/calls")).json()["calls"]
        return sum(c["attempts"] for c in calls if c["idempotency_key"] == key)

    async def delivered(self, key: str) -> int:
        response = await self.http.get("/sandbox/deliveries", params={"idempotency_key": key})
        return int(response.json()["count"])


@asynccontextmanager
async def sandbox_backend(case: Case) -> AsyncIterator[SandboxBackend]:
    assert case.sandbox is not None
    server = SandboxServer(SandboxConfig(**{**QUIET_SANDBOX, **case.sandbox}), port=0)
    async with server:
        options = client_options(case)
        token = options.pop("token", None)
        client = IntegrationClient(server.url, token, **options)
        adapter = get_adapter("telegram", client=client, owns_client=True)
        assert isinstance(adapter, TelegramAdapter)
        async with httpx.AsyncClient(base_url=server.url) as http:
            try:
                yield SandboxBackend(adapter, http)
            finally:
                await adapter.aclose()


@dataclass
class MockedService:
    """Serves the scripted replies in order and keeps completed calls by key."""

    replies: list[Reply]
    requests: list[httpx.Request] = field(default_factory=list)
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def act(self, request: httpx.Request, account: str, action: str) -> httpx.Response:
        self.requests.append(request)
        body = json.loads(request.content)
        stored = self.answers.get(body["idempotency_key"])
        if stored is not None:  # the contract: the same key returns the stored answer and never acts twice
            return httpx.Response(200, json=stored, headers={"Idempotent-Replayed": "true"})
        if not self.replies:
            raise AssertionError(f"the case scripted too few replies for {action} ({len(self.requests)} asked)")
        reply = self.replies.pop(0)
        if isinstance(reply, type):
            raise reply("scripted", request=request)  # type: ignore[call-arg]
        if isinstance(reply, httpx.Response):
            return reply
        answer = {
            "action": action,
            "account_id": account,
            "idempotency_key": body["idempotency_key"],
            "completed_at": "2026-01-01T00:00:00Z",
            **reply,
        }
        self.answers[body["idempotency_key"]] = answer
        return httpx.Response(200, json=answer)

    def lookup(self, request: httpx.Request, key: str) -> httpx.Response:
        answer = self.answers.get(unquote(key))
        if answer is None:
            return httpx.Response(404, json={"status": "error", "error": {"code": "CALL_NOT_FOUND"}})
        return httpx.Response(200, json=answer)


@dataclass
class MockBackend:
    adapter: TelegramAdapter
    service: MockedService

    async def attempts(self, key: str) -> int:
        return sum(1 for r in self.service.requests if json.loads(r.content)["idempotency_key"] == key)

    async def delivered(self, key: str) -> int:
        answer = self.service.answers.get(key)
        if answer is None or answer["status"] != "ok":
            return 0
        if answer["action"] == "message":
            return 1
        return int(answer.get("added") is not False and not answer.get("missing_invitees"))


@asynccontextmanager
async def mock_backend(case: Case) -> AsyncIterator[MockBackend]:
    assert case.wire is not None
    service = MockedService(list(case.wire))
    with respx.mock(base_url=MOCK_URL, assert_all_called=False) as mock:
        mock.post(path__regex=r"^/v1/accounts/(?P<account>[^/]+)/(?P<action>invite|message)$").mock(
            side_effect=service.act
        )
        mock.get(path__regex=r"^/v1/calls/(?P<key>[^/]+)$").mock(side_effect=service.lookup)
        options = client_options(case)
        token = options.pop("token", None)
        adapter = TelegramAdapter(IntegrationClient(MOCK_URL, token, **options), owns_client=True)
        try:
            yield MockBackend(adapter, service)
        finally:
            await adapter.aclose()


@asynccontextmanager
async def open_backend(kind: str, case: Case) -> AsyncIterator[Backend]:
    opener = sandbox_backend if kind == "sandbox" else mock_backend
    async with opener(case) as backend:
        yield backend
