"""Tasks (campaigns): their kinds, priorities and the task state machine.

The state machine is the single authority on which lifecycle commands are
legal in which state; the API answers 409 with the current state when it
refuses, and agents use it to stay idempotent under re-delivery.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class TaskKind(StrEnum):
    INVITE = "invite"
    MESSAGE = "message"


class Priority(IntEnum):
    """Higher value is picked first by an account's scheduler."""

    LOW = 0
    NORMAL = 1
    HIGH = 2


class TaskStatus(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


class TaskCommand(StrEnum):
    """Lifecycle commands an operator (or the service itself) can issue."""

    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    COMPLETE = "complete"
    FAIL = "fail"


# The event each operator command publishes on the tasks topic (FAIL has none yet).
COMMAND_EVENTS: dict[TaskCommand, str] = {
    TaskCommand.START: "task.started",
    TaskCommand.PAUSE: "task.paused",
    TaskCommand.RESUME: "task.resumed",
    TaskCommand.CANCEL: "task.cancelled",
    TaskCommand.COMPLETE: "task.completed",
}
EVENT_COMMANDS: dict[str, TaskCommand] = {event: command for command, event in COMMAND_EVENTS.items()}

TERMINAL_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.CANCELLED, TaskStatus.FAILED})

_TRANSITIONS: dict[tuple[TaskStatus, TaskCommand], TaskStatus] = {
    (TaskStatus.DRAFT, TaskCommand.START): TaskStatus.RUNNING,
    (TaskStatus.DRAFT, TaskCommand.CANCEL): TaskStatus.CANCELLED,
    (TaskStatus.RUNNING, TaskCommand.PAUSE): TaskStatus.PAUSED,
    (TaskStatus.RUNNING, TaskCommand.CANCEL): TaskStatus.CANCELLED,
    (TaskStatus.RUNNING, TaskCommand.COMPLETE): TaskStatus.COMPLETED,
    (TaskStatus.RUNNING, TaskCommand.FAIL): TaskStatus.FAILED,
    (TaskStatus.PAUSED, TaskCommand.RESUME): TaskStatus.RUNNING,
    (TaskStatus.PAUSED, TaskCommand.CANCEL): TaskStatus.CANCELLED,
    (TaskStatus.PAUSED, TaskCommand.FAIL): TaskStatus.FAILED,
}


class IllegalTransition(ValueError):
    """A command that the task's current state does not allow."""

    def __init__(self, status: TaskStatus, command: TaskCommand) -> None:
        super().__init__(f"cannot {command.value} a task that is {status.value}")
        self.status = status
        self.command = command


def transition(status: TaskStatus, command: TaskCommand) -> TaskStatus:
    """The state after ``command``; raises :class:`IllegalTransition` if not allowed."""
    try:
        return _TRANSITIONS[(status, command)]
    except KeyError:
        raise IllegalTransition(status, command) from None


def allowed_commands(status: TaskStatus) -> list[TaskCommand]:
    return [command for (state, command) in _TRANSITIONS if state == status]


def sources(command: TaskCommand) -> set[TaskStatus]:
    """The states from which ``command`` is legal (for compare-and-set updates)."""
    return {state for (state, cmd) in _TRANSITIONS if cmd == command}


def destination(command: TaskCommand) -> TaskStatus:
    """Where ``command`` leads; the same from every state that allows it."""
    (target,) = {new for (_, cmd), new in _TRANSITIONS.items() if cmd == command}
    return target
