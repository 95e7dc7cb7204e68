"""The event envelope: what parses, and what is refused with a reason."""

import json

import pytest
from pydantic import ValidationError

from models.events import (
    TargetsImported,
    TargetsImportedData,
    TaskCreated,
    TaskCreatedData,
    dump_event,
    event_json_schema,
    parse_event,
)


def _created() -> TaskCreated:
    return TaskCreated(user_id="alice", data=TaskCreatedData(task_id="t1", name="n", chat="@c", account_ids=["a"]))


def test_round_trip_keeps_every_field() -> None:
    event = _created()
    parsed = parse_event(dump_event(event))
    assert parsed == event
    assert parsed.type == "task.created"


def test_envelope_fields_follow_the_contract() -> None:
    body = json.loads(dump_event(_created()))
    assert set(body) == {"type", "version", "id", "occurred_at", "source", "user_id", "data"}
    assert body["version"] == 1


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda b: b.update(version=2), "version"),
        (lambda b: b.update(type="task.exploded"), "type"),
        (lambda b: b.pop("user_id"), "user_id"),
        (lambda b: b["data"].pop("account_ids"), "account_ids"),
        (lambda b: b["data"].update(account_ids=[]), "account_ids"),
        (lambda b: b.update(surprise=1), "surprise"),
    ],
)
def test_invalid_envelopes_are_refused_naming_the_field(mutate, needle: str) -> None:
    body = json.loads(dump_event(_created()))
    mutate(body)
    with pytest.raises(ValidationError) as err:
        parse_event(json.dumps(body))
    assert needle in str(err.value)


def test_not_json_is_refused() -> None:
    with pytest.raises(ValidationError):
        parse_event(b"\xff\xfe garbage")


def test_batches_are_bounded() -> None:
    with pytest.raises(ValidationError):
        TargetsImported(user_id="u", data=TargetsImportedData(task_id="t", targets=[{}] * 10_001))


def test_json_schema_covers_every_type() -> None:
    schema = json.dumps(event_json_schema())
    for name in ("task.created", "targets.imported", "invite.result", "work.assigned", "account.cooldown"):
        assert name in schema


def test_every_task_command_event_is_a_valid_lifecycle_event() -> None:
    from models.events import TaskLifecycle, TaskRefData
    from models.tasks import COMMAND_EVENTS, EVENT_COMMANDS

    for command, event_type in COMMAND_EVENTS.items():
        assert TaskLifecycle(type=event_type, user_id="u", data=TaskRefData(task_id="t")).type == event_type
        assert EVENT_COMMANDS[event_type] is command
