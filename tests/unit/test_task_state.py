"""The task state machine: legal transitions, refusals that name the state."""

import pytest

from models.tasks import IllegalTransition, TaskCommand, TaskStatus, allowed_commands, destination, sources, transition

S, C = TaskStatus, TaskCommand


@pytest.mark.parametrize(
    ("status", "command", "expected"),
    [
        (S.DRAFT, C.START, S.RUNNING),
        (S.RUNNING, C.PAUSE, S.PAUSED),
        (S.PAUSED, C.RESUME, S.RUNNING),
        (S.RUNNING, C.CANCEL, S.CANCELLED),
        (S.PAUSED, C.CANCEL, S.CANCELLED),
        (S.DRAFT, C.CANCEL, S.CANCELLED),
        (S.RUNNING, C.COMPLETE, S.COMPLETED),
    ],
)
def test_legal_transitions(status: TaskStatus, command: TaskCommand, expected: TaskStatus) -> None:
    assert transition(status, command) is expected


@pytest.mark.parametrize(
    ("status", "command"),
    [
        (S.DRAFT, C.PAUSE),
        (S.PAUSED, C.PAUSE),
        (S.RUNNING, C.START),
        (S.COMPLETED, C.RESUME),
        (S.CANCELLED, C.START),
        (S.PAUSED, C.COMPLETE),
    ],
)
def test_illegal_transition_names_state_and_command(status: TaskStatus, command: TaskCommand) -> None:
    with pytest.raises(IllegalTransition) as err:
        transition(status, command)
    assert status.value in str(err.value) and command.value in str(err.value)
    assert err.value.status is status


def test_terminal_states_allow_nothing() -> None:
    for status in (S.COMPLETED, S.CANCELLED, S.FAILED):
        assert allowed_commands(status) == []


def test_sources_and_destination_agree_with_transition() -> None:
    for command in TaskCommand:
        for status in sources(command):
            assert transition(status, command) is destination(command)
