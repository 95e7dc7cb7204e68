"""Client for the Integration Service (the HTTP face of the messenger accounts).

The contract is ``adapters/integration-service.openapi.yaml``; the pydantic
models below are the same contract in code and are shared with the sandbox
server (``adapters/sandbox``), so the two cannot drift apart silently.

Two kinds of "error" travel on this wire and must not be confused:

* the *platform's* answer to a call (FLOOD_WAIT, USER_PRIVACY_RESTRICTED ...)
  is a completed call: HTTP 200 with ``{"status": "error", "error": {...}}``.
  The client returns it like any other answer; mapping it to an outcome is the
  platform adapter's job (``adapters/platforms/telegram.py``).
* the *service's* own failures are HTTP errors. Connect errors, timeouts,
  5xx and 429 are retried here with exponential backoff and full jitter —
  safe for POSTs because every call carries an idempotency key. Other 4xx are
  caller mistakes and are raised at once as :class:`IntegrationHTTPError`.

A circuit breaker (``models/circuit.py``) counts calls that stayed
unavailable after their retries; while it is open every call fails at once
with :class:`CircuitOpen` without touching the network, and the schedulers
ask :attr:`IntegrationClient.breaker` before they claim a target.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.circuit import Breaker, BreakerPolicy, after_failure, after_success

__all__ = [
    "AccountInfo",
    "CallAnswer",
    "CallError",
    "CircuitOpen",
    "IntegrationClient",
    "IntegrationError",
    "IntegrationHTTPError",
    "IntegrationUnavailable",
    "InviteRequest",
    "MessageRequest",
    "MissingInvitee",
    "ResolveRequest",
    "TokenProvider",
    "jwt_token_provider",
    "WireTarget",
]

log = logging.getLogger(__name__)

Action = Literal["invite", "message"]
TokenProvider = Callable[[], Awaitable[str]]

# --------------------------------------------------------------------------
# Wire models (the contract)
# --------------------------------------------------------------------------

# Answers may grow fields; a client that rejected unknown ones would break on
# every additive change of the service.
_LENIENT = ConfigDict(extra="ignore")


class WireTarget(BaseModel):
    """Who a call is about; at least one identity is required."""

    model_config = _LENIENT

    username: str | None = None
    user_id: int | None = None
    phone: str | None = None

    @model_validator(mode="after")
    def _has_identity(self) -> WireTarget:
        if self.username is None and self.user_id is None and self.phone is None:
            raise ValueError("target needs one of username, user_id or phone")
        return self


class InviteRequest(BaseModel):
    """Body of ``POST /v1/accounts/{account_id}/invite``."""

    model_config = _LENIENT

    chat: str = Field(min_length=1, max_length=256)
    target: WireTarget
    idempotency_key: str = Field(min_length=1, max_length=255)


class MessageRequest(BaseModel):
    """Body of ``POST /v1/accounts/{account_id}/message``."""

    model_config = _LENIENT

    target: WireTarget
    text: str = Field(min_length=1, max_length=4096)  # Telegram's message size limit
    idempotency_key: str = Field(min_length=1, max_length=255)


class ResolveRequest(BaseModel):
    """Body of ``POST /v1/accounts/{account_id}/resolve``."""

    model_config = _LENIENT

    target: WireTarget


class MissingInvitee(BaseModel):
    """A user Telegram did not add (``channels.inviteToChannel`` ``missing_invitees``)."""

    model_config = _LENIENT

    user_id: int | None = None
    username: str | None = None
    premium_would_allow_invite: bool = False
    premium_required_for_pm: bool = False


class CallError(BaseModel):
    """A platform error: the Telegram RPC error name plus its parameter, if any."""

    model_config = _LENIENT

    code: str
    seconds: int | None = None
    message: str | None = None


class CallAnswer(BaseModel):
    """The stored answer to one call, identical on replay and on lookup."""

    model_config = _LENIENT

    status: Literal["ok", "error"]
    action: Action | None = None
    account_id: str | None = None
    idempotency_key: str | None = None
    added: bool | None = None
    missing_invitees: list[MissingInvitee] = Field(default_factory=list)
    message_id: int | None = None
    error: CallError | None = None
    completed_at: datetime | None = None


class AccountInfo(BaseModel):
    """A sender account as the Integration Service describes it."""

    model_config = _LENIENT

    id: str
    platform: str = "telegram"
    status: str = "active"
    user_id: str | None = None
    until: datetime | None = None
    reason: str | None = None


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


class IntegrationError(Exception):
    """Base of every failure to get an answer from the Integration Service."""


class IntegrationUnavailable(IntegrationError):
    """Transient failure (transport, timeout, 5xx, 429) that outlived the retries."""

    def __init__(self, message: str, *, attempts: int, status_code: int | None = None, cause: str | None = None):
        super().__init__(message)
        self.attempts = attempts
        self.status_code = status_code
        # Short machine-readable reason: "HTTP_503", "ConnectTimeout", ...
        self.cause = cause or (f"HTTP_{status_code}" if status_code else "UNAVAILABLE")


class CircuitOpen(IntegrationUnavailable):
    """The circuit is open: the call was not made (so it certainly did not land)."""

    def __init__(self, until: float):
        super().__init__("Integration Service circuit open", attempts=0, cause="CIRCUIT_OPEN")
        self.until = until


class IntegrationHTTPError(IntegrationError):
    """A non-retryable HTTP error (4xx other than 429): the request itself is wrong."""

    def __init__(self, status_code: int, code: str | None, body: Any):
        super().__init__(f"Integration Service answered HTTP {status_code} ({code or 'no code'})")
        self.status_code = status_code
        self.code = code
        self.body = body


# --------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------

_RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))


def _seg(value: str) -> str:
    """Quote one path segment: keys like ``task:42:1`` or ids with ``/`` stay one segment."""
    return quote(str(value), safe="")


def _as_wire_target(target: Mapping[str, Any] | BaseModel) -> dict[str, Any]:
    raw = target.model_dump(exclude_none=True) if isinstance(target, BaseModel) else dict(target)
    # Validate before sending: a malformed target is our bug, better caught here
    # than as a 422 that costs a round trip.
    return WireTarget.model_validate(raw).model_dump(exclude_none=True)


def _error_code(body: Any) -> str | None:
    if isinstance(body, dict):
        err = body.get("error")
        code = err.get("code") if isinstance(err, dict) else None
        if isinstance(code, str):
            return code
    return None


def jwt_token_provider(
    secret: str, *, issuer: str, audience: str = "integration-service", ttl_seconds: int = 300,
    clock: Callable[[], float] = time.time,
) -> TokenProvider:
    """Service-to-service auth: a short-lived HS256 JWT, minted again before it expires.

    Claims: ``iss`` (this service), ``aud`` (the Integration Service), ``iat``
    and ``exp``. The secret comes from settings or Vault and is never logged.
    """
    import jwt

    cached: dict[str, Any] = {"token": None, "exp": 0.0}

    async def provide() -> str:
        now = clock()
        if cached["token"] is None or now > cached["exp"] - ttl_seconds / 3:
            exp = int(now) + ttl_seconds
            claims = {"iss": issuer, "aud": audience, "iat": int(now), "exp": exp}
            cached.update(token=jwt.encode(claims, secret, algorithm="HS256"), exp=exp)
        return str(cached["token"])

    return provide


class IntegrationClient:
    """Async, pooled, retrying client of the Integration Service.

    ``token`` is either a fixed bearer token or an async callable returning the
    current one (e.g. a Vault-backed JWT that rotates); it is never logged.
    ``max_retries`` counts retries after the first try, so a call is made at
    most ``max_retries + 1`` times.
    """

    def __init__(
        self,
        base_url: str,
        token: str | TokenProvider | None = None,
        *,
        timeout: float = 10.0,
        max_retries: int = 3,
        backoff_base: float = 0.2,
        backoff_max: float = 5.0,
        max_connections: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
        breaker_policy: BreakerPolicy | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.breaker = Breaker()
        self._breaker_policy = breaker_policy or BreakerPolicy()
        self._clock = clock
        # Injectable so retry tests run on a controlled clock and jitter.
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=transport,
            headers={"Accept": "application/json"},
        )

    def __repr__(self) -> str:  # no token here, ever
        return f"IntegrationClient({self.base_url!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (idempotent)."""
        await self._http.aclose()

    # ---- API ----------------------------------------------------------------

    async def invite(
        self, account_id: str, chat: str, target: Mapping[str, Any] | BaseModel, idempotency_key: str
    ) -> dict[str, Any]:
        """Invite ``target`` into ``chat`` from ``account_id``; returns the call answer."""
        body = {"chat": chat, "target": _as_wire_target(target), "idempotency_key": idempotency_key}
        return await self._request("POST", f"/v1/accounts/{_seg(account_id)}/invite", json=body)

    async def message(
        self, account_id: str, target: Mapping[str, Any] | BaseModel, text: str, idempotency_key: str
    ) -> dict[str, Any]:
        """Send ``text`` to ``target`` from ``account_id``; returns the call answer."""
        body = {"target": _as_wire_target(target), "text": text, "idempotency_key": idempotency_key}
        return await self._request("POST", f"/v1/accounts/{_seg(account_id)}/message", json=body)

    async def resolve(self, account_id: str, target: Mapping[str, Any] | BaseModel) -> dict[str, Any]:
        """How ``account_id`` sees ``target``: ``{"status": "ok", "peer": {...}}`` or a platform error."""
        body = {"target": _as_wire_target(target)}
        return await self._request("POST", f"/v1/accounts/{_seg(account_id)}/resolve", json=body)

    async def lookup_call(self, idempotency_key: str) -> dict[str, Any] | None:
        """The stored answer of the call made with this key, or None if none was made."""
        try:
            return await self._request("GET", f"/v1/calls/{_seg(idempotency_key)}")
        except IntegrationHTTPError as exc:
            if exc.status_code == 404:
                return None
            raise

    async def list_accounts(self, user_id: str) -> list[dict[str, Any]]:
        """The sender accounts of one platform user."""
        body = await self._request("GET", f"/v1/users/{_seg(user_id)}/accounts")
        accounts = body.get("accounts", [])
        return [a for a in accounts if isinstance(a, dict)] if isinstance(accounts, list) else []

    async def account_status(self, account_id: str) -> dict[str, Any]:
        """``{"account_id", "platform", "status", "until"?, "reason"?}``."""
        return await self._request("GET", f"/v1/accounts/{_seg(account_id)}/status")

    async def health(self) -> dict[str, Any]:
        """``{"status": "ok", ...}``; raises if the service cannot be reached."""
        return await self._request("GET", "/v1/health")

    # ---- transport ----------------------------------------------------------

    async def _headers(self) -> dict[str, str]:
        if self._token is None:
            return {}
        token = self._token if isinstance(self._token, str) else await self._token()
        return {"Authorization": f"Bearer {token}"}

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        # Full jitter (uniform in [0, cap]) spreads the retries of many workers
        # hitting the same outage; a server's Retry-After is a floor.
        cap = min(self.backoff_max, self.backoff_base * (2**attempt))
        delay = self._rng.uniform(0, cap)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_max))
        return delay

    def open_until(self) -> float | None:
        """When the open circuit lets calls through again; None while it is closed."""
        return None if self.breaker.allows(self._clock()) else self.breaker.open_until

    async def _request(self, method: str, path: str, json: Any = None) -> dict[str, Any]:
        if not self.breaker.allows(self._clock()):
            raise CircuitOpen(self.breaker.open_until or 0.0)
        try:
            answer = await self._retrying(method, path, json)
        except IntegrationUnavailable:
            was_open = self.breaker.is_open(self._clock())
            self.breaker = after_failure(self.breaker, self._clock(), self._breaker_policy)
            if not was_open and self.breaker.is_open(self._clock()):
                log.warning("Integration Service unavailable: circuit open for %.0f s",
                            self._breaker_policy.reset_seconds)
            raise
        except IntegrationHTTPError:
            self.breaker = after_success(self.breaker)  # it answered: it is up
            raise
        if self.breaker.failures:
            log.info("Integration Service answers again: circuit closed")
        self.breaker = after_success(self.breaker)
        return answer

    async def _retrying(self, method: str, path: str, json: Any = None) -> dict[str, Any]:
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            retry_after: float | None = None
            try:
                response = await self._http.request(method, path, json=json, headers=await self._headers())
            except httpx.TransportError as exc:  # connect/read/write/pool timeouts, refused, reset
                if last:
                    raise IntegrationUnavailable(
                        f"{method} {path}: {type(exc).__name__} after {attempts} attempts",
                        attempts=attempts,
                        cause=type(exc).__name__,
                    ) from exc
                log.warning("integration %s %s: %s, retrying", method, path, type(exc).__name__)
            else:
                body = _json_or_none(response)
                if response.status_code < 400 and isinstance(body, dict):
                    return body
                # Every answer of the contract is a JSON object; a 2xx without one
                # came from something in between and says nothing: retry it.
                garbled = response.status_code < 400
                if not garbled and response.status_code not in _RETRY_STATUSES:
                    raise IntegrationHTTPError(response.status_code, _error_code(body), body)
                if last:
                    raise IntegrationUnavailable(
                        f"{method} {path}: HTTP {response.status_code} after {attempts} attempts",
                        attempts=attempts,
                        status_code=response.status_code,
                        cause="BAD_RESPONSE" if garbled else None,
                    )
                retry_after = _retry_after(response)
                log.warning("integration %s %s: HTTP %s, retrying", method, path, response.status_code)
            await self._sleep(self._delay(attempt, retry_after))
        raise AssertionError("unreachable")  # the loop always returns or raises


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:  # the HTTP-date form; not worth parsing for a capped floor
        return None
