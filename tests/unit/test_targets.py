"""Target identity, normalization and the outcome -> target state rules."""

import pytest

from models.imports import validate_rows
from models.outcomes import Outcome
from models.progress import TaskProgress, target_status_after
from models.targets import TargetStatus, normalize_username


@pytest.mark.parametrize("raw", ["@Alice_99", "alice_99", "https://t.me/alice_99", "t.me/Alice_99/", " @alice_99 "])
def test_username_forms_normalize_to_one(raw: str) -> None:
    assert normalize_username(raw) == "alice_99"


@pytest.mark.parametrize("raw", ["ab", "9lives", "has space", "x" * 40, "@"])
def test_bad_usernames_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="invalid username"):
        normalize_username(raw)


def test_rows_are_validated_one_by_one_with_row_numbers() -> None:
    accepted, problems = validate_rows([{"username": "good_one"}, {"username": "x"}, {}, {"user_id": 42}])
    assert [t.key for t in accepted] == ["u:good_one", "id:42"]
    assert [p["row"] for p in problems] == [2, 3]
    assert "username" in problems[0]["reason"]
    assert "needs one of" in problems[1]["reason"]


@pytest.mark.parametrize(
    ("outcome", "failures", "expected"),
    [
        (Outcome.INVITED, 0, TargetStatus.INVITED),
        (Outcome.ALREADY_MEMBER, 0, TargetStatus.ALREADY_MEMBER),
        (Outcome.PRIVACY_RESTRICTED, 0, TargetStatus.FAILED),
        (Outcome.FLOOD_WAIT, 0, TargetStatus.PENDING),
        (Outcome.PEER_FLOOD, 0, TargetStatus.PENDING),
        (Outcome.CHAT_ADMIN_REQUIRED, 0, TargetStatus.PENDING),
        (Outcome.TRANSIENT_ERROR, 1, TargetStatus.PENDING),
        (Outcome.TRANSIENT_ERROR, 3, TargetStatus.FAILED),
    ],
)
def test_target_state_after_outcome(outcome: Outcome, failures: int, expected: TargetStatus) -> None:
    assert target_status_after(outcome, failures, max_attempts=3) is expected


def test_progress_counts_open_and_done() -> None:
    p = TaskProgress(by_status={TargetStatus.INVITED: 3, TargetStatus.PENDING: 1, TargetStatus.FAILED: 1})
    assert (p.total, p.done, p.open, p.percent) == (5, 4, 1, 80.0)
    assert TaskProgress(by_status={}).percent == 100.0


def test_an_account_with_only_invite_work_waits_for_its_invite_window() -> None:
    """A message would be allowed now, but the invite task is picked only when its window frees."""
    from models.limits import AccountLimitState, ActionKind, LimitPolicy, record_action
    from models.scheduling import TaskWork, next_action_at, pick_task

    policy = LimitPolicy.telegram_default()
    state = AccountLimitState()
    for i in range(5):  # the hourly invite window is full; messages are still allowed
        state = record_action(policy, state, ActionKind.INVITE, at=100.0 * i, pause=30.0)
    now = 1000.0
    assert next_action_at(policy, state, now) == now
    assert next_action_at(policy, state, now, exclude=[ActionKind.MESSAGE]) == 3600.0
    invites = TaskWork(task_id="t", kind=ActionKind.INVITE, priority=1, started_at=0.0)
    pick = pick_task(policy, state, [invites], now)
    assert pick.work is None and pick.wake_at == 3600.0  # when the 1st invite leaves the hour


def test_a_retryable_result_after_cancel_cancels_the_target() -> None:
    assert target_status_after(Outcome.FLOOD_WAIT, 0, 3, task_cancelled=True) is TargetStatus.CANCELLED
    assert target_status_after(Outcome.INVITED, 0, 3, task_cancelled=True) is TargetStatus.INVITED


def test_task_counts_add_one_result_at_a_time_without_mutating() -> None:
    from datetime import UTC, datetime

    from models.progress import TaskCounts

    empty = TaskCounts.model_validate({})
    at = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    one = empty.with_result(Outcome.INVITED, at)
    two = one.with_result(Outcome.PRIVACY_RESTRICTED, at)
    assert (empty.attempts, empty.outcomes) == (0, {})
    assert two.attempts == 2 and two.outcomes == {"invited": 1, "privacy_restricted": 1}
    assert TaskCounts.model_validate(two.model_dump()) == two  # JSON-safe table value
    assert two.last_result_at == at.isoformat()
