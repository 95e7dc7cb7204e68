"""docs/asyncapi.yaml is the event contract other teams build on; it must say what the code does.

The document is rendered from the pydantic event models (``models/events.py``)
and the topic list (``streams/topics.py``); this test fails when the committed
file differs from a fresh rendering. After changing an event, regenerate it:

    python -m tests.unit.test_import_asyncapi --write
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from pydantic import BaseModel, TypeAdapter

from models.events import (
    AccountDue,
    AccountStateChanged,
    ActionCompleted,
    InviteResultEvent,
    TargetsImported,
    TargetsImportedData,
    TaskCreated,
    TaskCreatedData,
    TaskLifecycle,
    WorkAssigned,
    dump_event,
    parse_event,
)
from models.targets import TargetIn
from streams.topics import TOPIC_NAMES

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"
REF = "#/components/schemas/{model}"

KEY_BY_TASK = {"type": "string", "description": "the task id, UTF-8 encoded"}
KEY_BY_ACCOUNT = {"type": "string", "description": "the sender account id, UTF-8 encoded"}

# topic -> (what it carries, its key, messages, who publishes, who consumes)
TOPICS: dict[str, tuple[str, dict[str, Any], list[type[BaseModel]], str, str]] = {
    "tasks": ("Task lifecycle: created, started, paused, resumed, cancelled, completed, deleted.",
              KEY_BY_TASK, [TaskCreated, TaskLifecycle], "the API", "the task agent, analytics"),
    "targets": (("Audience batches for a task. **Inbound from other services**: the parsing service publishes"
                 " here (see the channel's description for the producer settings)."),
                KEY_BY_TASK, [TargetsImported], "the API, file imports, the parsing service", "the importer agent"),
    "account-work": ("Work for one sender account (internal).", KEY_BY_ACCOUNT,
                     [WorkAssigned, AccountDue, ActionCompleted], "the planner and schedulers", "account agents"),
    "results": ("One invite.result per attempt: the analytics contract.", KEY_BY_TASK, [InviteResultEvent],
                "account agents", "the results agent, analytics"),
    "accounts": ("Account health: cooldowns, restrictions, bans, recoveries.", KEY_BY_ACCOUNT,
                 [AccountStateChanged], "account agents", "planner, analytics"),
    "dead-letters": ("Messages no agent could process, with the reason.", {
        "type": ["string", "null"], "description": "the original message's key"}, [], "every agent", "operators"),
}

TARGETS_CONTRACT = """\
How to publish audience batches (the parsing service, or any other producer):

* **Key**: the task id as UTF-8 bytes. **Value**: the JSON of one
  `targets.imported` envelope (schema below), UTF-8, at most 1 000 000 bytes
  (Apache Kafka's default message.max.bytes is 1 048 588; our own producer
  cuts batches at 768 KiB and 5 000 rows).
* **Partitioner**: murmur2, as the Java client and aiokafka do. With
  librdkafka (confluent-kafka, kcat ...) set `partitioner=murmur2_random`;
  its default (`consistent_random`, CRC32) places keys elsewhere. The
  importer is correct on any partition (it keeps no per-partition state),
  but the contract keeps one task's batches in order on one partition.
* `user_id` is the owner of the task; a batch for another user's task, an
  unknown task (after a 30 s wait for its creation) or a finished task goes to
  `{prefix}dead-letters` with the reason.
* `batch_id` makes a batch idempotent: send a re-try with the same id and it
  is applied once. Leave it out and every delivery is a new batch (targets
  already in the task are still counted as duplicates, never added twice).
* `targets`: up to 10 000 objects shaped like `TargetRow` (username, user_id,
  phone, first_name, last_name, extra). Rows are validated one by one: a bad
  row is counted as invalid with its position and reason, the rest of the
  batch is imported. Usernames are normalized (`@name`, `t.me/name` ...),
  phones to E.164 (numbers without a country code are read in the service's
  configured default region), ids must be positive integers.
* Delivery is at least once; producers need no idempotence or transactions.
* Example (confluent-kafka):
  `Producer({"bootstrap.servers": ..., "partitioner": "murmur2_random"})
  .produce("invite.targets", key=task_id.encode(), value=envelope_json)`
