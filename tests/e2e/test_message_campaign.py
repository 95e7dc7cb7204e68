"""A message campaign: a template filled from each target's fields, sent once per target.

The sandbox records the text of every message it delivered, so the test
checks what "Telegram" received, not what the service says it sent.
"""

from __future__ import annotations

import httpx
import pytest

from tests.support.worker import Campaign, Worker, api, fill_task, query, token_for, wait_for, wait_status

pytestmark = pytest.mark.e2e

TEMPLATE = "Hi {first_name}! @{username}, join us"


def test_message_campaign_fills_the_template_per_target(campaign: Campaign) -> None:
    worker = Worker(campaign)
    try:
        worker.wait_ready()
        http = api(worker.base_url, token_for("mia"))
        created = http.post("/api/v1/tasks", json={
            "name": "newsletter", "kind": "message", "message_template": TEMPLATE, "account_ids": ["msg-1", "msg-2"],
        })
        assert created.status_code == 202, created.text
        task_id = created.json()["task_id"]
        audience = [{"username": f"reader_{i:03d}", "first_name": f"Name{i}"} for i in range(40)]
        wait_for(lambda: http.get(f"/api/v1/tasks/{task_id}").status_code == 200, 60, what="task recorded")
        fill_task(http, task_id, audience)
        assert http.post(f"/api/v1/tasks/{task_id}/execute").status_code == 202
        stats = wait_status(http, task_id, "completed")
    except BaseException:
        print(worker.log_tail(150))
        raise
    finally:
        worker.stop()

    deliveries = httpx.get(f"{campaign.integration_url}/sandbox/deliveries", params={"action": "message"}).json()
    texts = {d["target"]: d["text"] for d in deliveries["deliveries"]}
    assert len(texts) == deliveries["count"], "a target got two messages"
    sent = query(campaign.database_url, "SELECT username, first_name FROM targets WHERE task_id = $1"
                 " AND status = 'invited'", task_id)
    assert stats["outcomes"].get("message_sent", 0) + stats["outcomes"].get("invited", 0) == len(sent) > 30
    for row in sent:
        assert texts[f"u:{row['username']}"] == f"Hi {row['first_name']}! @{row['username']}, join us"


def test_unknown_placeholder_is_refused_with_its_name(campaign: Campaign) -> None:
    worker = Worker(campaign)
    try:
        worker.wait_ready()
        http = api(worker.base_url, token_for("mia"))
        refused = http.post("/api/v1/tasks", json={
            "name": "bad", "kind": "message", "message_template": "Hi {nickname} {first_name}", "account_ids": ["m"],
        })
    finally:
        worker.stop()
    assert refused.status_code == 422
    assert "nickname" in refused.text
