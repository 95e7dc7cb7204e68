"""The outcome taxonomy: every platform answer normalized into one vocabulary.

Each outcome has a *scope* that decides what the service does with it
(DESIGN.md, "Outcomes and limits"). Adapters produce :class:`InviteResult`;
the scheduler and the results agent only ever look at these.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Scope(StrEnum):
    """Who an outcome is about, which decides the handling."""

    SUCCESS = "success"
    TARGET_DONE = "target_done"
    TARGET_PERMANENT = "target_permanent"
    ACCOUNT_TEMPORARY = "account_temporary"
    ACCOUNT_RESTRICTED = "account_restricted"
    ACCOUNT_DEAD = "account_dead"
    TASK_FATAL = "task_fatal"
    TRANSIENT = "transient"


class Severity(StrEnum):
    PERMANENT = "permanent"
    TEMPORARY = "temporary"


class Outcome(StrEnum):
    """Normalized outcome of one attempt."""

    INVITED = "invited"
    MESSAGE_SENT = "message_sent"
    ALREADY_MEMBER = "already_member"
    PRIVACY_RESTRICTED = "privacy_restricted"
    NOT_MUTUAL_CONTACT = "not_mutual_contact"
    TOO_MANY_CHANNELS = "too_many_channels"
    KICKED = "kicked"
    BANNED_IN_CHANNEL = "banned_in_channel"
    USER_DEACTIVATED = "user_deactivated"
    USER_INVALID = "user_invalid"
    USERNAME_NOT_FOUND = "username_not_found"
    USER_IS_BOT = "user_is_bot"
    USER_BLOCKED_SENDER = "user_blocked_sender"
    FLOOD_WAIT = "flood_wait"
    PEER_FLOOD = "peer_flood"
    ACCOUNT_BANNED = "account_banned"
    SESSION_INVALID = "session_invalid"
    SESSION_DUPLICATED = "session_duplicated"
    CHAT_ADMIN_REQUIRED = "chat_admin_required"
    CHAT_WRITE_FORBIDDEN = "chat_write_forbidden"
    CHAT_INVALID = "chat_invalid"
    CHAT_FULL = "chat_full"
    CHAT_RESTRICTED = "chat_restricted"
    TRANSIENT_ERROR = "transient_error"


SCOPE: dict[Outcome, Scope] = {
    Outcome.INVITED: Scope.SUCCESS,
    Outcome.MESSAGE_SENT: Scope.SUCCESS,
    Outcome.ALREADY_MEMBER: Scope.TARGET_DONE,
    Outcome.PRIVACY_RESTRICTED: Scope.TARGET_PERMANENT,
    Outcome.NOT_MUTUAL_CONTACT: Scope.TARGET_PERMANENT,
    Outcome.TOO_MANY_CHANNELS: Scope.TARGET_PERMANENT,
    Outcome.KICKED: Scope.TARGET_PERMANENT,
    Outcome.BANNED_IN_CHANNEL: Scope.TARGET_PERMANENT,
    Outcome.USER_DEACTIVATED: Scope.TARGET_PERMANENT,
    Outcome.USER_INVALID: Scope.TARGET_PERMANENT,
    Outcome.USERNAME_NOT_FOUND: Scope.TARGET_PERMANENT,
    Outcome.USER_IS_BOT: Scope.TARGET_PERMANENT,
    Outcome.USER_BLOCKED_SENDER: Scope.TARGET_PERMANENT,
    Outcome.FLOOD_WAIT: Scope.ACCOUNT_TEMPORARY,
    Outcome.PEER_FLOOD: Scope.ACCOUNT_RESTRICTED,
    Outcome.ACCOUNT_BANNED: Scope.ACCOUNT_DEAD,
    Outcome.SESSION_INVALID: Scope.ACCOUNT_DEAD,
    Outcome.SESSION_DUPLICATED: Scope.ACCOUNT_TEMPORARY,
    Outcome.CHAT_ADMIN_REQUIRED: Scope.TASK_FATAL,
    Outcome.CHAT_WRITE_FORBIDDEN: Scope.TASK_FATAL,
    Outcome.CHAT_INVALID: Scope.TASK_FATAL,
    Outcome.CHAT_FULL: Scope.TASK_FATAL,
    Outcome.CHAT_RESTRICTED: Scope.TASK_FATAL,
    Outcome.TRANSIENT_ERROR: Scope.TRANSIENT,
}


class InviteResult(BaseModel):
    """What one attempt through a platform adapter came to."""

    model_config = ConfigDict(frozen=True)

    outcome: Outcome
    retry_after: float | None = None
    raw_error: str | None = None
    platform: str = "telegram"

    @property
    def scope(self) -> Scope:
        return SCOPE[self.outcome]

    @property
    def severity(self) -> Severity:
        return Severity.TEMPORARY if self.retryable else Severity.PERMANENT

    @property
    def retryable(self) -> bool:
        """Whether the *target* may be tried again later (by this or another account)."""
        return self.scope in {
            Scope.ACCOUNT_TEMPORARY,
            Scope.ACCOUNT_RESTRICTED,
            Scope.ACCOUNT_DEAD,
            Scope.TASK_FATAL,
            Scope.TRANSIENT,
        }
