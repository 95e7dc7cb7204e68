"""The API's one error format, and turning request bodies into models.

Every error answer is ``{"error": {"code", "message", "details"}}`` with a
code a client can branch on and a message a person can read.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from faust.web import Request, Response, View
from pydantic import BaseModel, ValidationError

from models.api import ApiError, ErrorBody

from .auth import Unauthorized


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def error_response(view: View, status: int, code: str, message: str, details: Any = None) -> Response:
    body = ErrorBody(error=ApiError(code=code, message=message, details=details))
    return view.json(body.model_dump(mode="json"), status=status)


def api_errors(fun: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    """Turn our exceptions into the one error format."""

    @functools.wraps(fun)
    async def wrapper(view: View, request: Request, **kwargs: Any) -> Response:
        try:
            return await fun(view, request, **kwargs)
        except Unauthorized as exc:
            return error_response(view, 401, "unauthorized", str(exc))
        except HttpError as exc:
            return error_response(view, exc.status, exc.code, exc.message, exc.details)

    return wrapper


async def parse_body(request: Request, model: type[BaseModel]) -> Any:
    raw = await request.read()
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        details = [
            {"field": ".".join(map(str, e["loc"])) or "body", "message": e["msg"]} for e in exc.errors()
        ]
        raise HttpError(422, "validation_error", "request body is invalid", details) from None
