"""Service settings: every knob from environment variables prefixed ``INVITE_``.

A URL left empty means "start the embedded default" for ``up``/``demo`` and
"refuse to start" for ``worker`` (production mode).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from .limits import DAY, HOUR, ActionKind, LimitPolicy, Window


# Good for `up` and `demo` only; `worker` refuses to start with it.
DEV_JWT_SECRET = SecretStr("dev-only-change-me")


class AccountLimits(BaseModel):
    """One account's own limits (``INVITE_ACCOUNT_LIMITS``); unset fields keep the platform's."""

    model_config = ConfigDict(extra="forbid")

    invites_per_hour: int | None = Field(default=None, ge=0)
    invites_per_day: int | None = Field(default=None, ge=0)
    messages_per_day: int | None = Field(default=None, ge=0)
    pause_min_seconds: float | None = Field(default=None, ge=0)
    pause_max_seconds: float | None = Field(default=None, ge=0)


class Settings(BaseSettings):
    """All configuration of one worker process."""

    model_config = SettingsConfigDict(env_prefix="INVITE_", extra="ignore")

    kafka_broker: str | None = Field(default=None, description="host:port[,host:port]; empty = embedded tansu")
    database_url: str | None = Field(default=None, description="postgresql://...; empty = embedded PostgreSQL")
    redis_url: str | None = Field(default=None, description="redis://...; empty = embedded redis-server")
    integration_service_url: str | None = Field(default=None, description="empty = built-in sandbox")
    integration_service_token: SecretStr | None = None
    # When set, every call carries a short-lived HS256 JWT signed with it
    # (service-to-service auth) instead of the static token above.
    integration_service_jwt_secret: SecretStr | None = None

    app_id: str = "invite-service"
    web_host: str = "127.0.0.1"
    web_port: int = 8002
    topic_prefix: str = "invite."
    topic_partitions: int = Field(default=8, ge=1)
    data_dir: Path = Path(".data")
    log_level: str = "INFO"

    # Vault (optional): when vault_addr is set, secrets below are read from KV v2
    # at startup through AppRole and override the plain settings.
    vault_addr: str | None = Field(default=None, description="https://vault:8200; empty = no Vault")
    vault_role_id: str | None = None
    vault_secret_id: SecretStr | None = None
    vault_mount: str = "secret"
    vault_secret_path: str = "invite-service"
    vault_timeout_seconds: float = Field(default=5.0, gt=0)

    jwt_secret: SecretStr = DEV_JWT_SECRET
    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_public_key: str | None = Field(default=None, description="PEM; required with RS256")
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_leeway_seconds: float = Field(default=30.0, ge=0)

    # Audience imports (files, API, parsing service).
    import_max_bytes: int = Field(default=100 * 1024 * 1024, gt=0)
    import_max_rows: int = Field(default=1_000_000, gt=0)
    phone_default_region: str = Field(default="RU", min_length=2, max_length=2)

    log_format: Literal["json", "text"] = "text"

    # Integration Service circuit breaker: after this many consecutive
    # unavailable answers, sending pauses for the cool-off, then one probe.
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_reset_seconds: float = Field(default=15.0, gt=0)

    # Account limits (Telegram defaults, DESIGN.md). The demo loosens them.
    invites_per_hour: int = Field(default=5, ge=0)
    invites_per_day: int = Field(default=50, ge=0)
    messages_per_day: int = Field(default=40, ge=0)
    pause_min_seconds: float = Field(default=30.0, ge=0)
    pause_max_seconds: float = Field(default=90.0, ge=0)
    # Per-account overrides, JSON: {"acc-1": {"invites_per_hour": 3}, ...}.
    account_limits: dict[str, AccountLimits] = Field(default_factory=dict)
    max_attempts: int = Field(default=3, ge=1)
    # Longer than the Integration client can take in total (timeouts x retries),
    # so a slow call is never mistaken for a lost one.
    inflight_timeout_seconds: float = Field(default=120.0, gt=0)
    reconcile_interval_seconds: float = Field(default=10.0, gt=0)
    maintenance_interval_seconds: float = Field(default=30.0, gt=0)
    expected_workers: int | None = Field(default=None, ge=1, description="workers the deployment runs (alerting)")
    retention_days: int = Field(default=90, ge=1, description="finished tasks are deleted after this")

    # Broker tuning. Faust hard-codes fetch_max_wait_ms=1500; lower keeps pause
    # and cancel under a second per hop (DESIGN.md, "Faust facts").
    consumer_fetch_max_wait_ms: int = Field(default=50, ge=0)
    broker_session_timeout: float = 10.0
    broker_heartbeat_interval: float = 1.0
    broker_rebalance_timeout: float = 10.0
    broker_commit_interval: float = 1.0

    sandbox_latency_ms: int = Field(default=20, ge=0)

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def limit_policy(self, account_id: str | None = None) -> LimitPolicy:
        """The platform-wide policy, or one account's with its overrides applied."""
        own = self.account_limits.get(account_id) if account_id else None

        def pick(name: str) -> Any:
            value = getattr(own, name) if own is not None else None
            return getattr(self, name) if value is None else value

        return LimitPolicy.telegram_default().override(
            windows={
                ActionKind.INVITE: [Window(pick("invites_per_hour"), HOUR), Window(pick("invites_per_day"), DAY)],
                ActionKind.MESSAGE: [Window(pick("messages_per_day"), DAY)],
            },
            pause_min=pick("pause_min_seconds"),
            pause_max=pick("pause_max_seconds"),
        )
