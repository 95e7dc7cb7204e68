"""Execution and statistics routes on a real (small) campaign: status, accounts, report, CSV, logs,
test invite, attaching and detaching accounts, the user's accounts."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.api_worker import Served, filled, new_task, recorded, running_worker
from tests.support.stack import TestStack
from tests.support.worker import query, wait_for

pytestmark = pytest.mark.e2e

AUDIENCE = [f"exec_target_{i:02d}" for i in range(8)] + ["privacy_exec_1", "privacy_exec_2"]


@pytest.fixture(scope="module")
def served(stack: TestStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with running_worker(stack, tmp_path_factory.mktemp("api-exec")) as running:
        yield running


@pytest.fixture(scope="module")
def http(served: Served) -> httpx.Client:
    return served.client("operator")


@pytest.fixture(scope="module")
def finished(http: httpx.Client) -> str:
    """A campaign run to completion, with a name that tries formula injection."""
    task_id = new_task(http, "executed", accounts=["exec-acc-1", "exec-acc-2"])
    response = http.post(f"/api/v1/tasks/{task_id}/targets", json={"targets": [
        {"username": u, "first_name": "=HYPERLINK(\"http://x\")" if u.endswith("00") else "Eve"} for u in AUDIENCE]})
    assert response.status_code == 202
    wait_for(lambda: http.get(f"/api/v1/tasks/{task_id}/targets").json()["total"] == len(AUDIENCE), 60,
             what="imported")
    assert http.post(f"/api/v1/tasks/{task_id}/execute").status_code == 202
    recorded(http, task_id, lambda t: t["status"] == "completed", timeout=120)
    return task_id


def test_report_counts_outcomes_accounts_reasons_and_hours(http: httpx.Client, finished: str) -> None:
    report = http.get(f"/api/v1/tasks/{finished}/report")
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["status"] == "completed" and body["progress"]["done"] == len(AUDIENCE)
    assert body["outcomes"]["privacy_restricted"] == 2
    assert body["attempts"] == sum(body["outcomes"].values()) >= len(AUDIENCE)
    assert {a["account_id"] for a in body["by_account"]} == {"exec-acc-1", "exec-acc-2"}
    assert sum(a["attempts"] for a in body["by_account"]) == body["attempts"]
    assert body["by_reason"]["privacy_restricted"] == 2
    assert sum(h["attempts"] for h in body["timeline"]) == body["attempts"]
    assert body["duration_seconds"] is not None and body["duration_seconds"] >= 0
    assert body["started_at"] <= body["finished_at"]


def test_csv_export_is_per_target_and_formula_safe(http: httpx.Client, finished: str) -> None:
    response = http.get(f"/api/v1/tasks/{finished}/report.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert sorted(r["username"] for r in rows) == sorted(AUDIENCE)
    risky = next(r for r in rows if r["username"] == "exec_target_00")
    assert risky["first_name"] == "'=HYPERLINK(\"http://x\")"
    assert {r["status"] for r in rows if r["username"].startswith("privacy_")} == {"failed"}
    assert all(not cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r.values())


def test_logs_page_newest_first_and_filter(http: httpx.Client, finished: str) -> None:
    everything = http.get(f"/api/v1/tasks/{finished}/logs", params={"limit": 1000}).json()["items"]
    ids = [e["id"] for e in everything]
    assert ids == sorted(ids, reverse=True) and len(ids) >= len(AUDIENCE)
    pages: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = http.get(f"/api/v1/tasks/{finished}/logs", params=params).json()
        pages += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert pages == ids
    privacy = http.get(f"/api/v1/tasks/{finished}/logs", params={"outcome": "privacy_restricted"}).json()["items"]
    assert len(privacy) == 2 and {e["outcome"] for e in privacy} == {"privacy_restricted"}
    one = http.get(f"/api/v1/tasks/{finished}/logs", params={"account_id": "exec-acc-1"}).json()["items"]
    assert one and {e["account_id"] for e in one} == {"exec-acc-1"}
    bad = http.get(f"/api/v1/tasks/{finished}/logs", params={"outcome": "won"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "outcome"


def test_status_and_accounts_show_progress_and_limits(http: httpx.Client, finished: str) -> None:
    status = http.get(f"/api/v1/tasks/{finished}/status").json()
    assert status["status"] == "completed" and status["progress"]["percent"] == 100.0
    assert status["rate_per_hour"] >= len(AUDIENCE)
    assert status["eta_seconds"] is None  # nothing is running
    accounts = {a["account_id"]: a for a in http.get(f"/api/v1/tasks/{finished}/accounts").json()["items"]}
    assert set(accounts) == {"exec-acc-1", "exec-acc-2"}
    used = sum(100000 - a["remaining"]["invite"][0]["remaining"] for a in accounts.values())
    assert used >= len(AUDIENCE), "the windows count the sends the accounts made"
    assert {a["state"] for a in accounts.values()} == {"active"}


def test_a_running_task_has_an_eta(http: httpx.Client) -> None:
    task_id = new_task(http, "eta", accounts=["flood_eta-1"])
    filled(http, task_id, ["eta_a", "eta_b", "eta_c"])
    assert http.post(f"/api/v1/tasks/{task_id}/execute").status_code == 202
    status = wait_for(lambda: (s := http.get(f"/api/v1/tasks/{task_id}/status").json())["accounts"][0]["state"]
                      == "cooldown" and s, 60, what="the flood account cooling down")
    assert status["status"] == "running"
    assert status["eta_seconds"] > 0 and status["eta_at"] is not None
    assert status["accounts"][0]["until"] is not None
    assert http.post(f"/api/v1/tasks/{task_id}/cancel").status_code == 202


def test_test_invite_sends_once_and_refuses_a_busy_or_foreign_account(http: httpx.Client, served: Served) -> None:
    task_id = new_task(http, "testing", accounts=["probe-acc-1"])
    sent = http.post(f"/api/v1/tasks/{task_id}/test-invite",
                     json={"account_id": "probe-acc-1", "target": {"username": "@probe_person"}})
    assert sent.status_code == 200, sent.text
    assert sent.json()["outcome"] in {"invited", "already_member", "privacy_restricted"}
    deliveries = httpx.get(f"{served.campaign.integration_url}/sandbox/calls", timeout=10).json()["calls"]
    assert [c["account_id"] for c in deliveries if c["idempotency_key"].startswith(f"test:{task_id}")] == \
        ["probe-acc-1"]
    recorded_action = query(served.campaign.database_url,
                            "SELECT count(*) AS n FROM account_actions WHERE account_id = 'probe-acc-1'")[0]["n"]
    assert recorded_action == 1, "the send counts against the account's limits"
    privacy = http.post(f"/api/v1/tasks/{task_id}/test-invite",
                        json={"account_id": "probe-acc-1", "target": {"username": "privacy_probe"}})
    assert privacy.json()["outcome"] == "privacy_restricted" and privacy.json()["scope"] == "target_permanent"

    foreign = http.post(f"/api/v1/tasks/{task_id}/test-invite",
                        json={"account_id": "someone-else", "target": {"username": "probe_person"}})
    assert foreign.status_code == 422 and foreign.json()["error"]["details"][0]["field"] == "account_id"
    invalid = http.post(f"/api/v1/tasks/{task_id}/test-invite", json={"account_id": "probe-acc-1", "target": {}})
    assert invalid.status_code == 422

    busy_task = new_task(http, "busy", accounts=["flood_busy-1"])
    filled(http, busy_task, ["busy_a"])
    assert http.post(f"/api/v1/tasks/{busy_task}/execute").status_code == 202
    recorded(http, busy_task, lambda t: t["status"] == "running")
    busy = http.post(f"/api/v1/tasks/{busy_task}/test-invite",
                     json={"account_id": "flood_busy-1", "target": {"username": "probe_person"}})
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "account_busy"
    assert http.post(f"/api/v1/tasks/{busy_task}/cancel").status_code == 202


def test_attach_and_detach_accounts_move_the_work(http: httpx.Client, served: Served) -> None:
    task_id = new_task(http, "moving", accounts=["flood_move-1"])
    filled(http, task_id, [f"move_{i}" for i in range(6)])
    assert http.post(f"/api/v1/tasks/{task_id}/execute").status_code == 202
    recorded(http, task_id, lambda t: t["status"] == "running")
    # flood_move-1 cools down after its first call; a healthy account takes over the rest once attached.
    attached = http.post(f"/api/v1/tasks/{task_id}/accounts/attach", json={"account_ids": ["move-acc-2"]})
    assert attached.status_code == 202 and attached.json()["status"] == "running"
    detached = http.post(f"/api/v1/tasks/{task_id}/accounts/detach", json={"account_ids": ["flood_move-1"]})
    assert detached.status_code == 202
    done = recorded(http, task_id, lambda t: t["status"] == "completed", timeout=120)
    assert done["account_ids"] == ["flood_move-1", "move-acc-2"]
    states = {a["account_id"]: a["task_state"] for a in http.get(f"/api/v1/tasks/{task_id}/accounts").json()["items"]}
    assert states == {"move-acc-2": "active"}
    rows = query(served.campaign.database_url,
                 "SELECT account_id, count(*) AS n FROM targets WHERE task_id = $1 AND status = 'invited'"
                 " GROUP BY account_id", task_id)
    assert {r["account_id"] for r in rows} == {"move-acc-2"}
    empty = http.post(f"/api/v1/tasks/{task_id}/accounts/attach", json={"account_ids": []})
    assert empty.status_code == 422 and empty.json()["error"]["details"][0]["field"] == "account_ids"
    late = http.post(f"/api/v1/tasks/{task_id}/accounts/attach", json={"account_ids": ["x"]})
    assert late.status_code == 409 and late.json()["error"]["details"] == {"status": "completed"}


def test_the_users_accounts_come_from_the_integration_service(served: Served) -> None:
    http = served.client("owner-of-accounts")
    response = http.get("/api/v1/accounts")
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert items and all(a["id"].startswith("owner-of-accounts-") for a in items)
    assert all(a["limits"]["state"] == "active" and a["limits"]["remaining"]["invite"] for a in items)
    other = served.client("someone-else").get("/api/v1/accounts").json()["items"]
    assert not {a["id"] for a in other} & {a["id"] for a in items}
