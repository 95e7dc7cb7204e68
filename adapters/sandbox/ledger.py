"""The sandbox's memory: the idempotency store and the inspectable record.

* **calls** — one record per idempotency key: what was asked (a fingerprint,
  so a reused key with another body is refused), how many attempts reached
  the server, and the stored answer returned for every replay and lookup;
* **deliveries** — every action that actually happened on "Telegram" (a user
  added to a chat, a message sent). Tests read this through
  ``GET /sandbox/deliveries`` to prove no target was invited twice;
* **members** — who is in which chat now (an invite adds the user, so a
  second invite with another key is USER_ALREADY_PARTICIPANT, as on Telegram);
* **violations** — calls the service should never have made: during a
  cooldown or restriction, from a dead account, or two at once on one account.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["CallRecord", "Delivery", "Ledger", "Violation", "fingerprint"]

Action = Literal["invite", "message"]


def fingerprint(action: Action, account_id: str, payload: dict[str, Any]) -> str:
    """What a call asked for, minus its key: equal fingerprints = the same call."""
    canonical = json.dumps({"action": action, "account_id": account_id, **payload}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class CallRecord:
    """One idempotency key and what became of it."""

    key: str
    action: Action
    account_id: str
    fingerprint: str
    attempts: int = 0
    answer: dict[str, Any] | None = None
    task: asyncio.Task[Any] | None = field(default=None, repr=False)

    def describe(self) -> dict[str, Any]:
        state = (
            "answered" if self.answer is not None else ("in_flight" if self.task and not self.task.done() else "none")
        )
        return {
            "idempotency_key": self.key,
            "action": self.action,
            "account_id": self.account_id,
            "attempts": self.attempts,
            "state": state,
            "answer": self.answer,
        }


@dataclass(frozen=True)
class Delivery:
    """One action that happened."""

    seq: int
    account_id: str
    action: Action
    chat: str | None
    target: str
    idempotency_key: str
    at: str
    text: str | None = None  # what a message said, so tests can check templates were filled


@dataclass(frozen=True)
class Violation:
    """A call the service should not have made, and why."""

    account_id: str
    idempotency_key: str
    reason: str
    at: str


class Ledger:
    """In-memory state of one sandbox; everything is lost on reset or exit."""

    def __init__(self) -> None:
        self.calls: dict[str, CallRecord] = {}
        self.deliveries: list[Delivery] = []
        self.members: dict[str, set[str]] = {}
        self.violations: list[Violation] = []

    def reset(self) -> None:
        for record in self.calls.values():
            if record.task is not None and not record.task.done():
                record.task.cancel()
        self.calls.clear()
        self.deliveries.clear()
        self.members.clear()
        self.violations.clear()

    def deliver(
        self, account_id: str, action: Action, chat: str | None, target: str, key: str, at: str,
        text: str | None = None,
    ) -> Delivery:
        delivery = Delivery(len(self.deliveries) + 1, account_id, action, chat, target, key, at, text)
        self.deliveries.append(delivery)
        if action == "invite" and chat is not None:
            self.members.setdefault(chat, set()).add(target)
        return delivery

    def is_member(self, chat: str, target: str) -> bool:
        return target in self.members.get(chat, ())

    def violate(self, account_id: str, key: str, reason: str, at: str) -> None:
        self.violations.append(Violation(account_id, key, reason, at))

    def find_deliveries(self, **filters: str) -> list[dict[str, Any]]:
        """Deliveries as dicts, keeping those whose fields equal every given filter."""
        rows = [asdict(d) for d in self.deliveries]
        return [r for r in rows if all(str(r.get(k)) == v for k, v in filters.items() if v is not None)]
