"""Telegram error codes → normalized outcomes, and the client's retry rules.

The mapping is DESIGN.md's "Outcomes and limits (Telegram)" table; raw
answers are fed through ``httpx.MockTransport`` so the whole adapter path
(client → answer parsing → InviteResult) is covered without a server.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from adapters.integration import IntegrationClient, IntegrationHTTPError, IntegrationUnavailable
from adapters.platforms import (
    AccountState,
    PlatformAdapter,
    TargetRef,
    UnknownPlatform,
    delivery_unknown,
    get_adapter,
    register,
    registry,
)
from adapters.platforms.telegram import ERROR_OUTCOMES, TelegramAdapter, map_answer, map_error
from models.outcomes import InviteResult, Outcome, Scope

ALICE = TargetRef(username="alice")


def _error(code: str, seconds: int | None = None, action: str = "invite") -> dict[str, Any]:
    err: dict[str, Any] = {"code": code}
    if seconds is not None:
        err["seconds"] = seconds
    return {"status": "error", "action": action, "error": err}


# (code, seconds, action, expected outcome, expected scope, expected retry_after)
TABLE = [
    ("USER_ALREADY_PARTICIPANT", None, "invite", Outcome.ALREADY_MEMBER, Scope.TARGET_DONE, None),
    ("USER_PRIVACY_RESTRICTED", None, "invite", Outcome.PRIVACY_RESTRICTED, Scope.TARGET_PERMANENT, None),
    ("PRIVACY_PREMIUM_REQUIRED", None, "message", Outcome.PRIVACY_RESTRICTED, Scope.TARGET_PERMANENT, None),
    ("USER_NOT_MUTUAL_CONTACT", None, "invite", Outcome.NOT_MUTUAL_CONTACT, Scope.TARGET_PERMANENT, None),
    ("USER_CHANNELS_TOO_MUCH", None, "invite", Outcome.TOO_MANY_CHANNELS, Scope.TARGET_PERMANENT, None),
    ("USER_KICKED", None, "invite", Outcome.KICKED, Scope.TARGET_PERMANENT, None),
    ("USER_BANNED_IN_CHANNEL", None, "invite", Outcome.BANNED_IN_CHANNEL, Scope.TARGET_PERMANENT, None),
    ("INPUT_USER_DEACTIVATED", None, "invite", Outcome.USER_DEACTIVATED, Scope.TARGET_PERMANENT, None),
    ("USER_ID_INVALID", None, "invite", Outcome.USER_INVALID, Scope.TARGET_PERMANENT, None),
    ("USERNAME_NOT_OCCUPIED", None, "invite", Outcome.USERNAME_NOT_FOUND, Scope.TARGET_PERMANENT, None),
    ("USERNAME_INVALID", None, "message", Outcome.USERNAME_NOT_FOUND, Scope.TARGET_PERMANENT, None),
    ("USER_BOT", None, "invite", Outcome.USER_IS_BOT, Scope.TARGET_PERMANENT, None),
    ("USER_IS_BLOCKED", None, "message", Outcome.USER_BLOCKED_SENDER, Scope.TARGET_PERMANENT, None),
    ("FLOOD_WAIT", 42, "invite", Outcome.FLOOD_WAIT, Scope.ACCOUNT_TEMPORARY, 42.0),
    ("FLOOD_WAIT_300", None, "message", Outcome.FLOOD_WAIT, Scope.ACCOUNT_TEMPORARY, 300.0),
    ("FLOOD_WAIT_300", 7, "invite", Outcome.FLOOD_WAIT, Scope.ACCOUNT_TEMPORARY, 7.0),  # explicit seconds win
    ("FLOOD_PREMIUM_WAIT_5", None, "invite", Outcome.FLOOD_WAIT, Scope.ACCOUNT_TEMPORARY, 5.0),
    ("FLOOD_WAIT", None, "invite", Outcome.FLOOD_WAIT, Scope.ACCOUNT_TEMPORARY, None),
    ("AUTH_KEY_DUPLICATED", None, "invite", Outcome.SESSION_DUPLICATED, Scope.ACCOUNT_TEMPORARY, None),
    ("PEER_FLOOD", None, "invite", Outcome.PEER_FLOOD, Scope.ACCOUNT_RESTRICTED, None),
    ("USER_RESTRICTED", None, "invite", Outcome.PEER_FLOOD, Scope.ACCOUNT_RESTRICTED, None),
    ("USER_DEACTIVATED_BAN", None, "invite", Outcome.ACCOUNT_BANNED, Scope.ACCOUNT_DEAD, None),
    ("USER_DEACTIVATED", None, "message", Outcome.ACCOUNT_BANNED, Scope.ACCOUNT_DEAD, None),
    ("AUTH_KEY_UNREGISTERED", None, "invite", Outcome.SESSION_INVALID, Scope.ACCOUNT_DEAD, None),
    ("SESSION_REVOKED", None, "invite", Outcome.SESSION_INVALID, Scope.ACCOUNT_DEAD, None),
    ("CHAT_ADMIN_REQUIRED", None, "invite", Outcome.CHAT_ADMIN_REQUIRED, Scope.TASK_FATAL, None),
    ("CHAT_WRITE_FORBIDDEN", None, "invite", Outcome.CHAT_WRITE_FORBIDDEN, Scope.TASK_FATAL, None),
    ("CHANNEL_PRIVATE", None, "invite", Outcome.CHAT_INVALID, Scope.TASK_FATAL, None),
    ("CHANNEL_INVALID", None, "invite", Outcome.CHAT_INVALID, Scope.TASK_FATAL, None),
    ("USERS_TOO_MUCH", None, "invite", Outcome.CHAT_FULL, Scope.TASK_FATAL, None),
    ("PEER_ID_INVALID", None, "invite", Outcome.CHAT_INVALID, Scope.TASK_FATAL, None),
    ("PEER_ID_INVALID", None, "message", Outcome.USER_INVALID, Scope.TARGET_PERMANENT, None),
    ("RPC_CALL_FAIL", None, "invite", Outcome.TRANSIENT_ERROR, Scope.TRANSIENT, None),
    ("SOMETHING_TELEGRAM_INVENTED_TOMORROW", None, "invite", Outcome.TRANSIENT_ERROR, Scope.TRANSIENT, None),
]


@pytest.mark.parametrize(("code", "seconds", "action", "outcome", "scope", "retry_after"), TABLE)
def test_error_code_maps_to_outcome(
    code: str, seconds: int | None, action: str, outcome: Outcome, scope: Scope, retry_after: float | None
) -> None:
    result = map_answer(_error(code, seconds, action))
    assert result.outcome is outcome
    assert result.scope is scope
    assert result.retry_after == retry_after
    assert result.raw_error == code  # the raw platform code always travels on
    assert result.platform == "telegram"


def test_every_table_entry_is_covered_or_consistent() -> None:
    # Every code in the adapter's table maps to what the table says, whatever the case.
    for code, outcome in ERROR_OUTCOMES.items():
        assert map_error(code.lower()).outcome is outcome, code


@pytest.mark.parametrize(
    ("answer", "outcome", "raw_error"),
    [
        ({"status": "ok", "action": "invite", "added": True, "missing_invitees": []}, Outcome.INVITED, None),
        (
            {"status": "ok", "action": "invite", "added": False, "missing_invitees": [{"user_id": 7}]},
            Outcome.PRIVACY_RESTRICTED,
            "MISSING_INVITEES",
        ),
        # "Added" but listed as missing: nobody is counted invited who was not added.
        (
            {"status": "ok", "action": "invite", "added": True, "missing_invitees": [{"user_id": 7}]},
            Outcome.PRIVACY_RESTRICTED,
            "MISSING_INVITEES",
        ),
        (
            {"status": "ok", "action": "invite", "added": False, "missing_invitees": []},
            Outcome.ALREADY_MEMBER,
            "NOT_ADDED",
        ),
        ({"status": "ok", "action": "message", "message_id": 1}, Outcome.MESSAGE_SENT, None),
        ({"status": "error", "action": "invite"}, Outcome.TRANSIENT_ERROR, "BAD_ANSWER"),
        ({"status": "weird"}, Outcome.TRANSIENT_ERROR, "BAD_ANSWER"),
    ],
)
def test_ok_answers(answer: dict[str, Any], outcome: Outcome, raw_error: str | None) -> None:
    result = map_answer(answer)
    assert result.outcome is outcome
    assert result.raw_error == raw_error


def test_action_argument_overrides_answer() -> None:
    assert map_answer({"status": "ok", "message_id": 3}, "message").outcome is Outcome.MESSAGE_SENT


# ---- through the adapter and a mocked transport -----------------------------


def _adapter(handler: Callable[[httpx.Request], httpx.Response], **options: Any) -> TelegramAdapter:
    client = IntegrationClient(
        "http://integration.test", transport=httpx.MockTransport(handler), backoff_base=0.001, **options
    )
    return TelegramAdapter(client, owns_client=True)


def _answering(body: dict[str, Any], status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, json=body)


@pytest.mark.parametrize(("code", "seconds", "action", "outcome", "scope", "retry_after"), TABLE)
async def test_adapter_maps_raw_answers(
    code: str, seconds: int | None, action: str, outcome: Outcome, scope: Scope, retry_after: float | None
) -> None:
    adapter = _adapter(_answering(_error(code, seconds, action)))
    try:
        if action == "invite":
            result = await adapter.send_invite("acc", "chat", ALICE, "k1")
        else:
            result = await adapter.send_message("acc", ALICE, "hi", "k1")
    finally:
        await adapter.aclose()
    assert (result.outcome, result.retry_after) == (outcome, retry_after)


async def test_request_shape_and_bearer_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "ok", "action": "invite", "added": True, "missing_invitees": []})

    adapter = _adapter(handler, token="s3cret")
    try:
        result = await adapter.send_invite("acc/1", "@chat", TargetRef(user_id=5), "task:9:1")
    finally:
        await adapter.aclose()
    assert result.outcome is Outcome.INVITED
    request = seen[0]
    assert request.method == "POST"
    assert request.url.raw_path == b"/v1/accounts/acc%2F1/invite"  # one path segment, whatever the id
    assert request.headers["Authorization"] == "Bearer s3cret"
    assert json.loads(request.content) == {"chat": "@chat", "target": {"user_id": 5}, "idempotency_key": "task:9:1"}


async def test_token_provider_is_called_per_request() -> None:
    tokens = iter(["t1", "t2"])
    seen: list[str] = []

    async def provider() -> str:
        return next(tokens)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(200, json={"status": "ok"})

    async with IntegrationClient("http://x", provider, transport=httpx.MockTransport(handler)) as client:
        await client.health()
        await client.health()
    assert seen == ["Bearer t1", "Bearer t2"]


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
async def test_retryable_statuses_are_retried_then_transient(status: int) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(status, json={"status": "error", "error": {"code": "X"}})

    adapter = _adapter(handler, max_retries=3)
    try:
        result = await adapter.send_invite("acc", "chat", ALICE, "k")
    finally:
        await adapter.aclose()
    assert calls == 4
    assert result.outcome is Outcome.TRANSIENT_ERROR
    assert result.raw_error == f"UNAVAILABLE:HTTP_{status}"
    assert delivery_unknown(result)


async def test_transient_failure_then_success() -> None:
    answers = [httpx.Response(503), httpx.Response(502)]

    def handler(request: httpx.Request) -> httpx.Response:
        if answers:
            return answers.pop(0)
        return httpx.Response(200, json={"status": "ok", "action": "invite", "added": True, "missing_invitees": []})

    adapter = _adapter(handler, max_retries=2)
    try:
        assert (await adapter.send_invite("acc", "chat", ALICE, "k")).outcome is Outcome.INVITED
    finally:
        await adapter.aclose()


async def test_connect_errors_are_retried_then_transient() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("refused", request=request)

    adapter = _adapter(handler, max_retries=2)
    try:
        result = await adapter.send_message("acc", ALICE, "hi", "k")
    finally:
        await adapter.aclose()
    assert calls == 3
    assert (result.outcome, result.raw_error) == (Outcome.TRANSIENT_ERROR, "UNAVAILABLE:ConnectError")


@pytest.mark.parametrize(
    ("status", "code", "outcome"),
    [
        (401, "UNAUTHORIZED", Outcome.TRANSIENT_ERROR),
        (409, "IDEMPOTENCY_KEY_REUSED", Outcome.TRANSIENT_ERROR),
        (422, "VALIDATION_ERROR", Outcome.TRANSIENT_ERROR),
        (404, "ACCOUNT_NOT_FOUND", Outcome.SESSION_INVALID),
    ],
)
async def test_client_errors_are_not_retried(status: int, code: str, outcome: Outcome) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(status, json={"status": "error", "error": {"code": code}})

    adapter = _adapter(handler, max_retries=3)
    try:
        result = await adapter.send_invite("acc", "chat", ALICE, "k")
    finally:
        await adapter.aclose()
    assert calls == 1
    assert result.outcome is outcome
    assert result.raw_error == f"HTTP_{status}:{code}"
    assert not delivery_unknown(result)


async def test_lookup() -> None:
    stored = {"status": "error", "action": "invite", "error": {"code": "FLOOD_WAIT", "seconds": 9}}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/known"):
            return httpx.Response(200, json=stored)
        return httpx.Response(404, json={"status": "error", "error": {"code": "CALL_NOT_FOUND"}})

    adapter = _adapter(handler)
    try:
        assert await adapter.lookup("known") == InviteResult(
            outcome=Outcome.FLOOD_WAIT, retry_after=9.0, raw_error="FLOOD_WAIT"
        )
        assert await adapter.lookup("never-sent") is None
    finally:
        await adapter.aclose()


async def test_lookup_raises_when_service_cannot_say() -> None:
    # "Don't know" must never read as "never happened": that would resend.
    adapter = _adapter(lambda request: httpx.Response(503), max_retries=1)
    try:
        with pytest.raises(IntegrationUnavailable):
            await adapter.lookup("k")
    finally:
        await adapter.aclose()


async def test_http_error_carries_status_and_code() -> None:
    async with IntegrationClient(
        "http://x", transport=httpx.MockTransport(_answering({"status": "error", "error": {"code": "NOPE"}}, 403))
    ) as client:
        with pytest.raises(IntegrationHTTPError) as info:
            await client.health()
    assert (info.value.status_code, info.value.code) == (403, "NOPE")


async def test_account_status_and_listing() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/status"):
            return httpx.Response(200, json={"account_id": "a1", "status": "cooldown", "until": "2026-01-01T00:00:00Z"})
        return httpx.Response(
            200, json={"accounts": [{"id": "a1", "platform": "telegram", "status": "brand_new_state"}]}
        )

    adapter = _adapter(handler)
    try:
        status = await adapter.account_status("a1")
        listed = await adapter.list_accounts("u1")
    finally:
        await adapter.aclose()
    assert (status.id, status.status, status.until is not None) == ("a1", AccountState.COOLDOWN, True)
    assert [(a.id, a.status) for a in listed] == [("a1", AccountState.UNKNOWN)]


# ---- registry and target ref -------------------------------------------------


def test_registry_builds_telegram_adapter() -> None:
    client = IntegrationClient("http://x")
    adapter = get_adapter("Telegram", client=client)
    assert isinstance(adapter, TelegramAdapter)
    assert adapter.platform == "telegram"


def test_registry_unknown_platform() -> None:
    with pytest.raises(UnknownPlatform):
        get_adapter("carrier-pigeon")


def test_registry_new_platform_is_one_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # leave no test platform behind

    @register("test-echo")
    class Echo(PlatformAdapter):
        async def send_invite(
            self, account_id: str, chat: str, target: TargetRef, idempotency_key: str
        ) -> InviteResult:
            return InviteResult(outcome=Outcome.INVITED, platform=self.platform)

        async def send_message(self, account_id: str, target: TargetRef, text: str, key: str) -> InviteResult:
            return InviteResult(outcome=Outcome.MESSAGE_SENT, platform=self.platform)

        async def resolve_target(self, account_id: str, target: TargetRef) -> Any:
            raise NotImplementedError

        async def lookup(self, idempotency_key: str) -> InviteResult | None:
            return None

        async def account_status(self, account_id: str) -> Any:
            raise NotImplementedError

        async def list_accounts(self, user_id: str) -> list[Any]:
            return []

    assert isinstance(get_adapter("test-echo"), Echo)
    with pytest.raises(ValueError):
        register("test-echo")(type("Other", (Echo,), {}))


def test_target_ref_needs_identity_and_hides_phone() -> None:
    with pytest.raises(ValueError):
        TargetRef()
    assert "+4915" not in repr(TargetRef(phone="+4915112345678"))


async def test_garbled_2xx_is_retried_then_unknown() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(200, text="<html>proxy says hi</html>")

    adapter = _adapter(handler, max_retries=1)
    try:
        result = await adapter.send_invite("acc", "chat", ALICE, "k")
    finally:
        await adapter.aclose()
    assert calls == 2
    assert result.raw_error == "UNAVAILABLE:BAD_RESPONSE"
    assert delivery_unknown(result)
