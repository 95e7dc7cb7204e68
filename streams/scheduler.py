"""Due-time timers of the account scheduler.

Tables can only be written while an agent processes an event, so a timer
does not act: it sends ``account.due`` to the account's own partition and the
account agent decides there (DESIGN.md, "Faust facts"). One timer per
account, always the earliest; no polling of idle accounts.
"""

from __future__ import annotations

import asyncio
import logging
import time

import faust

from models.events import AccountDue, AccountDueData

from .publish import send_event

log = logging.getLogger(__name__)


class DueTimers:
    """In-memory timers: lost on restart, re-created by the reconciler's wake-ups."""

    def __init__(self, topic: faust.TopicT) -> None:
        self._topic = topic
        self._timers: dict[str, tuple[float, asyncio.TimerHandle]] = {}
        self._sending: set[asyncio.Task[None]] = set()

    def arm(self, account_id: str, owner: str, at: float) -> None:
        current = self._timers.get(account_id)
        if current is not None:
            if current[0] <= at:
                return
            current[1].cancel()
        delay = max(0.0, at - time.time())
        handle = asyncio.get_running_loop().call_later(delay, self._fire, account_id, owner)
        self._timers[account_id] = (at, handle)

    def _fire(self, account_id: str, owner: str) -> None:
        self._timers.pop(account_id, None)
        task = asyncio.ensure_future(self._send(account_id, owner))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, account_id: str, owner: str) -> None:
        event = AccountDue(user_id=owner, data=AccountDueData(account_id=account_id))
        try:
            await send_event(self._topic, account_id, event)
        except Exception:  # the reconciler wakes the account again later
            log.exception("could not send account.due for %s", account_id)

    def cancel_all(self) -> None:
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
