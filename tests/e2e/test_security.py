"""Attacks on the HTTP edge that the other API tests do not already make.

SQL injection in every filter, search, sort and path parameter (the answer
is a clean 4xx or an empty result, and nothing in the database changed);
oversized bodies; phone numbers and secrets absent from API answers. JWT
attacks are in tests/unit/test_api_auth.py and tests/e2e/test_api_tasks.py,
cross-user access in the test_api_* modules, formula-safe CSV in
test_api_execution.py, poison events in tests/integration/test_dead_letters.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.api_worker import Served, filled, new_task, running_worker
from tests.support.stack import TestStack
from tests.support.worker import JWT_SECRET, query, wait_for

pytestmark = pytest.mark.e2e

INJECTIONS = [
    "' OR '1'='1",
    "x'; DROP TABLE targets; --",
    "1; DELETE FROM tasks",
    "name) UNION SELECT id, owner FROM tasks --",
    "%' OR owner <> '",
    "\\'; SELECT pg_sleep(5); --",
]


@pytest.fixture(scope="module")
def served(stack: TestStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with running_worker(stack, tmp_path_factory.mktemp("security")) as running:
        yield running


@pytest.fixture(scope="module")
def victim_task(served: Served) -> str:
    bob = served.client("bob")
    task_id = new_task(bob, "bobs_secret_task")
    filled(bob, task_id, ["bob_target_1", "bob_target_2"])
    return task_id


def counts(served: Served) -> tuple[int, int]:
    row = query(served.campaign.database_url,
                "SELECT (SELECT count(*) FROM tasks) AS tasks, (SELECT count(*) FROM targets) AS targets")[0]
    return row["tasks"], row["targets"]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_sql_injection_in_task_filters_search_and_sort(served: Served, victim_task: str, payload: str) -> None:
    mallory = served.client("mallory")
    before = counts(served)
    for params in ({"q": payload}, {"status": payload}, {"sort": payload}, {"platform": payload},
                   {"kind": payload}, {"priority": payload}, {"cursor": payload}, {"created_from": payload}):
        response = mallory.get("/api/v1/tasks", params=params)
        assert response.status_code in (200, 400, 422), (params, response.status_code, response.text[:200])
        if response.status_code == 200:
            assert response.json()["items"] == [], f"{params} leaked tasks: {response.text[:200]}"
        else:
            assert response.json()["error"]["code"]  # the one error format, no stack trace
    assert counts(served) == before


@pytest.mark.parametrize("payload", INJECTIONS)
def test_sql_injection_in_target_filters_and_paths(served: Served, victim_task: str, payload: str) -> None:
    mallory, bob = served.client("mallory"), served.client("bob")
    before = counts(served)
    own = new_task(mallory, f"mallory_{abs(hash(payload)) % 10_000}")
    for params in ({"q": payload}, {"status": payload}, {"account_id": payload}, {"cursor": payload}):
        response = mallory.get(f"/api/v1/tasks/{own}/targets", params=params)
        assert response.status_code in (200, 400, 422), (params, response.status_code)
        if response.status_code == 200:
            assert response.json()["items"] == []
    for path in (f"/api/v1/tasks/{payload}", f"/api/v1/tasks/{victim_task}' OR '1'='1/targets"):
        assert mallory.get(path).status_code in (404, 422)
    # bob's targets are still there, and nothing else changed than mallory's new task
    assert len(bob.get(f"/api/v1/tasks/{victim_task}/targets").json()["items"]) == 2
    assert counts(served) == (before[0] + 1, before[1])


def test_oversized_targets_body_is_refused_before_anything_is_stored(served: Served) -> None:
    mallory = served.client("mallory")
    task_id = new_task(mallory, "big_body")
    huge = b'{"targets": [' + b",".join([b'{"username": "padding_user_name_xx"}'] * 1_500_000) + b"]}"
    response = mallory.post(f"/api/v1/tasks/{task_id}/targets", content=huge,
                            headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "limit" in response.json()["error"]["message"].lower() or response.json()["error"]["code"]
    assert mallory.get(f"/api/v1/tasks/{task_id}/targets").json()["items"] == []


def test_answers_carry_no_phone_and_no_secret(served: Served) -> None:
    alice = served.client("alice")
    task_id = new_task(alice, "phones")
    assert alice.post(f"/api/v1/tasks/{task_id}/targets",
                      json={"targets": [{"phone": "+79123456789", "first_name": "Ann"}]}).status_code == 202
    listed = wait_for(lambda: (r := alice.get(f"/api/v1/tasks/{task_id}/targets")).json().get("items") and r, 60,
                      what="the phone target listed")
    bodies = [listed.text] + [alice.get(path).text for path in (
        f"/api/v1/tasks/{task_id}", "/api/v1/tasks", "/api/v1/health/detailed", "/api/v1/openapi.json")]
    text = "\n".join(bodies)
    assert "+79123456789" not in text and "9123456789" not in text
    assert JWT_SECRET not in text
    assert httpx.get(f"{served.url}/api/v1/tasks").status_code == 401
