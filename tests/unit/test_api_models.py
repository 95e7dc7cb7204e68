"""Pure rules behind the API: priorities, editable fields per state, cursors, CSV cells, masking, ETA,
request validation naming fields, and the OpenAPI document built from the route table."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from models.api import (
    TaskCreateRequest,
    TaskUpdateRequest,
    csv_safe,
    decode_cursor,
    encode_cursor,
    identity_row,
    mask_phone,
)
from models.events import TaskChanges, TaskUpdated, TaskUpdatedData, parse_event
from models.limits import ActionKind, LimitPolicy
from models.progress import account_outlook, estimate_eta
from models.tasks import (
    IllegalUpdate,
    Priority,
    TaskStatus,
    check_update,
    parse_priority,
    states_allowing,
)
from streams.web.openapi import build_document
from streams.web.routes import Operation


@pytest.mark.parametrize(("raw", "expected"), [("high", 2), ("NORMAL", 1), (" low ", 0), (0, 0), (2, 2)])
def test_priority_by_name_or_number(raw: Any, expected: int) -> None:
    assert parse_priority(raw) is Priority(expected)


@pytest.mark.parametrize("raw", ["urgent", 3, -1, True, "1", None])
def test_other_priorities_are_refused(raw: Any) -> None:
    with pytest.raises(ValueError, match="priority"):
        parse_priority(raw)


def test_editable_fields_depend_on_the_state() -> None:
    check_update(TaskStatus.DRAFT, {"chat", "message_template", "priority", "limits", "schedule", "name"})
    check_update(TaskStatus.RUNNING, {"priority", "limits", "name"})
    with pytest.raises(IllegalUpdate) as refused:
        check_update(TaskStatus.RUNNING, {"chat", "priority"})
    assert refused.value.fields == ["chat"] and "running" in str(refused.value)
    with pytest.raises(IllegalUpdate):
        check_update(TaskStatus.COMPLETED, {"priority"})
    assert states_allowing({"chat"}) == {TaskStatus.DRAFT}
    assert TaskStatus.PAUSED in states_allowing({"message_template"})
    assert states_allowing({"name"}) == set(TaskStatus)


def test_task_changes_travel_with_only_the_fields_set() -> None:
    event = TaskUpdated(user_id="u", data=TaskUpdatedData(task_id="t", changes=TaskChanges(limits=None, priority=2)))
    parsed = parse_event(event.model_dump_json())
    assert isinstance(parsed, TaskUpdated)
    assert parsed.data.changes.changed() == {"limits": None, "priority": 2}


def fields_of(exc: ValidationError) -> set[str]:
    return {".".join(str(p) for p in e["loc"]) for e in exc.errors()}


def test_requests_are_strict_and_name_the_field() -> None:
    with pytest.raises(ValidationError) as bad:
        TaskCreateRequest.model_validate_json(b'{"name": "x", "chat": "@c", "account_ids": ["a"], "limits": '
                                              b'{"invites_per_day": "5"}}')
    assert "limits.invites_per_day" in fields_of(bad.value)
    with pytest.raises(ValidationError, match="message_template"):
        TaskCreateRequest.model_validate_json(b'{"name": "x", "kind": "message", "account_ids": ["a"]}')
    with pytest.raises(ValidationError, match="unknown placeholders: age"):
        TaskCreateRequest.model_validate_json(b'{"name": "x", "kind": "message", "account_ids": ["a"],'
                                              b' "message_template": "Hi {age}"}')
    with pytest.raises(ValidationError, match="end_at must be after"):
        TaskCreateRequest.model_validate_json(b'{"name": "x", "chat": "@c", "account_ids": ["a"], "schedule":'
                                              b' {"start_at": "2030-01-02T00:00:00Z", "end_at": "2030-01-01T00:00:00Z"}}')
    with pytest.raises(ValidationError, match="name cannot be null"):
        TaskUpdateRequest.model_validate_json(b'{"name": null}')
    assert TaskUpdateRequest.model_validate_json(b'{"limits": null}').model_fields_set == {"limits"}


def test_cursors_round_trip_and_foreign_ones_are_refused() -> None:
    assert decode_cursor(encode_cursor(["2030-01-01T00:00:00+00:00", "id-1"]), 2) == ["2030-01-01T00:00:00+00:00",
                                                                                      "id-1"]
    for foreign in ("", "!!!", encode_cursor([1]), encode_cursor({"a": 1})):  # type: ignore[list-item]
        with pytest.raises(ValueError, match="cursor"):
            decode_cursor(foreign, 2)


@pytest.mark.parametrize(("value", "cell"), [
    ("=SUM(A1)", "'=SUM(A1)"), ("+1", "'+1"), ("-2", "'-2"), ("@cmd", "'@cmd"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("anna", "anna"), (None, ""), (42, "42"), ("a=b", "a=b"),
])
def test_csv_cells_never_start_a_formula(value: Any, cell: str) -> None:
    assert csv_safe(value) == cell


def test_phones_are_masked_and_pasted_identities_recognized() -> None:
    assert mask_phone("+79161234567") == "+7916*****67"
    assert mask_phone("+123") == "****" and mask_phone(None) is None
    assert identity_row("+7 916 123") == {"phone": "+7 916 123"}
    assert identity_row(" 12345 ") == {"user_id": "12345"}
    assert identity_row("@name") == {"username": "@name"}


def test_eta_from_the_accounts_steady_rates() -> None:
    # 5 an hour but 50 a day: in the long run the daily window (50/24 an hour) is the bound.
    policy = LimitPolicy.telegram_default()
    now = 1_000_000.0
    fresh = account_outlook(policy, "a", [], ActionKind.INVITE, now)
    assert fresh.state == "active" and fresh.next_action_at == now
    assert fresh.rate_per_hour == pytest.approx(50 / 24)
    assert estimate_eta(10, [fresh, fresh], now) == pytest.approx(10 / (2 * 50 / 24) * 3600)
    cooling = account_outlook(policy, "b", [], ActionKind.INVITE, now,
                              {"state": "account.cooldown", "until": now + 600, "reason": "flood_wait"})
    assert cooling.state == "cooldown" and cooling.next_action_at == now + 600
    assert estimate_eta(5, [cooling], now) == pytest.approx(600 + 5 / (50 / 24) * 3600)
    dead = account_outlook(policy, "c", [], ActionKind.INVITE, now, disabled=True)
    assert dead.next_action_at is None and estimate_eta(5, [dead], now) is None
    assert estimate_eta(0, [], now) == 0.0


def test_windows_count_recorded_actions() -> None:
    policy = LimitPolicy.telegram_default()
    now = 1_000_000.0
    outlook = account_outlook(policy, "a", [(ActionKind.INVITE, now - 100), (ActionKind.INVITE, now - 50)],
                              ActionKind.INVITE, now)
    hourly = next(n for w, n in outlook.remaining[ActionKind.INVITE] if w.seconds == 3600)
    assert hourly == 3


def test_document_lists_every_operation_with_its_errors() -> None:
    async def handler(*_: Any) -> Any: ...

    ops = [
        Operation("POST", "/api/v1/tasks", "create", "tasks", handler, {202: TaskCreateRequest},
                  body=TaskCreateRequest),
        Operation("GET", "/api/v1/tasks/{task_id}", "get", "tasks", handler, {200: TaskCreateRequest}, errors=(404,)),
        Operation("GET", "/health", "live", "health", handler, {200: None}, auth=False),
    ]
    doc = build_document(ops)
    assert doc["openapi"] == "3.1.0"
    create = doc["paths"]["/api/v1/tasks"]["post"]
    assert set(create["responses"]) == {"202", "401", "413", "422", "429"}
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("TaskCreateRequest")
    get = doc["paths"]["/api/v1/tasks/{task_id}"]["get"]
    assert get["parameters"][0] == {"name": "task_id", "in": "path", "required": True,
                                    "schema": {"type": "string", "format": "uuid", "maxLength": 64}}
    assert "404" in get["responses"]
    assert doc["paths"]["/health"]["get"]["security"] == []
    assert "TaskCreateRequest" in doc["components"]["schemas"]
