"""HTTP routes of the sandbox Integration Service (aiohttp.web).

``/v1/...`` is the Integration Service contract
(``adapters/integration-service.openapi.yaml``); a platform error is a
completed call (HTTP 200, ``"status": "error"``), HTTP errors are the
service's own. ``/sandbox/...`` is for tests and operators only: the record
of deliveries, calls and violations, a reset, and an outage switch
(``POST /sandbox/outage {"seconds", "mode"}``: every ``/v1`` request answers
503, or has its connection dropped, until the time is up — the fault tests'
"Integration Service down for a minute"). The bearer token, when one is
configured, guards ``/v1`` except ``/v1/health``.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from adapters.integration import InviteRequest, MessageRequest, ResolveRequest

from .config import SandboxConfig
from .engine import Reply, SandboxEngine, service_error

__all__ = ["ENGINE", "create_app"]

ENGINE = web.AppKey("engine", SandboxEngine)
OUTAGE = web.AppKey("outage", dict)
CLOCK = web.AppKey("clock", Callable)
M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def _reply(reply: Reply) -> web.Response:
    # Stripe's header name: lets a client (or a test) see a replay for what it is.
    headers = {"Idempotent-Replayed": "true"} if reply.replayed else None
    return _json(reply.status, reply.body, headers)


def _auth_middleware(token: str | None) -> Any:
    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if token is not None and path.startswith("/v1/") and path != "/v1/health":
            given = request.headers.get("Authorization", "")
            expected = f"Bearer {token}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                return _json(401, service_error("UNAUTHORIZED", "missing or wrong bearer token"))
        return await handler(request)

    return auth


def _outage_middleware(clock: Callable[[], float]) -> Any:
    @web.middleware
    async def outage(request: web.Request, handler: Handler) -> web.StreamResponse:
        state = request.app[OUTAGE]
        if request.path.startswith("/v1/") and clock() < state["until"]:
            state["refused"] += 1
            if state["mode"] == "drop" and request.transport is not None:
                request.transport.close()  # the client sees the connection reset
            return _json(503, service_error("SANDBOX_OUTAGE", "injected outage"))
        return await handler(request)

    return outage


class OutageRequest(BaseModel):
    seconds: float
    mode: str = "503"


async def start_outage(request: web.Request) -> web.Response:
    body = await _body(request, OutageRequest)
    if isinstance(body, web.Response):
        return body
    if body.mode not in ("503", "drop"):
        return _json(422, service_error("VALIDATION_ERROR", "mode must be '503' or 'drop'"))
    state = request.app[OUTAGE]
    state.update(until=request.app[CLOCK]() + body.seconds, mode=body.mode)
    return _json(200, {"status": "ok", "until": state["until"], "mode": body.mode})


async def outage_state(request: web.Request) -> web.Response:
    return _json(200, request.app[OUTAGE])


@web.middleware
async def _errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status, "HTTP_ERROR")
        return _json(exc.status, service_error(code, exc.reason))
    except Exception:  # the sandbox must answer like a service, not drop the connection
        request.app.logger.exception("sandbox: unexpected error on %s %s", request.method, request.path)
        return _json(500, service_error("INTERNAL", "unexpected sandbox error"))


async def _body(request: web.Request, model: type[M]) -> M | web.Response:
    try:
        raw = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _json(400, service_error("BAD_REQUEST", "body is not JSON"))
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        details = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors(include_input=False)]
        return _json(422, service_error("VALIDATION_ERROR", "invalid request body", details=details))


async def invite(request: web.Request) -> web.Response:
    body = await _body(request, InviteRequest)
    if isinstance(body, web.Response):
        return body
    return _reply(await request.app[ENGINE].invite(request.match_info["account_id"], body))


async def message(request: web.Request) -> web.Response:
    body = await _body(request, MessageRequest)
    if isinstance(body, web.Response):
        return body
    return _reply(await request.app[ENGINE].message(request.match_info["account_id"], body))


async def resolve(request: web.Request) -> web.Response:
    body = await _body(request, ResolveRequest)
    if isinstance(body, web.Response):
        return body
    return _reply(request.app[ENGINE].resolve(request.match_info["account_id"], body.target))


async def lookup_call(request: web.Request) -> web.Response:
    key = request.match_info["idempotency_key"]
    answer = await request.app[ENGINE].lookup(key)
    if answer is None:
        return _json(404, service_error("CALL_NOT_FOUND", "no call was made with this idempotency key"))
    return _json(200, answer)


async def user_accounts(request: web.Request) -> web.Response:
    return _json(200, {"accounts": request.app[ENGINE].user_accounts(request.match_info["user_id"])})


async def account_status(request: web.Request) -> web.Response:
    account_id = request.match_info["account_id"]
    account = request.app[ENGINE].account(account_id)
    if account is None:
        return _json(404, service_error("ACCOUNT_NOT_FOUND", f"unknown account {account_id!r}"))
    return _json(200, account)


async def health(request: web.Request) -> web.Response:
    return _json(200, {"status": "ok", "service": "integration-sandbox", "time": time.time()})


async def deliveries(request: web.Request) -> web.Response:
    filters = {k: request.query.get(k) for k in ("account_id", "chat", "action", "target", "idempotency_key")}
    rows = request.app[ENGINE].ledger.find_deliveries(**{k: v for k, v in filters.items() if v is not None})
    return _json(200, {"count": len(rows), "deliveries": rows})


async def calls(request: web.Request) -> web.Response:
    rows = [r.describe() for r in request.app[ENGINE].ledger.calls.values()]
    return _json(200, {"count": len(rows), "calls": rows})


async def violations(request: web.Request) -> web.Response:
    rows = [asdict(v) for v in request.app[ENGINE].ledger.violations]
    return _json(200, {"count": len(rows), "violations": rows})


async def sandbox_accounts(request: web.Request) -> web.Response:
    return _json(200, {"accounts": request.app[ENGINE].all_accounts()})


async def reset(request: web.Request) -> web.Response:
    request.app[ENGINE].reset()
    return _json(200, {"status": "ok"})


def create_app(config: SandboxConfig | None = None, *, clock: Callable[[], float] = time.time) -> web.Application:
    """The sandbox as an aiohttp application; ``clock`` drives limits and timestamps."""
    config = config or SandboxConfig()
    token = config.token.get_secret_value() if config.token is not None else None
    app = web.Application(middlewares=[_errors_as_json, _outage_middleware(clock), _auth_middleware(token)])
    app[ENGINE] = SandboxEngine(config, clock)
    app[OUTAGE] = {"until": 0.0, "mode": "503", "refused": 0}
    app[CLOCK] = clock

    async def _close_engine(app: web.Application) -> None:
        await app[ENGINE].aclose()

    app.on_shutdown.append(_close_engine)
    app.router.add_post("/v1/accounts/{account_id}/invite", invite)
    app.router.add_post("/v1/accounts/{account_id}/message", message)
    app.router.add_post("/v1/accounts/{account_id}/resolve", resolve)
    app.router.add_get("/v1/accounts/{account_id}/status", account_status)
    app.router.add_get("/v1/calls/{idempotency_key}", lookup_call)
    app.router.add_get("/v1/users/{user_id}/accounts", user_accounts)
    app.router.add_get("/v1/health", health)
    app.router.add_get("/sandbox/deliveries", deliveries)
    app.router.add_get("/sandbox/calls", calls)
    app.router.add_get("/sandbox/violations", violations)
    app.router.add_get("/sandbox/accounts", sandbox_accounts)
    app.router.add_post("/sandbox/reset", reset)
    app.router.add_post("/sandbox/outage", start_outage)
    app.router.add_get("/sandbox/outage", outage_state)
    return app
