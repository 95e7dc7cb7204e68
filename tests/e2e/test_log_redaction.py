"""A whole campaign with JSON logs: no secret and no phone number it used appears in any log line,
and the audit trail names who started the task.

The worker runs with the Integration Service token, the JWT secret and a
Vault-like token set, debug logging, and an audience of phone numbers; every
line it wrote is then searched for each of them (and for the bearer tokens
the API calls carried).
"""

from __future__ import annotations

import json

import pytest

from tests.support.worker import JWT_SECRET, Campaign, Worker, api, create_task, fill_task, token_for, wait_status

pytestmark = pytest.mark.e2e

PHONES = [f"+7912{i:07d}" for i in range(1_234_500, 1_234_530)]
INTEGRATION_TOKEN = "itok-3f9a8c7d6e5b4a39281706f5e4d3c2b1"


def test_no_secret_or_phone_in_any_log_line(campaign: Campaign) -> None:
    campaign.extra_env.update(
        INVITE_LOG_FORMAT="json", INVITE_LOG_LEVEL="DEBUG", INVITE_INTEGRATION_SERVICE_TOKEN=INTEGRATION_TOKEN,
    )
    token = token_for("lena")
    worker = Worker(campaign)
    try:
        worker.wait_ready()
        http = api(worker.base_url, token)
        task_id = create_task(http, "phones", ["log-acc-1", "log-acc-2"])
        fill_task(http, task_id, [{"phone": phone, "first_name": "Ann"} for phone in PHONES])
        assert http.post(f"/api/v1/tasks/{task_id}/execute").status_code == 202
        wait_status(http, task_id, "completed")
        http.get("/api/v1/tasks/does-not-exist")  # an error path logs too
    finally:
        worker.stop()

    lines = worker.log_path.read_text(errors="replace").splitlines()
    assert len(lines) > 50, "the worker logged (almost) nothing: the test would prove nothing"
    secrets = {"jwt secret": JWT_SECRET, "integration token": INTEGRATION_TOKEN, "api token": token}
    for number, line in enumerate(lines, start=1):
        for what, secret in secrets.items():
            assert secret not in line, f"{what} in log line {number}: {line[:200]}"
        for phone in PHONES:
            assert phone not in line and phone[1:] not in line and phone[-10:] not in line, \
                f"phone in log line {number}: {line[:200]}"
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(records) > len(lines) // 2, "logs are not JSON lines"
    assert any(r.get("task_id") == task_id for r in records), "log records carry no task_id"
    # The audit trail: who did what to which task.
    audited = [(r.get("actor"), r.get("action")) for r in records if r.get("logger") == "invite.audit"
               and r.get("task_id") == task_id]
    assert ("lena", "POST /api/v1/tasks/{task_id}/execute") in audited, audited
