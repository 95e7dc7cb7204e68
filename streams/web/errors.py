"""The API's one error format, and turning requests into models.

Every error answer is ``{"error": {"code", "message", "details"}}`` with a
code a client can branch on and a message a person can read; validation
errors list each offending field in ``details``. The middleware gives the
router's own refusals (no such path, wrong method, body too large) and any
unexpected failure the same shape, so no client ever parses a text page.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from aiohttp import web
from faust.web import Request, Response, View
from pydantic import BaseModel, ValidationError

from models.api import ApiError, ErrorBody

from .auth import Unauthorized

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

API_PREFIX = "/api/"


class HttpError(Exception):
    """An answer other than success, in the one error format."""

    def __init__(
        self, status: int, code: str, message: str, details: Any = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details
        self.headers = dict(headers or {})


def error_json(status: int, code: str, message: str, details: Any = None,
               headers: Mapping[str, str] | None = None) -> web.Response:
    body = ErrorBody(error=ApiError(code=code, message=message, details=details))
    return web.json_response(body.model_dump(mode="json"), status=status, headers=headers)


def api_errors(fun: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    """Turn our exceptions into the one error format."""

    @functools.wraps(fun)
    async def wrapper(view: View, request: Request, **kwargs: Any) -> Response:
        try:
            return await fun(view, request, **kwargs)
        except Unauthorized as exc:
            return error_json(401, "unauthorized", str(exc), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        except HttpError as exc:
            return error_json(exc.status, exc.code, exc.message, exc.details, exc.headers)

    return wrapper


def validation_error(exc: ValidationError, prefix: str = "") -> HttpError:
    details = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = [str(part) for part in error["loc"]]
        # Union members add their type to the location ("priority.int-enum[Priority]"): drop it.
        loc = [part for part in loc if "[" not in part and part not in {"str", "int", "constrained-str"}]
        field = ".".join([p for p in (prefix, *loc) if p]) or (prefix or "body")
        details.append({"field": field, "message": error["msg"]})
    fields = ", ".join(dict.fromkeys(d["field"] for d in details))
    return HttpError(422, "validation_error", f"invalid {fields}", details)


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refused with 413 beyond ``max_bytes`` (also when it comes chunked)."""
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise HttpError(413, "payload_too_large", f"request body over {max_bytes} bytes",
                        {"max_bytes": max_bytes})
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise HttpError(413, "payload_too_large", f"request body over {max_bytes} bytes",
                            {"max_bytes": max_bytes})
        chunks.append(chunk)
    return b"".join(chunks)


async def parse_body(request: Request, model: type[M], max_bytes: int = 1024 * 1024) -> M:
    raw = await read_body(request, max_bytes)
    if not raw.strip():
        raise HttpError(422, "validation_error", "a JSON request body is required", [{"field": "body", "message": "missing"}])
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise HttpError(422, "validation_error", "request body is not valid JSON",
                            [{"field": "body", "message": "invalid JSON"}]) from None
        raise validation_error(exc) from None


def parse_query(request: Request, model: type[M]) -> M:
    """Query parameters into ``model``; a repeated parameter is refused rather than half-read."""
    params: dict[str, str] = {}
    for key in request.query:
        values = request.query.getall(key)
        if len(values) > 1:
            raise HttpError(422, "validation_error", f"invalid {key}",
                            [{"field": key, "message": "give this parameter once"}])
        params[key] = values[0]
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise validation_error(exc) from None


@web.middleware
async def error_middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                           ) -> web.StreamResponse:
    """The router's refusals and unexpected failures under /api/, in the one error format."""
    if not request.path.startswith(API_PREFIX):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(exc.status, "http_error")
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_json(exc.status, code, exc.reason, headers=headers)
    except Exception:
        # Never a stack trace (or a secret in one) to the client; the log has it.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_json(500, "internal_error", "internal error; it has been logged")
