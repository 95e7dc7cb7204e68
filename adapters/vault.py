"""Vault: the service's secrets through AppRole and the KV v2 engine (hvac).

When ``INVITE_VAULT_ADDR`` is set, a worker logs in with AppRole
(``INVITE_VAULT_ROLE_ID`` / ``INVITE_VAULT_SECRET_ID``), reads one KV v2 secret
at ``{INVITE_VAULT_MOUNT}/{INVITE_VAULT_SECRET_PATH}`` (default
``secret/invite-service``, i.e. the API path ``/v1/secret/data/invite-service``)
and applies it over the plain settings. Keys of that secret:

* ``jwt_secret``: the HS256 key that verifies API tokens, and/or
* ``jwt_public_key``: the PEM public key that verifies RS256 API tokens
  (at least one of the two is required);
* ``integration_service_token``: bearer token for the Integration Service (required);
* ``telegram_api_id`` (an integer) and ``telegram_api_hash``: Telegram API
  credentials (optional, but both or neither).

Every key is exposed on :class:`VaultSecrets`; a key is also written into the
returned :class:`~models.settings.Settings` when Settings has a field of the same
name. A secret holding only ``jwt_public_key`` while Settings cannot take it is
refused, so the development HS256 secret never stays in force by accident.

The token is kept alive by :class:`TokenRenewer` (renew-self at 2/3 of its TTL,
a fresh AppRole login when renewal is refused, the token is not renewable or is
close to its max TTL). Failures at startup raise :class:`VaultStartupError`,
whose message names the Vault address and what failed. No message or log line
carries the secret id, a token or a secret value.

Usage::

    vault = open_vault(settings)          # None when INVITE_VAULT_ADDR is unset
    settings = vault.settings if vault else settings
    # keep the token alive inside the worker's event loop:
    app.task(vault.renewer.run)
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Self

import hvac
import hvac.exceptions
import requests
from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError, model_validator

from models.settings import Settings

log = logging.getLogger("invite_service.vault")

#: Renew when this fraction of the token's TTL has passed: late enough not to
#: hammer Vault, early enough that a slow or failed renewal still leaves time
#: for a fresh login before the token expires.
RENEW_FRACTION = 2 / 3

# What a Vault call can raise: network errors, Vault's HTTP errors, and a body
# that is not JSON. Each becomes a VaultStartupError with a safe message.
_TRANSLATED = (requests.exceptions.RequestException, hvac.exceptions.VaultError, ValueError)


class VaultFailure(StrEnum):
    """What went wrong, in words an operator can act on."""

    NOT_CONFIGURED = "not configured"
    UNREACHABLE = "unreachable"
    SEALED = "sealed or unavailable"
    PERMISSION_DENIED = "permission denied"
    SECRET_MISSING = "secret missing"
    KEY_MISSING = "key missing"
    INVALID_SECRET = "invalid secret"
    UNEXPECTED = "unexpected answer"


class VaultStartupError(Exception):
    """Vault is configured but the secrets cannot be had; the message is safe to print."""

    def __init__(self, addr: str, failure: VaultFailure, detail: str) -> None:
        self.addr = addr
        self.failure = failure
        self.detail = detail
        super().__init__(f"Vault at {addr}: {failure.value}: {detail}")


class VaultSecrets(BaseModel):
    """The KV v2 secret of the service, validated (unknown keys are ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    jwt_secret: SecretStr | None = None
    jwt_public_key: SecretStr | None = None
    integration_service_token: SecretStr | None = None
    telegram_api_id: int | None = Field(default=None, gt=0)
    telegram_api_hash: SecretStr | None = None

    @model_validator(mode="after")
    def _complete(self) -> Self:
        # Raised as ValueError, turned into VaultStartupError(KEY_MISSING) by from_kv.
        missing = []
        if self.jwt_secret is None and self.jwt_public_key is None:
            missing.append("jwt_secret (or jwt_public_key)")
        if self.integration_service_token is None:
            missing.append("integration_service_token")
        if (self.telegram_api_id is None) != (self.telegram_api_hash is None):
            missing.append("telegram_api_hash" if self.telegram_api_hash is None else "telegram_api_id")
        if missing:
            raise ValueError("missing key(s): " + ", ".join(missing))
        return self

    @classmethod
    def from_kv(cls, data: dict[str, Any], addr: str, where: str) -> VaultSecrets:
        """Validate a KV v2 ``data`` dict; errors name keys, never values."""
        # Empty strings count as absent: a key written as "" is as good as missing.
        present = {k: v for k, v in data.items() if v not in (None, "")}
        try:
            return cls.model_validate(present)
        except ValidationError as exc:
            # include_input=False: pydantic would otherwise echo the secret value.
            problems = exc.errors(include_input=False, include_url=False, include_context=False)
            missing = [p["msg"].removeprefix("Value error, ") for p in problems if not p["loc"]]
            if missing:
                raise VaultStartupError(addr, VaultFailure.KEY_MISSING, f"{where}: {'; '.join(missing)}") from None
            invalid = ", ".join(f"{'.'.join(map(str, p['loc']))} ({p['msg']})" for p in problems)
            raise VaultStartupError(addr, VaultFailure.INVALID_SECRET, f"{where}: invalid key(s): {invalid}") from None


class TokenLease(BaseModel):
    """The lifetime of the current Vault token (never the token itself)."""

    ttl_seconds: float = Field(ge=0)  # 0 = never expires (e.g. a root token)
    renewable: bool
    obtained_at: float = Field(default_factory=time.monotonic)

    @property
    def renew_at(self) -> float:
        return self.obtained_at + self.ttl_seconds * RENEW_FRACTION


class VaultHealth(BaseModel):
    """The parts of ``GET /v1/sys/health`` that ``doctor`` reports."""

    model_config = ConfigDict(extra="ignore")

    initialized: bool
    sealed: bool
    standby: bool = False
    version: str | None = None


class VaultClient:
    """One AppRole identity against one Vault server.

    hvac is synchronous: async code calls these methods through
    ``asyncio.to_thread`` (as :class:`TokenRenewer` does).
    """

    def __init__(self, settings: Settings) -> None:
        if not settings.vault_addr:
            raise ValueError("vault_addr is not set")
        self.addr = settings.vault_addr.rstrip("/")
        if not settings.vault_role_id or settings.vault_secret_id is None:
            absent = [
                env
                for env, value in (
                    ("INVITE_VAULT_ROLE_ID", settings.vault_role_id),
                    ("INVITE_VAULT_SECRET_ID", settings.vault_secret_id),
                )
                if not value
            ]
            raise VaultStartupError(
                self.addr, VaultFailure.NOT_CONFIGURED, f"AppRole login needs {' and '.join(absent)}"
            )
        self._role_id = settings.vault_role_id
        self._secret_id = settings.vault_secret_id
        self.mount = settings.vault_mount.strip("/")
        self.path = settings.vault_secret_path.strip("/")
        # token="" keeps hvac from picking up VAULT_TOKEN or ~/.vault-token:
        # this client authenticates with its AppRole and nothing else.
        self._hvac = hvac.Client(url=self.addr, token="", timeout=settings.vault_timeout_seconds)

    @property
    def where(self) -> str:
        return f"KV v2 secret {self.mount}/{self.path} (API path /v1/{self.mount}/data/{self.path})"

    def login(self) -> TokenLease:
        """AppRole login; the new token replaces the client's current one."""
        try:
            answer = self._hvac.auth.approle.login(
                role_id=self._role_id, secret_id=self._secret_id.get_secret_value(), use_token=True
            )
        except (hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized) as exc:
            # Vault answers 400 "invalid role or secret ID" for either half being wrong.
            raise self._error(
                VaultFailure.PERMISSION_DENIED,
                f"AppRole login refused ({self._vault_says(exc)}); check INVITE_VAULT_ROLE_ID and INVITE_VAULT_SECRET_ID",
            ) from None
        except hvac.exceptions.InvalidPath:
            raise self._error(
                VaultFailure.PERMISSION_DENIED, "AppRole login failed: no AppRole auth method at auth/approle"
            ) from None
        except _TRANSLATED as exc:
            raise self._translate(exc, "AppRole login") from None
        return self._lease(answer, "AppRole login")

    def renew(self) -> TokenLease:
        """renew-self: extend the current token's lease (raises when refused)."""
        try:
            answer = self._hvac.auth.token.renew_self()
        except (hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized) as exc:
            raise self._error(
                VaultFailure.PERMISSION_DENIED, f"token renewal refused ({self._vault_says(exc)})"
            ) from None
        except _TRANSLATED as exc:
            raise self._translate(exc, "token renewal") from None
        return self._lease(answer, "token renewal")

    def lookup(self) -> TokenLease:
        """lookup-self: the current token's remaining TTL and renewability."""
        try:
            answer = self._hvac.auth.token.lookup_self()
        except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized) as exc:
            raise self._error(
                VaultFailure.PERMISSION_DENIED, f"token lookup refused ({self._vault_says(exc)})"
            ) from None
        except _TRANSLATED as exc:
            raise self._translate(exc, "token lookup") from None
        data = answer.get("data") or {}
        return TokenLease(ttl_seconds=float(data.get("ttl") or 0), renewable=bool(data.get("renewable")))

    def read_secrets(self) -> VaultSecrets:
        """Read and validate the service's KV v2 secret (latest version)."""
        try:
            answer = self._hvac.secrets.kv.v2.read_secret_version(
                path=self.path, mount_point=self.mount, raise_on_deleted_version=True
            )
        except hvac.exceptions.InvalidPath:
            raise self._error(
                VaultFailure.SECRET_MISSING,
                f"{self.where} does not exist (or its latest version is deleted)",
            ) from None
        except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized) as exc:
            raise self._error(
                VaultFailure.PERMISSION_DENIED,
                f"reading {self.where} refused ({self._vault_says(exc)}); the policy must grant read on "
                f"{self.mount}/data/{self.path}",
            ) from None
        except _TRANSLATED as exc:
            raise self._translate(exc, f"reading {self.where}") from None
        data = (answer.get("data") or {}).get("data") if isinstance(answer, dict) else None
        if not isinstance(data, dict):
            raise self._error(
                VaultFailure.UNEXPECTED, f"{self.where} has no KV v2 data (is {self.mount}/ a KV version 2 mount?)"
            )
        return VaultSecrets.from_kv(data, self.addr, self.where)

    def health(self) -> VaultHealth:
        """``GET /v1/sys/health``: reachable, initialized, unsealed? (for ``doctor``)."""
        try:
            answer = self._hvac.sys.read_health_status(method="GET")
        except _TRANSLATED as exc:
            raise self._translate(exc, "health check") from None
        body = answer if isinstance(answer, dict) else answer.json()
        return VaultHealth.model_validate(body)

    # -- helpers -------------------------------------------------------------------

    def _lease(self, answer: Any, what: str) -> TokenLease:
        auth = answer.get("auth") if isinstance(answer, dict) else None
        if not isinstance(auth, dict) or not auth.get("client_token"):
            raise self._error(VaultFailure.UNEXPECTED, f"{what}: no token in Vault's answer")
        return TokenLease(ttl_seconds=float(auth.get("lease_duration") or 0), renewable=bool(auth.get("renewable")))

    def _error(self, failure: VaultFailure, detail: str) -> VaultStartupError:
        return VaultStartupError(self.addr, failure, self._redact(detail))

    def _translate(self, exc: Exception, what: str) -> VaultStartupError:
        if isinstance(exc, requests.exceptions.RequestException):
            # Name the kind of network failure (refused, DNS, timeout), not its text:
            # requests' text can carry the full request.
            return self._error(VaultFailure.UNREACHABLE, f"{what}: cannot reach Vault ({type(exc).__name__})")
        if isinstance(exc, (hvac.exceptions.VaultDown, hvac.exceptions.VaultNotInitialized)):
            return self._error(VaultFailure.SEALED, f"{what}: {self._vault_says(exc)}")
        if isinstance(exc, hvac.exceptions.VaultError):
            return self._error(VaultFailure.UNEXPECTED, f"{what}: {type(exc).__name__} ({self._vault_says(exc)})")
        return self._error(VaultFailure.UNEXPECTED, f"{what}: {type(exc).__name__}")

    @staticmethod
    def _vault_says(exc: Exception) -> str:
        errors = getattr(exc, "errors", None)
        if isinstance(errors, list) and errors:
            return "; ".join(str(e) for e in errors)
        return f"HTTP error {type(exc).__name__}"

    def _redact(self, text: str) -> str:
        # Vault's own error texts name role ids, never secret ids; redact anyway,
        # so a future server message cannot leak them into our logs.
        for secret in (self._secret_id.get_secret_value(), self._hvac.token):
            if secret:
                text = text.replace(secret, "***")
        return text


