"""JWT bearer authentication: the owner of every request is the token's ``sub``.

The accepted algorithm is exactly the configured one (HS256 with the shared
secret, or RS256 with the public key), so ``alg: none`` and HS/RS key
confusion (an HS256 token "signed" with the public key) are refused by
construction. ``exp`` is required; ``nbf``, ``iat`` are checked when present;
issuer and audience are required and checked when configured.
"""

from __future__ import annotations

import time

import jwt

from models.settings import Settings


class Unauthorized(Exception):
    """Missing or invalid credentials (the message is safe to show)."""


class Authenticator:
    """Verifies bearer tokens against the configured key and claims."""

    def __init__(self, settings: Settings) -> None:
        self._algorithm = settings.jwt_algorithm
        if self._algorithm == "RS256":
            if not settings.jwt_public_key:
                raise ValueError("INVITE_JWT_ALGORITHM=RS256 needs INVITE_JWT_PUBLIC_KEY (PEM)")
            self._key: str = settings.jwt_public_key
        else:
            self._key = settings.jwt_secret.get_secret_value()
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer
        self._leeway = settings.jwt_leeway_seconds
        required = ["sub", "exp"]
        required += ["aud"] if self._audience else []
        required += ["iss"] if self._issuer else []
        self._options = {"require": required, "verify_aud": self._audience is not None}

    def owner(self, header: str | None) -> str:
        """The owner (``sub``) of a valid ``Authorization: Bearer`` header; raises :class:`Unauthorized`."""
        if not header:
            raise Unauthorized("missing bearer token")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("missing bearer token")
        try:
            claims = jwt.decode(
                token.strip(),
                self._key,
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options=self._options,
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.strip() or "\x00" in sub or len(sub) > 200:
            raise Unauthorized("invalid token: sub must name the user")
        return sub


def owner_from_header(header: str | None, settings: Settings) -> str:
    """One-off check (tests, tools); views keep one :class:`Authenticator`."""
    return Authenticator(settings).owner(header)


def issue_token(settings: Settings, owner: str, ttl_seconds: int = 24 * 3600) -> str:
    """A development token (demo and tests); production tokens come from the platform."""
    if settings.jwt_algorithm != "HS256":
        raise ValueError("development tokens need INVITE_JWT_ALGORITHM=HS256 (RS256 tokens come from the issuer)")
    claims: dict[str, object] = {"sub": owner, "exp": int(time.time()) + ttl_seconds}
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")
