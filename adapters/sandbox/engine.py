"""The sandbox's call handling, independent of HTTP.

One call goes: idempotency check → account known? → injected 503 "before"
→ processing (one at a time per account, ``latency_ms`` long) → account gate
(banned, cooling down, restricted) → chat marker → limits → target verdict →
membership → effect recorded → answer stored → injected 503 "after".

Every answer that reached processing is stored under its idempotency key,
errors included: a key names one attempt, and the next attempt after a
"not now" answer (FLOOD_WAIT, PEER_FLOOD, AUTH_KEY_DUPLICATED) uses a new key.
Only an injected 503 *before* processing stores nothing, since nothing happened.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from adapters.integration import InviteRequest, MessageRequest, WireTarget

from .accounts import AccountBook, SandboxAccountState, iso
from .behaviour import (
    Verdict,
    account_marker,
    chat_key,
    chat_marker,
    extra_latency_ms,
    fake_user_id,
    injected_failure,
    target_key,
    target_verdict,
)
from .config import SandboxConfig
from .ledger import CallRecord, Ledger, fingerprint

__all__ = ["Reply", "SandboxEngine", "service_error"]

Action = Literal["invite", "message"]


@dataclass(frozen=True)
class Reply:
    """HTTP status and JSON body of one answer; ``replayed`` = served from the store."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


def service_error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """Body of an Integration Service (not Telegram) error."""
    return {"status": "error", "error": {"code": code, "message": message, **extra}}


