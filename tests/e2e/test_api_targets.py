"""Target routes against a real worker: add, paste, list, search, page, update, delete, bulk actions, stats."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.api_worker import Served, filled, new_task, running_worker
from tests.support.stack import TestStack
from tests.support.worker import query, wait_for

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def served(stack: TestStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with running_worker(stack, tmp_path_factory.mktemp("api-targets")) as running:
        yield running


@pytest.fixture(scope="module")
def http(served: Served) -> httpx.Client:
    return served.client("targeter")


def listed(http: httpx.Client, task_id: str, **params: Any) -> dict[str, Any]:
    response = http.get(f"/api/v1/tasks/{task_id}/targets", params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def test_add_validates_every_row_and_adds_nothing_when_one_is_bad(http: httpx.Client) -> None:
    task_id = new_task(http, "validating")
    response = http.post(f"/api/v1/tasks/{task_id}/targets", json={"targets": [
        {"username": "good_name"}, {"username": "x"}, {"first_name": "nobody"}, {"phone": "12"}]})
    assert response.status_code == 422, response.text
    fields = [d["field"] for d in response.json()["error"]["details"]]
    assert fields[0] == "targets.1.username" and len(fields) == 3 and fields[2].startswith("targets.3")
    assert "3 of 4" in response.json()["error"]["message"]
    unknown = http.post(f"/api/v1/tasks/{task_id}/targets", json={"targets": [{"nick": "a"}]})
    assert unknown.status_code == 422 and unknown.json()["error"]["details"][0]["field"] == "targets.0.nick"
    assert listed(http, task_id)["total"] == 0


def test_pasted_identities_are_recognized_and_phones_masked(http: httpx.Client) -> None:
    task_id = new_task(http, "pasting")
    response = http.post(f"/api/v1/tasks/{task_id}/targets/bulk", json={"identities": [
        "@Pasted_One", "https://t.me/pasted_two", "+79161234567", "123456789"]})
    assert response.status_code == 202, response.text
    assert response.json()["rows"] == 4 and len(response.json()["batch_ids"]) == 1
    items = wait_for(lambda: (p := listed(http, task_id))["total"] == 4 and p["items"], 60, what="pasted")
    assert {t["username"] for t in items} == {"pasted_one", "pasted_two", None}
    assert 123456789 in {t["user_id"] for t in items}
    phones = [t["phone"] for t in items if t["phone"]]
    assert phones == ["+7916*****67"], "phone numbers leave the service masked"
    bad = http.post(f"/api/v1/tasks/{task_id}/targets/bulk", json={"identities": ["@ok_name", "t.me/joinchat/x"]})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"].startswith("identities.1")


def test_list_filters_and_searches(http: httpx.Client, served: Served) -> None:
    task_id = new_task(http, "searching", accounts=["s-acc-1", "s-acc-2"])
    response = http.post(f"/api/v1/tasks/{task_id}/targets", json={"targets": [
        {"username": "anna_smith", "first_name": "Anna"}, {"username": "boris_b", "last_name": "Smithson"},
        {"username": "carl_c"}, {"user_id": 555777}]})
    assert response.status_code == 202
    wait_for(lambda: listed(http, task_id)["total"] == 4, 60, what="imported")
    assert {t["username"] for t in listed(http, task_id, q="smith")["items"]} == {"anna_smith", "boris_b"}
    assert [t["user_id"] for t in listed(http, task_id, q="555777")["items"]] == [555777]
    assert listed(http, task_id, q="50%_off")["total"] == 0
    assert listed(http, task_id, status="pending")["total"] == 4
    assert listed(http, task_id, status="invited")["total"] == 0
    query(served.campaign.database_url, "UPDATE targets SET account_id = 's-acc-2' WHERE username = 'carl_c'")
    assert [t["username"] for t in listed(http, task_id, account_id="s-acc-2")["items"]] == ["carl_c"]
    bad = http.get(f"/api/v1/tasks/{task_id}/targets", params={"status": "gone"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "status"


def test_pages_stay_stable_while_targets_are_inserted(http: httpx.Client) -> None:
    task_id = new_task(http, "paging")
    first = filled(http, task_id, [f"page_first_{i:03d}" for i in range(60)])
    assert len(first) == 60
    stop = threading.Event()

    def keep_inserting() -> None:
        n = 0
        while not stop.is_set() and n < 20:
            http.post(f"/api/v1/tasks/{task_id}/targets", json={"targets": [
                {"username": f"page_late_{n:03d}_{k}"} for k in range(5)]})
            n += 1

    inserter = threading.Thread(target=keep_inserting)
    inserter.start()
    try:
        seen: list[int] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 7}
            if cursor:
                params["cursor"] = cursor
            page = listed(http, task_id, **params)
            seen += [t["id"] for t in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    finally:
        stop.set()
        inserter.join()
    assert len(seen) == len(set(seen)), "a target was listed twice"
    assert seen == sorted(seen)
    assert {t["id"] for t in first} <= set(seen), "a target that existed before paging was skipped"


def test_update_changes_names_and_identity_until_attempted(http: httpx.Client, served: Served) -> None:
    task_id = new_task(http, "editing")
    targets = {t["username"]: t for t in filled(http, task_id, ["edit_one", "edit_two"])}
    one, two = targets["edit_one"], targets["edit_two"]
    base = f"/api/v1/tasks/{task_id}/targets"

    renamed = http.put(f"{base}/{one['id']}", json={"first_name": "Ed", "username": "@Edit_Three"})
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["first_name"], renamed.json()["username"]) == ("Ed", "edit_three")
    duplicate = http.put(f"{base}/{two['id']}", json={"username": "edit_three"})
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "duplicate_target"
    invalid = http.put(f"{base}/{two['id']}", json={"username": "no"})
    assert invalid.status_code == 422 and invalid.json()["error"]["details"][0]["field"] == "username"

    query(served.campaign.database_url, "UPDATE targets SET attempts = 1 WHERE id = $1", two["id"])
    refused = http.put(f"{base}/{two['id']}", json={"username": "edit_four"})
    assert refused.status_code == 409 and refused.json()["error"]["details"] == {"status": "pending"}
    assert http.put(f"{base}/{two['id']}", json={"last_name": "Still"}).json()["last_name"] == "Still"
    query(served.campaign.database_url, "UPDATE targets SET status = 'in_flight' WHERE id = $1", two["id"])
    in_flight = http.put(f"{base}/{two['id']}", json={"last_name": "Never"})
    assert in_flight.status_code == 409 and in_flight.json()["error"]["details"] == {"status": "in_flight"}
    assert http.put(f"{base}/999999999", json={"first_name": "x"}).status_code == 404
    assert http.put(f"{base}/abc", json={"first_name": "x"}).json()["error"]["details"][0]["field"] == "target_id"


def test_delete_and_bulk_actions_answer_per_target(http: httpx.Client, served: Served) -> None:
    task_id = new_task(http, "acting")
    targets = {t["username"]: t["id"] for t in filled(http, task_id, [f"act_{i}" for i in range(6)])}
    db = served.campaign.database_url
    query(db, "UPDATE targets SET status = 'failed', reason = 'transient_error', transient_failures = 3,"
              " attempts = 3, account_id = 'acc-1' WHERE id = $1", targets["act_0"])
    query(db, "UPDATE targets SET status = 'failed', reason = 'privacy_restricted', attempts = 1 WHERE id = $1",
          targets["act_1"])
    query(db, "UPDATE targets SET status = 'invited', attempts = 1 WHERE id = $1", targets["act_2"])
    base = f"/api/v1/tasks/{task_id}/targets"

    retried = http.post(f"{base}/bulk-action", json={"action": "retry_failed",
                                                     "target_ids": [targets["act_0"], targets["act_1"], 424242]})
    assert retried.status_code == 200, retried.text
    results = {r["target_id"]: r for r in retried.json()["results"]}
    assert retried.json()["affected"] == 1 and results[targets["act_0"]]["status"] == "pending"
    assert "privacy_restricted" in results[targets["act_1"]]["error"]["message"]
    assert results[424242]["error"]["code"] == "not_found"
    row = query(db, "SELECT status, attempts, transient_failures, account_id FROM targets WHERE id = $1",
                targets["act_0"])[0]
    assert dict(row) == {"status": "pending", "attempts": 3, "transient_failures": 0, "account_id": None}

    skipped = http.post(f"{base}/bulk-action", json={"action": "skip", "target_ids": [targets["act_3"]]}).json()
    assert skipped["results"][0]["ok"] and skipped["results"][0]["status"] == "skipped"
    gone = http.delete(f"{base}/{targets['act_4']}")
    assert gone.status_code == 200 and gone.json()["ok"]
    kept = http.delete(f"{base}/{targets['act_2']}")
    assert kept.status_code == 409 and kept.json()["error"]["details"]["status"] == "invited"
    assert http.delete(f"{base}/{targets['act_4']}").status_code == 404

    stats = http.get(f"{base}/stats").json()
    assert stats["total"] == 5
    assert stats["by_status"] == {"pending": 2, "failed": 1, "invited": 1, "skipped": 1}
    assert stats["by_reason"] == {"privacy_restricted": 1}

    everything = http.post(f"{base}/bulk-action", json={"action": "delete"}).json()
    assert everything == {"action": "delete", "affected": 4, "results": None}
    assert [t["username"] for t in listed(http, task_id)["items"]] == ["act_2"]


def test_a_finished_task_takes_no_targets_and_no_retries(http: httpx.Client) -> None:
    task_id = new_task(http, "finished")
    assert http.post(f"/api/v1/tasks/{task_id}/cancel").status_code == 202
    wait_for(lambda: http.get(f"/api/v1/tasks/{task_id}").json()["status"] == "cancelled", 30, what="cancelled")
    added = http.post(f"/api/v1/tasks/{task_id}/targets", json={"targets": [{"username": "too_late"}]})
    assert added.status_code == 409 and added.json()["error"]["details"] == {"status": "cancelled"}
    retry = http.post(f"/api/v1/tasks/{task_id}/targets/bulk-action", json={"action": "retry_failed"})
    assert retry.status_code == 409 and retry.json()["error"]["code"] == "task_finished"
