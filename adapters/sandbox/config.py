"""Settings of the sandbox Integration Service.

Defaults give a friendly Telegram: 20 ms per call, ~5 % privacy refusals,
~5 % people already in the chat, no failures and no account limits — what the
demo wants. Tests and benchmarks turn on the rest (5xx, FloodWait and
PeerFlood after too many actions, unknown accounts refused).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = ["SandboxAccount", "SandboxConfig", "SandboxLimits"]


class SandboxAccount(BaseModel):
    """An account known from the start (others appear on first use unless ``strict_accounts``)."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1)
    user_id: str | None = None
    platform: str = "telegram"
    # banned → USER_DEACTIVATED_BAN, session_invalid → AUTH_KEY_UNREGISTERED,
    # restricted → PEER_FLOOD on every call.
    status: Literal["active", "banned", "session_invalid", "restricted"] = "active"


class SandboxLimits(BaseModel):
    """What Telegram does to an account that acts too often (all off when None).

    Telegram publishes no numbers; these only make the sandbox punish an
    account the way Telegram would, so tests can prove the service never
    lets it get there.
    """

    model_config = ConfigDict(frozen=True)

    invites_per_hour: int | None = Field(default=None, ge=1, description="beyond: FLOOD_WAIT until the hour frees")
    invites_per_day: int | None = Field(default=None, ge=1, description="beyond: PEER_FLOOD, account restricted")
    messages_per_day: int | None = Field(default=None, ge=1, description="beyond: PEER_FLOOD, account restricted")
    peer_flood_hours: float = Field(default=24.0, gt=0, description="how long a PEER_FLOOD restriction lasts")


class SandboxConfig(BaseModel):
    """Everything that shapes the sandbox's answers; see ``behaviour.py`` for how."""

    model_config = ConfigDict(frozen=True)

    latency_ms: int = Field(default=20, ge=0, description="time every call takes")
    slow_ms: int = Field(default=2000, ge=0, description="extra time for targets marked slow_")
    privacy_share: float = Field(default=0.05, ge=0, le=1, description="share of targets refusing by privacy")
    already_member_share: float = Field(default=0.05, ge=0, le=1, description="share of targets already in chats")
    fail_rate: float = Field(default=0.0, ge=0, le=1, description="share of call attempts answered 503")
    # before: the 503 comes before anything happens; after: the action happens
    # and only the answer is lost (the retry must get the stored answer).
    fail_phase: Literal["before", "after", "mixed"] = "mixed"
    seed: int = Field(default=0, description="changes which targets fall into which share")
    flood_wait_seconds: int = Field(default=60, ge=1, description="FLOOD_WAIT for accounts marked flood_")
    limits: SandboxLimits = Field(default_factory=SandboxLimits)
    # Telegram answers AUTH_KEY_DUPLICATED when one session is used from two
    # places at once; the service must keep one action in flight per account.
    detect_concurrent_use: bool = True
    token: SecretStr | None = Field(default=None, description="bearer token required on /v1 (except health)")
    accounts: list[SandboxAccount] = Field(default_factory=list)
    accounts_per_user: int = Field(default=3, ge=0, description="accounts made up for a user with none configured")
    strict_accounts: bool = Field(default=False, description="unknown account ids get 404 ACCOUNT_NOT_FOUND")

    @model_validator(mode="after")
    def _shares_fit(self) -> SandboxConfig:
        if self.privacy_share + self.already_member_share > 1:
            raise ValueError("privacy_share + already_member_share must not exceed 1")
        return self
