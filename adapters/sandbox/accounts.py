"""Sandbox sender accounts: who owns them and what Telegram currently thinks of them.

An account is *cooling down* after a FLOOD_WAIT until its ``flood_until``,
*restricted* after a PEER_FLOOD until ``restricted_until``, and dead when
configured so or marked (``banned_``, ``revoked_``). Limits count the actions
that reached Telegram in sliding windows of an hour and a day.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from .behaviour import Verdict, account_marker
from .config import SandboxConfig

__all__ = ["AccountBook", "SandboxAccountState", "iso"]

HOUR = 3600.0
DAY = 24 * HOUR
_STATIC_ERRORS = {
    "banned": "USER_DEACTIVATED_BAN",
    "session_invalid": "AUTH_KEY_UNREGISTERED",
    "restricted": "PEER_FLOOD",
}
_STATUS_OF_CODE = {
    "USER_DEACTIVATED_BAN": "banned",
    "AUTH_KEY_UNREGISTERED": "session_invalid",
    "PEER_FLOOD": "restricted",
}


def iso(ts: float) -> str:
    """Seconds since the epoch as an ISO-8601 UTC string."""
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class SandboxAccountState:
    """One account's runtime state."""

    id: str
    user_id: str | None = None
    platform: str = "telegram"
    configured_status: str = "active"
    flood_until: float = 0.0
    restricted_until: float = 0.0
    invites: deque[float] = field(default_factory=deque)
    messages: deque[float] = field(default_factory=deque)
    in_flight: str | None = None  # idempotency key of the call being processed

    def _static_code(self, config: SandboxConfig) -> str | None:
        """The error this account always gets (configured or marked), if any."""
        if self.configured_status in _STATIC_ERRORS:
            return _STATIC_ERRORS[self.configured_status]
        marker = account_marker(self.id, config)
        if marker is not None and marker.code != "FLOOD_WAIT":
            return marker.code
        return None

    def status(self, now: float, config: SandboxConfig) -> tuple[str, float | None, str | None]:
        """(status, until, reason) as the status endpoint reports it."""
        code = self._static_code(config)
        if code is not None:
            return _STATUS_OF_CODE[code], None, code
        if self.restricted_until > now:
            return "restricted", self.restricted_until, "PEER_FLOOD"
        if self.flood_until > now:
            return "cooldown", self.flood_until, "FLOOD_WAIT"
        return "active", None, None

    def gate(self, now: float, config: SandboxConfig) -> Verdict | None:
        """Telegram's refusal because of the account itself, or None to go on."""
        code = self._static_code(config)
        if code is not None:
            return Verdict(code=code)
        marker = account_marker(self.id, config)
        if marker is not None:  # flood_: every call is answered with a fresh wait
            self.flood_until = max(self.flood_until, now + (marker.seconds or 0))
            return marker
        if self.restricted_until > now:
            return Verdict(code="PEER_FLOOD")
        if self.flood_until > now:
            return Verdict(code="FLOOD_WAIT", seconds=max(1, math.ceil(self.flood_until - now)))
        return None

    def spend(self, action: Literal["invite", "message"], now: float, config: SandboxConfig) -> Verdict | None:
        """Count one action against the limits; a refusal if it is one too many."""
        limits = config.limits
        window = self.invites if action == "invite" else self.messages
        while window and window[0] <= now - DAY:
            window.popleft()
        per_day = limits.invites_per_day if action == "invite" else limits.messages_per_day
        if per_day is not None and len(window) >= per_day:
            self.restricted_until = now + limits.peer_flood_hours * HOUR
            return Verdict(code="PEER_FLOOD")
        if action == "invite" and limits.invites_per_hour is not None:
            last_hour = [t for t in window if t > now - HOUR]
            if len(last_hour) >= limits.invites_per_hour:
                self.flood_until = last_hour[0] + HOUR
                return Verdict(code="FLOOD_WAIT", seconds=max(1, math.ceil(self.flood_until - now)))
        window.append(now)
        return None

    def describe(self, now: float, config: SandboxConfig) -> dict[str, Any]:
        status, until, reason = self.status(now, config)
        return {
            "id": self.id,
            "platform": self.platform,
            "status": status,
            "user_id": self.user_id,
            "until": iso(until) if until else None,
            "reason": reason,
        }


class AccountBook:
    """All accounts the sandbox knows, configured or met on first use."""

    def __init__(self, config: SandboxConfig) -> None:
        self._config = config
        self._accounts: dict[str, SandboxAccountState] = {}
        self.reset()

    def reset(self) -> None:
        """Back to the configured accounts only, with fresh state."""
        self._accounts = {
            a.id: SandboxAccountState(id=a.id, user_id=a.user_id, platform=a.platform, configured_status=a.status)
            for a in self._config.accounts
        }

    def get(self, account_id: str) -> SandboxAccountState | None:
        """The account, created on first use unless ``strict_accounts``."""
        account = self._accounts.get(account_id)
        if account is None and not self._config.strict_accounts:
            account = self._accounts[account_id] = SandboxAccountState(id=account_id)
        return account

    def of_user(self, user_id: str) -> list[SandboxAccountState]:
        """A user's accounts; a user with none gets ``accounts_per_user`` made up."""
        owned = [a for a in self._accounts.values() if a.user_id == user_id]
        if not owned and not self._config.strict_accounts:
            for i in range(1, self._config.accounts_per_user + 1):
                account = self._accounts.setdefault(f"{user_id}-tg-{i}", SandboxAccountState(id=f"{user_id}-tg-{i}"))
                account.user_id = user_id  # it may have been met (ownerless) before
                owned.append(account)
        return owned

    def all(self) -> list[SandboxAccountState]:
        return list(self._accounts.values())