def apply_secrets(settings: Settings, secrets: VaultSecrets) -> Settings:
    """A copy of settings with every secret that Settings has a field for."""
    updates: dict[str, Any] = {}
    for name, value in secrets:
        if value is None or name not in Settings.model_fields:
            continue
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        # Validate against the Settings field's own type (SecretStr, str, int ...).
        updates[name] = TypeAdapter(Settings.model_fields[name].annotation).validate_python(raw)
    return settings.model_copy(update=updates)


class TokenRenewer:
    """Keeps the AppRole token alive for as long as the worker runs.

    Renews (renew-self) when 2/3 of the token's TTL has passed; logs in again
    when renewal is refused, the token is not renewable, or Vault grants less
    than half the TTL of the last login (the token nears its max TTL). A
    failure is logged and retried; it never stops the worker, whose secrets are
    already loaded.
    """

    def __init__(self, client: VaultClient, lease: TokenLease, *, retry_seconds: float = 5.0) -> None:
        self.client = client
        self._lease = lease
        self._login_ttl = lease.ttl_seconds
        self.retry_seconds = retry_seconds

    @property
    def lease(self) -> TokenLease:
        return self._lease

    def seconds_until_due(self) -> float:
        return max(0.0, self._lease.renew_at - time.monotonic())

    async def run(self) -> None:
        """Loop forever (cancel to stop); meant for ``app.task`` or ``asyncio.create_task``."""
        if self._lease.ttl_seconds == 0:
            log.info("Vault token at %s does not expire; nothing to renew", self.client.addr)
            return
        while True:
            await asyncio.sleep(self.seconds_until_due())
            try:
                await self.renew_once()
            except VaultStartupError as exc:
                log.error(
                    "Vault token could not be renewed nor replaced: %s; retrying in %.0f s", exc, self.retry_seconds
                )
                await asyncio.sleep(self.retry_seconds)

    async def renew_once(self) -> TokenLease:
        """One renewal (or re-login) now; returns the new lease."""
        self._lease = await asyncio.to_thread(self._renew_or_login)
        return self._lease

    def _renew_or_login(self) -> TokenLease:
        lease = self._lease
        if lease.renewable:
            try:
                renewed = self.client.renew()
            except VaultStartupError as exc:
                log.warning("Vault token renewal failed (%s); logging in again", exc.detail)
            else:
                if renewed.ttl_seconds >= self._login_ttl / 2:
                    log.debug("Vault token renewed for %.0f s", renewed.ttl_seconds)
                    return renewed
                log.info("Vault granted only %.0f s on renewal (max TTL near); logging in again", renewed.ttl_seconds)
        else:
            log.debug("Vault token is not renewable; logging in again")
        fresh = self.client.login()
        self._login_ttl = fresh.ttl_seconds
        log.info("Vault: new AppRole token (TTL %.0f s, renewable=%s)", fresh.ttl_seconds, fresh.renewable)
        return fresh


