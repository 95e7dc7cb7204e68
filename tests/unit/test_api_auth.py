"""JWT verification: HS256/RS256, expiry, not-before, audience, issuer, alg none and key confusion."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from models.settings import Settings
from streams.web.auth import Authenticator, Unauthorized, issue_token

SECRET = "unit-test-secret-long-enough-for-hs256"
PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_PEM = PRIVATE.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def settings(**overrides: Any) -> Settings:
    return Settings(jwt_secret=SECRET, jwt_leeway_seconds=0, **overrides)


# Tokens in parametrize lists are made at collection, maybe many minutes before
# the test runs (the suite runs e2e first): lifetimes of hours, not minutes.
DAY = 24 * 3600


def claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "alice", "exp": int(time.time()) + DAY, **extra}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def hand_made(header: dict[str, Any], payload: dict[str, Any], key: bytes | None) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = b"" if key is None else hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def owner(auth: Authenticator, token: str) -> str:
    return auth.owner(f"Bearer {token}")


def test_hs256_token_names_its_owner() -> None:
    assert owner(Authenticator(settings()), jwt.encode(claims(), SECRET, algorithm="HS256")) == "alice"
    assert Authenticator(settings()).owner(f"bearer {issue_token(settings(), 'bob')}") == "bob"


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic abc", "Token x.y.z"])
def test_missing_or_other_scheme_is_refused(header: str | None) -> None:
    with pytest.raises(Unauthorized, match="missing bearer token"):
        Authenticator(settings()).owner(header)


@pytest.mark.parametrize(("token", "why"), [
    (jwt.encode(claims(exp=int(time.time()) - 5), SECRET, algorithm="HS256"), "expired"),
    (jwt.encode(claims(), SECRET + "x", algorithm="HS256"), "Signature verification failed"),
    (jwt.encode(claims(nbf=int(time.time()) + DAY // 2), SECRET, algorithm="HS256"), "not yet valid"),
    (jwt.encode({"sub": "alice"}, SECRET, algorithm="HS256"), "exp"),
    (jwt.encode({"exp": int(time.time()) + DAY}, SECRET, algorithm="HS256"), "sub"),
    (jwt.encode(claims(sub=""), SECRET, algorithm="HS256"), "sub"),
    (hand_made({"alg": "none", "typ": "JWT"}, claims(), None), "alg"),
    (jwt.encode(claims(), SECRET + SECRET, algorithm="HS512"), "alg value is not allowed"),
    ("not-a-token", "invalid token"),
])
def test_invalid_tokens_are_refused(token: str, why: str) -> None:
    with pytest.raises(Unauthorized, match="invalid token") as refused:
        owner(Authenticator(settings()), token)
    assert why.lower() in str(refused.value).lower()


def test_leeway_tolerates_small_clock_skew() -> None:
    token = jwt.encode(claims(exp=int(time.time()) - 5), SECRET, algorithm="HS256")
    assert owner(Authenticator(Settings(jwt_secret=SECRET, jwt_leeway_seconds=30)), token) == "alice"


def test_audience_and_issuer_are_required_when_configured() -> None:
    auth = Authenticator(settings(jwt_audience="invite-api", jwt_issuer="https://platform"))
    good = jwt.encode(claims(aud="invite-api", iss="https://platform"), SECRET, algorithm="HS256")
    assert owner(auth, good) == "alice"
    for bad in (claims(aud="other", iss="https://platform"), claims(iss="https://platform"),
                claims(aud="invite-api", iss="https://elsewhere"), claims(aud="invite-api")):
        with pytest.raises(Unauthorized):
            owner(auth, jwt.encode(bad, SECRET, algorithm="HS256"))


def test_rs256_accepts_the_issuers_signature_only() -> None:
    auth = Authenticator(settings(jwt_algorithm="RS256", jwt_public_key=PUBLIC_PEM))
    assert owner(auth, jwt.encode(claims(), PRIVATE, algorithm="RS256")) == "alice"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(Unauthorized):
        owner(auth, jwt.encode(claims(), other, algorithm="RS256"))
    # Key confusion: an HS256 token "signed" with the public key as HMAC secret.
    with pytest.raises(Unauthorized):
        owner(auth, hand_made({"alg": "HS256", "typ": "JWT"}, claims(), PUBLIC_PEM.encode()))
    # And an HS256 token with the shared secret is no good when RS256 is configured.
    with pytest.raises(Unauthorized):
        owner(auth, jwt.encode(claims(), SECRET, algorithm="HS256"))


def test_rs256_without_a_public_key_refuses_to_start() -> None:
    with pytest.raises(ValueError, match="JWT_PUBLIC_KEY"):
        Authenticator(settings(jwt_algorithm="RS256"))
    with pytest.raises(ValueError, match="HS256"):
        issue_token(settings(jwt_algorithm="RS256", jwt_public_key=PUBLIC_PEM), "alice")
