"""The contract's cases: one call each, and the InviteResult it must come to.

A case names how the **sandbox** is made to produce it (its deterministic
markers: ``privacy_`` usernames, ``flood_`` accounts, ``fail_rate`` ...; see
``adapters/sandbox/behaviour.py``) and what a **mocked** Integration Service
answers on the wire to produce the same (``wire``: replies in order). Either
may be None when that side cannot produce the case: the sandbox never sends
malformed JSON, a 429 or an error code Telegram has not invented yet, and a
mock cannot join a call in flight. Every case runs on each side it has, with
the same assertions on the normalized result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from adapters.platforms.telegram import ERROR_OUTCOMES
from models.outcomes import Outcome

Action = Literal["invite", "message"]
# One reply of the mocked service: a response, an httpx exception class to
# raise, or the body of a completed call (HTTP 200; the mock fills in
# action, account_id, idempotency_key and completed_at from the request).
Reply = httpx.Response | type[Exception] | dict[str, Any]

MAX_RETRIES = 3  # the client's default retries: a call is tried at most 4 times
ALL_TRIES = MAX_RETRIES + 1


@dataclass(frozen=True)
class Case:
    """One call, how each side is made to produce it, and the expected result."""

    id: str
    expect: Outcome
    raw_error: str | None = None
    retry_after: float | None = None
    unknown: bool = False  # delivery_unknown(result): the attempt may or may not have landed
    action: Action = "invite"
    username: str | None = "alice"
    phone: str | None = None
    chat: str = "grp"
    account: str = "acc-1"
    # HTTP requests the client made for the key (exact), or at least this many.
    attempts: int | None = None
    attempts_at_least: int | None = None
    # What lookup(key) says afterwards: "same" = the call's own result,
    # "none" = no call landed, None = not asked (the lookup itself is refused).
    lookup: Literal["same", "none"] | None = "same"
    sandbox: dict[str, Any] | None = field(default_factory=dict)  # SandboxConfig overrides
    wire: tuple[Reply, ...] | None = None
    client: dict[str, Any] = field(default_factory=dict)  # IntegrationClient options (token, timeout ...)

    def backends(self) -> list[str]:
        return [name for name, how in (("sandbox", self.sandbox), ("mock", self.wire)) if how is not None]


# ---- wire replies ------------------------------------------------------------------


def invited(missing: list[dict[str, Any]] | None = None, added: bool = True) -> dict[str, Any]:
    return {"status": "ok", "added": added, "missing_invitees": missing or []}


def sent() -> dict[str, Any]:
    return {"status": "ok", "message_id": 42}


def telegram_error(code: str, seconds: int | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code}
    if seconds is not None:
        error["seconds"] = seconds
    return {"status": "error", "error": error}


def service_error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"status": "error", "error": {"code": code}}, headers=headers)


def garbled(text: str = "<html>bad gateway says hi</html>") -> httpx.Response:
    return httpx.Response(200, text=text, headers={"Content-Type": "text/html"})


def target_error(case_id: str, username: str, code: str, outcome: Outcome, action: Action = "invite") -> Case:
    """A Telegram error the sandbox gives a marked target."""
    return Case(case_id, outcome, code, action=action, username=username, attempts=1, wire=(telegram_error(code),))


# ---- the cases -----------------------------------------------------------------------

SHARED: list[Case] = [
    # success
    Case("invited", Outcome.INVITED, attempts=1, wire=(invited(),)),
    Case("message_sent", Outcome.MESSAGE_SENT, action="message", attempts=1, wire=(sent(),)),
    Case(
        "message_by_phone",
        Outcome.MESSAGE_SENT,
        action="message",
        username=None,
        phone="+15550001111",
        attempts=1,
        wire=(sent(),),
    ),
    # target done / target permanent
    target_error("already_member", "member_bob", "USER_ALREADY_PARTICIPANT", Outcome.ALREADY_MEMBER),
    target_error("privacy", "privacy_bob", "USER_PRIVACY_RESTRICTED", Outcome.PRIVACY_RESTRICTED),
    target_error(
        "privacy_message", "privacy_bob", "USER_PRIVACY_RESTRICTED", Outcome.PRIVACY_RESTRICTED, action="message"
    ),
    Case(
        "missing_invitee",
        Outcome.PRIVACY_RESTRICTED,
        "MISSING_INVITEES",
        username="missing_bob",
        attempts=1,
        wire=(invited(missing=[{"user_id": 7, "username": "missing_bob"}], added=False),),
    ),
    target_error("user_deactivated", "deactivated_bob", "INPUT_USER_DEACTIVATED", Outcome.USER_DEACTIVATED),
    target_error("username_not_occupied", "nobody_bob", "USERNAME_NOT_OCCUPIED", Outcome.USERNAME_NOT_FOUND),
    target_error("user_bot", "bot_bob", "USER_BOT", Outcome.USER_IS_BOT),
    target_error("not_mutual_contact", "mutual_bob", "USER_NOT_MUTUAL_CONTACT", Outcome.NOT_MUTUAL_CONTACT),
    target_error("too_many_channels", "toomany_bob", "USER_CHANNELS_TOO_MUCH", Outcome.TOO_MANY_CHANNELS),
    target_error("kicked", "kicked_bob", "USER_KICKED", Outcome.KICKED),
    target_error("user_blocked_sender", "blocked_bob", "USER_IS_BLOCKED", Outcome.USER_BLOCKED_SENDER, "message"),
    # task fatal (the chat)
    Case("chat_admin_required", Outcome.CHAT_ADMIN_REQUIRED, "CHAT_ADMIN_REQUIRED", chat="noadmin_grp",
         wire=(telegram_error("CHAT_ADMIN_REQUIRED"),)),
    Case("chat_write_forbidden", Outcome.CHAT_WRITE_FORBIDDEN, "CHAT_WRITE_FORBIDDEN", chat="readonly_grp",
         wire=(telegram_error("CHAT_WRITE_FORBIDDEN"),)),
    Case("channel_private", Outcome.CHAT_INVALID, "CHANNEL_PRIVATE", chat="private_grp",
         wire=(telegram_error("CHANNEL_PRIVATE"),)),
    Case("users_too_much", Outcome.CHAT_FULL, "USERS_TOO_MUCH", chat="full_grp",
         wire=(telegram_error("USERS_TOO_MUCH"),)),
    # the account
    Case("flood_wait", Outcome.FLOOD_WAIT, "FLOOD_WAIT", retry_after=120.0, account="flood_acc",
         sandbox={"flood_wait_seconds": 120}, wire=(telegram_error("FLOOD_WAIT", 120),)),
    Case("peer_flood", Outcome.PEER_FLOOD, "PEER_FLOOD", account="peerflood_acc",
         wire=(telegram_error("PEER_FLOOD"),)),
    Case("account_banned", Outcome.ACCOUNT_BANNED, "USER_DEACTIVATED_BAN", account="banned_acc",
         wire=(telegram_error("USER_DEACTIVATED_BAN"),)),
    Case("session_invalid", Outcome.SESSION_INVALID, "AUTH_KEY_UNREGISTERED", account="revoked_acc",
         wire=(telegram_error("AUTH_KEY_UNREGISTERED"),)),
    Case("account_unknown_to_the_service", Outcome.SESSION_INVALID, "HTTP_404:ACCOUNT_NOT_FOUND", account="who",
         lookup="none", sandbox={"strict_accounts": True}, wire=(service_error(404, "ACCOUNT_NOT_FOUND"),)),
    # the service's own failures
    Case("5xx_then_success", Outcome.INVITED, username="flaky_erin", attempts=2,
         wire=(service_error(503, "SANDBOX_UNAVAILABLE"), invited())),
    Case("answer_lost_then_replayed", Outcome.INVITED, username="lost_erin", attempts=2,
         wire=(service_error(503, "SANDBOX_UNAVAILABLE"), invited())),
    Case("5xx_exhausted", Outcome.TRANSIENT_ERROR, "UNAVAILABLE:HTTP_503", unknown=True, attempts=ALL_TRIES,
         lookup="none", sandbox={"fail_rate": 1.0, "fail_phase": "before"},
         wire=(service_error(503, "SANDBOX_UNAVAILABLE"),) * ALL_TRIES),
    # The sandbox holds slow_ targets 600 ms; the client gives up on each try after 250 ms,
    # and a retry joins the call in flight instead of acting again.
    Case("timeout_then_success", Outcome.INVITED, username="slow_frank", attempts_at_least=2,
         sandbox={"slow_ms": 600}, client={"timeout": 0.25, "max_retries": 40},
         wire=(httpx.ReadTimeout, invited())),
    Case("wrong_token", Outcome.TRANSIENT_ERROR, "HTTP_401:UNAUTHORIZED", lookup=None,
         sandbox={"token": "right"}, client={"token": "wrong"}, wire=(service_error(401, "UNAUTHORIZED"),)),
    Case("right_token", Outcome.INVITED, attempts=1, sandbox={"token": "right"}, client={"token": "right"},
         wire=(invited(),)),
]  # fmt: skip

MOCK_ONLY: list[Case] = [
    Case("malformed_json_then_success", Outcome.INVITED, attempts=2, sandbox=None,
         wire=(garbled('{"status": "ok", "add'), invited())),
    Case("malformed_json_always", Outcome.TRANSIENT_ERROR, "UNAVAILABLE:BAD_RESPONSE", unknown=True,
         attempts=ALL_TRIES, lookup="none", sandbox=None, wire=(garbled(),) * ALL_TRIES),
    Case("500_then_success", Outcome.INVITED, attempts=2, sandbox=None,
         wire=(service_error(500, "INTERNAL"), invited())),
    Case("429_with_retry_after_then_success", Outcome.INVITED, attempts=2, sandbox=None,
         wire=(service_error(429, "RATE_LIMITED", {"Retry-After": "1"}), invited())),
    Case("429_always", Outcome.TRANSIENT_ERROR, "UNAVAILABLE:HTTP_429", unknown=True, attempts=ALL_TRIES,
         lookup="none", sandbox=None, wire=(service_error(429, "RATE_LIMITED", {"Retry-After": "1"}),) * ALL_TRIES),
    Case("read_timeout_always", Outcome.TRANSIENT_ERROR, "UNAVAILABLE:ReadTimeout", unknown=True,
         attempts=ALL_TRIES, lookup="none", sandbox=None, wire=(httpx.ReadTimeout,) * ALL_TRIES),
    Case("connect_timeout_then_success", Outcome.INVITED, attempts=2, sandbox=None,
         wire=(httpx.ConnectTimeout, invited())),
    Case("connection_refused_always", Outcome.TRANSIENT_ERROR, "UNAVAILABLE:ConnectError", unknown=True,
         action="message", attempts=ALL_TRIES, lookup="none", sandbox=None, wire=(httpx.ConnectError,) * ALL_TRIES),
    Case("unknown_error_code", Outcome.TRANSIENT_ERROR, "SOMETHING_TELEGRAM_INVENTED_TOMORROW", attempts=1,
         sandbox=None, wire=(telegram_error("SOMETHING_TELEGRAM_INVENTED_TOMORROW"),)),
    Case("missing_invitee_despite_added_true", Outcome.PRIVACY_RESTRICTED, "MISSING_INVITEES", sandbox=None,
         wire=(invited(missing=[{"user_id": 7}], added=True),)),
    Case("not_added_and_nobody_missing", Outcome.ALREADY_MEMBER, "NOT_ADDED", sandbox=None,
         wire=(invited(added=False),)),
    Case("error_answer_without_error", Outcome.TRANSIENT_ERROR, "BAD_ANSWER", sandbox=None,
         wire=({"status": "error"},)),
    Case("flood_wait_in_the_name", Outcome.FLOOD_WAIT, "FLOOD_WAIT_300", retry_after=300.0, sandbox=None,
         wire=(telegram_error("FLOOD_WAIT_300"),)),
    Case("bad_request_is_not_retried", Outcome.TRANSIENT_ERROR, "HTTP_400:BAD_REQUEST", attempts=1,
         lookup="none", sandbox=None, wire=(service_error(400, "BAD_REQUEST"),)),
    Case("validation_error_is_not_retried", Outcome.TRANSIENT_ERROR, "HTTP_422:VALIDATION_ERROR", attempts=1,
         lookup="none", sandbox=None, wire=(service_error(422, "VALIDATION_ERROR"),)),
    Case("peer_id_invalid_on_invite_is_the_chat", Outcome.CHAT_INVALID, "PEER_ID_INVALID", sandbox=None,
         wire=(telegram_error("PEER_ID_INVALID"),)),
    Case("peer_id_invalid_on_message_is_the_user", Outcome.USER_INVALID, "PEER_ID_INVALID", action="message",
         sandbox=None, wire=(telegram_error("PEER_ID_INVALID"),)),
]  # fmt: skip

# Errors Telegram gives only to messages (the issue lists USER_IS_BLOCKED and CHAT_RESTRICTED).
MESSAGE_ONLY = {"USER_IS_BLOCKED", "YOU_BLOCKED_USER", "CHAT_RESTRICTED", "PRIVACY_PREMIUM_REQUIRED"}

# Every row of the shared Telegram table, as the Integration Service reports it.
EVERY_TELEGRAM_ERROR: list[Case] = [
    Case(
        f"telegram_{code.lower()}",
        outcome,
        code,
        action="message" if code in MESSAGE_ONLY else "invite",
        sandbox=None,
        attempts=1,
        wire=(telegram_error(code),),
    )
    for code, outcome in ERROR_OUTCOMES.items()
]

CASES: list[Case] = SHARED + MOCK_ONLY + EVERY_TELEGRAM_ERROR
