"""A fake HashiCorp Vault: the few HTTP endpoints the service uses, over real HTTP.

It is a fake because no Vault server can run here (no Vault binary is reachable
from this machine's package registries). It was written from Vault's HTTP API
documentation, so the client under test (hvac) talks to it exactly as it would
to Vault:

* ``POST|PUT /v1/auth/approle/login`` ``{"role_id", "secret_id"}`` → ``auth``
  block (``client_token``, ``lease_duration``, ``renewable``, ``policies`` ...);
  a wrong role id or secret id → 400 ``{"errors": ["invalid role or secret ID"]}``.
* ``GET /v1/{mount}/data/{path}`` (KV v2 read) → ``data.data`` + ``data.metadata``;
  a path that does not exist → 404 ``{"errors": []}``.
* ``POST|PUT /v1/auth/token/renew-self`` (optional ``increment``) → ``auth``
  block; a token that is not renewable → 400 ``{"errors": ["lease is not renewable"]}``.
* ``GET /v1/auth/token/lookup-self`` → ``data`` with ``ttl``, ``renewable`` ...
* ``GET /v1/sys/health`` → 200 (503 when sealed).

Every path but login and health needs ``X-Vault-Token``; a missing, unknown or
expired token gets 403 ``{"errors": ["permission denied"]}``, like Vault. TTLs
are configurable and short TTLs really expire, so renewal can be observed;
counters (logins, renewals, ...) let tests assert what the client did.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass
class FakeToken:
    """A service token issued by the fake's AppRole login."""

    token: str
    accessor: str
    renewable: bool
    ttl: int
    issued: datetime
    expires: float  # time.monotonic() deadline; inf = never
    max_expires: float


@dataclass
class Counters:
    """What the client did, for assertions."""

    logins: int = 0
    failed_logins: int = 0
    renewals: int = 0
    refused_renewals: int = 0
    reads: int = 0
    lookups: int = 0
    denied: int = 0  # requests with a missing, unknown or expired token
    requests: list[tuple[str, str]] = field(default_factory=list)


