"""Telegram through the Integration Service: raw answers become :class:`InviteResult`.

The table :data:`ERROR_OUTCOMES` is DESIGN.md's "Outcomes and limits
(Telegram)" in code, keyed by Telegram RPC error names — the names Telethon
files its exception classes under (``telethon.errors.rpc_errors_dict``), so
the direct Telethon adapter (``telethon.py``) shares this table. Rules beyond
the table:

* ``FLOOD_WAIT`` carries its wait in ``seconds``; the name may also come in
  Telegram's raw form ``FLOOD_WAIT_30`` (or ``FLOOD_PREMIUM_WAIT_30``), whose
  number is used when ``seconds`` is absent.
* An invite answered ``ok`` counts as INVITED only if the user was actually
  added: a non-empty ``missing_invitees`` (Telegram's privacy answer since
  layer 166 / Telethon 1.35) is PRIVACY_RESTRICTED, and ``added: false`` with
  nobody missing means the user was already there (ALREADY_MEMBER).
* ``PEER_ID_INVALID`` names the peer the call was about: the chat for an
  invite, the user for a message.
* Unknown codes are TRANSIENT_ERROR with the code kept in ``raw_error`` and
  logged (warning, with the raw code): a new Telegram error must not silently
  burn a target, and someone has to add it to the table.
* A *frozen* account (Telegram's 2025 read-only state, lifted only by an
  appeal) answers FROZEN_METHOD_INVALID / FROZEN_PARTICIPANT_MISSING: the
  account is dead for campaigns until an operator has it unfrozen.
* When the Integration Service cannot be reached after the client's retries,
  the result is TRANSIENT_ERROR with ``raw_error`` starting ``UNAVAILABLE:``
  — see :func:`adapters.platforms.base.delivery_unknown`: the attempt may or
  may not have happened, so the caller must :meth:`lookup` (or resend with the
  same key) before it makes a new attempt.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ValidationError

from adapters.integration import (
    AccountInfo,
    CallAnswer,
    IntegrationClient,
    IntegrationHTTPError,
    IntegrationUnavailable,
)
from models.outcomes import InviteResult, Outcome

from .base import UNAVAILABLE_PREFIX, AccountState, PlatformAccount, PlatformAdapter, ResolvedTarget, TargetRef
from .registry import register

__all__ = ["ERROR_OUTCOMES", "TelegramAdapter", "map_answer", "map_error"]

log = logging.getLogger(__name__)

Action = Literal["invite", "message"]
PLATFORM = "telegram"

ERROR_OUTCOMES: dict[str, Outcome] = {
    # target already done
    "USER_ALREADY_PARTICIPANT": Outcome.ALREADY_MEMBER,
    # target permanent
    "USER_PRIVACY_RESTRICTED": Outcome.PRIVACY_RESTRICTED,
    "PRIVACY_PREMIUM_REQUIRED": Outcome.PRIVACY_RESTRICTED,
    "USER_NOT_MUTUAL_CONTACT": Outcome.NOT_MUTUAL_CONTACT,
    "USER_CHANNELS_TOO_MUCH": Outcome.TOO_MANY_CHANNELS,
    "USER_KICKED": Outcome.KICKED,
    "USER_BANNED_IN_CHANNEL": Outcome.BANNED_IN_CHANNEL,
    "INPUT_USER_DEACTIVATED": Outcome.USER_DEACTIVATED,
    "USER_ID_INVALID": Outcome.USER_INVALID,
    "PHONE_NOT_OCCUPIED": Outcome.USER_INVALID,
    "USERNAME_NOT_OCCUPIED": Outcome.USERNAME_NOT_FOUND,
    "USERNAME_INVALID": Outcome.USERNAME_NOT_FOUND,
    "USER_BOT": Outcome.USER_IS_BOT,
    "BOT_GROUPS_BLOCKED": Outcome.USER_IS_BOT,
    "USER_IS_BLOCKED": Outcome.USER_BLOCKED_SENDER,
    "YOU_BLOCKED_USER": Outcome.USER_BLOCKED_SENDER,
    # account temporary
    "FLOOD_WAIT": Outcome.FLOOD_WAIT,
    "FLOOD_PREMIUM_WAIT": Outcome.FLOOD_WAIT,
    "AUTH_KEY_DUPLICATED": Outcome.SESSION_DUPLICATED,
    # account restricted (USER_RESTRICTED: "you're spam-reported" — PeerFlood's cousin)
    "PEER_FLOOD": Outcome.PEER_FLOOD,
    "USER_RESTRICTED": Outcome.PEER_FLOOD,
    # account dead (USER_DEACTIVATED is the *sender* deleted; the target's is INPUT_USER_DEACTIVATED)
    "USER_DEACTIVATED_BAN": Outcome.ACCOUNT_BANNED,
    "USER_DEACTIVATED": Outcome.ACCOUNT_BANNED,
    "PHONE_NUMBER_BANNED": Outcome.ACCOUNT_BANNED,
    # frozen: no end date of its own, only an appeal lifts it (disable + alert, like a ban)
    "FROZEN_METHOD_INVALID": Outcome.ACCOUNT_BANNED,
    "FROZEN_PARTICIPANT_MISSING": Outcome.ACCOUNT_BANNED,
    "AUTH_KEY_UNREGISTERED": Outcome.SESSION_INVALID,
    "AUTH_KEY_INVALID": Outcome.SESSION_INVALID,
    "SESSION_REVOKED": Outcome.SESSION_INVALID,
    "SESSION_EXPIRED": Outcome.SESSION_INVALID,
    # task fatal
    "CHAT_ADMIN_REQUIRED": Outcome.CHAT_ADMIN_REQUIRED,
    "CHAT_WRITE_FORBIDDEN": Outcome.CHAT_WRITE_FORBIDDEN,
    "CHANNEL_PRIVATE": Outcome.CHAT_INVALID,
    "CHANNEL_INVALID": Outcome.CHAT_INVALID,
    "CHAT_INVALID": Outcome.CHAT_INVALID,
    "CHAT_ID_INVALID": Outcome.CHAT_INVALID,
    "USERS_TOO_MUCH": Outcome.CHAT_FULL,
    "CHAT_RESTRICTED": Outcome.CHAT_RESTRICTED,
    # transient (listed so the table documents them; unknown codes end here too)
    "RPC_CALL_FAIL": Outcome.TRANSIENT_ERROR,
    "RPC_MCGET_FAIL": Outcome.TRANSIENT_ERROR,
    "TIMEOUT": Outcome.TRANSIENT_ERROR,
    "INTERNAL": Outcome.TRANSIENT_ERROR,
    "WORKER_BUSY_TOO_LONG_RETRY": Outcome.TRANSIENT_ERROR,
}

# Codes whose meaning depends on what the call was about.
_BY_ACTION: dict[str, dict[str, Outcome]] = {
    "PEER_ID_INVALID": {"invite": Outcome.CHAT_INVALID, "message": Outcome.USER_INVALID},
}

# Telegram's raw names carry the wait in the name: FLOOD_WAIT_30.
_WAIT_IN_NAME = re.compile(r"^(FLOOD_WAIT|FLOOD_PREMIUM_WAIT)_(\d+)$")

# Integration Service (not Telegram) errors worth a specific outcome.
_SERVICE_CODES: dict[str, Outcome] = {
    # The service no longer knows the account: treat it as gone (disable, re-assign, alert).
    "ACCOUNT_NOT_FOUND": Outcome.SESSION_INVALID,
}


def map_error(code: str, seconds: int | None = None, action: Action | None = None) -> InviteResult:
    """One Telegram RPC error name (plus its seconds, if any) as an InviteResult."""
    name = code.strip().upper()
    match = _WAIT_IN_NAME.match(name)
    if match:
        name = match.group(1)
        if seconds is None:
            seconds = int(match.group(2))
    if name in _BY_ACTION:
        outcome = _BY_ACTION[name].get(action or "invite", Outcome.TRANSIENT_ERROR)
    elif name in ERROR_OUTCOMES:
        outcome = ERROR_OUTCOMES[name]
    else:
        # Bounded by the scheduler's max_attempts; the log is how the table learns it.
        log.warning("unknown Telegram error %r on %s: treated as transient", code[:80], action or "a call")
        outcome = Outcome.TRANSIENT_ERROR
    retry_after = float(seconds) if outcome is Outcome.FLOOD_WAIT and seconds is not None else None
    return InviteResult(outcome=outcome, retry_after=retry_after, raw_error=code, platform=PLATFORM)


def map_answer(answer: Mapping[str, Any] | CallAnswer, action: Action | None = None) -> InviteResult:
    """A call answer of the Integration Service as an InviteResult.

    ``action`` defaults to the one recorded in the answer (lookups don't know it).
    """
    try:
        parsed = answer if isinstance(answer, CallAnswer) else CallAnswer.model_validate(answer)
    except ValidationError:
        return InviteResult(outcome=Outcome.TRANSIENT_ERROR, raw_error="BAD_ANSWER", platform=PLATFORM)
    action = action or parsed.action or "invite"
    if parsed.status == "error":
        if parsed.error is None:
            return InviteResult(outcome=Outcome.TRANSIENT_ERROR, raw_error="BAD_ANSWER", platform=PLATFORM)
        return map_error(parsed.error.code, parsed.error.seconds, action)
    if action == "message":
        return InviteResult(outcome=Outcome.MESSAGE_SENT, platform=PLATFORM)
    # Nobody is counted as invited who was not actually added (DESIGN.md principle 2):
    # a missing invitee wins over any "added" flag.
    if parsed.missing_invitees:
        return InviteResult(outcome=Outcome.PRIVACY_RESTRICTED, raw_error="MISSING_INVITEES", platform=PLATFORM)
    if parsed.added is False:
        return InviteResult(outcome=Outcome.ALREADY_MEMBER, raw_error="NOT_ADDED", platform=PLATFORM)
    return InviteResult(outcome=Outcome.INVITED, platform=PLATFORM)


def _unavailable(exc: IntegrationUnavailable) -> InviteResult:
    return InviteResult(
        outcome=Outcome.TRANSIENT_ERROR, raw_error=f"{UNAVAILABLE_PREFIX}{exc.cause}", platform=PLATFORM
    )


def _http_error(exc: IntegrationHTTPError) -> InviteResult:
    code = exc.code or "NO_CODE"
    outcome = _SERVICE_CODES.get(code, Outcome.TRANSIENT_ERROR)
    # 401/409/422 mean our own bug or misconfiguration: loud in the log, bounded
    # retries via TRANSIENT_ERROR, never a target-permanent verdict.
    log.error("integration service refused the call: HTTP %s %s", exc.status_code, code)
    return InviteResult(outcome=outcome, raw_error=f"HTTP_{exc.status_code}:{code}", platform=PLATFORM)


def _account(info: Mapping[str, Any], fallback_id: str | None = None) -> PlatformAccount:
    raw = dict(info)
    raw.setdefault("id", raw.get("account_id", fallback_id))
    parsed = AccountInfo.model_validate(raw)
    return PlatformAccount(
        id=parsed.id,
        platform=parsed.platform,
        status=AccountState.parse(parsed.status),
        user_id=parsed.user_id,
        until=parsed.until,
        reason=parsed.reason,
    )


@register(PLATFORM)
class TelegramAdapter(PlatformAdapter):
    """Telegram user accounts driven through the Integration Service over HTTP."""

    def __init__(self, client: IntegrationClient, *, owns_client: bool = False) -> None:
        self._client = client
        self._owns_client = owns_client

    @classmethod
    def from_url(cls, base_url: str, token: str | None = None, **client_options: Any) -> TelegramAdapter:
        """An adapter with its own client, closed by :meth:`aclose`."""
        return cls(IntegrationClient(base_url, token, **client_options), owns_client=True)

    async def send_invite(self, account_id: str, chat: str, target: TargetRef, idempotency_key: str) -> InviteResult:
        try:
            answer = await self._client.invite(account_id, chat, target, idempotency_key)
        except IntegrationUnavailable as exc:
            return _unavailable(exc)
        except IntegrationHTTPError as exc:
            return _http_error(exc)
        return map_answer(answer, "invite")

    async def send_message(self, account_id: str, target: TargetRef, text: str, idempotency_key: str) -> InviteResult:
        try:
            answer = await self._client.message(account_id, target, text, idempotency_key)
        except IntegrationUnavailable as exc:
            return _unavailable(exc)
        except IntegrationHTTPError as exc:
            return _http_error(exc)
        return map_answer(answer, "message")

    async def resolve_target(self, account_id: str, target: TargetRef) -> ResolvedTarget | InviteResult:
        try:
            answer = await self._client.resolve(account_id, target)
        except IntegrationUnavailable as exc:
            return _unavailable(exc)
        except IntegrationHTTPError as exc:
            return _http_error(exc)
        peer = answer.get("peer")
        if answer.get("status") == "ok" and isinstance(peer, dict):
            try:
                return ResolvedTarget.model_validate(peer)
            except ValidationError:
                pass
        error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
        return map_error(str(error.get("code") or "BAD_ANSWER"), error.get("seconds"), "message")

    async def lookup(self, idempotency_key: str) -> InviteResult | None:
        """Raises :class:`adapters.integration.IntegrationError` when the service
        cannot say: "don't know" must never be mistaken for "never happened"."""
        answer = await self._client.lookup_call(idempotency_key)
        return None if answer is None else map_answer(answer)

    async def account_status(self, account_id: str) -> PlatformAccount:
        return _account(await self._client.account_status(account_id), account_id)

    async def list_accounts(self, user_id: str) -> list[PlatformAccount]:
        return [_account(item) for item in await self._client.list_accounts(user_id)]

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