@dataclass(frozen=True)
class VaultSession:
    """What a worker gets from Vault at startup: settings with secrets, and the renewer."""

    settings: Settings
    secrets: VaultSecrets
    renewer: TokenRenewer


def open_vault(settings: Settings) -> VaultSession | None:
    """Log in, read the secrets, apply them; ``None`` when Vault is not configured.

    Raises :class:`VaultStartupError` (safe to print) when anything fails.
    """
    if not settings.vault_addr:
        return None
    client = VaultClient(settings)
    lease = client.login()
    secrets = client.read_secrets()
    if (
        secrets.jwt_secret is None
        and secrets.jwt_public_key is not None
        and "jwt_public_key" not in Settings.model_fields
    ):
        # Fail closed: applying nothing would leave the development HS256 secret valid.
        raise VaultStartupError(
            client.addr,
            VaultFailure.KEY_MISSING,
            f"{client.where}: has jwt_public_key only, but this version verifies HS256 tokens: add jwt_secret",
        )
    applied = apply_secrets(settings, secrets)
    log.info(
        "Vault: secrets read from %s at %s (token TTL %.0f s, renewable=%s)",
        client.where,
        client.addr,
        lease.ttl_seconds,
        lease.renewable,
    )
    return VaultSession(applied, secrets, TokenRenewer(client, lease))


def load_secrets(settings: Settings) -> Settings:
    """Settings with the Vault secrets applied (unchanged when Vault is not configured)."""
    session = open_vault(settings)
    return session.settings if session else settings