class FakeVault:
    """A Vault-compatible HTTP server on a free loopback port, in a thread."""

    def __init__(
        self,
        *,
        role_id: str = "invite-service-role",
        secret_id: str = "s3cr3t-id-0000",
        secrets_by_path: dict[str, dict[str, Any]] | None = None,
        token_ttl: int = 3600,
        token_max_ttl: int = 0,
        renewable: bool = True,
        refuse_renewal: bool = False,
        sealed: bool = False,
    ) -> None:
        self.role_id = role_id
        self.secret_id = secret_id
        # "mount/path" -> data, e.g. {"secret/invite-service": {"jwt_secret": "..."}}
        self.secrets_by_path = dict(secrets_by_path or {})
        self.token_ttl = token_ttl
        self.token_max_ttl = token_max_ttl  # 0 = no max
        self.renewable = renewable
        self.refuse_renewal = refuse_renewal
        self.sealed = sealed
        self.counters = Counters()
        self.tokens: dict[str, FakeToken] = {}
        self.issued_tokens: list[str] = []
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        # A short poll interval: stop() returns at once instead of after 0.5 s.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-vault", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def revoke_all(self) -> None:
        """Forget every token, as after a Vault restart with a wiped token store."""
        with self._changed:
            self.tokens.clear()

    def wait_until(self, predicate: Callable[[Counters], bool], timeout: float) -> bool:
        """Block until predicate(counters) holds (True) or timeout passes (False)."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self.counters), timeout)

    # -- request handling (called from the server's threads) -------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        with self._changed:
            self.counters.requests.append((method, path))
            try:
                return self._route(method, path, headers, body)
            finally:
                self._changed.notify_all()

    def _route(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        path = path.split("?", 1)[0]
        if path == "/v1/sys/health" and method in ("GET", "HEAD"):
            return (503 if self.sealed else 200), self._health()
        if self.sealed:
            return 503, {"errors": ["Vault is sealed"]}
        writes = ("POST", "PUT")
        if path == "/v1/auth/approle/login" and method in writes:
            return self._login(_json(body))
        token = self._valid_token(headers.get("x-vault-token", ""))
        if token is None:
            self.counters.denied += 1
            return 403, {"errors": ["permission denied"]}
        if path == "/v1/auth/token/renew-self" and method in writes:
            return self._renew(token, _json(body))
        if path == "/v1/auth/token/lookup-self" and method == "GET":
            self.counters.lookups += 1
            return 200, _envelope(data=self._lookup_data(token))
        kv = re.fullmatch(r"/v1/(.+?)/data/(.+)", path)
        if kv and method == "GET":
            self.counters.reads += 1
            data = self.secrets_by_path.get(f"{kv.group(1)}/{kv.group(2)}")
            if data is None:
                return 404, {"errors": []}
            metadata = {
                "created_time": _iso(datetime.now(UTC)),
                "custom_metadata": None,
                "deletion_time": "",
                "destroyed": False,
                "version": 1,
            }
            return 200, _envelope(data={"data": dict(data), "metadata": metadata})
        return 404, {"errors": []}

    def _login(self, body: dict[str, Any]) -> tuple[int, Any]:
        if not body.get("role_id"):
            self.counters.failed_logins += 1
            return 400, {"errors": ["missing role_id"]}
        if body.get("role_id") != self.role_id or body.get("secret_id") != self.secret_id:
            self.counters.failed_logins += 1
            return 400, {"errors": ["invalid role or secret ID"]}
        self.counters.logins += 1
        now = time.monotonic()
        token = FakeToken(
            token="hvs." + secrets.token_urlsafe(24),
            accessor=secrets.token_urlsafe(18),
            renewable=self.renewable,
            ttl=self.token_ttl,
            issued=datetime.now(UTC),
            expires=now + self.token_ttl if self.token_ttl else float("inf"),
            max_expires=now + self.token_max_ttl if self.token_max_ttl else float("inf"),
        )
        self.tokens[token.token] = token
        self.issued_tokens.append(token.token)
        return 200, _envelope(auth=self._auth_block(token, self.token_ttl))

    def _renew(self, token: FakeToken, body: dict[str, Any]) -> tuple[int, Any]:
        if not token.renewable or self.refuse_renewal:
            self.counters.refused_renewals += 1
            return 400, {"errors": ["lease is not renewable"]}
        now = time.monotonic()
        requested = _seconds(body.get("increment")) or self.token_ttl
        # The new TTL counts from now and never passes the token's max TTL.
        token.expires = min(now + requested, token.max_expires)
        granted = int(token.expires - now) if token.expires != float("inf") else 0
        self.counters.renewals += 1
        return 200, _envelope(auth=self._auth_block(token, granted))

    def _valid_token(self, value: str) -> FakeToken | None:
        token = self.tokens.get(value)
        if token is None:
            return None
        if time.monotonic() >= token.expires:
            del self.tokens[value]  # Vault revokes an expired token
            return None
        return token

    def _auth_block(self, token: FakeToken, lease_duration: int) -> dict[str, Any]:
        policies = ["default", "invite-service"]
        return {
            "client_token": token.token,
            "accessor": token.accessor,
            "policies": policies,
            "token_policies": policies,
            "metadata": {"role_name": "invite-service"},
            "lease_duration": lease_duration,
            "renewable": token.renewable,
            "entity_id": "",
            "token_type": "service",
            "orphan": True,
            "mfa_requirement": None,
            "num_uses": 0,
        }

    def _lookup_data(self, token: FakeToken) -> dict[str, Any]:
        remaining = 0 if token.expires == float("inf") else max(0, int(token.expires - time.monotonic()))
        return {
            "accessor": token.accessor,
            "creation_time": int(token.issued.timestamp()),
            "creation_ttl": token.ttl,
            "display_name": "approle",
            "entity_id": "",
            "expire_time": _iso(datetime.now(UTC) + timedelta(seconds=remaining)) if remaining else None,
            "explicit_max_ttl": 0,
            "id": token.token,
            "issue_time": _iso(token.issued),
            "meta": {"role_name": "invite-service"},
            "num_uses": 0,
            "orphan": True,
            "path": "auth/approle/login",
            "policies": ["default", "invite-service"],
            "renewable": token.renewable,
            "ttl": remaining,
            "type": "service",
        }

    def _health(self) -> dict[str, Any]:
        return {
            "initialized": True,
            "sealed": self.sealed,
            "standby": False,
            "performance_standby": False,
            "replication_performance_mode": "disabled",
            "replication_dr_mode": "disabled",
            "server_time_utc": int(time.time()),
            "version": "1.17.0+fake",
            "cluster_name": "fake-vault",
            "cluster_id": str(uuid.uuid5(uuid.NAMESPACE_URL, "fake-vault")),
        }


def _handler_for(vault: FakeVault) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload = vault.handle(self.command, self.path, headers, body)
            raw = b"" if self.command == "HEAD" else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = do_PUT = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


def _envelope(*, data: Any = None, auth: Any = None) -> dict[str, Any]:
    return {
        "request_id": str(uuid.uuid4()),
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": data,
        "wrap_info": None,
        "warnings": None,
        "auth": auth,
    }


def _json(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _seconds(value: Any) -> int:
    """Vault durations: an integer of seconds or a string like "30s", "5m", "1h"."""
    if value in (None, ""):
        return 0
    if isinstance(value, int | float):
        return int(value)
    match = re.fullmatch(r"(\d+)([smh]?)", str(value))
    if not match:
        return 0
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
