"""Live limit state of accounts, as the API shows it.

Read from any worker without asking the account's owner: the windows come
from the durable action record in PostgreSQL (every claim is recorded before
its send), cooldowns and quarantines from the Redis mirror the account agent
keeps, and a dead account from its state in the task.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Sequence
from datetime import UTC, datetime

from models.api import AccountLimitView, WindowLeft
from models.limits import ActionKind
from models.progress import AccountOutlook, account_outlook

from .context import Api


async def outlooks(
    api: Api, account_ids: Sequence[str], kind: ActionKind, disabled: Collection[str] = ()
) -> list[AccountOutlook]:
    policy = api.rt.policy
    now = time.time()
    since = datetime.fromtimestamp(now - policy.longest_window(), UTC)
    actions = await api.reports.account_actions(account_ids, since)
    mirrored = await asyncio.gather(*(_mirrored(api, a) for a in account_ids))
    return [
        account_outlook(policy, a, actions.get(a, []), kind, now, state, disabled=a in disabled)
        for a, state in zip(account_ids, mirrored, strict=True)
    ]


async def _mirrored(api: Api, account_id: str) -> dict[str, object] | None:
    try:
        return await api.rt.mirror.read(account_id)
    except Exception:  # noqa: BLE001 - the mirror is best effort; the windows still show
        return None


def limit_view(outlook: AccountOutlook) -> AccountLimitView:
    return AccountLimitView(
        account_id=outlook.account_id,
        state=outlook.state,
        until=_at(outlook.until),
        reason=outlook.reason,
        remaining={
            kind.value: [WindowLeft(limit=w.limit, seconds=w.seconds, remaining=n) for w, n in windows]
            for kind, windows in outlook.remaining.items()
        },
        next_action_at=_at(outlook.next_action_at),
    )


def _at(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)
