"""Targets (the audience): identity, normalization and lifecycle states."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, model_validator


class TargetStatus(StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    INVITED = "invited"
    ALREADY_MEMBER = "already_member"
    SKIPPED = "skipped"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


TERMINAL_TARGET_STATUSES = frozenset(
    {
        TargetStatus.INVITED,
        TargetStatus.ALREADY_MEMBER,
        TargetStatus.SKIPPED,
        TargetStatus.FAILED,
        TargetStatus.CANCELLED,
    }
)

_USERNAME = re.compile(r"^[a-z][a-z0-9_]{3,31}$")
_LINK_PREFIXES = ("https://t.me/", "http://t.me/", "t.me/", "@")


def normalize_username(raw: str) -> str:
    """``@Name``, ``t.me/Name`` and ``Name`` all become ``name``; raises ValueError."""
    value = raw.strip()
    for prefix in _LINK_PREFIXES:
        if value.lower().startswith(prefix):
            value = value[len(prefix) :]
            break
    value = value.strip("/").lower()
    if not _USERNAME.match(value):
        raise ValueError(f"invalid username {raw!r}: 4-32 chars, letters, digits, underscore")
    return value


class TargetIn(BaseModel):
    """One audience row as it arrives from any import path."""

    model_config = ConfigDict(extra="forbid")

    username: str | None = None
    user_id: int | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    extra: dict[str, str] | None = None

    @model_validator(mode="after")
    def _has_identity(self) -> "TargetIn":
        if self.username is None and self.user_id is None and self.phone is None:
            raise ValueError("a target needs one of username, user_id or phone")
        if self.username is not None:
            self.username = normalize_username(self.username)
        if self.user_id is not None and self.user_id <= 0:
            raise ValueError("user_id must be a positive integer")
        return self

    @property
    def key(self) -> str:
        """The identity used to de-duplicate targets within a task."""
        if self.user_id is not None:
            return f"id:{self.user_id}"
        if self.username is not None:
            return f"u:{self.username}"
        return f"p:{self.phone}"


class ClaimedTarget(BaseModel):
    """A target an account's scheduler has claimed for one attempt."""

    id: int
    task_id: str
    owner: str
    account_id: str
    attempt: int
    kind: str
    platform: str
    chat: str | None
    message_template: str | None
    username: str | None
    user_id: int | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    claimed_at: datetime

    @property
    def idempotency_key(self) -> str:
        # One key per attempt: attempt n+1 only exists once attempt n is known
        # not to have delivered, so a retry can never double-deliver.
        return f"{self.task_id}:{self.id}:{self.attempt}"
