"""Reporting an attempt twice (sender, then the reconciler after a lookup) yields one result event id.

The projection and the statistics count an event id once, so a result that
was only late — stuck behind a backlog while the reconciler settled its claim
— must not be counted again (found by benchmarks/pipeline_throughput.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from models.events import parse_event
from models.outcomes import InviteResult, Outcome
from models.targets import ClaimedTarget
from streams.sender import report


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any]] = []

    async def send(self, key: bytes, value: bytes) -> None:
        self.sent.append((key, parse_event(value)))


def claim(attempt: int) -> ClaimedTarget:
    return ClaimedTarget(
        id=7, task_id="task-1", owner="u", account_id="acc", attempt=attempt, kind="invite", platform="telegram",
        chat="@c", message_template=None, username="zed", user_id=None, phone=None, first_name=None,
        last_name=None, claimed_at=datetime.now(UTC),
    )


async def test_the_same_attempt_reported_twice_has_one_event_id() -> None:
    results, work = Recorder(), Recorder()
    topics = SimpleNamespace(results=results, account_work=work)
    rt = SimpleNamespace(settings=SimpleNamespace(max_attempts=3))
    answer = InviteResult(outcome=Outcome.INVITED, platform="telegram")
    await report(rt, topics, claim(1), answer, datetime.now(UTC))  # the sender
    await report(rt, topics, claim(1), answer, datetime.now(UTC))  # the reconciler, after a lookup
    await report(rt, topics, claim(2), answer, datetime.now(UTC))  # a later attempt is another result
    ids = [event.id for _, event in results.sent]
    assert ids[0] == ids[1] != ids[2]