"""


def _schemas_of(models: list[type[BaseModel]], defs: dict[str, Any]) -> None:
    for model in models:
        schema = TypeAdapter(model).json_schema(ref_template=REF)
        defs.update(schema.pop("$defs", {}))
        defs[model.__name__] = schema


def _event_types(model: type[BaseModel]) -> list[str]:
    field = model.model_fields["type"]
    annotation = field.annotation
    return list(getattr(annotation, "__args__", ()))


def _example(model: type[BaseModel]) -> dict[str, Any] | None:
    if model is TargetsImported:
        event = TargetsImported(
            id="5f0c6c54-9d53-4a8e-bd7b-1c8f1f0f2a11", occurred_at="2026-11-27T10:00:00Z",  # type: ignore[arg-type]
            source="parsing-service", user_id="user-42",
            data=TargetsImportedData(task_id="0b6f8f7e-3a5c-4e55-9a40-6f0d1a2b3c4d", batch_id="parse-17-page-3",
                                     targets=[{"username": "@alice_99", "first_name": "Alice"},
                                              {"user_id": 123456789, "phone": "+79161234567"}]),
        )
        return yaml.safe_load(dump_event(event))
    if model is TaskCreated:
        event2 = TaskCreated(
            id="0a4b7a52-6f1e-4d2b-8c3e-5b1a2f3c4d5e", occurred_at="2026-11-27T10:00:00Z",  # type: ignore[arg-type]
            user_id="user-42", data=TaskCreatedData(task_id="0b6f8f7e-3a5c-4e55-9a40-6f0d1a2b3c4d", name="Spring",
                                                    chat="@spring_channel", account_ids=["acc-1"]),
        )
        return yaml.safe_load(dump_event(event2))
    return None


def render() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in TOPIC_NAMES:
        description, key, models, producers, consumers = TOPICS[topic]
        _schemas_of(models, schemas)
        refs = {}
        for model in models:
            name = model.__name__[0].lower() + model.__name__[1:]
            message: dict[str, Any] = {
                "name": model.__name__,
                "title": ", ".join(_event_types(model)),
                "contentType": "application/json",
                "payload": {"$ref": REF.format(model=model.__name__)},
                "bindings": {"kafka": {"key": key, "bindingVersion": "0.5.0"}},
            }
            example = _example(model)
            if example is not None:
                message["examples"] = [{"key": example["data"]["task_id"], "payload": example}]
            messages[name] = message
            refs[name] = {"$ref": f"#/components/messages/{name}"}
        if topic == "dead-letters":
            schemas["DeadLetter"] = {
                "type": "object",
                "required": ["topic", "reason", "at", "key", "value", "value_truncated", "value_size"],
                "properties": {
                    "topic": {"type": "string", "description": "the topic the message came from"},
                    "reason": {"type": "string", "maxLength": 2000},
                    "at": {"type": "string", "format": "date-time"},
                    "key": {"type": ["string", "null"]},
                    "value": {"type": ["string", "null"], "description": "the raw value, first 64 KiB, as text"},
                    "value_truncated": {"type": "boolean"},
                    "value_size": {"type": "integer", "minimum": 0},
                },
            }
            messages["deadLetter"] = {
                "name": "DeadLetter", "contentType": "application/json",
                "payload": {"$ref": REF.format(model="DeadLetter")},
                "bindings": {"kafka": {"key": key, "bindingVersion": "0.5.0"}},
            }
            refs["deadLetter"] = {"$ref": "#/components/messages/deadLetter"}
        channel_id = topic.replace("-", "_")
        channels[channel_id] = {
            "address": "{prefix}" + topic,
            "title": topic,
            "description": f"{description}\n\nPublished by {producers}; consumed by {consumers}."
            + (f"\n\n{TARGETS_CONTRACT}" if topic == "targets" else ""),
            "parameters": {"prefix": {"$ref": "#/components/parameters/prefix"}},
            "messages": refs,
            "bindings": {"kafka": {"partitions": 8, "bindingVersion": "0.5.0",
                                   "x-partitioner": "murmur2 on the key (librdkafka: partitioner=murmur2_random)"}},
        }
        operations[f"receive_{channel_id}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": f"Invite Service consumes {topic}" if topic != "dead-letters" else "operators read dead letters",
        }
    schemas["TargetRow"] = TargetIn.model_json_schema(ref_template=REF)
    schemas["TargetRow"]["description"] = (
        "One element of targets.imported data.targets, as the importer validates it (row by row).")
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Invite Service events",
            "version": "1.0.0",
            "description": (
                "Every event is JSON in one envelope: type, version, id (a UUID, for de-duplication),"
                " occurred_at, source, user_id (the owner) and a type-specific data object. Versions change"
                " only additively; a breaking change is a new `version`. Keys are ids as UTF-8 bytes and"
                " topics are partitioned with murmur2 on the key. Generated from models/events.py by"
                " tests/unit/test_import_asyncapi.py; do not edit by hand."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "production": {"host": "kafka:9092", "protocol": "kafka",
                           "description": "INVITE_KAFKA_BROKER; topic names carry INVITE_TOPIC_PREFIX"},
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "parameters": {"prefix": {"default": "invite.", "description": "INVITE_TOPIC_PREFIX"}},
            "messages": messages,
            "schemas": dict(sorted(schemas.items())),
        },
    }


class _Dumper(yaml.SafeDumper):
    """Multi-line text as literal blocks, so the document reads like prose."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def dump(document: dict[str, Any]) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def test_the_committed_document_is_the_rendered_one() -> None:
    assert DOCUMENT.exists(), "docs/asyncapi.yaml is missing: python -m tests.unit.test_import_asyncapi --write"
    assert yaml.safe_load(DOCUMENT.read_text()) == yaml.safe_load(dump(render())), (
        "docs/asyncapi.yaml is out of date: python -m tests.unit.test_import_asyncapi --write")


def test_every_topic_is_described_with_its_key() -> None:
    document = yaml.safe_load(DOCUMENT.read_text())
    addresses = {c["address"] for c in document["channels"].values()}
    assert addresses == {"{prefix}" + t for t in TOPIC_NAMES}
    targets = document["channels"]["targets"]
    assert "murmur2_random" in targets["description"] and "task id as UTF-8" in targets["description"]


def test_the_documented_example_validates_and_an_outside_event_parses() -> None:
    document = yaml.safe_load(DOCUMENT.read_text())
    message = document["components"]["messages"]["targetsImported"]
    example = message["examples"][0]["payload"]
    Draft202012Validator({**document, "$ref": "#/components/schemas/TargetsImported"}).validate(example)
    # What the doc promises is what the importer accepts.
    event = parse_event(json.dumps(example))
    assert isinstance(event, TargetsImported) and len(event.data.targets) == 2


if __name__ == "__main__":
    if "--write" in sys.argv:
        DOCUMENT.write_text(dump(render()))
        print(f"wrote {DOCUMENT}")
    else:
        sys.stdout.write(dump(render()))
