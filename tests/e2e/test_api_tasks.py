"""Task routes against a real worker: create, list, get, update, delete, duplicate, bulk; auth and isolation.

The isolation and auth sweeps walk the served OpenAPI document, so a route
added later is covered without touching this file.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.api_worker import (
    Served,
    filled,
    new_task,
    recorded,
    running_worker,
    token,
)
from tests.support.stack import TestStack
from tests.support.worker import query, wait_for

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def served(stack: TestStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with running_worker(stack, tmp_path_factory.mktemp("api-tasks")) as running:
        yield running


@pytest.fixture(scope="module")
def alice(served: Served) -> httpx.Client:
    return served.client("alice")


def test_create_then_read_back_every_setting(alice: httpx.Client) -> None:
    created = alice.post("/api/v1/tasks", json={
        "name": "settings", "kind": "message", "message_template": "Hi {first_name}", "account_ids": ["a-1", "a-2"],
        "priority": "high", "limits": {"messages_per_day": 7},
        "schedule": {"start_at": "2030-01-01T09:00:00Z", "end_at": "2030-01-02T18:00:00+00:00"},
        "skip_privacy_failed": False,
    })
    assert created.status_code == 202, created.text
    assert created.json()["status"] == "draft"
    task = recorded(alice, created.json()["task_id"], lambda t: t["schedule"] is not None)
    assert task["kind"] == "message" and task["priority"] == 2 and task["status"] == "draft"
    assert task["account_ids"] == ["a-1", "a-2"]
    assert task["limits"]["messages_per_day"] == 7
    assert task["schedule"] == {"start_at": "2030-01-01T09:00:00Z", "end_at": "2030-01-02T18:00:00Z"}
    assert task["skip_privacy_failed"] is False


@pytest.mark.parametrize(("given", "stored"), [("low", 0), ("normal", 1), ("high", 2), (0, 0), (2, 2)])
def test_priority_by_name_or_number(alice: httpx.Client, given: Any, stored: int) -> None:
    task_id = new_task(alice, f"prio_{given}", priority=given)
    assert alice.get(f"/api/v1/tasks/{task_id}").json()["priority"] == stored


@pytest.mark.parametrize(("body", "field"), [
    ({"kind": "invite", "chat": "@c", "account_ids": ["a"]}, "name"),
    ({"name": "x", "chat": "@c", "account_ids": ["a"], "priority": "urgent"}, "priority"),
    ({"name": "x", "chat": "@c", "account_ids": ["a"], "priority": "1"}, "priority"),
    ({"name": "x", "chat": "@c", "account_ids": []}, "account_ids"),
    ({"name": "x", "chat": "@c", "account_ids": ["a"], "colour": "red"}, "colour"),
    ({"name": "x", "chat": "@c", "account_ids": ["a"], "limits": {"invites_per_hour": "5"}}, "limits.invites_per_hour"),
    ({"name": "x", "chat": "@c", "account_ids": ["a"], "schedule": {"start_at": "2030-01-01T00:00:00"}},
     "schedule.start_at"),
    ({"name": "x\u0000", "chat": "@c", "account_ids": ["a"]}, "name"),
])
def test_invalid_create_is_422_naming_the_field(alice: httpx.Client, body: dict[str, Any], field: str) -> None:
    response = alice.post("/api/v1/tasks", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in [d["field"] for d in error["details"]], error


def test_a_body_that_is_not_json_is_422(alice: httpx.Client) -> None:
    response = alice.post("/api/v1/tasks", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["details"] == [{"field": "body", "message": "invalid JSON"}]


def test_list_filters_searches_sorts_and_pages_without_gaps(served: Served) -> None:
    http = served.client("lister")
    ids = {}
    for name, priority in [("Alpha north", "low"), ("beta north", "high"), ("Gamma south", "normal"),
                           ("delta NORTH", "high"), ("epsilon", "low")]:
        ids[name] = new_task(http, name, priority=priority, chat="@list_chat")

    def names(**params: Any) -> list[str]:
        response = http.get("/api/v1/tasks", params=params)
        assert response.status_code == 200, response.text
        return [t["name"] for t in response.json()["items"]]

    assert sorted(names(q="north")) == ["Alpha north", "beta north", "delta NORTH"]
    assert sorted(names(priority="high")) == ["beta north", "delta NORTH"]
    assert sorted(names(priority=0)) == ["Alpha north", "epsilon"]
    assert names(sort="name", q="north") == ["Alpha north", "beta north", "delta NORTH"]
    assert names(sort="-name", q="north") == ["delta NORTH", "beta north", "Alpha north"]
    by_priority = names(sort="-priority", q="north")
    assert sorted(by_priority[:2]) == ["beta north", "delta NORTH"] and by_priority[2] == "Alpha north"
    assert len(names(status="draft", kind="invite", platform="telegram")) == 5
    assert names(status="running") == []
    assert names(created_to="2000-01-01T00:00:00Z") == []
    assert len(names(created_from="2000-01-01T00:00:00Z")) == 5

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "sort": "created_at"}
        if cursor:
            params["cursor"] = cursor
        page = http.get("/api/v1/tasks", params=params).json()
        assert page["total"] == 5
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids.values()) and len(seen) == 5


@pytest.mark.parametrize(("params", "field"), [
    ({"sort": "owner"}, "sort"), ({"limit": 0}, "limit"), ({"status": "sleeping"}, "status"),
    ({"cursor": "bm9wZQ"}, "cursor"), ({"created_from": "yesterday"}, "created_from"), ({"colour": "red"}, "colour"),
])
def test_invalid_list_query_is_422_naming_the_parameter(alice: httpx.Client, params: dict[str, Any],
                                                        field: str) -> None:
    response = alice.get("/api/v1/tasks", params=params)
    assert response.status_code == 422, response.text
    assert field in [d["field"] for d in response.json()["error"]["details"]]


def test_a_cursor_of_another_sort_order_is_refused(alice: httpx.Client) -> None:
    foreign = base64.urlsafe_b64encode(json.dumps(["not a time", "x"]).encode()).decode().rstrip("=")
    response = alice.get("/api/v1/tasks", params={"sort": "created_at", "cursor": foreign})
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "cursor"


def test_update_applies_what_the_state_allows_and_409_names_the_state(served: Served) -> None:
    http = served.client("updater")
    task_id = new_task(http, "updating", accounts=["flood_upd-1"])
    response = http.put(f"/api/v1/tasks/{task_id}", json={"chat": "@other_chat", "priority": "low",
                                                         "limits": {"invites_per_day": 3}})
    assert response.status_code == 202, response.text
    assert response.json()["task"]["chat"] == "@other_chat"
    recorded(http, task_id, lambda t: t["chat"] == "@other_chat" and t["priority"] == 0
             and t["limits"]["invites_per_day"] == 3)

    filled(http, task_id, ["upd_target_1", "upd_target_2"])
    assert http.post(f"/api/v1/tasks/{task_id}/execute").status_code == 202
    recorded(http, task_id, lambda t: t["status"] == "running")

    refused = http.put(f"/api/v1/tasks/{task_id}", json={"chat": "@late_chat", "name": "renamed"})
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "illegal_update" and "running" in error["message"]
    assert error["details"] == {"status": "running", "fields": ["chat"]}

    # Priority of a running task: the row changes, which every account's next pick reads.
    assert http.put(f"/api/v1/tasks/{task_id}", json={"priority": "high"}).status_code == 202
    wait_for(lambda: query(served.campaign.database_url, "SELECT priority FROM tasks WHERE id = $1",
                           task_id)[0]["priority"] == 2, 30, what="priority stored")
    task = http.get(f"/api/v1/tasks/{task_id}").json()
    assert task["chat"] == "@other_chat" and task["name"] == "updating"

    empty = http.put(f"/api/v1/tasks/{task_id}", json={})
    assert empty.status_code == 422
    assert http.post(f"/api/v1/tasks/{task_id}/cancel").status_code == 202


def test_delete_hides_the_task_cancels_its_targets_and_keeps_the_rows(served: Served) -> None:
    http = served.client("deleter")
    task_id = new_task(http, "deleting")
    filled(http, task_id, ["del_target_1", "del_target_2"])
    response = http.delete(f"/api/v1/tasks/{task_id}")
    assert response.status_code == 202 and response.json()["status"] == "deleted"
    wait_for(lambda: http.get(f"/api/v1/tasks/{task_id}").status_code == 404, 30, what="task gone")
    assert task_id not in [t["id"] for t in http.get("/api/v1/tasks").json()["items"]]
    assert http.get(f"/api/v1/tasks/{task_id}/targets").status_code == 404
    rows = query(served.campaign.database_url, "SELECT status FROM targets WHERE task_id = $1", task_id)
    assert [r["status"] for r in rows] == ["cancelled", "cancelled"]
    assert http.delete(f"/api/v1/tasks/{task_id}").status_code == 404


def test_duplicate_copies_settings_and_optionally_the_audience(served: Served) -> None:
    http = served.client("copier")
    source = new_task(http, "original", accounts=["c-1", "c-2"], priority="high", limits={"invites_per_hour": 2})
    filled(http, source, ["dup_target_1", "dup_target_2", "dup_target_3"])

    bare = http.post(f"/api/v1/tasks/{source}/duplicate", json={})
    assert bare.status_code == 202, bare.text
    with_targets = http.post(f"/api/v1/tasks/{source}/duplicate", json={"name": "copy 2", "copy_targets": True})
    assert with_targets.status_code == 202 and with_targets.json()["targets_copied"] == 3

    copy = recorded(http, bare.json()["task_id"])
    assert copy["name"] == "original (copy)" and copy["status"] == "draft"
    assert (copy["chat"], copy["priority"], copy["account_ids"], copy["limits"]["invites_per_hour"]) == \
        ("@original_chat", 2, ["c-1", "c-2"], 2)
    assert http.get(f"/api/v1/tasks/{copy['id']}/targets").json()["total"] == 0
    second = with_targets.json()["task_id"]
    recorded(http, second)
    listed = wait_for(lambda: (p := http.get(f"/api/v1/tasks/{second}/targets").json())["total"] == 3 and p,
                      60, what="copied targets")
    assert sorted(t["username"] for t in listed["items"]) == ["dup_target_1", "dup_target_2", "dup_target_3"]
    assert {t["status"] for t in listed["items"]} == {"pending"}


def test_bulk_answers_per_task(served: Served) -> None:
    http = served.client("bulker")
    drafts = [new_task(http, f"bulk_{i}") for i in range(3)]
    strangers = new_task(served.client("stranger"), "not_yours")
    response = http.post("/api/v1/tasks/bulk", json={"action": "set_priority", "priority": "high",
                                                     "task_ids": [*drafts, strangers, "nope"]})
    assert response.status_code == 202, response.text
    results = {r["task_id"]: r for r in response.json()["results"]}
    assert all(results[t]["ok"] and results[t]["status_code"] == 202 for t in drafts)
    assert results[strangers]["status_code"] == 404 and results["nope"]["status_code"] == 404
    for task_id in drafts:
        recorded(http, task_id, lambda t: t["priority"] == 2)
    assert served.client("stranger").get(f"/api/v1/tasks/{strangers}").json()["priority"] == 1

    paused = http.post("/api/v1/tasks/bulk", json={"action": "pause", "task_ids": drafts[:1]}).json()["results"][0]
    assert not paused["ok"] and paused["status_code"] == 409
    assert paused["error"]["details"] == {"status": "draft"}
    cancelled = http.post("/api/v1/tasks/bulk", json={"action": "cancel", "task_ids": drafts[:2]}).json()
    assert [r["status"] for r in cancelled["results"]] == ["cancelled", "cancelled"]
    deleted = http.post("/api/v1/tasks/bulk", json={"action": "delete", "task_ids": drafts[2:]}).json()
    assert deleted["results"][0]["ok"]
    wait_for(lambda: http.get(f"/api/v1/tasks/{drafts[2]}").status_code == 404, 30, what="bulk delete")
    recorded(http, drafts[0], lambda t: t["status"] == "cancelled")

    missing = http.post("/api/v1/tasks/bulk", json={"action": "set_priority", "task_ids": drafts})
    assert missing.status_code == 422 and "priority" in missing.text


# ---- auth and isolation over every route of the document --------------------------------------------


def operations(served: Served) -> list[tuple[str, str, dict[str, Any]]]:
    document = httpx.get(f"{served.url}/api/v1/openapi.json", timeout=10).json()
    return [(method.upper(), path, op) for path, item in document["paths"].items() for method, op in item.items()]


def fill(path: str, task_id: str, target_id: int) -> str:
    return path.replace("{task_id}", task_id).replace("{target_id}", str(target_id))


def test_openapi_document_is_served_and_public(served: Served) -> None:
    response = httpx.get(f"{served.url}/api/v1/openapi.json", timeout=10)
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    assert {"/api/v1/tasks", "/api/v1/tasks/{task_id}/report.csv", "/api/v1/health/detailed"} <= set(document["paths"])


BAD_TOKENS = {
    "missing": None,
    "not bearer": "Basic YWxpY2U6c2VjcmV0",
    "expired": token("alice", ttl=-3600),
    "bad signature": token("alice", secret="another-secret-of-sufficient-length"),
    "not yet valid": token("alice", nbf=int(time.time()) + 3600),
    "alg none": (base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=") + "."
                 + base64.urlsafe_b64encode(json.dumps({"sub": "alice", "exp": int(time.time()) + 3600})
                                            .encode()).decode().rstrip("=") + "."),
    "garbage": "abc.def.ghi",
}


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_every_route_refuses_a_bad_token(served: Served, alice: httpx.Client, kind: str) -> None:
    task_id = new_task(alice, f"auth_{kind.replace(' ', '_')}")
    bad = BAD_TOKENS[kind]
    headers = {} if bad is None else {"Authorization": bad if kind == "not bearer" else f"Bearer {bad}"}
    checked = 0
    for method, path, op in operations(served):
        if op.get("security") == []:
            continue
        response = httpx.request(method, served.url + fill(path, task_id, 1), headers=headers, json={}, timeout=10)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        checked += 1
    assert checked > 20


def test_another_users_ids_are_not_found_on_every_route(served: Served, alice: httpx.Client) -> None:
    task_id = new_task(alice, "private", accounts=["private-acc"])
    (target,) = filled(alice, task_id, ["private_target"])
    mallory = served.client("mallory")
    checked = 0
    for method, path, _ in operations(served):
        if "{task_id}" not in path:
            continue
        response = mallory.request(method, fill(path, task_id, target["id"]), json={})
        assert response.status_code == 404, (method, path, response.text)
        assert "private" not in response.text
        checked += 1
    assert checked > 20
    # Nothing mallory did reached alice's task, and lists never show it.
    time.sleep(1)
    task = alice.get(f"/api/v1/tasks/{task_id}").json()
    assert (task["status"], task["name"], task["account_ids"]) == ("draft", "private", ["private-acc"])
    assert alice.get(f"/api/v1/tasks/{task_id}/targets").json()["total"] == 1
    assert task_id not in [t["id"] for t in mallory.get("/api/v1/tasks").json()["items"]]
    bulk = mallory.post("/api/v1/tasks/bulk", json={"action": "delete", "task_ids": [task_id]}).json()
    assert bulk["results"][0]["status_code"] == 404
    assert alice.get(f"/api/v1/tasks/{task_id}").status_code == 200


def test_unknown_paths_and_methods_answer_in_the_error_format(alice: httpx.Client, served: Served) -> None:
    missing = alice.get("/api/v1/no-such-thing")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = alice.patch("/api/v1/tasks")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"


def test_oversized_body_is_413(alice: httpx.Client) -> None:
    response = alice.post("/api/v1/tasks", content=b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}',
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_health_and_detailed_health(served: Served) -> None:
    assert httpx.get(f"{served.url}/health", timeout=10).json() == {"status": "ok"}
    detailed = httpx.get(f"{served.url}/api/v1/health/detailed", timeout=20)
    assert detailed.status_code == 200, detailed.text
    body = detailed.json()
    assert body["status"] == "ok"
    assert {k: v["status"] for k, v in body["checks"].items()} == {
        "broker": "ok", "postgres": "ok", "redis": "ok", "integration_service": "ok", "vault": "skipped"}
    assert isinstance(body["consumer_lag"], int)
    assert served.campaign.database_url.rsplit("@")[-1] not in detailed.text

