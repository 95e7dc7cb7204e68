"""The route table: every API operation declared once, served as a Faust view and documented.

A handler is registered with what it reads (path, query, body models) and
what it answers (status -> model); :mod:`.openapi` builds the document from
the same declarations, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import faust
import jwt
from faust.web import Request, Response, View

from adapters.logs import audit

from .errors import api_errors, error_json

Handler = Callable[..., Awaitable[Response]]
Wrapper = Callable[[Handler], Handler]

# Statuses every authenticated operation may answer.
AUTH_ERRORS = (401, 422, 429)
ERROR_DESCRIPTIONS = {
    400: "bad request", 401: "missing or invalid bearer token", 404: "not found (or not yours)",
    409: "not allowed in the current state", 413: "request body too large", 422: "invalid input (details name the fields)",
    429: "rate limit exceeded (see Retry-After)", 503: "temporarily unavailable; try again",
}
PATH_PARAMS: dict[str, dict[str, Any]] = {
    "task_id": {"type": "string", "format": "uuid", "maxLength": 64},
    "target_id": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
}


@dataclass
class Operation:
    """One method on one path, with what it takes and what it answers."""

    method: str
    path: str
    summary: str
    tag: str
    handler: Handler
    responses: Mapping[int, Any]  # status -> pydantic model, or a media type string (CSV), or None
    errors: tuple[int, ...] = ()
    query: Any = None
    body: Any = None
    auth: bool = True
    wrap: Wrapper | None = None
    description: str | None = None

    @property
    def all_errors(self) -> list[int]:
        found = set(self.errors)
        if self.auth:
            found |= set(AUTH_ERRORS)
        if self.body is not None:
            found |= {413, 422}
        if self.query is not None or "{" in self.path:
            found.add(422)
        return sorted(found)


@dataclass
class Routes:
    """Operations by path; installed into the Faust app as one view class per path."""

    operations: list[Operation] = field(default_factory=list)

    def add(self, method: str, path: str, handler: Handler, *, summary: str, tag: str,
            responses: Mapping[int, Any], **options: Any) -> None:
        self.operations.append(
            Operation(method=method.upper(), path=path, summary=summary, tag=tag, handler=handler,
                      responses=responses, **options)
        )

    def install(self, app: faust.App, cors_options: Mapping[str, Any] | None) -> None:
        by_path: dict[str, dict[str, Operation]] = {}
        for op in self.operations:
            by_path.setdefault(op.path, {})[op.method.lower()] = op
        for index, (path, methods) in enumerate(by_path.items()):
            attrs: dict[str, Any] = {name: _method(op) for name, op in methods.items()}
            attrs["on_request_error"] = _on_request_error
            view = type(f"ApiView{index}", (View,), attrs)
            app.page(path, name=f"api-{index}", cors_options=cors_options or None)(view)


def _method(op: Operation) -> Handler:
    handler = api_errors(op.handler)
    if op.wrap is not None:
        handler = op.wrap(handler)

    async def method(self: View, request: Request, **kwargs: Any) -> Response:
        response = await handler(self, request, **kwargs)
        if op.method != "GET" and op.auth and response.status < 400:
            audit(_actor(request), f"{op.method} {op.path}", kwargs.get("task_id"), status=response.status)
        return response

    return method


def _actor(request: Request) -> str:
    """The ``sub`` of a token the handler already verified (it answered 2xx)."""
    token = (request.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
    try:
        return str(jwt.decode(token, options={"verify_signature": False}).get("sub", "?"))
    except jwt.PyJWTError:
        return "?"


async def _on_request_error(self: View, request: Request, exc: Any) -> Response:
    # faust's own refusals (table_route: partition not ready) in our error format.
    status = int(getattr(exc, "code", 500))
    code = "unavailable" if status == 503 else "http_error"
    message = str(getattr(exc, "detail", "") or "service unavailable; try again")
    return error_json(status, code, message)
