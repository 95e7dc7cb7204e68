"""JWT bearer authentication: the owner of every request is the token's ``sub``."""

from __future__ import annotations

import jwt

from models.settings import Settings


class Unauthorized(Exception):
    """Missing or invalid credentials (the message is safe to show)."""


def owner_from_header(header: str | None, settings: Settings) -> str:
    if not header or not header.startswith("Bearer "):
        raise Unauthorized("missing bearer token")
    token = header.removeprefix("Bearer ").strip()
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=["HS256"],  # a fixed list: "alg: none" and key confusion are refused
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": ["sub", "exp"], "verify_aud": settings.jwt_audience is not None},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid token: {exc}") from None
    return str(claims["sub"])


def issue_token(settings: Settings, owner: str, ttl_seconds: int = 24 * 3600) -> str:
    """A development token (demo and tests); production tokens come from the platform."""
    import time

    claims = {"sub": owner, "exp": int(time.time()) + ttl_seconds}
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")
