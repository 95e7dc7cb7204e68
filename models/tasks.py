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


# Priority names the API accepts besides 0/1/2.
PRIORITY_NAMES: dict[str, Priority] = {p.name.lower(): p for p in Priority}


def parse_priority(value: object) -> Priority:
    """``"high"``/``"normal"``/``"low"`` or ``2``/``1``/``0`` as a :class:`Priority`; raises ValueError."""
    if isinstance(value, str) and value.strip().lower() in PRIORITY_NAMES:
        return PRIORITY_NAMES[value.strip().lower()]
    if isinstance(value, int) and not isinstance(value, bool) and value in {p.value for p in Priority}:
        return Priority(value)
    raise ValueError(f"priority must be one of {sorted(PRIORITY_NAMES)} or 0, 1, 2")


# Which settings an operator may still change in each state. A running task's
# target chat or text would make one campaign do two different things, and a
# finished task only keeps its name editable (the record of what was done).
_ALWAYS = frozenset({"name"})
_WHILE_ACTIVE = _ALWAYS | {"priority", "limits", "schedule"}
EDITABLE_FIELDS: dict[TaskStatus, frozenset[str]] = {
    TaskStatus.DRAFT: _WHILE_ACTIVE | {"chat", "message_template", "skip_privacy_failed"},
    TaskStatus.PAUSED: _WHILE_ACTIVE | {"message_template"},
    TaskStatus.RUNNING: _WHILE_ACTIVE,
    TaskStatus.COMPLETED: _ALWAYS,
    TaskStatus.CANCELLED: _ALWAYS,
    TaskStatus.FAILED: _ALWAYS,
}


class IllegalUpdate(ValueError):
    """A change of settings that the task's current state does not allow."""

    def __init__(self, status: TaskStatus, fields: list[str]) -> None:
        super().__init__(f"cannot change {', '.join(fields)} of a task that is {status.value}")
        self.status = status
        self.fields = fields


def check_update(status: TaskStatus, fields: set[str]) -> None:
    """Raise :class:`IllegalUpdate` naming the fields ``status`` keeps fixed."""
    refused = sorted(fields - EDITABLE_FIELDS[status])
    if refused:
        raise IllegalUpdate(status, refused)


def states_allowing(fields: set[str]) -> set[TaskStatus]:
    """The states in which every one of ``fields`` may change (for compare-and-set updates)."""
    return {status for status, editable in EDITABLE_FIELDS.items() if fields <= editable}


# Accounts may join or leave a task until it is finished.
ACCOUNT_CHANGE_STATES = frozenset({TaskStatus.DRAFT, TaskStatus.RUNNING, TaskStatus.PAUSED})
