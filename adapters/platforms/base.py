"""What every messenger platform adapter offers, and the small types it speaks.

The scheduler and the results agent only ever see :class:`InviteResult`
(``models/outcomes.py``): an adapter's job is to make one call and normalize
whatever came back — including "could not reach the service" — into it.
``send_*`` never raise for a platform or transport failure; the read-only
calls (lookup, account status) raise when they cannot answer truthfully.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

from models.outcomes import InviteResult

__all__ = [
    "UNAVAILABLE_PREFIX",
    "DeliveryUnknown",
    "AccountState",
    "PlatformAccount",
    "PlatformAdapter",
    "RateLimitStatus",
    "ResolvedTarget",
    "TargetRef",
    "delivery_unknown",
]

# raw_error prefix of a TRANSIENT_ERROR that means "the service could not be
# reached": unlike a platform's transient answer, the attempt may have happened.
UNAVAILABLE_PREFIX = "UNAVAILABLE:"


def delivery_unknown(result: InviteResult) -> bool:
    """True when nobody knows whether the attempt reached the platform.

    Such an attempt must be resolved with ``lookup(key)`` (or resent with the
    *same* idempotency key) before a new attempt is made, or a target whose
    answer was merely lost could be invited or messaged twice.
    """
    return bool(result.raw_error and result.raw_error.startswith(UNAVAILABLE_PREFIX))


class DeliveryUnknown(LookupError):
    """Raised by ``lookup`` when nobody can tell whether the attempt with this key landed.

    Unlike ``None`` ("never seen: safe to send again"), the attempt may have
    happened; the reconciler marks such a target ``unknown`` for an operator
    instead of resending it (DESIGN.md, Invariants).
    """

    def __init__(self, idempotency_key: str, why: str) -> None:
        super().__init__(f"delivery of {idempotency_key!r} unknown: {why}")
        self.idempotency_key = idempotency_key


class TargetRef(BaseModel):
    """Who an action is aimed at. At least one identity is required.

    Built from anything with these attributes, e.g.
    ``TargetRef.model_validate(claimed_target, from_attributes=True)``.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    username: str | None = None
    user_id: int | None = None
    phone: str | None = None

    @model_validator(mode="after")
    def _has_identity(self) -> TargetRef:
        if self.username is None and self.user_id is None and self.phone is None:
            raise ValueError("a target needs one of username, user_id or phone")
        return self

    def __repr__(self) -> str:
        # Phone numbers must not leak into logs (DESIGN.md, "Invariants").
        phone = "***" if self.phone else None
        return f"TargetRef(username={self.username!r}, user_id={self.user_id!r}, phone={phone!r})"

    __str__ = __repr__


class AccountState(StrEnum):
    """Normalized state of a sender account as the platform side reports it."""

    ACTIVE = "active"
    COOLDOWN = "cooldown"  # FloodWait in force until ``until``
    RESTRICTED = "restricted"  # PeerFlood / spam-restricted
    BANNED = "banned"
    SESSION_INVALID = "session_invalid"
    DISABLED = "disabled"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, raw: str | None) -> AccountState:
        """Unknown strings become UNKNOWN instead of failing: the service may add states."""
        try:
            return cls(str(raw).lower())
        except ValueError:
            return cls.UNKNOWN


class PlatformAccount(BaseModel):
    """A sender account and its current state."""

    model_config = ConfigDict(frozen=True)

    id: str
    platform: str
    status: AccountState
    user_id: str | None = None
    until: datetime | None = None
    reason: str | None = None


class RateLimitStatus(BaseModel):
    """Whether the platform holds an account back right now, and until when."""

    model_config = ConfigDict(frozen=True)

    account_id: str
    limited: bool
    until: datetime | None = None
    reason: str | None = None


class ResolvedTarget(BaseModel):
    """A target as one sender account sees it on the platform."""

    model_config = ConfigDict(frozen=True)

    user_id: int
    username: str | None = None
    bot: bool = False


class PlatformAdapter(ABC):
    """One messenger platform. Register implementations with
    ``adapters.platforms.registry.register("<name>")``.

    Every ``send_*`` carries an idempotency key naming *one attempt*: the same
    key never delivers twice, and after a crash :meth:`lookup` tells whether the
    attempt happened and how it ended.
    """

    platform: ClassVar[str]

    @abstractmethod
    async def send_invite(self, account_id: str, chat: str, target: TargetRef, idempotency_key: str) -> InviteResult:
        """Add ``target`` to ``chat`` using ``account_id``."""

    @abstractmethod
    async def send_message(self, account_id: str, target: TargetRef, text: str, idempotency_key: str) -> InviteResult:
        """Send ``text`` to ``target`` from ``account_id``."""

    @abstractmethod
    async def resolve_target(self, account_id: str, target: TargetRef) -> ResolvedTarget | InviteResult:
        """Who ``target`` is for ``account_id``; the platform's refusal as an InviteResult.

        No side effect on the target, so no idempotency key: safe to repeat.
        Used for the operator's test-invite and to check an audience before sending.
        """

    @abstractmethod
    async def lookup(self, idempotency_key: str) -> InviteResult | None:
        """How the attempt with this key ended, or None if it never reached the platform.

        Raises when that cannot be known right now (service unreachable):
        "don't know" must never read as "never happened", or a lost answer
        would turn into a second delivery.
        """

    @abstractmethod
    async def account_status(self, account_id: str) -> PlatformAccount:
        """Current state of one sender account."""

    @abstractmethod
    async def list_accounts(self, user_id: str) -> list[PlatformAccount]:
        """The sender accounts one platform user owns on this platform."""

    async def rate_limit_status(self, account_id: str) -> RateLimitStatus:
        """The platform's own hold on the account (FloodWait, spam restriction), from its status.

        Our limits (windows, pauses) are the scheduler's; this is what the
        platform imposes on top, for the accounts view and doctor.
        """
        account = await self.account_status(account_id)
        limited = account.status in (AccountState.COOLDOWN, AccountState.RESTRICTED)
        return RateLimitStatus(account_id=account_id, limited=limited, until=account.until if limited else None,
                               reason=account.reason if limited else None)

    async def aclose(self) -> None:  # noqa: B027 — optional hook, nothing to close by default
        """Release connections the adapter owns."""
