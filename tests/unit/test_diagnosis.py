"""Doctor's one-sentence verdict for a task, rule by rule."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from models.diagnosis import AccountFacts, TaskFacts, why_not_sending
from models.tasks import TaskStatus

NOW = 1_800_000_000.0


def running(**changes: object) -> TaskFacts:
    base = TaskFacts(
        task_id="t", status=TaskStatus.RUNNING, pending=10,
        accounts=[AccountFacts(account_id="a", hourly_limit=5, daily_limit=50)],
        last_result_at=datetime.fromtimestamp(NOW - 30, UTC),
    )
    return base.model_copy(update=changes)


@pytest.mark.parametrize(
    ("facts", "words"),
    [
        (running(status=TaskStatus.DRAFT), "never started"),
        (running(status=TaskStatus.PAUSED, status_reason="no healthy account left"), "no healthy account left"),
        (running(status=TaskStatus.COMPLETED), "nothing left to send"),
        (running(broker_reachable=False), "broker cannot be reached"),
        (running(workers=0), "No worker is running"),
        (running(pending=0, in_flight=0, unknown=3), "3 targets have an unknown delivery"),
        (running(pending=0, in_flight=0), "Every target is done"),
        (running(accounts=[]), "no sender accounts"),
        (running(accounts=[AccountFacts(account_id="a", health="restricted"),
                           AccountFacts(account_id="b", health="disabled")]), "No healthy account left"),
        (running(accounts=[AccountFacts(account_id="a", blocked_until=NOW + 600, block_reason="account.cooldown")]),
         "cooling down (account.cooldown)"),
        (running(accounts=[AccountFacts(account_id="a", actions_last_hour=5, hourly_limit=5)]), "used its hourly"),
        (running(last_result_at=datetime.fromtimestamp(NOW - 900, UTC)), "no result for 15 min"),
        (running(last_result_at=None), "no result has arrived yet"),
        (running(), "Sending normally"),
    ],
)
def test_verdict(facts: TaskFacts, words: str) -> None:
    assert words in why_not_sending(facts, NOW)


def test_an_expired_cooldown_does_not_count():
    facts = running(accounts=[AccountFacts(account_id="a", blocked_until=NOW - 1)])
    assert why_not_sending(facts, NOW).startswith("Sending normally")