class SandboxEngine:
    """A simulated Telegram behind the Integration Service contract."""

    def __init__(self, config: SandboxConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.ledger = Ledger()
        self.accounts = AccountBook(config)
        self._warned: set[str] = set()  # accounts already told to stop (for violations)

    # ---- calls --------------------------------------------------------------

    async def invite(self, account_id: str, request: InviteRequest) -> Reply:
        return await self._call("invite", account_id, request.idempotency_key, request.target, chat=request.chat)

    async def message(self, account_id: str, request: MessageRequest) -> Reply:
        return await self._call("message", account_id, request.idempotency_key, request.target, text=request.text)

    async def lookup(self, key: str) -> dict[str, Any] | None:
        """The stored answer for ``key``; waits for a call still in flight."""
        record = self.ledger.calls.get(key)
        if record is None:
            return None
        if record.answer is None and record.task is not None and not record.task.done():
            await asyncio.shield(record.task)
        return record.answer

    async def _call(
        self,
        action: Action,
        account_id: str,
        key: str,
        target: WireTarget,
        chat: str | None = None,
        text: str | None = None,
    ) -> Reply:
        payload = {"chat": chat, "target": target.model_dump(exclude_none=True), "text": text}
        record = self.ledger.calls.get(key)
        if record is not None and record.fingerprint != fingerprint(action, account_id, payload):
            return Reply(409, service_error("IDEMPOTENCY_KEY_REUSED", "this key was used for a different call"))
        if record is not None:
            record.attempts += 1
            if record.answer is None and record.task is not None and not record.task.done():
                # A retry that overtook its own first try (client timeout): wait
                # for that one rather than act a second time.
                await asyncio.shield(record.task)
            if record.answer is not None:
                return Reply(200, record.answer, replayed=True)

        account = self.accounts.get(account_id)
        if account is None:
            return Reply(404, service_error("ACCOUNT_NOT_FOUND", f"unknown account {account_id!r}"))
        if record is None:
            record = CallRecord(key, action, account_id, fingerprint(action, account_id, payload), attempts=1)
            self.ledger.calls[key] = record

        phase = injected_failure(key, record.attempts, target, self.config)
        if phase == "before":
            await asyncio.sleep(self.config.latency_ms / 1000)
            return Reply(503, service_error("SANDBOX_UNAVAILABLE", "injected failure before the call"))
        # No await between the check above and create_task: a concurrent retry
        # with the same key sees the task and joins it.
        record.task = asyncio.create_task(self._process(record, account, target, chat, text))
        answer = await asyncio.shield(record.task)
        if phase == "after":
            return Reply(503, service_error("SANDBOX_UNAVAILABLE", "injected failure after the call"))
        return Reply(200, answer)

    async def _process(
        self, record: CallRecord, account: SandboxAccountState, target: WireTarget, chat: str | None, text: str | None
    ) -> dict[str, Any]:
        if self.config.detect_concurrent_use and account.in_flight is not None:
            self.ledger.violate(account.id, record.key, "concurrent_use", iso(self.clock()))
            return self._store(record, Verdict(code="AUTH_KEY_DUPLICATED"), target, self.clock())
        account.in_flight = record.key
        try:
            delay_ms = self.config.latency_ms + extra_latency_ms(target, self.config)
            if delay_ms:
                await asyncio.sleep(delay_ms / 1000)
            now = self.clock()
            verdict = self._decide(record, account, target, chat, now)
            if verdict.delivers:
                self.ledger.deliver(
                    account.id,
                    record.action,
                    chat_key(chat) if chat is not None else None,
                    target_key(target),
                    record.key,
                    iso(now),
                    text,
                )
            return self._store(record, verdict, target, now)
        finally:
            account.in_flight = None

    def _decide(
        self, record: CallRecord, account: SandboxAccountState, target: WireTarget, chat: str | None, now: float
    ) -> Verdict:
        status, _, _ = account.status(now, self.config)
        refusal = account.gate(now, self.config)
        if refusal is not None:
            if status != "active" and account.id in self._warned:
                self.ledger.violate(account.id, record.key, f"account_{status}", iso(now))
            self._warned.add(account.id)
            return refusal
        if record.action == "invite" and chat is not None:
            refusal = chat_marker(chat)
            if refusal is not None:
                return refusal
        refusal = account.spend(record.action, now, self.config)
        if refusal is not None:
            self._warned.add(account.id)
            return refusal
        verdict = target_verdict(record.action, target, self.config)
        if (
            record.action == "invite"
            and chat is not None
            and verdict.delivers
            and self.ledger.is_member(chat_key(chat), target_key(target))
        ):
            return Verdict(code="USER_ALREADY_PARTICIPANT")
        return verdict

    def _store(self, record: CallRecord, verdict: Verdict, target: WireTarget, now: float) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "status": "ok" if verdict.code is None else "error",
            "action": record.action,
            "account_id": record.account_id,
            "idempotency_key": record.key,
        }
        if verdict.code is not None:
            error: dict[str, Any] = {"code": verdict.code}
            if verdict.seconds is not None:
                error["seconds"] = verdict.seconds
            answer["error"] = error
        elif record.action == "invite":
            answer["added"] = verdict.delivers
            answer["missing_invitees"] = [_missing(target)] if verdict.missing else []
        else:
            answer["message_id"] = len(self.ledger.deliveries)
        answer["completed_at"] = iso(now)
        record.answer = answer
        return answer

    def resolve(self, account_id: str, target: WireTarget) -> Reply:
        """Who a target is, as the account sees it: the same markers decide, nothing is recorded."""
        account = self.accounts.get(account_id)
        if account is None:
            return Reply(404, service_error("ACCOUNT_NOT_FOUND", f"unknown account {account_id!r}"))
        refusal = account_marker(account_id, self.config)
        if refusal is None and _username_of(target).startswith(("nobody_", "deactivated_")):
            refusal = target_verdict("message", target, self.config)
        if refusal is not None and refusal.code is not None:
            error: dict[str, Any] = {"code": refusal.code}
            if refusal.seconds is not None:
                error["seconds"] = refusal.seconds
            return Reply(200, {"status": "error", "error": error})
        key = target_key(target)
        peer = {
            "user_id": target.user_id or fake_user_id(key),
            "username": target.username.lower().lstrip("@") if target.username else None,
            "bot": _username_of(target).startswith("bot_"),
        }
        return Reply(200, {"status": "ok", "peer": peer})

    # ---- accounts and housekeeping -------------------------------------------

    def account(self, account_id: str) -> dict[str, Any] | None:
        account = self.accounts.get(account_id)
        return None if account is None else account.describe(self.clock(), self.config)

    def user_accounts(self, user_id: str) -> list[dict[str, Any]]:
        now = self.clock()
        return [a.describe(now, self.config) for a in self.accounts.of_user(user_id)]

    def all_accounts(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [a.describe(now, self.config) for a in self.accounts.all()]

    def reset(self) -> None:
        """Forget every call, delivery, membership, violation and account state."""
        self.ledger.reset()
        self.accounts.reset()
        self._warned.clear()

    async def aclose(self) -> None:
        """Cancel calls still in flight (server shutdown)."""
        tasks = [r.task for r in self.ledger.calls.values() if r.task is not None and not r.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _missing(target: WireTarget) -> dict[str, Any]:
    # Telegram returns the user, never the phone it was found by.
    return {
        "user_id": target.user_id if target.user_id is not None else fake_user_id(target_key(target)),
        "username": target.username,
        "premium_would_allow_invite": False,
        "premium_required_for_pm": False,
    }


def _username_of(target: WireTarget) -> str:
    return (target.username or "").lower().lstrip("@")
